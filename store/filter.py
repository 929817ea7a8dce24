"""The jobs filter language (``GET /api/jobs?where=…``, ``proxns jobs --where``) and sorting.

An expression such as ``method = proxns and lam >= 0.1 and acc_slim > 0.95`` is parsed with ``lark``
(an LALR grammar, :data:`GRAMMAR`) into one SQLAlchemy boolean over ``Job`` outer-joined with
``Result``; it runs unchanged on SQLite and Postgres. Config fields are read from the JSON column
``jobs.config``, result fields are real columns of ``results``; three fields are derived
(``acc_final``, ``flops_removed``, ``params_removed``).

Every value is checked against its field while parsing, so that a bad expression is refused with
the place it went wrong (:class:`FilterError`: kind, message, 0-based position and length) before
any query runs: an unknown field, a value of the wrong type, a method or data set that does not
exist, a syntax error. Nothing here knows about HTTP (``api/`` turns a :class:`FilterError` into a
422) and nothing imports torch.

Semantics worth knowing: a comparison with a field that is null (``beta`` of an ns job,
``acc_slim`` of a job that has not finished) is false, whatever the operator; ``not`` turns false
into true, so ``not beta = 100`` keeps the ns jobs and ``beta != 100`` does not. ``is null`` asks
for the missing value itself.
"""

from __future__ import annotations

import difflib
import math
import operator
import types
import typing
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from lark import Lark, Token, Transformer
from lark.exceptions import UnexpectedInput, UnexpectedToken
from sqlalchemy import BigInteger, Boolean, DateTime, Float, String, and_, case, cast, func, literal, or_
from sqlalchemy import not_ as sql_not
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.visitors import InternalTraversal

from proxns_core.spec import JOB_STATUSES, TrainConfig
from proxns_core.spec import Result as ResultSpec
from store.models import Job, Result

#: Longest expression accepted (characters); the API refuses longer ones with 422.
MAX_LENGTH = 2000
#: Deepest nesting of parentheses and ``not`` accepted: deeper is refused, never a stack overflow.
MAX_DEPTH = 32
#: The comparison operators, and everything else an expression may use (GET /api/meta lists these).
COMPARISONS = ("=", "!=", "<", "<=", ">", ">=")
OPERATORS = (*COMPARISONS, "in", "is null", "is not null", "and", "or", "not")
#: The field names that mean "the job has this tag" (``tag = best``, ``tags in (a, b)``).
TAG_FIELDS = ("tag", "tags")
#: Largest integer bound as an integer (beyond it a number is compared as a float: no overflow).
_INT64 = 2**63 - 1

GRAMMAR = r"""
?start: or_expr
?or_expr: and_expr (_OR and_expr)*
?and_expr: not_expr (_AND not_expr)*
?not_expr: NOT not_expr -> negate
         | atom
?atom: LPAR or_expr RPAR -> group
     | FIELD OP value -> compare
     | FIELD _IN LPAR value (COMMA value)* RPAR -> one_of
     | FIELD _IS NOT? NULL -> is_null
?value: NUMBER | DATE | STRING | WORD | TRUE | FALSE

_OR.2: /or\b/i
_AND.2: /and\b/i
NOT.2: /not\b/i
_IN.2: /in\b/i
_IS.2: /is\b/i
NULL.2: /null\b/i
TRUE.2: /true\b/i
FALSE.2: /false\b/i
LPAR: "("
RPAR: ")"
COMMA: ","
OP: "<=" | ">=" | "!=" | "=" | "<" | ">"
FIELD: /[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?/
WORD: /[A-Za-z_][A-Za-z0-9_.\-\/:+]*/
NUMBER: /[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?(?![A-Za-z0-9_.])/
DATE.3: /\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?/
STRING: /'[^'\x00-\x1f\x7f]*'/ | /"[^"\x00-\x1f\x7f]*"/
%ignore /\s+/
"""

#: How each terminal is named to people (a syntax error says what was expected).
_READABLE = {
    "_OR": "or",
    "_AND": "and",
    "NOT": "not",
    "_IN": "in",
    "_IS": "is",
    "NULL": "null",
    "TRUE": "true",
    "FALSE": "false",
    "LPAR": "(",
    "RPAR": ")",
    "COMMA": ",",
    "OP": "an operator (=, !=, <, <=, >, >=)",
    "FIELD": "a field name",
    "WORD": "a word",
    "NUMBER": "a number",
    "DATE": "a date (2026-11-27)",
    "STRING": "a 'quoted string'",
    "$END": "the end of the expression",
}


class FilterError(ValueError):
    """A refused expression: ``kind`` is ``filter_syntax``, ``filter_field`` or ``filter_value``;
    ``position`` (0-based) and ``length`` point at the offending part; ``expected`` lists what
    could have stood there (syntax errors), ``fields`` the known field names (field errors)."""

    def __init__(
        self,
        kind: str,
        message: str,
        position: int,
        length: int,
        expected: list[str] | None = None,
        fields: list[str] | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.position = position
        self.length = length
        self.expected = expected
        self.fields = fields

    def ctx(self) -> dict[str, Any]:
        """The error's whereabouts as a 422's ``ctx``."""
        out: dict[str, Any] = {"position": self.position, "length": self.length}
        if self.expected is not None:
            out["expected"] = self.expected
        if self.fields is not None:
            out["fields"] = self.fields
        return out


# --------------------------------------------------------------------------- the fields


@dataclass(frozen=True)
class Field:
    """One filterable (and sortable) field: its SQL expression and the type its values must have."""

    name: str
    type: str  # number | string | datetime | bool
    source: str  # job | config | result | derived
    expr: ColumnElement[Any]
    values: tuple[str, ...] | None = None  # the allowed values of a name field (method, arch, ...)
    nullable: bool = True
    fraction: bool = False  # a share from 0 to 1 (accuracies, pruned shares): 0.95, never 95

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "type": self.type, "source": self.source}
        if self.values is not None:
            out["values"] = list(self.values)
        if self.fraction:
            out["fraction"] = True
        return out


#: Fields whose values are shares from 0 to 1: a comparison with 95 is refused (it meant 0.95).
FRACTIONS = frozenset(
    {
        "acc_full",
        "acc_slim",
        "acc_finetuned",
        "acc_masked",
        "acc_final",
        "pruned_fraction",
        "flops_removed",
        "params_removed",
        "progress",
    }
)


def _scalar(annotation: Any) -> tuple[str, tuple[str, ...] | None] | None:
    """The filter type of a pydantic field's annotation (and a Literal's values); None for lists,
    mappings and models, which are not filterable."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) != 1:
            return None
        annotation = args[0]
    if typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    if typing.get_origin(annotation) is typing.Literal:
        return "string", tuple(typing.get_args(annotation))
    if annotation is bool:
        return "bool", None
    if annotation in (int, float):
        return "number", None
    if annotation is str:
        return "string", None
    return None


def _config_expr(name: str, kind: str) -> ColumnElement[Any]:
    """``jobs.config[name]`` as SQL of ``kind`` (JSON_EXTRACT on SQLite, ``->>`` and a cast on Postgres)."""
    item = Job.config[name]
    if kind == "number":
        return item.as_float()
    if kind == "bool":
        return item.as_boolean()
    return item.as_string()


def _share_removed(slim: Any, full: Any) -> ColumnElement[Any]:
    """1 − slim/full as a float (null where ``full`` is 0 or missing)."""
    return case((full > 0, 1.0 - cast(slim, Float) / cast(full, Float)), else_=None)


def _build_fields() -> tuple[dict[str, Field], dict[str, str]]:
    """Every field by its name, and the aliases (``config.lam``, ``result.acc_slim``, ``tags``)."""
    fields: dict[str, Field] = {}
    aliases: dict[str, str] = {}

    def add(f: Field) -> None:
        fields[f.name] = replace(f, fraction=f.name in FRACTIONS)

    add(Field("id", "number", "job", Job.id, nullable=False))
    add(Field("status", "string", "job", Job.status, values=JOB_STATUSES, nullable=False))
    add(Field("experiment_id", "number", "job", Job.experiment_id))
    add(Field("created_at", "datetime", "job", Job.created_at, nullable=False))
    add(Field("started_at", "datetime", "job", Job.started_at))
    add(Field("finished_at", "datetime", "job", Job.finished_at))
    add(Field("updated_at", "datetime", "job", Job.updated_at))
    add(Field("archived_at", "datetime", "job", Job.archived_at))
    add(Field("progress", "number", "job", Job.progress, nullable=False))
    add(Field("epochs_done", "number", "job", Job.epochs_done, nullable=False))
    add(Field("error", "string", "job", Job.error))
    add(Field("note", "string", "job", Job.note, nullable=False))
    # Tags are a list: only "has tag" (=, !=, in) applies; the expression here is a placeholder.
    add(Field("tag", "string", "job", Job.tags, nullable=False))
    aliases["tags"] = "tag"

    for name, info in TrainConfig.model_fields.items():
        scalar = _scalar(info.annotation)
        aliases[f"config.{name}"] = name
        if scalar is None:
            continue
        kind, values = scalar
        if name == "method":  # copied into an indexed column
            add(Field(name, kind, "job", Job.method, values=values, nullable=False))
        else:
            add(Field(name, kind, "config", _config_expr(name, kind), values=values))

    for name, info in ResultSpec.model_fields.items():
        scalar = _scalar(info.annotation)
        if scalar is None:
            continue
        kind, values = scalar
        # A config field of the same name keeps the bare name (device, precision, channels_last):
        # what was asked for; ``result.NAME`` is what the run did.
        full = name if name not in fields else f"result.{name}"
        add(Field(full, kind, "result", getattr(Result, name), values=values))
        aliases[f"result.{name}"] = full

    add(Field("acc_final", "number", "derived", func.coalesce(Result.acc_finetuned, Result.acc_slim)))
    add(Field("flops_removed", "number", "derived", _share_removed(Result.flops_slim, Result.flops_full)))
    add(Field("params_removed", "number", "derived", _share_removed(Result.params_slim, Result.params_full)))
    aliases = {a: n for a, n in aliases.items() if a not in fields and n in fields}
    return fields, aliases


FIELDS, ALIASES = _build_fields()


def filter_fields() -> list[dict[str, Any]]:
    """The fields an expression (and ``sort``) may name, for GET /api/meta: name, type, source
    and, for names with a fixed list (method, status, arch, ...), their values."""
    return [f.describe() for f in FIELDS.values()]


def field_names() -> list[str]:
    return list(FIELDS)


def _field(token: Token | str, position: int | None = None) -> Field:
    """The field ``token`` names (aliases resolved), or a ``filter_field`` error listing the fields."""
    name = str(token)
    key = ALIASES.get(name, name)
    if key in FIELDS:
        return FIELDS[key]
    lower = ALIASES.get(name.lower(), name.lower())
    if lower in FIELDS:
        return FIELDS[lower]
    pos = token.start_pos if isinstance(token, Token) else (position or 0)
    close = difflib.get_close_matches(name.lower(), [*FIELDS, *ALIASES], n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    raise FilterError(
        "filter_field",
        f"unknown field {name!r} at position {pos}{hint}; fields: {', '.join(FIELDS)}",
        pos,
        len(name),
        fields=list(FIELDS),
    )


# --------------------------------------------------------------------------- values


def _value_text(token: Token) -> str:
    return token[1:-1] if token.type == "STRING" else str(token)


def _describe_token(token: Token) -> str:
    kinds = {"STRING": "the string", "WORD": "the word", "NUMBER": "the number", "DATE": "the date"}
    if token.type in ("TRUE", "FALSE"):
        return str(token).lower()
    return f"{kinds.get(token.type, 'the value')} {_value_text(token)!r}"


def _value_error(token: Token, what: str, advice: str = "") -> FilterError:
    """A ``filter_value`` error at ``token``: ``what`` is wrong there, then ``advice``."""
    pos = token.start_pos
    return FilterError("filter_value", f"{what} at position {pos}{advice}", pos, len(str(token)))


def _number(field: Field, token: Token) -> int | float:
    if token.type != "NUMBER":
        advice = f"; for a missing value write `{field.name} is null`" if str(token).lower() == "null" else ""
        raise _value_error(
            token,
            f"{field.name} is a number, not {_describe_token(token)}",
            advice or ": write e.g. 0.5 or 1e-3",
        )
    text = str(token)
    value: int | float
    if text.lstrip("+-").isdigit():
        value = int(text)
        value = value if abs(value) <= _INT64 else float(value)
    else:
        value = float(text)
        if not math.isfinite(value):
            raise _value_error(token, f"the number {text} is out of range", " (at most about 1e308)")
    if field.fraction and not 0 <= value <= 1:
        raise _value_error(
            token,
            f"{field.name} is a fraction from 0 to 1, not {text}",
            f": write {value / 100:g} for {value:g} %" if 1 < value <= 100 else "",
        )
    return value


def _datetime(field: Field, token: Token) -> datetime:
    if token.type not in ("DATE", "STRING", "WORD"):
        raise _value_error(
            token, f"{field.name} is a datetime, not {_describe_token(token)}", ": write e.g. 2026-11-27"
        )
    text = _value_text(token).strip()
    try:
        value = datetime.fromisoformat(text)
        # Stored as UTC (SQLite keeps the wall clock without the zone): compare in UTC.
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except (ValueError, OverflowError):  # OverflowError: 0001-01-01T00:00+01:00 is before year 1 in UTC
        raise _value_error(
            token,
            f"{field.name} is a datetime, not {text!r}",
            ": write e.g. 2026-11-27 or 2026-11-27T14:30Z (UTC unless a zone is given)",
        ) from None


def _bool(field: Field, token: Token) -> bool:
    if token.type not in ("TRUE", "FALSE"):
        raise _value_error(token, f"{field.name} is true or false, not {_describe_token(token)}")
    return token.type == "TRUE"


def _string(field: Field, token: Token) -> str:
    text = _value_text(token)
    if field.values is not None and text not in field.values:
        raise _value_error(token, f"unknown {field.name} {text!r}", f"; allowed: {', '.join(field.values)}")
    return text


_CONVERT = {"number": _number, "datetime": _datetime, "bool": _bool, "string": _string}


def _bind(value: Any) -> ColumnElement[Any]:
    """``value`` as a bound parameter of an explicit type: an integer as BIGINT (an INTEGER cast of
    3000000000 would overflow on Postgres), a float as FLOAT, a time with its zone."""
    if isinstance(value, bool):
        return literal(value, Boolean())
    if isinstance(value, int):
        return literal(value, BigInteger())
    if isinstance(value, float):
        return literal(value, Float())
    if isinstance(value, datetime):
        return literal(value, DateTime(timezone=True))
    return literal(value, String())


# --------------------------------------------------------------------------- tags


class _TagMatch(ColumnElement[bool]):
    """EXISTS an element of the JSON list ``column`` equal to ``value`` (or, ``substring``: holding it,
    case-insensitive, ``value`` being a LIKE pattern with ``\\`` as escape). Compiled per backend:
    ``json_each`` on SQLite, ``json_array_elements_text`` on Postgres; a value that is not a list
    matches nothing."""

    inherit_cache = True
    type = Boolean()
    _traverse_internals = [
        ("column", InternalTraversal.dp_clauseelement),
        ("value", InternalTraversal.dp_clauseelement),
        ("substring", InternalTraversal.dp_boolean),
    ]

    def __init__(self, column: ColumnElement[Any], value: str, substring: bool = False) -> None:
        self.column = column
        self.value = literal(value, String())
        self.substring = substring


@compiles(_TagMatch, "sqlite")
def _tag_match_sqlite(element: _TagMatch, compiler: Any, **kw: Any) -> str:
    column = compiler.process(element.column, **kw)
    value = compiler.process(element.value, **kw)
    test = f"lower(t.value) LIKE lower({value}) ESCAPE '\\'" if element.substring else f"t.value = {value}"
    return f"EXISTS (SELECT 1 FROM json_each({column}) AS t WHERE json_type({column}) = 'array' AND {test})"


@compiles(_TagMatch, "postgresql")
def _tag_match_postgres(element: _TagMatch, compiler: Any, **kw: Any) -> str:
    column = compiler.process(element.column, **kw)
    value = compiler.process(element.value, **kw)
    test = f"t.value ILIKE {value} ESCAPE '\\'" if element.substring else f"t.value = {value}"
    items = f"CASE WHEN json_typeof({column}) = 'array' THEN {column} ELSE '[]'::json END"
    return f"EXISTS (SELECT 1 FROM json_array_elements_text({items}) AS t(value) WHERE {test})"


def has_tag(tag: str) -> ColumnElement[bool]:
    """Jobs that carry ``tag`` (exactly)."""
    return _TagMatch(Job.tags, tag)


def like_pattern(text: str) -> str:
    """A LIKE pattern matching ``text`` anywhere (``%``, ``_`` and ``\\`` escaped with ``\\``)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def text_search(q: str, model: Any = Job) -> ColumnElement[bool]:
    """Rows of ``model`` (jobs, or experiments: their name too) whose note or one of whose tags
    holds ``q``, ignoring case."""
    pattern = like_pattern(q)
    columns = [model.name] if hasattr(model, "name") else []
    return or_(
        *(c.ilike(pattern, escape="\\") for c in [*columns, model.note]),
        _TagMatch(model.tags, pattern, substring=True),
    )


# --------------------------------------------------------------------------- parsing


@dataclass(frozen=True)
class _Node:
    """A parsed (and checked) part of an expression: its SQL and how deeply it nests."""

    clause: ColumnElement[bool]
    depth: int
    position: int


def _present(field: Field, test: ColumnElement[bool]) -> ColumnElement[bool]:
    """``test`` where the field has a value, false where it is null (never SQL's unknown, which
    ``not`` would keep unknown)."""
    return and_(field.expr.is_not(None), test) if field.nullable else test


_COMPARE = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


class _Build(Transformer):
    """Turns each rule, as the LALR parser reduces it, into a checked :class:`_Node` (applied during
    parsing: no recursion over the tree, so nesting depth is bounded by :data:`MAX_DEPTH` alone)."""

    def _nest(self, clause: ColumnElement[bool], depth: int, position: int, token: Token) -> _Node:
        if depth > MAX_DEPTH:
            raise FilterError(
                "filter_syntax",
                f"expression too deeply nested at position {position} "
                f"(at most {MAX_DEPTH} levels of parentheses and not)",
                position,
                len(str(token)),
            )
        return _Node(clause, depth, position)

    def or_expr(self, children: list[_Node]) -> _Node:
        return _Node(or_(*(c.clause for c in children)), max(c.depth for c in children), children[0].position)

    def and_expr(self, children: list[_Node]) -> _Node:
        return _Node(
            and_(*(c.clause for c in children)), max(c.depth for c in children), children[0].position
        )

    def negate(self, children: list[Any]) -> _Node:
        token, inner = children
        return self._nest(sql_not(inner.clause), inner.depth + 1, token.start_pos, token)

    def group(self, children: list[Any]) -> _Node:
        lpar, inner, _rpar = children
        return self._nest(inner.clause, inner.depth + 1, lpar.start_pos, lpar)

    def compare(self, children: list[Token]) -> _Node:
        name, op, token = children
        field = _field(name)
        if field.name == "tag":
            if op not in ("=", "!="):
                raise FilterError(
                    "filter_value",
                    f"tags take = (has the tag), != (has not) or in, not {op} (at position {op.start_pos})",
                    op.start_pos,
                    len(op),
                )
            clause = has_tag(_value_text(token))
            return _Node(clause if op == "=" else sql_not(clause), 0, name.start_pos)
        if field.type == "bool" and op not in ("=", "!="):
            raise FilterError(
                "filter_value",
                f"{field.name} is true or false: use = or !=, not {op} (at position {op.start_pos})",
                op.start_pos,
                len(op),
            )
        value = _bind(_CONVERT[field.type](field, token))
        return _Node(_present(field, _COMPARE[str(op)](field.expr, value)), 0, name.start_pos)

    def one_of(self, children: list[Token]) -> _Node:
        name, *rest = children
        field = _field(name)
        tokens = [t for t in rest if t.type not in ("LPAR", "RPAR", "COMMA")]
        if field.name == "tag":
            return _Node(or_(*(has_tag(_value_text(t)) for t in tokens)), 0, name.start_pos)
        values = [_bind(_CONVERT[field.type](field, t)) for t in tokens]
        return _Node(_present(field, field.expr.in_(values)), 0, name.start_pos)

    def is_null(self, children: list[Token]) -> _Node:
        name = children[0]
        field = _field(name)
        if field.name == "tag":
            raise FilterError(
                "filter_value",
                f"tags are a list, never null (at position {name.start_pos}): use `not tag in (a, b)` "
                "or a tag's name",
                name.start_pos,
                len(name),
            )
        negated = any(isinstance(c, Token) and c.type == "NOT" for c in children[1:])
        return _Node(field.expr.is_not(None) if negated else field.expr.is_(None), 0, name.start_pos)


_PARSER = Lark(GRAMMAR, parser="lalr", transformer=_Build(), maybe_placeholders=False)


def _acceptable(exc: UnexpectedToken) -> set[str]:
    """The terminals that could stand where ``exc`` happened. LALR's own list merges states (it offers
    ')' where no parenthesis is open); trying each terminal on a copy of the parser is exact."""
    try:
        return set(exc.interactive_parser.accepts()) or set(exc.expected)
    except Exception:  # noqa: BLE001 - a check of a value fed on the copy failed: LALR's list will do
        return set(exc.expected)


def _offending(text: str, position: int) -> str:
    """The word (or single character) at ``position``, to name in a message."""
    end = position
    while end < len(text) and not text[end].isspace() and text[end] not in "(),":
        end += 1
    return text[position : max(end, position + 1)]


def _syntax_error(text: str, exc: UnexpectedInput) -> FilterError:
    if isinstance(exc, UnexpectedToken):
        token = exc.token
        expected = sorted({_READABLE.get(t, t) for t in _acceptable(exc)})
        if token.type == "$END":
            position, length, what = len(text), 0, "unexpected end of the expression"
        else:
            position, length = token.start_pos, len(str(token))
            what = f"unexpected {str(token)!r}"
    else:
        position = exc.pos_in_stream or 0
        allowed = getattr(exc, "allowed", None) or set()
        expected = sorted({_READABLE.get(t, t) for t in allowed})
        if text[position] in "'\"":
            quote = text[position]
            closing = text.find(quote, position + 1)
            length = (closing + 1 - position) if closing >= 0 else len(text) - position
            expected = []
            what = (
                f"the string at position {position} holds a control character"
                if closing >= 0
                else f"the string at position {position} is not closed (missing {quote})"
            )
        else:
            word = _offending(text, position)
            length = len(word)
            what = f"unexpected {word!r}"
    where = "" if what.startswith("the string") else f" at position {position}"
    message = f"{what}{where}; expected {_or_list(expected)}" if expected else f"{what}{where}"
    return FilterError("filter_syntax", message, position, length, expected=expected or None)


def _or_list(items: list[str]) -> str:
    """``a number, 'true' or 'false'``: keywords and punctuation quoted, descriptions not."""
    shown = [i if i.startswith(("a ", "an ", "the ")) else repr(i) for i in items]
    return shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " or " + shown[-1]


@lru_cache(maxsize=512)
def parse_filter(text: str) -> ColumnElement[bool]:
    """The SQL boolean of expression ``text`` (over Job outer-joined with Result); raises
    :class:`FilterError`. Cached: dashboards send the same expression with every poll."""
    if len(text) > MAX_LENGTH:
        raise FilterError(
            "filter_syntax",
            f"the expression is {len(text)} characters long; at most {MAX_LENGTH}",
            MAX_LENGTH,
            len(text) - MAX_LENGTH,
        )
    if not text.strip():
        raise FilterError(
            "filter_syntax",
            "the expression is empty; expected e.g. method = proxns and acc_slim > 0.95",
            0,
            len(text),
            expected=[_READABLE["FIELD"], "(", "not"],
        )
    try:
        node = _PARSER.parse(text)
    except UnexpectedInput as exc:
        raise _syntax_error(text, exc) from None
    return node.clause


# --------------------------------------------------------------------------- sorting


def sort_column(spec: str) -> list[ColumnElement[Any]]:
    """ORDER BY terms for ``spec``, a field name with an optional ``-`` prefix (descending): jobs
    without a value come last in both directions, ties go newest (highest id) first."""
    descending = spec.startswith("-")
    name = spec[1:] if descending else spec.removeprefix("+")
    position = len(spec) - len(name)
    field = _field(name.strip(), position)
    if field.name == "tag":
        raise FilterError(
            "filter_field",
            f"cannot sort on {name!r} at position {position} (a list of tags); fields: "
            f"{', '.join(f for f in FIELDS if f != 'tag')}",
            position,
            len(name),
            fields=[f for f in FIELDS if f != "tag"],
        )
    order = field.expr.desc() if descending else field.expr.asc()
    terms: list[ColumnElement[Any]] = []
    if field.nullable:  # (value IS NULL) sorts false before true on both backends
        terms.append(case((field.expr.is_(None), 1), else_=0))
    terms.append(order)
    if field.name != "id":
        terms.append(Job.id.desc())
    return terms


__all__ = [
    "ALIASES",
    "FIELDS",
    "MAX_DEPTH",
    "MAX_LENGTH",
    "OPERATORS",
    "FilterError",
    "filter_fields",
    "has_tag",
    "like_pattern",
    "parse_filter",
    "sort_column",
    "text_search",
]

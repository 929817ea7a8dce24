"""Expand an experiment's base config and sweep lists into the configs of its jobs.

Rules:
- each method of the experiment (``sweep.method``, else the base's) combines the lists of the fields
  it takes, a ``sweep.by_method.<method>`` list replacing the shared list of its field (NS and proxns
  need λ on different scales); the job count asked for is the sum over methods of the products of
  those lists' lengths; more than ``max_jobs`` (setting ``PROXNS_MAX_SWEEP_JOBS``) is rejected before
  anything is expanded;
- a method-specific value (from base or sweep) only applies to the methods that take its field
  (the spec's ``METHOD_FIELDS``); elsewhere it is dropped and the job gets its method's default;
  likewise ``penalty_a`` applies only to the penalties that take one (tl1, mcp, scad);
- combinations that resolve to the same config are created once.
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass
from typing import Any

from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from api.schemas import ExperimentCreate, Sweep
from proxns_core.search import decide
from proxns_core.spec import METHOD_FIELDS, METHOD_SPECIFIC_FIELDS, METHODS, PENALTY_A_RULE, TrainConfig

_DEFAULT_METHOD = TrainConfig.model_fields["method"].default
#: The sweep's lists in the order jobs vary (the first slowest), as ``Sweep`` declares them.
_FIELD_ORDER: tuple[str, ...] = tuple(f for f in Sweep.model_fields if f != "by_method")


def applicable(cfg: dict[str, Any]) -> dict[str, Any]:
    """Drop the method-specific fields that the combination's method does not take."""
    method = cfg.get("method", _DEFAULT_METHOD)
    # a method that is no method's name (e.g. a list) keeps every field: TrainConfig refuses it (422)
    takes = (
        METHOD_FIELDS.get(method, METHOD_SPECIFIC_FIELDS)
        if isinstance(method, str)
        else METHOD_SPECIFIC_FIELDS
    )
    kept = {k: v for k, v in cfg.items() if k not in METHOD_SPECIFIC_FIELDS or k in takes}
    if kept.get("penalty_a") is not None and (kept.get("penalty") or "l1") not in PENALTY_A_RULE:
        del kept["penalty_a"]  # a shape parameter applies only to the penalties that have one
    return kept


@dataclass
class Expansion:
    """The distinct configs of a sweep and how many combinations it had (duplicates included)."""

    configs: list[TrainConfig]
    combinations: int

    @property
    def duplicates(self) -> int:
        return self.combinations - len(self.configs)


def method_axes(body: ExperimentCreate) -> dict[str, dict[str, list[Any]]]:
    """For each method of the experiment, the lists its combinations take, in the sweep's field order:
    the shared lists of the fields it takes, each replaced by its ``by_method`` list when given.

    Raises RequestValidationError at ``body.sweep.by_method.<m>[.<field>]`` for a key that is not a
    method of the experiment or a field its method does not take.
    """
    shared = body.sweep.model_dump(exclude_none=True, exclude={"by_method"})
    methods = list(dict.fromkeys(shared.get("method") or [body.base.method]))
    own = {m: lists.model_dump(exclude_none=True) for m, lists in (body.sweep.by_method or {}).items()}
    errors = []
    for m, lists in own.items():
        where = ("body", "sweep", "by_method", m)
        if m not in METHOD_FIELDS:
            errors.append(_error(where, f"{m!r} is not a method; by_method keys: {', '.join(METHODS)}", m))
        elif m not in methods:
            errors.append(
                _error(where, f"method {m} is not in this experiment (its methods: {', '.join(methods)})", m)
            )
        else:
            takes = METHOD_FIELDS[m]
            allowed = ", ".join(takes) if takes else "none (it takes no method-specific field)"
            for field, values in lists.items():
                if field not in takes:
                    msg = f"method {m} does not take {field!r}; its own lists may be: {allowed}"
                    errors.append(_error((*where, field), msg, values))
    if errors:
        raise RequestValidationError(errors)
    out = {}
    for m in methods:
        axes = {k: v for k, v in shared.items() if k not in METHOD_SPECIFIC_FIELDS or k in METHOD_FIELDS[m]}
        if "method" in axes:
            axes["method"] = [m]
        axes.update(own.get(m, {}))
        out[m] = {k: axes[k] for k in sorted(axes, key=_FIELD_ORDER.index)}
    return out


def expand(body: ExperimentCreate, max_jobs: int = 256) -> list[TrainConfig]:
    """The distinct, validated configs of an experiment; raises RequestValidationError (422)."""
    return expansion(body, max_jobs).configs


def expansion(body: ExperimentCreate, max_jobs: int = 256) -> Expansion:
    """:func:`expand` with the number of combinations (the dry run reports the duplicates).

    Combinations are counted per method over the lists that method takes, so a method-specific list
    does not multiply the jobs of the methods that ignore it; jobs come in the order of the sweep's
    lists (the first list varies slowest), whatever list of a method they were drawn from.
    """
    per_method = method_axes(body)
    counts = {m: math.prod(len(v) for v in axes.values()) for m, axes in per_method.items()}
    requested = sum(counts.values())
    if requested > max_jobs:
        sizes = "; ".join(
            f"{m}: " + (" x ".join(f"{len(v)} {k}" for k, v in axes.items() if k != "method") or "1")
            for m, axes in per_method.items()
        )
        raise RequestValidationError(
            [
                _error(
                    ("body", "sweep"),
                    f"sweep asks for {requested} jobs ({sizes}); at most {max_jobs} are allowed "
                    "(setting PROXNS_MAX_SWEEP_JOBS)",
                    body.sweep.model_dump(exclude_none=True),
                )
            ]
        )
    combos = []  # (order key, method, chosen values)
    for m, axes in per_method.items():
        for picks in itertools.product(*(list(enumerate(v)) for v in axes.values())):
            chosen = {k: value for k, (_, value) in zip(axes, picks, strict=True)}
            at = dict(zip(axes, (i for i, _ in picks), strict=True))
            if "method" in at:
                at["method"] = list(per_method).index(m)
            combos.append((tuple(at.get(f, 0) for f in _FIELD_ORDER), m, chosen))
    combos.sort(key=lambda c: c[0])
    by_method = body.sweep.by_method or {}
    configs: dict[str, TrainConfig] = {}
    errors: dict[tuple, dict[str, Any]] = {}
    for _, m, chosen in combos:
        cfg = applicable({**body.raw_base, **chosen})
        try:
            config = TrainConfig.model_validate(cfg)
        except ValidationError as exc:
            own = by_method.get(m)
            for err in exc.errors(include_url=False):
                field = err["loc"][0] if err["loc"] else None
                if own is not None and field in own.model_fields_set:
                    where: tuple = ("sweep", "by_method", m)
                else:
                    where = ("sweep",) if field in chosen else ("base",)
                loc = ("body", *where, *err["loc"])
                msg = f"{err['msg']} (in the sweep combination {chosen})" if chosen else err["msg"]
                errors.setdefault(
                    (loc, msg), {"type": err["type"], "loc": loc, "msg": msg, "input": err["input"]}
                )
            continue
        configs.setdefault(json.dumps(config.model_dump(mode="json"), sort_keys=True), config)
    if errors:
        raise RequestValidationError(list(errors.values()))
    return Expansion(list(configs.values()), len(combos))


def _error(loc: tuple, msg: str, value: Any) -> dict[str, Any]:
    return {"type": "value_error", "loc": loc, "msg": msg, "input": value}


def _refuse(loc: tuple, msg: str, value: Any) -> RequestValidationError:
    return RequestValidationError([_error(loc, msg, value)])


def search_configs(body: ExperimentCreate, start: float) -> list[TrainConfig]:
    """The configs of a budget search's first round; raises RequestValidationError (422).

    A search varies λ of the base's method and nothing else: it needs method proxns (NS removes its
    ``prune_ratio`` share by construction, baseline removes nothing) and excludes ``sweep``.
    """
    assert body.search is not None
    method = body.base.method
    if method != "proxns":
        hint = "set prune_ratio instead" if method == "ns" else "baseline prunes nothing"
        raise _refuse(
            ("body", "search"),
            f"a budget search varies λ of method proxns; base.method is {method!r} ({hint})",
            body.search.model_dump(),
        )
    axes = body.sweep.model_dump(exclude_none=True)
    if axes:
        raise _refuse(
            ("body", "sweep"),
            f"search and sweep cannot be combined: the search chooses λ itself (got sweep axes "
            f"{', '.join(axes)}); submit one experiment per other value",
            axes,
        )
    configs = []
    for lam in decide(body.search, [], start).lams:
        try:
            configs.append(TrainConfig.model_validate({**body.raw_base, "lam": lam}))
        except ValidationError as exc:
            raise RequestValidationError(
                [
                    {
                        "type": e["type"],
                        "loc": ("body", "base", *e["loc"]),
                        "msg": e["msg"],
                        "input": e["input"],
                    }
                    for e in exc.errors(include_url=False)
                ]
            ) from None
    return configs

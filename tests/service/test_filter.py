"""Finding jobs: the filter language (store/filter.py), GET /api/jobs with where/sort/tag/q/archived on
SQLite and on a real Postgres, and `proxns jobs --where` against a live server.

The expected answers are computed here, in Python, from the values the jobs were seeded with, never
read back from the API under test.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from proxns_core.spec import ARCHS, JOB_STATUSES, METHODS, PENALTIES, TrainConfig
from proxns_testkit import api_client, create_token, embedded_settings, free_port, postgres_database
from proxns_testkit.seed import result_for, seed_jobs
from store.db import make_engine
from store.filter import COMPARISONS, MAX_DEPTH, FilterError, parse_filter, sort_column
from store.models import Job, utcnow
from store.queries import commit_jobs
from store.settings import Settings

# --------------------------------------------------------------------------- the parser


def sql(text: str) -> tuple[str, dict]:
    """The SQL (and parameters) an expression compiles to: equal for expressions that mean the same."""
    compiled = parse_filter(text).compile(dialect=sqlite.dialect())
    return str(compiled), compiled.params


def refused(text: str) -> FilterError:
    with pytest.raises(FilterError) as caught:
        parse_filter(text)
    return caught.value


def test_and_binds_tighter_than_or_and_parentheses_override_it() -> None:
    loose = "method = ns or method = baseline and seed = 1"
    assert sql(loose) == sql("method = ns or (method = baseline and seed = 1)")
    assert sql(loose) != sql("(method = ns or method = baseline) and seed = 1")
    assert sql("note = x or note = y or note = z") == sql("note = x or (note = y or note = z)")


def test_not_binds_tighter_than_and() -> None:
    assert sql("not method = ns and seed = 1") == sql("(not method = ns) and seed = 1")
    assert sql("not method = ns and seed = 1") != sql("not (method = ns and seed = 1)")
    assert sql("not not seed = 1") != sql("seed = 1")  # kept, not folded away


def test_keywords_ignore_case_and_the_three_quotings_are_one_value() -> None:
    assert sql("method = ns AND seed = 1 Or lam IS NOT NULL") == sql(
        "method = ns and seed = 1 or lam is not null"
    )
    assert sql("method IN (ns, 'proxns') and Not prune_stream = TRUE") == sql(
        "method in (ns, proxns) and not prune_stream = true"
    )
    assert sql("method = ns") == sql("method = 'ns'") == sql('method = "ns"')
    assert sql("penalty = l1/2") == sql("penalty = 'l1/2'")  # bare words may hold / - : .


def test_aliases_name_the_same_field() -> None:
    assert sql("config.lam > 0.1") == sql("lam > 0.1")
    assert sql("result.acc_slim > 0.9") == sql("acc_slim > 0.9")
    assert sql("tags = best") == sql("tag = best")
    # The config's device is what was asked for; result.device is where the run went.
    assert sql("device = cpu") != sql("result.device = cpu")


@pytest.mark.parametrize("op", COMPARISONS)
def test_every_comparison_operator_parses_on_numbers_strings_and_times(op: str) -> None:
    for text in (f"lam {op} 0.1", f"note {op} 'x'", f"created_at {op} 2026-11-27T10:00Z", f"id {op} 3"):
        sql(text)


def test_in_is_null_tag_and_dates_parse() -> None:
    sql("lam in (0.1, 0.25, 1e-3)")
    sql("acc_finetuned is null or acc_finetuned is not null")
    sql("tag = best and tag != old and tags in (a, 'b c')")
    sql("finished_at >= '2026-11-27 10:00:00+01:00' and created_at < 2026-11-28")
    sql("slim_exact = true or prune_stream != false")


@pytest.mark.parametrize(
    ("text", "kind", "position", "length", "words"),
    [
        # unknown field: its place, a suggestion and the list of fields
        (
            "method = proxns and lamb >= 0.1",
            "filter_field",
            20,
            4,
            ["'lamb'", "did you mean lam", "acc_slim"],
        ),
        # a number field given a word
        ("acc_slim > high", "filter_value", 11, 4, ["acc_slim is a number", "'high'", "position 11"]),
        ("lam = null", "filter_value", 6, 4, ["lam is null"]),
        ("created_at > 5", "filter_value", 13, 1, ["datetime"]),
        ("created_at > 2026-13-45", "filter_value", 13, 10, ["datetime", "2026-11-27"]),
        ("prune_stream = 1", "filter_value", 15, 1, ["true or false"]),
        ("slim_exact > true", "filter_value", 11, 1, ["use = or !="]),
        # names with a fixed list name the allowed values
        ("method = proxn", "filter_value", 9, 5, ["unknown method 'proxn'", "baseline, ns, proxns"]),
        ("status in (queued, done)", "filter_value", 19, 4, [", ".join(JOB_STATUSES)]),
        ("penalty = l3", "filter_value", 10, 2, [", ".join(PENALTIES)]),
        ("arch = alexnet", "filter_value", 7, 7, [ARCHS[0], ARCHS[-1]]),
        ("dataset = mnist", "filter_value", 10, 5, ["cifar10", "digits", "imagefolder"]),
        ("precision = fp8", "filter_value", 12, 3, ["auto, fp32, bf16, fp16"]),
        ("lam = 1e999", "filter_value", 6, 5, ["out of range"]),
        # accuracies are fractions, as in the API: 95 meant 0.95
        ("acc_slim > 95", "filter_value", 11, 2, ["fraction from 0 to 1", "write 0.95 for 95 %"]),
        ("flops_removed in (0.5, -1)", "filter_value", 23, 2, ["fraction from 0 to 1"]),
        ("tag < x", "filter_value", 4, 1, ["tags take ="]),
        ("tag is null", "filter_value", 0, 3, ["never null"]),
        # syntax: where, the offending token, what could stand there
        ("lam = ", "filter_syntax", 6, 0, ["end of the expression", "a number"]),
        ("lam == 1", "filter_syntax", 5, 1, ["unexpected '='", "a number"]),
        ("lam ~ 1", "filter_syntax", 4, 1, ["unexpected '~'", "'in'", "'is'"]),
        ("(lam = 1", "filter_syntax", 8, 0, ["expected ')'"]),
        ("lam = 1)", "filter_syntax", 7, 1, ["unexpected ')'", "the end of the expression"]),
        ("lam > 0.1 andx seed = 1", "filter_syntax", 10, 4, ["'andx'", "'and'", "'or'"]),
        ("lam in (1, 2 x", "filter_syntax", 13, 1, ["')' or ','"]),
        ("note = 'abc", "filter_syntax", 7, 4, ["not closed"]),
        ("note = 'a\x00b'", "filter_syntax", 7, 5, ["control character"]),
        ("λ = 1", "filter_syntax", 0, 1, ["'λ'", "a field name"]),
        ("", "filter_syntax", 0, 0, ["empty"]),
        ("x" * 2001, "filter_syntax", 2000, 1, ["2001 characters", "at most 2000"]),
    ],
)
def test_each_refusal_names_its_kind_place_and_cure(
    text: str, kind: str, position: int, length: int, words: list[str]
) -> None:
    err = refused(text)
    assert (err.kind, err.position, err.length) == (kind, position, length), err.message
    for word in words:
        assert word in err.message, (word, err.message)


def test_syntax_errors_list_only_what_can_stand_there() -> None:
    # LALR's own list would offer ')' and ',' here too, with no parenthesis open
    assert refused("lam > 0.1 andx seed = 1").expected == ["and", "or", "the end of the expression"]
    assert refused("lam = ").expected == [
        "a 'quoted string'",
        "a date (2026-11-27)",
        "a number",
        "a word",
        "false",
        "true",
    ]
    assert "lam" in refused("lamb = 1").fields and "acc_final" in refused("lamb = 1").fields


def test_nesting_beyond_the_limit_is_refused_not_a_stack_overflow() -> None:
    inside = "(" * MAX_DEPTH + "lam = 1" + ")" * MAX_DEPTH
    sql(inside)
    err = refused("(" * 990 + "lam = 1" + ")" * 990)  # as deep as 2000 characters go
    assert err.kind == "filter_syntax" and "too deeply nested" in err.message
    err = refused("not " * (MAX_DEPTH + 1) + "lam = 1")
    assert "too deeply nested" in err.message and err.position == 0  # the outermost not went over


def test_sort_names_any_field_but_tags() -> None:
    assert len(sort_column("-id")) == 1  # the default order stays one indexed column
    assert len(sort_column("acc_slim")) == 3  # nulls last, the value, then newest first
    err = FilterError
    with pytest.raises(err) as caught:
        sort_column("-lamb")
    assert (caught.value.kind, caught.value.position, caught.value.length) == ("filter_field", 1, 4)
    with pytest.raises(err) as caught:
        sort_column("tags")
    assert caught.value.kind == "filter_field" and "tags" in caught.value.message


def test_tag_match_compiles_for_both_backends() -> None:
    clause = parse_filter("tag = best")
    assert "json_each" in str(clause.compile(dialect=sqlite.dialect()))
    assert "json_array_elements_text" in str(clause.compile(dialect=postgresql.psycopg.dialect()))


# --------------------------------------------------------------------------- seeded jobs

BASE = {"dataset": "digits", "arch": "vgg", "depth": 11, "width": 0.125, "epochs": 10}


def job(method: str, acc: float | None = None, pruned: float = 0.0, **extra: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "config": {**BASE, "method": method, **extra.pop("config", {})},
        "acc": acc if acc is not None else 0.5,
        "pruned": pruned,
    }
    item.update(extra)
    return item


#: Jobs that differ where researchers filter: method, λ, β, prune ratio, seed, width, epochs,
#: fine-tuning, status, tags, notes (unicode and LIKE's wildcards included).
SEEDED = [
    job("proxns", 0.97, 0.6, config={"lam": 0.25, "beta": 100}, tags=["best", "sweep"], note="First try"),
    job("proxns", 0.96, 0.7, config={"lam": 0.5, "beta": 100}, tags=["sweep"]),
    job(
        "proxns",
        0.1,
        0.99,
        config={"lam": 1.0, "beta": 10, "seed": 1},
        tags=["sweep", "collapsed"],
        note="100% gone",
    ),
    job(
        "proxns",
        0.955,
        0.4,
        config={"lam": 0.1, "beta": 10, "seed": 1, "finetune_epochs": 5},
        result={"acc_finetuned": 0.975},
    ),
    job("ns", 0.94, 0.5, config={"lam": 0.02, "prune_ratio": 0.5}, tags=["ns"]),
    job("ns", 0.92, 0.7, config={"lam": 0.01, "prune_ratio": 0.7, "seed": 1}, note="λ sweep ✓"),
    job("ns", 0.965, 0.3, config={"lam": 0.02, "prune_ratio": 0.3, "seed": 2, "width": 0.25, "epochs": 20}),
    job("baseline", 0.98, 0.0, tags=["baseline-ref"]),
    job("baseline", 0.985, 0.0, config={"seed": 1, "width": 0.25}),
    job(
        "proxns",
        config={"lam": 0.25, "beta": 100, "seed": 2},
        status="failed",
        error="out of memory",
        note="oom",
    ),
    job("proxns", config={"lam": 0.5, "beta": 100}, status="queued"),
    job("ns", config={"lam": 0.05, "prune_ratio": 0.5}, status="running"),
]
#: Seeded outside the experiment, then archived.
ARCHIVED = [
    job("proxns", 0.95, 0.55, config={"lam": 0.25, "beta": 50, "seed": 3, "width": 0.25}, tags=["best"]),
    job("baseline", 0.975, 0.0, config={"seed": 2}, tags=["Under_score"], note="archived_one"),
]


@dataclass
class Row:
    """A seeded job as the store holds it, for computing expected answers."""

    id: int
    status: str
    experiment_id: int | None
    config: dict[str, Any]
    result: dict[str, Any] | None
    tags: list[str]
    note: str
    archived: bool

    def value(self, name: str) -> Any:
        r = self.result or {}
        if name == "id":
            return self.id
        if name in ("status", "note", "experiment_id"):
            return getattr(self, name)
        if name == "acc_final":
            return (
                None if not r else (r["acc_finetuned"] if r["acc_finetuned"] is not None else r["acc_slim"])
            )
        if name == "flops_removed":
            return None if not r else 1 - r["flops_slim"] / r["flops_full"]
        if name == "params_removed":
            return None if not r else 1 - r["params_slim"] / r["params_full"]
        if name in self.config:
            return self.config[name]
        return r.get(name)


def rows_of(items: list[dict], ids: list[int], experiment_id: int | None, archived: bool) -> list[Row]:
    rows = []
    for item, job_id in zip(items, ids, strict=True):
        config = TrainConfig.model_validate(item["config"]).model_dump(mode="json")
        status = item.get("status", "succeeded")
        result = None
        if status == "succeeded":
            result = result_for(TrainConfig.model_validate(item["config"]), item["acc"], item["pruned"])
            result.update(item.get("result", {}))
        rows.append(
            Row(
                job_id,
                status,
                experiment_id,
                config,
                result,
                item.get("tags", []),
                item.get("note", ""),
                archived,
            )
        )
    return rows


@dataclass
class Backend:
    name: str
    api: TestClient
    database_url: str
    rows: list[Row]
    experiment_id: int

    @property
    def visible(self) -> list[Row]:
        return [r for r in self.rows if not r.archived]


def seed(database_url: str) -> tuple[int, list[Row]]:
    exp_id, ids = seed_jobs(database_url, SEEDED, experiment="find")
    _, archived_ids = seed_jobs(database_url, ARCHIVED)
    engine = make_engine(database_url)
    try:
        with Session(engine) as db:
            db.execute(update(Job).where(Job.id.in_(archived_ids)).values(archived_at=utcnow()))
            commit_jobs(db)
    finally:
        engine.dispose()
    return exp_id, rows_of(SEEDED, ids, exp_id, False) + rows_of(ARCHIVED, archived_ids, None, True)


def postgres_settings(url: str, folder: Path) -> Settings:
    return Settings(
        database_url=url,
        broker_url="filesystem://",
        broker_dir=str(folder / "broker"),
        artifact_dir=str(folder / "artifacts"),
        frontend_dir=str(folder / "no-frontend"),
    )


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
    """The API in-process over a seeded store: the embedded SQLite one, then a fresh Postgres database
    (skipped when Postgres is unreachable, a failure when CI is set: see tests/service/conftest.py)."""
    folder = tmp_path_factory.mktemp(request.param)
    if request.param == "sqlite":
        settings = embedded_settings(folder)
        exp_id, rows = seed(settings.database_url)
        with api_client(settings) as api:
            yield Backend("sqlite", api, settings.database_url, rows, exp_id)
        return
    admin_url = request.getfixturevalue("postgres_admin_url")
    with postgres_database(admin_url) as url:
        exp_id, rows = seed(url)
        with api_client(postgres_settings(url, folder)) as api:
            yield Backend("postgres", api, url, rows, exp_id)


def listed(backend: Backend, **params: Any) -> dict[str, Any]:
    response = backend.api.get("/api/jobs", params={"limit": 500, **params})
    assert response.status_code == 200, response.text
    return response.json()


def ids_where(backend: Backend, where: str, **params: Any) -> list[int]:
    return [j["id"] for j in listed(backend, where=where, **params)["items"]]


def newest_first(rows: list[Row]) -> list[int]:
    return sorted((r.id for r in rows), reverse=True)


def present(row: Row, name: str) -> bool:
    return row.value(name) is not None


#: (expression, the same question in Python over one seeded job)
CASES: list[tuple[str, Callable[[Row], bool]]] = [
    (
        "method = proxns and lam >= 0.1 and acc_slim > 0.95",
        lambda r: (
            r.config["method"] == "proxns" and r.config["lam"] >= 0.1 and (r.value("acc_slim") or 0) > 0.95
        ),
    ),
    (
        "method = ns or method = baseline and seed = 1",
        lambda r: r.config["method"] == "ns" or (r.config["method"] == "baseline" and r.config["seed"] == 1),
    ),
    (
        "(method = ns or method = baseline) and seed = 1",
        lambda r: r.config["method"] in ("ns", "baseline") and r.config["seed"] == 1,
    ),
    (
        "METHOD = ns AnD Seed = 0 OR method = baseline",
        lambda r: (
            r.config["method"] in ("ns", "baseline")
            and (r.config["method"] == "baseline" or r.config["seed"] == 0)
        ),
    ),
    ("not method = proxns", lambda r: r.config["method"] != "proxns"),
    # null compares false whatever the operator; `not` turns that false into true
    ("beta != 100", lambda r: r.config["beta"] is not None and r.config["beta"] != 100),
    ("not beta = 100", lambda r: r.config["beta"] != 100),
    ("lam in (0.25, 0.5)", lambda r: r.config["lam"] in (0.25, 0.5)),
    ("lam < 0.1", lambda r: r.config["lam"] < 0.1),
    ("lam <= 0.1", lambda r: r.config["lam"] <= 0.1),
    ("lam > 0.5", lambda r: r.config["lam"] > 0.5),
    ("lam = 0.02", lambda r: r.config["lam"] == 0.02),
    ("prune_ratio >= 0.5", lambda r: r.config["prune_ratio"] is not None and r.config["prune_ratio"] >= 0.5),
    ("width = 0.25 and epochs > 10", lambda r: r.config["width"] == 0.25 and r.config["epochs"] > 10),
    ("acc_finetuned is null", lambda r: r.value("acc_finetuned") is None),
    ("acc_finetuned is not null", lambda r: r.value("acc_finetuned") is not None),
    ("acc_final >= 0.97", lambda r: present(r, "acc_final") and r.value("acc_final") >= 0.97),
    ("flops_removed > 0.5", lambda r: present(r, "flops_removed") and r.value("flops_removed") > 0.5),
    ("params_removed <= 0.3", lambda r: present(r, "params_removed") and r.value("params_removed") <= 0.3),
    (
        "config.seed = 1 and result.acc_slim < 0.95",
        lambda r: r.config["seed"] == 1 and (r.value("acc_slim") or 1) < 0.95,
    ),
    ("status in (queued, running, failed)", lambda r: r.status in ("queued", "running", "failed")),
    ("status != succeeded", lambda r: r.status != "succeeded"),
    ("tag = best", lambda r: "best" in r.tags),
    ("tags != sweep", lambda r: "sweep" not in r.tags),
    ("tag in (collapsed, 'baseline-ref')", lambda r: bool({"collapsed", "baseline-ref"} & set(r.tags))),
    ("note = 'λ sweep ✓'", lambda r: r.note == "λ sweep ✓"),
    ("note != ''", lambda r: r.note != ""),
    ("penalty = l1 and prune_stream = false", lambda r: r.config["penalty"] == "l1"),
    ("dataset = digits and arch = vgg and depth = 11", lambda r: True),
    ("experiment_id is null", lambda r: r.experiment_id is None),
    ("finished_at is null", lambda r: r.status in ("queued", "running")),
    ("created_at > 2000-01-01 and created_at < '2999-01-01T00:00:00+02:00'", lambda r: True),
    ("num_classes = 10 and channels_total = 256", lambda r: r.result is not None),
    ("id = 99999999999999999999", lambda r: False),  # beyond int64: compared as a float, no overflow
    ("id > -99999999999999999999 and seed < 9223372036854775807", lambda r: True),
    ("lam < 1e308 and lam > -1e-300 and acc_slim >= 0", lambda r: r.result is not None),
]


@pytest.mark.parametrize(("where", "predicate"), CASES, ids=[c[0] for c in CASES])
def test_where_returns_exactly_the_jobs_that_match(
    backend: Backend, where: str, predicate: Callable[[Row], bool]
) -> None:
    expected = newest_first([r for r in backend.visible if predicate(r)])
    page = listed(backend, where=where)
    assert [j["id"] for j in page["items"]] == expected
    assert page["total"] == len(expected)


@pytest.mark.parametrize("field", ["acc_slim", "beta", "lam", "acc_final", "flops_removed", "note", "seed"])
@pytest.mark.parametrize("descending", [False, True])
def test_sort_orders_by_the_field_with_missing_values_last_and_ties_newest_first(
    backend: Backend, field: str, descending: bool
) -> None:
    have = sorted((r for r in backend.visible if present(r, field)), key=lambda r: -r.id)
    have.sort(key=lambda r: r.value(field), reverse=descending)  # stable: ties stay newest first
    missing = newest_first([r for r in backend.visible if not present(r, field)])
    expected = [r.id for r in have] + missing
    got = [j["id"] for j in listed(backend, sort=("-" if descending else "") + field)["items"]]
    assert got == expected


def test_pages_of_a_filtered_sorted_list_add_up(backend: Backend) -> None:
    matching = [r for r in backend.visible if r.status == "succeeded"]
    order = [r.id for r in sorted(sorted(matching, key=lambda r: -r.id), key=lambda r: r.value("acc_slim"))]
    assert len(order) == 9
    pages = [
        listed(backend, where="status = succeeded", sort="acc_slim", limit=4, offset=offset)
        for offset in (0, 4, 8)
    ]
    assert [p["total"] for p in pages] == [9, 9, 9]
    assert [[j["id"] for j in p["items"]] for p in pages] == [order[:4], order[4:8], order[8:]]


def test_archived_jobs_are_hidden_unless_asked_for(backend: Backend) -> None:
    archived = newest_first([r for r in backend.rows if r.archived])
    assert len(archived) == 2
    default = listed(backend)
    assert default["total"] == 12 and not set(archived) & {j["id"] for j in default["items"]}
    assert [j["id"] for j in listed(backend, archived="true")["items"]] == archived
    assert listed(backend, archived="all")["total"] == 14
    assert listed(backend)["total"] == 12  # the cached page of the default list is not the "all" page
    assert ids_where(backend, "tag = best", archived="all") == newest_first(
        [r for r in backend.rows if "best" in r.tags]
    )
    bad = backend.api.get("/api/jobs", params={"archived": "yes"})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["query", "archived"]


def test_tag_parameters_all_apply_and_q_searches_notes_and_tags_ignoring_case(backend: Backend) -> None:
    def ids(**params: Any) -> list[int]:
        return [j["id"] for j in listed(backend, **params)["items"]]

    assert ids(tag=["sweep"]) == newest_first([r for r in backend.visible if "sweep" in r.tags])
    assert ids(tag=["sweep", "best"]) == newest_first(
        [r for r in backend.visible if {"sweep", "best"} <= set(r.tags)]
    )
    assert len(ids(tag=["sweep", "best"])) == 1
    assert ids(tag=["nosuchtag"]) == []
    # q: a substring of the note or of any tag, case ignored
    assert ids(q="FIRST") == newest_first([r for r in backend.visible if "first" in r.note.lower()])
    assert ids(q="ollap") == newest_first([r for r in backend.visible if "collapsed" in r.tags])
    assert ids(q="REF") == newest_first([r for r in backend.visible if "baseline-ref" in r.tags])
    # LIKE's wildcards are plain characters: only the note with a real % matches
    assert ids(q="%") == newest_first([r for r in backend.visible if "%" in r.note])
    assert ids(q="_", archived="all") == newest_first(
        [r for r in backend.rows if "_" in r.note or any("_" in t for t in r.tags)]
    )
    assert ids(q="λ sweep") == newest_first([r for r in backend.visible if "λ sweep" in r.note])


def test_filters_combine_with_the_older_parameters(backend: Backend) -> None:
    got = ids_where(
        backend, "lam >= 0.25", method="proxns", status="succeeded", experiment_id=backend.experiment_id
    )
    expected = [
        r
        for r in backend.visible
        if r.config["method"] == "proxns" and r.status == "succeeded" and r.config["lam"] >= 0.25
    ]
    assert got == newest_first(expected) and len(got) == 3
    # blank boxes of a dashboard mean "not given"
    blank = listed(backend, where="  ", sort="", q="")
    assert [j["id"] for j in blank["items"]] == newest_first(backend.visible) and blank["total"] == 12


@pytest.mark.parametrize(
    ("params", "loc", "kind", "position"),
    [
        ({"where": "method = proxns and lamb >= 0.1"}, ["query", "where"], "filter_field", 20),
        ({"where": "acc_slim > 'high'"}, ["query", "where"], "filter_value", 11),
        ({"where": "lam > 0.1 and"}, ["query", "where"], "filter_syntax", 13),
        ({"where": "(" * 300 + "lam = 1" + ")" * 300}, ["query", "where"], "filter_syntax", None),
        ({"where": "note = 'a\x00'"}, ["query", "where"], "filter_syntax", 7),
        ({"where": "created_at > '0001-01-01T00:00:00+01:00'"}, ["query", "where"], "filter_value", 13),
        ({"sort": "-lamb"}, ["query", "sort"], "filter_field", 1),
        ({"sort": "tags"}, ["query", "sort"], "filter_field", 0),
    ],
)
def test_a_bad_where_or_sort_is_a_422_that_points_at_the_offending_part(
    backend: Backend, params: dict, loc: list, kind: str, position: int | None
) -> None:
    for _ in range(2):  # refused before the page cache, the second time too
        response = backend.api.get("/api/jobs", params=params)
        assert response.status_code == 422, response.text
        (error,) = response.json()["detail"]
        assert (error["loc"], error["type"]) == (loc, kind)
        if position is not None:
            assert error["ctx"]["position"] == position and f"position {position}" in error["msg"]
        assert error["ctx"]["length"] >= 0
    if kind == "filter_field":
        assert "lam" in error["ctx"]["fields"] and "lam" in error["msg"]
    if kind == "filter_syntax" and position is None:
        assert "too deeply nested" in error["msg"]


def test_a_where_longer_than_2000_characters_is_a_422_naming_it(backend: Backend) -> None:
    assert backend.api.get("/api/jobs", params={"where": "lam = 1" + " " * 1993}).status_code == 200
    response = backend.api.get("/api/jobs", params={"where": "lam = 1" + " " * 1994})
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == ["query", "where"] and "2000" in error["msg"]


def test_nothing_a_client_sends_gets_a_500(backend: Backend) -> None:
    nasty = [
        {"where": "x" * 2001},
        {"where": "lam" + " " * 1995 + "= 1"},
        {"where": "not " * 400 + "lam = 1"},
        {"where": "(" * 999},
        {"where": ")" * 999},
        {"where": "lam in (" + ", ".join(["1"] * 600) + ")"},
        {"where": "id = 1" + " or id = 1" * 150},
        {"where": "note = '\U0001f600' or note = \"\u202e\" or note = 'ﬀ'"},
        {"where": "\u00a0lam\u2003=\u20031"},
        {"where": "𝟙 = 1"},
        {"where": "'"},
        {"where": "lam = +.5e-400"},
        {"where": "experiment_id > 1e20 or depth = 99999999999999999999"},
        {"where": "created_at > '9999-12-31T23:59:59-14:00'"},
        {"sort": "-" * 100},
        {"sort": "\x00"},
        {"tag": ["a\x00b"]},
        {"tag": [str(i) for i in range(21)]},
        {"tag": ["x" * 5000]},
        {"q": "\x00"},
        {"q": "%_\\" * 50},
    ]
    for params in nasty:
        response = backend.api.get("/api/jobs", params=params)
        assert response.status_code in (200, 422), (params, response.status_code, response.text[:300])
        if response.status_code == 422:
            assert response.json()["detail"][0]["msg"], params


def test_meta_describes_the_filter_language(backend: Backend) -> None:
    meta = backend.api.get("/api/meta").json()["filter"]
    fields = {f["name"]: f for f in meta["fields"]}
    assert (fields["lam"]["type"], fields["lam"]["source"]) == ("number", "config")
    assert (fields["acc_slim"]["type"], fields["acc_slim"]["source"]) == ("number", "result")
    assert (fields["acc_final"]["type"], fields["acc_final"]["source"]) == ("number", "derived")
    assert (fields["created_at"]["type"], fields["created_at"]["source"]) == ("datetime", "job")
    assert (fields["slim_exact"]["type"], fields["prune_stream"]["type"]) == ("bool", "bool")
    assert (
        fields["acc_slim"]["fraction"]
        and fields["flops_removed"]["fraction"]
        and "fraction" not in fields["lam"]
    )
    assert fields["method"]["values"] == list(METHODS)
    assert fields["status"]["values"] == list(JOB_STATUSES)
    assert {"=", "!=", "<", "<=", ">", ">=", "in", "is null", "and", "or", "not"} <= set(meta["operators"])
    # every field the meta lists is one the filter and the sort accept
    for name, f in fields.items():
        value = {"number": "1", "string": "x", "datetime": "2026-01-01", "bool": "true"}[f["type"]]
        value = f.get("values", [value])[0]
        where = f"{name} = {value!r}" if f["type"] == "string" else f"{name} = {value}"
        assert backend.api.get("/api/jobs", params={"where": where}).status_code == 200, where
        if name != "tag":
            assert backend.api.get("/api/jobs", params={"sort": f"-{name}"}).status_code == 200, name


# --------------------------------------------------------------------------- proxns jobs


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, list[Row]]]:
    """``proxns serve``'s app on a port (uvicorn in a thread) over a seeded SQLite store: URL, token, rows."""
    import uvicorn

    from api.main import create_app

    folder = tmp_path_factory.mktemp("cli")
    settings = embedded_settings(folder)
    exp_id, rows = seed(settings.database_url)
    token = create_token(settings.database_url)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="error")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            thread.join(0.05)
            assert thread.is_alive(), "the test server did not start"
        yield f"http://127.0.0.1:{port}", token, rows
    finally:
        server.should_exit = True
        thread.join(10)


def proxns(live: tuple[str, str, list[Row]], *args: str) -> Any:
    from proxns_cli import main

    url, token, _ = live
    return CliRunner().invoke(main, ["jobs", "--server", url, "--token", token, *args])


def table_ids(output: str) -> list[int]:
    """The job ids of a printed table (heading and the "N of M jobs" line left out)."""
    rows = output.splitlines()[1:-1]
    return [int(line.split()[0]) for line in rows if line.split() and line.split()[0].isdigit()]


def test_proxns_jobs_where_lists_exactly_the_matching_jobs(live_server: tuple) -> None:
    rows: list[Row] = live_server[2]
    result = proxns(live_server, "--where", "method = proxns and lam >= 0.25", "--limit", "50")
    assert result.exit_code == 0, result.output
    expected = newest_first(
        [r for r in rows if not r.archived and r.config["method"] == "proxns" and r.config["lam"] >= 0.25]
    )
    assert table_ids(result.stdout) == expected
    assert result.stdout.splitlines()[-1] == f"{len(expected)} of {len(expected)} jobs"


def test_proxns_jobs_prints_accuracies_as_percentages_and_flags_chance_accuracy(live_server: tuple) -> None:
    rows: list[Row] = live_server[2]
    result = proxns(live_server, "--limit", "50")
    assert result.exit_code == 0, result.output
    head, *lines = result.stdout.splitlines()
    for column in ("width", "beta", "ratio", "seed", "epochs", "acc_full", "acc_slim", "acc_ft", "pruned"):
        assert column in head.split(), column
    by_id = {int(line.split()[0]): line for line in lines if line.split()[0].isdigit()}
    ft = next(r for r in rows if r.config["finetune_epochs"] == 5)
    # acc_slim 95.5 %, the fine-tuned 97.5 % in its own column, 10+5 epochs; no fraction anywhere
    assert "95.5 %" in by_id[ft.id] and "97.5 %" in by_id[ft.id] and " 10+5 " in by_id[ft.id]
    assert "0.955" not in result.stdout and "0.9550" not in result.stdout
    collapsed = next(r for r in rows if "collapsed" in r.tags)
    assert by_id[collapsed.id].endswith("! chance_accuracy") and "10.0 %" in by_id[collapsed.id]
    assert sum("!" in line for line in by_id.values()) == 1
    # two ns jobs that differ only in seed, prune ratio, width and epochs are told apart
    first, second = (r for r in rows if r.config["method"] == "ns" and r.config["lam"] == 0.02)
    assert by_id[first.id].split()[4:11] != by_id[second.id].split()[4:11]
    assert by_id[second.id].split()[4] == "0.25" and "20" in by_id[second.id].split()


def test_proxns_jobs_sort_offset_tag_and_archived(live_server: tuple) -> None:
    rows: list[Row] = live_server[2]
    succeeded = sorted(
        sorted((r for r in rows if r.status == "succeeded" and not r.archived), key=lambda r: -r.id),
        key=lambda r: r.value("acc_slim"),
        reverse=True,
    )
    result = proxns(
        live_server, "--where", "status = succeeded", "--sort", "-acc_slim", "--limit", "3", "--offset", "2"
    )
    assert result.exit_code == 0, result.output
    assert table_ids(result.stdout) == [r.id for r in succeeded[2:5]]
    assert result.stdout.splitlines()[-1] == "3 of 9 jobs, from #3; next page: --offset 5"
    tagged = proxns(live_server, "--tag", "best", "--all")
    assert table_ids(tagged.stdout) == newest_first([r for r in rows if "best" in r.tags])
    archived = proxns(live_server, "--archived")
    assert table_ids(archived.stdout) == newest_first([r for r in rows if r.archived])
    both = proxns(live_server, "--archived", "--all")
    assert both.exit_code == 2 and "exclude each other" in both.stderr


@pytest.mark.parametrize(
    ("where", "words"),
    [
        ("method = proxns and lamb >= 0.1", ["unknown field 'lamb' at position 20", "did you mean lam"]),
        ("acc_slim > high", ["acc_slim is a number", "position 11"]),
        ("lam >", ["unexpected end of the expression at position 5", "a number"]),
    ],
)
def test_proxns_jobs_with_a_bad_expression_exits_2_with_one_line(
    live_server: tuple, where: str, words: list[str]
) -> None:
    result = proxns(live_server, "--where", where)
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])

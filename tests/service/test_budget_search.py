"""Budget searches (issue 12, item 3), in process: the 422s of every invalid penalty / parameter /
search combination (POST /api/jobs and POST /api/experiments, each naming the field), and the
advance of a search's rounds over the store (SQLite and Postgres) with results written as a worker
would, including two processes advancing the same ended round at once (one round, created once)."""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from proxns_core.spec import Result as ResultSpec
from proxns_testkit import TINY_JOB, api_client, embedded_settings, postgres_database
from store.db import make_engine, make_sessionmaker
from store.migrate import upgrade
from store.models import Experiment, Job
from store.queries import add_outbox, claim_job, finish_job, save_result
from store.search import advance_all, advance_for_job, advance_search

BASE = {**TINY_JOB, "beta": 100.0, "lam": 0.25}


@pytest.fixture
def client(tmp_path: Path) -> Iterator:
    settings = embedded_settings(tmp_path)
    with api_client(settings) as c:
        c.settings = settings
        yield c


def _locs(response) -> list[tuple]:
    assert response.status_code == 422, response.text
    return [tuple(e["loc"]) for e in response.json()["detail"]]


BAD_PENALTIES = [
    ({"method": "baseline", "penalty": "l1"}, "penalty"),
    ({"method": "ns", "penalty": "l0"}, "penalty"),
    ({"method": "proxns", "penalty": "l1", "penalty_a": 2.0}, "penalty_a"),
    ({"method": "proxns", "penalty": "scad", "penalty_a": 1.5}, "penalty_a"),
    ({"method": "proxns", "penalty": "lasso"}, "penalty"),
]


@pytest.mark.parametrize(("fields", "field"), BAD_PENALTIES, ids=[f"{f}" for f, _ in BAD_PENALTIES])
def test_invalid_penalty_combinations_are_422s_naming_the_field(client, fields: dict, field: str) -> None:
    body = {**TINY_JOB, **fields}
    if fields["method"] == "baseline":
        body.pop("lam")
    assert ("body", field) in _locs(client.post("/api/jobs", json=body))
    exp = client.post("/api/experiments", json={"name": "bad", "base": body})
    assert ("body", "base", field) in _locs(exp)
    # The same value from a sweep list is named in the sweep (ns + l0, scad + a=1.5).
    if field == "penalty" and fields["method"] == "ns":
        sweep = client.post(
            "/api/experiments",
            json={"name": "bad", "base": {**TINY_JOB, "method": "ns"}, "sweep": {"penalty": ["l1", "l0"]}},
        )
        assert ("body", "sweep", "penalty") in _locs(sweep)
    if fields.get("penalty") == "scad":
        sweep = client.post(
            "/api/experiments",
            json={"name": "bad", "base": {**TINY_JOB, "penalty": "scad"}, "sweep": {"penalty_a": [3.7, 1.5]}},
        )
        assert ("body", "sweep", "penalty_a") in _locs(sweep)


BAD_SEARCHES = [
    ({"base": {**TINY_JOB, "method": "ns"}}, ("body", "search"), "prune_ratio"),
    ({"base": {**TINY_JOB, "method": "baseline", "lam": None}}, ("body", "search"), "baseline"),
    ({"sweep": {"lam": [0.1, 0.2]}}, ("body", "sweep"), "search and sweep"),
    ({"sweep": {"seed": [1, 2]}}, ("body", "sweep"), "search and sweep"),
    ({"search": {"target": "params_fraction", "value": 0.5}}, ("body", "search", "target"), ""),
    ({"search": {"target": "pruned_fraction", "value": 1.0}}, ("body", "search", "value"), ""),
    (
        {"search": {"target": "pruned_fraction", "value": 0.5, "tolerance": 0}},
        ("body", "search", "tolerance"),
        "",
    ),
    (
        {"search": {"target": "pruned_fraction", "value": 0.5, "max_jobs": 0}},
        ("body", "search", "max_jobs"),
        "",
    ),
    (
        {"search": {"target": "pruned_fraction", "value": 0.5, "parallel": 17}},
        ("body", "search", "parallel"),
        "",
    ),
    ({"search": {"target": "pruned_fraction", "value": 0.5, "lam": 1}}, ("body", "search", "lam"), ""),
    ({"base": {**BASE, "beta": -1}}, ("body", "base", "beta"), ""),
]


@pytest.mark.parametrize(
    ("change", "loc", "words"), BAD_SEARCHES, ids=[str(loc) + w for _, loc, w in BAD_SEARCHES]
)
def test_invalid_searches_are_422s_naming_the_field(client, change: dict, loc: tuple, words: str) -> None:
    body = {"name": "budget", "base": BASE, "search": {"target": "pruned_fraction", "value": 0.7}, **change}
    response = client.post("/api/experiments", json=body)
    assert loc in _locs(response)
    assert words in " ".join(e["msg"] for e in response.json()["detail"])
    assert client.get("/api/experiments").json()["total"] == 0


def test_a_search_creates_its_first_round_and_reports_its_state(client) -> None:
    body = {"name": "budget", "base": BASE, "search": {"target": "flops_fraction", "value": 0.75}}
    created = client.post("/api/experiments", json=body)
    assert created.status_code == 201, created.text
    exp = created.json()
    assert exp["search"] == {
        "target": "flops_fraction",
        "value": 0.75,
        "tolerance": 0.02,
        "max_jobs": 8,
        "parallel": 2,
    }
    assert [j["config"]["lam"] for j in exp["jobs"]] == [0.125, 0.5]  # parallel 2 around the base's λ 0.25
    state = exp["search_state"]
    assert state["status"] == "running" and state["default_lam"] == 0.25
    assert [(p["lam"], p["value"], p["status"]) for p in state["points"]] == [
        (0.125, None, "queued"),
        (0.5, None, "queued"),
    ]
    listed = client.get("/api/experiments").json()["items"][0]
    assert listed["search_status"] == "running"
    # Without a λ in the base, the search starts from the method's default for the network.
    start = client.post(
        "/api/experiments",
        json={**body, "base": {**BASE, "lam": None}, "search": {**body["search"], "parallel": 1}},
    )
    assert start.status_code == 201, start.text
    assert len(start.json()["jobs"]) == 1 and start.json()["search_state"]["default_lam"] > 0
    # A plain sweep has neither.
    plain = client.post("/api/experiments", json={"name": "plain", "base": TINY_JOB}).json()
    assert plain["search"] is None and plain["search_state"] is None


def _result(share: float) -> ResultSpec:
    return ResultSpec(
        acc_full=0.9,
        acc_slim=0.9,
        acc_finetuned=None,
        channels_total=1000,
        channels_pruned=round(1000 * share),
        pruned_fraction=round(1000 * share) / 1000,
        params_full=100,
        params_slim=50,
        flops_full=1000,
        flops_slim=500,
        latency_full_ms=1.0,
        latency_slim_ms=0.5,
        layers=[],
        kept_forced=[],
        device="cpu",
    )


def _curve(lam: float) -> float:
    """A pruned share that grows smoothly with λ (23 % at 0.25, 80 % at 0.5, as on digits)."""
    return 1 / (1 + (0.36 / lam) ** 3.8)


def _run_search(sessions, exp_id: int, curve, fail_lams: tuple = ()) -> dict:
    """Play the workers: finish every queued job of the experiment (result from ``curve``), advancing
    the search after each, until the search ends."""
    for _ in range(100):
        with sessions() as s:
            exp = s.get(Experiment, exp_id)
            if exp.search_state["status"] != "running":
                return exp.search_state
            queued = list(
                s.execute(select(Job).where(Job.experiment_id == exp_id, Job.status == "queued")).scalars()
            )
            work = [(j.id, j.config["lam"]) for j in queued]
        for job_id, lam in work:
            with sessions() as s:
                assert claim_job(s, job_id, "here:1", "cpu")
                if lam in fail_lams:
                    finish_job(s, job_id, "failed", error="boom")
                else:
                    assert save_result(s, job_id, _result(curve(lam)), []) == "succeeded"
            with sessions() as s:
                advance_for_job(s, job_id)
    raise AssertionError("the search did not end")


def test_a_search_meets_a_reachable_budget_and_stops_at_the_closest_of_an_unreachable_one(client) -> None:
    sessions = make_sessionmaker(make_engine(client.settings.database_url))
    body = {"name": "budget", "base": BASE, "search": {"target": "pruned_fraction", "value": 0.7}}
    exp = client.post("/api/experiments", json=body).json()
    state = _run_search(sessions, exp["id"], _curve)
    assert state["status"] == "met", state
    assert abs(state["best_value"] - 0.7) <= 0.02 and len(state["points"]) <= 8
    shown = client.get(f"/api/experiments/{exp['id']}").json()
    assert shown["search_state"]["best_job_id"] == state["best_job_id"]
    assert {p["job_id"] for p in shown["points"]} == {p["job_id"] for p in shown["search_state"]["points"]}
    assert client.get("/api/experiments").json()["items"][0]["search_status"] == "met"

    hard = {"target": "pruned_fraction", "value": 0.995, "tolerance": 0.002, "max_jobs": 3}
    exp = client.post("/api/experiments", json={**body, "search": hard}).json()
    state = _run_search(sessions, exp["id"], lambda lam: min(_curve(lam), 0.98))
    assert state["status"] == "closest" and len(state["points"]) == 3
    assert "max_jobs (3) reached" in state["reason"] and "closest" in state["reason"]
    best = max(state["points"], key=lambda p: p["value"])
    assert state["best_job_id"] == best["job_id"]

    # Failed jobs count toward max_jobs; a search whose every job failed says so.
    failing = {"target": "pruned_fraction", "value": 0.7, "max_jobs": 2}
    exp = client.post("/api/experiments", json={**body, "search": failing}).json()
    state = _run_search(sessions, exp["id"], _curve, fail_lams=(0.125, 0.5))
    assert state["status"] == "closest" and state["best_job_id"] is None, state
    assert len(state["points"]) == 2


def _race(database_url: str) -> None:
    """Two processes' sessions advance the same ended round at once: one round is created."""
    engine = make_engine(database_url)
    sessions = make_sessionmaker(engine)
    with sessions() as s:
        exp = Experiment(
            name="race",
            base=BASE,
            sweep={},
            search={
                "target": "pruned_fraction",
                "value": 0.7,
                "tolerance": 0.02,
                "max_jobs": 8,
                "parallel": 2,
            },
            search_state={"status": "running", "default_lam": 0.25, "points": []},
            search_round=1,
        )
        s.add(exp)
        s.commit()
        exp_id = exp.id
    from proxns_core.spec import TrainConfig
    from store.queries import create_jobs

    with sessions() as s:
        jobs = create_jobs(
            s, [TrainConfig.model_validate({**BASE, "lam": lam}) for lam in (0.125, 0.5)], exp_id
        )
        ids = [j.id for j in jobs]
    for job_id, lam in zip(ids, (0.125, 0.5), strict=True):
        with sessions() as s:
            claim_job(s, job_id, "here:1", "cpu")
            save_result(s, job_id, _result(_curve(lam)), [])
    created: list[list[int]] = []
    barrier = threading.Barrier(4)

    def advance(job_id: int) -> None:
        barrier.wait()
        try:
            with sessions() as s:
                created.append(advance_search(s, exp_id) if job_id % 2 else advance_for_job(s, job_id))
        except Exception:  # noqa: BLE001 - SQLite: the loser may find the database locked
            created.append([])

    threads = [threading.Thread(target=advance, args=(j,)) for j in (*ids, *ids)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with sessions() as s:
        advance_all(s)  # the reconciler after them: nothing more to create
        all_jobs = list(s.execute(select(Job.id).where(Job.experiment_id == exp_id)).scalars())
        exp = s.get(Experiment, exp_id)
        assert exp.search_round == 2
    assert sum(bool(c) for c in created) == 1, created
    assert len(all_jobs) == 2 + len(next(c for c in created if c))
    engine.dispose()


def test_two_processes_advancing_the_same_round_create_it_once_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'race.db'}"
    upgrade(url)
    _race(url)


def test_two_processes_advancing_the_same_round_create_it_once_on_postgres(postgres_admin_url: str) -> None:
    with postgres_database(postgres_admin_url) as url:
        _race(url)


def test_the_curve_used_here_is_monotone() -> None:
    assert all(_curve(a) < _curve(b) for a, b in [(0.1, 0.25), (0.25, 0.5), (0.5, 1.0)])
    assert math.isclose(_curve(0.36), 0.5)


def test_a_search_that_cannot_advance_holds_back_neither_the_others_nor_the_outbox(
    client, monkeypatch
) -> None:
    import store.search as search_module
    from store.reconciler import reconcile_once

    sessions = make_sessionmaker(make_engine(client.settings.database_url))
    body = {"name": "budget", "base": BASE, "search": {"target": "pruned_fraction", "value": 0.7}}
    broken, healthy = (client.post("/api/experiments", json=body).json()["id"] for _ in range(2))
    real = search_module.advance_search
    advanced = []

    def advance(session, exp_id):
        if exp_id == broken:
            raise ZeroDivisionError("a search that cannot decide")
        advanced.append(exp_id)
        return real(session, exp_id)

    monkeypatch.setattr(search_module, "advance_search", advance)
    with sessions() as s:  # a message still to send (as after a broker outage)
        waiting = s.execute(select(Job.id).where(Job.experiment_id == healthy)).scalars().first()
        add_outbox(s, [waiting])
        s.commit()
    published = []
    outcome = reconcile_once(sessions, client.settings, lambda job_id, *a, **k: published.append(job_id))
    assert advanced == [healthy] and outcome["searched"] == []
    assert published == [waiting]  # the outbox went out although a search raised

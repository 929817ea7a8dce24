"""Per-method sweep lists (issue 13, item 8): ``sweep.by_method`` gives NS and proxns λ lists of their
own (≈ 0.02 against 0.25–1 on digits), the job count limit counts the combinations each method really
gets, bad keys are 422s at ``body.sweep.by_method.<method>.<field>``, and a dry run creates nothing and
counts what the real submission creates. Over the in-process API on a real SQLite store."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from proxns_core.spec import METHOD_FIELDS, TrainConfig
from proxns_testkit import TINY_JOB, api_client, embedded_settings

BASE = {k: v for k, v in TINY_JOB.items() if k != "lam"}
#: The contract's example: NS and proxns with λ on their own scales, two seeds each.
EXAMPLE = {
    "name": "λ per method",
    "base": BASE,
    "sweep": {
        "method": ["ns", "proxns"],
        "seed": [0, 1],
        "by_method": {"ns": {"lam": [0.01, 0.02]}, "proxns": {"lam": [0.25, 0.5, 1]}},
    },
}


@pytest.fixture
def api(tmp_path: Path) -> Iterator[TestClient]:
    with api_client(embedded_settings(tmp_path)) as client:
        yield client


def limited(tmp_path: Path, max_sweep_jobs: int) -> TestClient:
    settings = embedded_settings(tmp_path).model_copy(update={"max_sweep_jobs": max_sweep_jobs})
    return api_client(settings)


def sweep_with(**changes: object) -> dict:
    return {**EXAMPLE, "sweep": {**EXAMPLE["sweep"], **changes}}


def test_each_method_gets_its_own_lambda_list_and_exactly_those_jobs(api: TestClient) -> None:
    made = api.post("/api/experiments", json=EXAMPLE)
    assert made.status_code == 201, made.text
    jobs = [j["config"] for j in made.json()["jobs"]]
    assert len(jobs) == 10
    got = Counter((c["method"], c["lam"], c["seed"]) for c in jobs)
    want = Counter(
        [("ns", lam, s) for lam in (0.01, 0.02) for s in (0, 1)]
        + [("proxns", lam, s) for lam in (0.25, 0.5, 1.0) for s in (0, 1)]
    )
    assert got == want
    # every other field is the base's, resolved per method (NS's prune ratio, proxns's β)
    for c in jobs:
        expected = TrainConfig.model_validate(
            {**BASE, "method": c["method"], "lam": c["lam"], "seed": c["seed"]}
        )
        assert c == expected.model_dump(mode="json")
    # stored as sent, so the experiment shows how it was made
    assert made.json()["sweep"]["by_method"] == {
        "ns": {"lam": [0.01, 0.02]},
        "proxns": {"lam": [0.25, 0.5, 1.0]},
    }


def test_a_method_list_replaces_the_shared_one_only_for_its_method(api: TestClient) -> None:
    body = sweep_with(lam=[0.1], by_method={"ns": {"lam": [0.02], "prune_ratio": [0.3, 0.5]}})
    jobs = [j["config"] for j in api.post("/api/experiments", json=body).json()["jobs"]]
    ns = sorted((c["lam"], c["prune_ratio"], c["seed"]) for c in jobs if c["method"] == "ns")
    proxns = sorted((c["lam"], c["seed"]) for c in jobs if c["method"] == "proxns")
    assert ns == [(0.02, 0.3, 0), (0.02, 0.3, 1), (0.02, 0.5, 0), (0.02, 0.5, 1)]
    assert proxns == [(0.1, 0), (0.1, 1)]  # the shared λ list


@pytest.mark.parametrize(
    ("by_method", "loc", "words"),
    [
        (
            {"slim": {"lam": [1]}},
            ["body", "sweep", "by_method", "slim"],
            "'slim' is not a method; by_method keys: baseline, ns, proxns",
        ),
        (
            {"baseline": {"lam": [1]}},
            ["body", "sweep", "by_method", "baseline"],
            "method baseline is not in this experiment (its methods: ns, proxns)",
        ),
        (
            {"ns": {"beta": [5]}},
            ["body", "sweep", "by_method", "ns", "beta"],
            "method ns does not take 'beta'; its own lists may be: lam, prune_ratio, penalty, penalty_a",
        ),
        (
            {"proxns": {"prune_ratio": [0.5]}},
            ["body", "sweep", "by_method", "proxns", "prune_ratio"],
            "method proxns does not take 'prune_ratio'; its own lists may be: lam, beta, penalty, penalty_a",
        ),
        ({"proxns": {"seed": [3]}}, ["body", "sweep", "by_method", "proxns", "seed"], "does not take 'seed'"),
        ({"proxns": {"lamb": [3]}}, ["body", "sweep", "by_method", "proxns", "lamb"], "does not take 'lamb'"),
        ({"ns": {"lam": [-0.5]}}, ["body", "sweep", "by_method", "ns", "lam"], "greater than or equal to 0"),
        ({"ns": {"lam": []}}, ["body", "sweep", "by_method", "ns", "lam"], "at least 1 item"),
        ({"ns": {"lam": ["x"]}}, ["body", "sweep", "by_method", "ns", "lam", 0], "valid number"),
        ({"ns": {"penalty": ["l0"]}}, ["body", "sweep", "by_method", "ns", "penalty"], "l0"),
    ],
)
def test_a_bad_per_method_list_is_a_422_at_its_place(
    api: TestClient, by_method: dict, loc: list, words: str
) -> None:
    body = sweep_with(by_method=by_method)
    for path in ("/api/experiments", "/api/experiments?dry_run=true"):  # the same 422 either way
        answer = api.post(path, json=body)
        assert answer.status_code == 422, answer.text
        errors = answer.json()["detail"]
        assert loc in [e["loc"] for e in errors], errors
        assert any(words in e["msg"] for e in errors if e["loc"] == loc), errors
    assert api.get("/api/experiments").json()["total"] == 0


def test_a_baseline_takes_no_per_method_list(api: TestClient) -> None:
    body = sweep_with(method=["baseline", "proxns"], by_method={"baseline": {"lam": [0.1]}})
    errors = api.post("/api/experiments", json=body).json()["detail"]
    assert errors[0]["loc"] == ["body", "sweep", "by_method", "baseline", "lam"]
    assert "its own lists may be: none" in errors[0]["msg"]
    assert METHOD_FIELDS["baseline"] == ()


def test_the_job_limit_counts_the_combinations_each_method_really_gets(tmp_path: Path) -> None:
    with limited(tmp_path / "a", 10) as client:
        assert client.post("/api/experiments", json=EXAMPLE).status_code == 201  # 4 + 6 = 10
        three_seeds = sweep_with(seed=[0, 1, 2])  # 6 + 9 = 15
        answer = client.post("/api/experiments?dry_run=true", json=three_seeds)
        assert answer.status_code == 422
        msg = answer.json()["detail"][0]["msg"]
        assert answer.json()["detail"][0]["loc"] == ["body", "sweep"]
        assert msg.startswith("sweep asks for 15 jobs (ns: 2 lam x 3 seed; proxns: 3 lam x 3 seed)"), msg
        assert "at most 10" in msg and "PROXNS_MAX_SWEEP_JOBS" in msg
    with limited(tmp_path / "b", 6) as client:
        # β applies to proxns only: 1 baseline + 5 proxns jobs, not 2 × 5
        body = {
            "name": "b",
            "base": BASE,
            "sweep": {"method": ["baseline", "proxns"], "beta": [1, 2, 3, 4, 5]},
        }
        made = client.post("/api/experiments", json=body)
        assert made.status_code == 201, made.text
        assert Counter(j["config"]["method"] for j in made.json()["jobs"]) == {"baseline": 1, "proxns": 5}


def test_a_dry_run_counts_what_the_real_submission_creates_and_stores_nothing(api: TestClient) -> None:
    body = sweep_with(
        by_method={"ns": {"lam": [0.01, 0.02], "penalty": ["l1", "mcp"]}, "proxns": {"lam": [0.5]}}
    )
    plan = api.post("/api/experiments?dry_run=true", json=body)
    assert plan.status_code == 200, plan.text
    assert plan.json()["count"] == 10 and plan.json()["count_by_method"] == {"ns": 8, "proxns": 2}
    assert api.get("/api/experiments").json()["total"] == 0 and api.get("/api/jobs").json()["total"] == 0
    made = api.post("/api/experiments", json=body).json()
    assert len(made["jobs"]) == plan.json()["count"]
    assert [j["config"] for j in made["jobs"]] == plan.json()["jobs"]
    # duplicates are counted, not planned: a λ listed twice resolves to one job (ns: its default λ)
    twice = api.post(
        "/api/experiments?dry_run=true", json=sweep_with(by_method={"proxns": {"lam": [0.5, 0.5]}})
    )
    assert (
        twice.json()["count_by_method"] == {"ns": 2, "proxns": 2} and twice.json()["skipped_duplicates"] == 2
    )


def test_jobs_added_to_an_experiment_take_per_method_lists_too(api: TestClient) -> None:
    exp = api.post("/api/experiments", json=EXAMPLE).json()
    more = {"sweep": {"method": ["ns", "proxns"], "seed": [0, 1], "by_method": {"ns": {"lam": [0.02, 0.04]}}}}
    plan = api.post(f"/api/experiments/{exp['id']}/jobs?dry_run=true", json=more).json()
    # ns λ 0.02 exists for both seeds; proxns takes the base's λ (none swept): its default
    assert plan["count_by_method"] == {"ns": 2, "proxns": 2} and plan["skipped_duplicates"] == 2
    added = api.post(f"/api/experiments/{exp['id']}/jobs", json=more).json()
    assert sorted(
        (j["config"]["method"], j["config"]["lam"]) for j in added["created"] if j["config"]["method"] == "ns"
    ) == [
        ("ns", 0.04),
        ("ns", 0.04),
    ]
    assert len(added["experiment"]["jobs"]) == 14
    bad = api.post(
        f"/api/experiments/{exp['id']}/jobs", json={"sweep": {"by_method": {"ns": {"lam": [0.1]}}}}
    )
    assert bad.status_code == 422  # the experiment's base is proxns: ns is not among its methods
    assert bad.json()["detail"][0]["loc"] == ["body", "sweep", "by_method", "ns"]

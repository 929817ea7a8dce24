"""Organising jobs and experiments (issue 13, items 6 and 8): tags, notes and archiving (PATCH), deletion
with the rows and the files (DELETE), cancelling, renaming and growing an experiment, dry runs.

Every test runs on SQLite (the embedded default, a filesystem queue) and on real Postgres (a fresh
database per test, a Redis queue of its own); the in-process API, never a mocked store. The deletion
of a running job goes through a real worker process training a real job.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from proxns_cli import main as proxns
from proxns_testkit import (
    TINY_JOB,
    api_client,
    create_token,
    embedded_settings,
    forget_redis_queue,
    free_port,
    postgres_database,
    service_env,
    start_api,
    start_worker,
    stop_process,
    wait_for,
    wait_healthy,
)
from proxns_testkit.seed import seed_jobs
from store import make_engine, make_sessionmaker
from store.models import Artifact, Experiment, Job, Metric, Outbox, Result
from store.search import advance_all
from store.settings import Settings

pytestmark = pytest.mark.integration

#: A job that runs until it is stopped (a synthetic data set: no download, one epoch in a second or two).
#: An experiment file: NS and proxns with λ lists of their own, two seeds each (4 + 6 jobs).
EXAMPLE_SWEEP = {
    "name": "plan",
    "base": {k: v for k, v in TINY_JOB.items() if k != "lam"},
    "sweep": {
        "method": ["ns", "proxns"],
        "seed": [0, 1],
        "by_method": {"ns": {"lam": [0.01, 0.02]}, "proxns": {"lam": [0.25, 0.5, 1]}},
    },
}
ENDLESS = {**TINY_JOB, "dataset": "synthetic", "epochs": 300, "train_subset": 128, "test_subset": 64}


@pytest.fixture(params=["sqlite", "postgres"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    """A migrated store of the parametrised backend and a queue of this test's own."""
    if request.param == "sqlite":
        yield embedded_settings(tmp_path)
        return
    admin = request.getfixturevalue("postgres_admin_url")
    redis_url = request.getfixturevalue("redis_url")
    queue = f"proxns-test-{uuid.uuid4().hex[:8]}"
    with postgres_database(admin) as url:
        yield Settings(
            database_url=url,
            broker_url=redis_url,
            queue=queue,
            artifact_dir=str(tmp_path / "artifacts"),
            frontend_dir=str(tmp_path / "no-frontend"),
        )
    forget_redis_queue(redis_url, queue)


@pytest.fixture
def api(settings: Settings) -> Iterator[TestClient]:
    """The API as user alice (not an admin: she sees only her own jobs)."""
    with api_client(settings, "alice", admin=False) as client:
        yield client


@pytest.fixture
def sessions(settings: Settings) -> Iterator:
    engine = make_engine(settings.database_url)
    yield make_sessionmaker(engine)
    engine.dispose()


def user_id(sessions, name: str) -> int:
    from store.models import User

    with sessions() as s:
        return s.execute(select(User.id).where(User.name == name)).scalar_one()


def rows(sessions, table, job_id: int) -> int:
    with sessions() as s:
        column = table.id if table is Job else table.job_id
        return s.scalar(select(func.count()).select_from(table).where(column == job_id))


def with_model_file(settings: Settings, sessions, job_id: int, name: str = "slim.onnx") -> Path:
    """A model file in the job's folder of the artifact store, recorded as its artifact."""
    folder = Path(settings.artifact_dir) / str(job_id)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(b"model")
    (folder / "checkpoint").mkdir(exist_ok=True)
    (folder / "checkpoint" / "checkpoint.pt").write_bytes(b"ckpt")
    with sessions() as s:
        s.add(
            Artifact(
                job_id=job_id,
                name=name,
                format="onnx",
                bytes=5,
                sha256=hashlib.sha256(b"model").hexdigest(),
                location=f"{job_id}/{name}",
            )
        )
        s.commit()
    return folder


def seeded(
    settings: Settings, sessions, n: int = 2, experiment: str | None = None
) -> tuple[int | None, list[int]]:
    """``n`` succeeded jobs of alice's (results and per-epoch metrics)."""
    jobs = [{"config": {**TINY_JOB, "seed": i}, "acc": 0.9 + i / 100, "pruned": 0.5} for i in range(n)]
    return seed_jobs(settings.database_url, jobs, experiment=experiment, owner_id=user_id(sessions, "alice"))


# --------------------------------------------------------------------------- PATCH


def test_tags_note_and_archiving_are_stored_and_survive_a_new_session(
    api: TestClient, settings, sessions
) -> None:
    job = api.post("/api/jobs", json=TINY_JOB).json()
    before = job["updated_at"]
    answer = api.patch(
        f"/api/jobs/{job['id']}",
        json={"tags": ["  digits ", "baseline-run", "digits", "λ sweep"], "note": "first try\n\tλ too high"},
    )
    assert answer.status_code == 200, answer.text
    changed = answer.json()
    assert changed["tags"] == ["digits", "baseline-run", "λ sweep"]  # trimmed, deduplicated, order kept
    assert changed["note"] == "first try\n\tλ too high"
    assert changed["archived_at"] is None and changed["updated_at"] >= before
    # a PATCH changes only what it sends
    archived = api.patch(f"/api/jobs/{job['id']}", json={"archived": True}).json()
    assert archived["tags"] == changed["tags"] and archived["note"] == changed["note"]
    assert archived["archived_at"] is not None
    again = api.patch(f"/api/jobs/{job['id']}", json={"archived": True}).json()
    assert again["archived_at"] == archived["archived_at"]  # archiving twice keeps the first time
    with sessions() as s:
        row = s.get(Job, job["id"])
        assert row.tags == ["digits", "baseline-run", "λ sweep"] and row.archived_at is not None
    assert api.patch(f"/api/jobs/{job['id']}", json={"archived": False}).json()["archived_at"] is None
    assert api.patch(f"/api/jobs/{job['id']}", json={"tags": [], "note": ""}).json()["tags"] == []

    exp = api.post("/api/experiments", json={"name": "lr", "base": TINY_JOB, "sweep": {"seed": [0]}}).json()
    patched = api.patch(
        f"/api/experiments/{exp['id']}", json={"name": "λ on digits", "tags": ["paper"], "note": "fig. 3"}
    ).json()
    assert (patched["name"], patched["tags"], patched["note"]) == ("λ on digits", ["paper"], "fig. 3")
    assert api.get(f"/api/experiments/{exp['id']}").json()["name"] == "λ on digits"
    # archived experiments leave the default list; archived=true / all and q find them
    api.patch(f"/api/experiments/{exp['id']}", json={"archived": True})
    assert api.get("/api/experiments").json()["total"] == 0
    assert [e["id"] for e in api.get("/api/experiments?archived=true").json()["items"]] == [exp["id"]]
    assert api.get("/api/experiments?archived=all&q=PAPER").json()["total"] == 1
    assert api.get("/api/experiments?archived=all&q=FIG. 3").json()["total"] == 1
    assert api.get("/api/experiments?archived=all&q=nothing%25").json()["total"] == 0


def test_experiment_search_matches_one_tag_at_a_time_in_any_script_and_refuses_nul(api: TestClient) -> None:
    """``q`` of the experiments list looks into each tag (never the serialised list, whose JSON
    escapes non-ASCII and whose quotes and commas would match every tagged experiment)."""
    tagged = api.post("/api/experiments", json={"name": "a", "base": TINY_JOB}).json()["id"]
    other = api.post("/api/experiments", json={"name": "b", "base": TINY_JOB}).json()["id"]
    api.patch(f"/api/experiments/{tagged}", json={"tags": ["réseau", "x"]})
    api.patch(f"/api/experiments/{other}", json={"tags": ["plain"]})
    found = lambda q: [e["id"] for e in api.get("/api/experiments", params={"q": q}).json()["items"]]  # noqa: E731
    assert found("rés") == [tagged] and found("SEAU") == [tagged]  # (SQLite folds the case of ASCII only)
    assert found('", "') == [] and found("[") == []
    assert found("plain") == [other]
    refused = api.get("/api/experiments", params={"q": "a\x00b"})
    assert refused.status_code == 422 and refused.json()["detail"][0]["loc"] == ["query", "q"]


def test_adding_jobs_with_a_method_that_is_no_name_is_a_422_not_a_500(api: TestClient) -> None:
    exp = api.post("/api/experiments", json={"name": "a", "base": TINY_JOB}).json()["id"]
    answer = api.post(
        f"/api/experiments/{exp}/jobs", json={"base": {"method": ["x"]}, "sweep": {"seed": [3]}}
    )
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"][0]["loc"][:3] == ["body", "base", "method"]


@pytest.mark.parametrize(
    ("body", "loc", "words"),
    [
        ({"tags": ["a,b"]}, ["body", "tags", 0], "comma"),
        ({"tags": [""]}, ["body", "tags", 0], "1 to 40 characters; got 0"),
        ({"tags": ["x" * 41]}, ["body", "tags", 0], "1 to 40 characters; got 41"),
        ({"tags": ["ok", "line\nbreak"]}, ["body", "tags", 1], "control characters"),
        ({"tags": [f"t{i}" for i in range(21)]}, ["body", "tags"], "at most 20 tags; got 21"),
        ({"tags": "solo"}, ["body", "tags"], "valid list"),
        ({"note": "n" * 10_001}, ["body", "note"], "at most 10000 characters; got 10001"),
        ({"note": "nul\x00"}, ["body", "note"], "NUL"),
        ({"archived": "yes"}, ["body", "archived"], "boolean"),
        ({"status": "succeeded"}, ["body", "status"], "not permitted"),
    ],
)
def test_a_bad_label_is_a_422_that_names_the_field_and_changes_nothing(
    api: TestClient, body: dict, loc: list, words: str
) -> None:
    job = api.post("/api/jobs", json=TINY_JOB).json()
    api.patch(f"/api/jobs/{job['id']}", json={"tags": ["kept"], "note": "kept"})
    answer = api.patch(f"/api/jobs/{job['id']}", json={"note": "changed?", **body})
    assert answer.status_code == 422, answer.text
    errors = answer.json()["detail"]
    assert [e["loc"] for e in errors] == [loc]
    assert words in errors[0]["msg"]
    after = api.get(f"/api/jobs/{job['id']}").json()
    assert (after["tags"], after["note"]) == (["kept"], "kept")


def test_an_experiment_name_must_not_be_blank(api: TestClient) -> None:
    exp = api.post("/api/experiments", json={"name": "n", "base": TINY_JOB}).json()
    for name in ("", "   ", "x" * 201):
        answer = api.patch(f"/api/experiments/{exp['id']}", json={"name": name})
        assert answer.status_code == 422 and answer.json()["detail"][0]["loc"] == ["body", "name"], name
    assert api.get(f"/api/experiments/{exp['id']}").json()["name"] == "n"


# --------------------------------------------------------------------------- DELETE


def test_deleting_a_finished_job_removes_its_rows_and_its_files(api: TestClient, settings, sessions) -> None:
    _, (gone, kept) = seeded(settings, sessions, 2)
    folder = with_model_file(settings, sessions, gone)
    other = with_model_file(settings, sessions, kept)
    assert rows(sessions, Metric, gone) == 2 and rows(sessions, Result, gone) == 1
    assert api.get(f"/api/jobs/{gone}/artifacts").json()["items"][0]["name"] == "slim.onnx"

    answer = api.delete(f"/api/jobs/{gone}")
    assert answer.status_code == 204 and answer.content == b""
    for table in (Job, Metric, Result, Artifact, Outbox):
        assert rows(sessions, table, gone) == 0, table.__name__
    assert not folder.exists()
    assert api.get(f"/api/jobs/{gone}").status_code == 404
    assert api.delete(f"/api/jobs/{gone}").status_code == 404
    # the other job keeps everything
    assert rows(sessions, Metric, kept) == 2 and rows(sessions, Result, kept) == 1
    assert (other / "slim.onnx").read_bytes() == b"model"
    assert [j["id"] for j in api.get("/api/jobs").json()["items"]] == [kept]


def test_deleting_a_job_without_files_or_a_queued_one_works(api: TestClient, settings, sessions) -> None:
    queued = api.post("/api/jobs", json=TINY_JOB).json()
    assert rows(sessions, Outbox, queued["id"]) == 1
    assert api.delete(f"/api/jobs/{queued['id']}").status_code == 204  # no folder was ever written
    assert rows(sessions, Job, queued["id"]) == 0 and rows(sessions, Outbox, queued["id"]) == 0


def test_another_users_job_and_experiment_are_not_found_for_patch_delete_cancel_and_add(
    api: TestClient, settings, sessions
) -> None:
    job = api.post("/api/jobs", json=TINY_JOB).json()
    exp = api.post("/api/experiments", json={"name": "hers", "base": TINY_JOB}).json()
    bob = {"Authorization": "Bearer " + create_token(settings.database_url, "bob", admin=False)}
    calls = [
        ("PATCH", f"/api/jobs/{job['id']}", {"tags": ["mine"]}),
        ("DELETE", f"/api/jobs/{job['id']}", None),
        ("PATCH", f"/api/experiments/{exp['id']}", {"name": "mine"}),
        ("DELETE", f"/api/experiments/{exp['id']}", None),
        ("POST", f"/api/experiments/{exp['id']}/cancel", None),
        ("POST", f"/api/experiments/{exp['id']}/jobs", {"sweep": {"seed": [5]}}),
    ]
    for method, path, body in calls:
        answer = api.request(method, path, json=body, headers=bob)
        assert answer.status_code == 404, (method, path, answer.text)
        assert "not found" in answer.json()["detail"]
    assert api.get(f"/api/jobs/{job['id']}").json()["tags"] == []
    after = api.get(f"/api/experiments/{exp['id']}").json()
    assert after["name"] == "hers" and len(after["jobs"]) == 1 and after["jobs"][0]["status"] == "queued"
    # an admin may organise anyone's
    root = {"Authorization": "Bearer " + create_token(settings.database_url, "root", admin=True)}
    assert api.patch(f"/api/jobs/{job['id']}", json={"tags": ["seen"]}, headers=root).status_code == 200


# --------------------------------------------------------------------------- experiments


def test_cancelling_an_experiment_cancels_its_queued_and_flags_its_running_jobs(
    api: TestClient, sessions
) -> None:
    exp = api.post(
        "/api/experiments", json={"name": "c", "base": TINY_JOB, "sweep": {"seed": [0, 1, 2]}}
    ).json()
    a, b, c = (j["id"] for j in exp["jobs"])
    with sessions() as s:  # b is running on some worker; c already ended
        s.execute(update(Job).where(Job.id == b).values(status="running"))
        s.execute(update(Job).where(Job.id == c).values(status="failed"))
        s.commit()
    answer = api.post(f"/api/experiments/{exp['id']}/cancel")
    assert answer.status_code == 200, answer.text
    assert answer.json()["cancelled"] == [a, b]
    status = {j["id"]: j["status"] for j in answer.json()["experiment"]["jobs"]}
    assert status == {a: "cancelled", b: "running", c: "failed"}  # b ends once its worker sees the flag
    with sessions() as s:
        assert s.get(Job, b).cancel_requested is True and s.get(Job, c).cancel_requested is False
    assert api.post(f"/api/experiments/{exp['id']}/cancel").json()["cancelled"] == []
    assert api.post("/api/experiments/999999/cancel").status_code == 404


def test_deleting_an_experiment_removes_its_jobs_rows_and_files_and_nothing_else(
    api: TestClient, settings, sessions
) -> None:
    exp_id, ids = seeded(settings, sessions, 3, experiment="to go")
    _, (outside,) = seeded(settings, sessions, 1)
    queued = api.post(f"/api/experiments/{exp_id}/jobs", json={"sweep": {"seed": [7]}}).json()["created"][0][
        "id"
    ]
    folders = [with_model_file(settings, sessions, j) for j in ids]
    assert api.delete(f"/api/experiments/{exp_id}").status_code == 204
    for job_id in [*ids, queued]:
        for table in (Job, Metric, Result, Artifact, Outbox):
            assert rows(sessions, table, job_id) == 0, (job_id, table.__name__)
    assert not any(f.exists() for f in folders)
    with sessions() as s:
        assert s.get(Experiment, exp_id) is None
    assert api.get(f"/api/experiments/{exp_id}").status_code == 404
    assert api.delete(f"/api/experiments/{exp_id}").status_code == 404
    assert rows(sessions, Metric, outside) == 2 and api.get(f"/api/jobs/{outside}").status_code == 200


def test_a_budget_search_stops_when_cancelled_and_never_comes_back_once_deleted(
    api: TestClient, sessions
) -> None:
    body = {
        "name": "budget",
        "base": TINY_JOB,
        "search": {"target": "pruned_fraction", "value": 0.5, "max_jobs": 6},
    }
    exp = api.post("/api/experiments", json=body).json()
    first = [j["id"] for j in exp["jobs"]]
    assert len(first) == 2
    cancelled = api.post(f"/api/experiments/{exp['id']}/cancel").json()
    assert cancelled["cancelled"] == first
    assert cancelled["experiment"]["search_state"]["status"] == "cancelled"
    with sessions() as s:  # the round ended (cancelled): a cancelled search makes no next round
        assert advance_all(s) == []
    assert len(api.get(f"/api/experiments/{exp['id']}").json()["jobs"]) == 2

    again = api.post("/api/experiments", json={**body, "name": "budget 2"}).json()
    assert api.delete(f"/api/experiments/{again['id']}").status_code == 204
    with sessions() as s:
        assert advance_all(s) == []
        assert s.scalar(select(func.count()).select_from(Job).where(Job.experiment_id == again["id"])) == 0
    # a search's experiment chooses its own jobs
    assert api.post(f"/api/experiments/{exp['id']}/jobs", json={"sweep": {"seed": [1]}}).status_code == 409


def test_adding_jobs_skips_configs_the_experiment_has_and_the_dry_run_says_so(api: TestClient) -> None:
    exp = api.post(
        "/api/experiments", json={"name": "grow", "base": TINY_JOB, "sweep": {"seed": [0, 1]}}
    ).json()
    more = {"sweep": {"seed": [1, 2, 3]}}
    plan = api.post(f"/api/experiments/{exp['id']}/jobs?dry_run=true", json=more)
    assert plan.status_code == 200, plan.text
    assert plan.json()["count"] == 2 and plan.json()["skipped_duplicates"] == 1
    assert [c["seed"] for c in plan.json()["jobs"]] == [2, 3]
    assert len(api.get(f"/api/experiments/{exp['id']}").json()["jobs"]) == 2  # the dry run stored nothing
    added = api.post(f"/api/experiments/{exp['id']}/jobs", json=more)
    assert added.status_code == 201, added.text
    assert [j["config"]["seed"] for j in added.json()["created"]] == [2, 3] and added.json()["skipped"] == 1
    assert all(j["experiment_id"] == exp["id"] for j in added.json()["created"])
    assert len(added.json()["experiment"]["jobs"]) == 4
    # base fields change the experiment's base; a new method drops the fields it does not take (beta)
    ns = api.post(
        f"/api/experiments/{exp['id']}/jobs",
        json={"base": {"method": "ns", "epochs": 3}, "sweep": {"lam": [0.01]}},
    ).json()["created"]
    assert [(j["config"]["method"], j["config"]["lam"], j["config"]["epochs"]) for j in ns] == [
        ("ns", 0.01, 3)
    ]
    # everything again: all skipped
    again = api.post(f"/api/experiments/{exp['id']}/jobs", json=more).json()
    assert again["created"] == [] and again["skipped"] == 3
    # the same 422s as creating, at body.base / body.sweep
    bad = api.post(f"/api/experiments/{exp['id']}/jobs", json={"base": {"epochs": 0}, "sweep": {"seed": [9]}})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"][:3] == ["body", "base", "epochs"]
    bad = api.post(f"/api/experiments/{exp['id']}/jobs?dry_run=true", json={"sweep": {"beta": ["x"]}})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "sweep", "beta", 0]


def test_a_dry_run_of_a_new_experiment_stores_nothing_and_matches_the_real_one(api: TestClient) -> None:
    body = {"name": "d", "base": TINY_JOB, "sweep": {"lam": [0.1, 0.2], "method": ["baseline", "proxns"]}}
    plan = api.post("/api/experiments?dry_run=true", json=body).json()
    assert plan["count"] == 3 and plan["count_by_method"] == {"baseline": 1, "proxns": 2}
    assert plan["skipped_duplicates"] == 0  # baseline ignores λ: counted once, not twice
    assert api.get("/api/experiments").json()["total"] == 0 and api.get("/api/jobs").json()["total"] == 0
    made = api.post("/api/experiments", json=body).json()
    assert [j["config"] for j in made["jobs"]] == plan["jobs"]


# --------------------------------------------------------------------------- a real worker


def worker_env(settings: Settings) -> dict[str, str]:
    return service_env(
        database_url=settings.database_url,
        broker_url=settings.broker_url,
        broker_dir=settings.broker_dir,
        queue=settings.queue,
        artifact_dir=settings.artifact_dir,
    )


def test_deleting_a_running_job_stops_its_worker_quietly_and_the_worker_goes_on(
    api: TestClient, settings: Settings, sessions, tmp_path: Path
) -> None:
    log = tmp_path / "worker.log"
    worker = start_worker(worker_env(settings), log)
    try:
        running = api.post("/api/jobs", json=ENDLESS).json()["id"]
        folder = Path(settings.artifact_dir) / str(running)
        nxt = api.post("/api/jobs", json=TINY_JOB).json()["id"]  # waits for the one worker

        def epochs() -> int:
            return api.get(f"/api/jobs/{running}").json()["epochs_done"]

        wait_for(
            lambda: epochs() >= 2 and (folder / "checkpoint").exists(),
            180,
            0.2,
            "two epochs and a checkpoint",
        )
        assert api.delete(f"/api/jobs/{running}").status_code == 204
        for table in (Job, Metric, Outbox):
            assert rows(sessions, table, running) == 0
        wait_for(
            lambda: f"job {running} was deleted" in log.read_text(), 60, 0.2, "the worker to stop the job"
        )
        wait_for(lambda: not folder.exists(), 30, 0.2, "the job's folder to be gone")
        assert rows(sessions, Metric, running) == 0  # no epoch row written after the deletion

        # the same worker takes the next job and runs it to the end
        done = wait_for(
            lambda: (j := api.get(f"/api/jobs/{nxt}").json())["status"] in ("succeeded", "failed") and j,
            300,
            0.5,
            "the next job to finish",
        )
        assert done["status"] == "succeeded", done["error"]
        files = Path(settings.artifact_dir) / str(nxt)
        assert (files / "slim.onnx").is_file()
        assert not folder.exists()  # and nothing came back for the deleted one
        text = log.read_text()
        assert "Traceback" not in text and "IntegrityError" not in text, text[-3000:]
        # deleting the finished job takes its real model files
        assert api.delete(f"/api/jobs/{nxt}").status_code == 204
        assert not files.exists() and rows(sessions, Artifact, nxt) == 0
        assert worker.poll() is None
    finally:
        stop_process(worker)


def test_a_deleted_jobs_id_is_never_given_to_a_new_job(api: TestClient) -> None:
    """A job's id names its folder in the artifact store, its URLs and the Idempotency-Key records that
    point at it: a new job must not take the id of a deleted one (SQLite reuses the largest rowid
    unless the table is AUTOINCREMENT; Postgres sequences never go back)."""
    first = api.post("/api/jobs", json=TINY_JOB).json()["id"]
    assert api.delete(f"/api/jobs/{first}").status_code == 204
    assert api.post("/api/jobs", json=TINY_JOB).json()["id"] > first
    exp = api.post("/api/experiments", json={"name": "e", "base": TINY_JOB}).json()["id"]
    assert api.delete(f"/api/experiments/{exp}").status_code == 204
    assert api.post("/api/experiments", json={"name": "e", "base": TINY_JOB}).json()["id"] > exp


# --------------------------------------------------------------------------- the CLI, against a live server


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """``uvicorn`` serving the API on an embedded store (SQLite, filesystem queue), and alice's token."""
    folder = tmp_path_factory.mktemp("live")
    settings = embedded_settings(folder)
    env = service_env(
        database_url=settings.database_url,
        broker_url=settings.broker_url,
        broker_dir=settings.broker_dir,
        artifact_dir=settings.artifact_dir,
        frontend_dir=settings.frontend_dir,
    )
    port = free_port()
    server = start_api(env, port, folder / "api.log")
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, server)
        token = create_token(settings.database_url, "alice", admin=False)
        engine = make_engine(settings.database_url)
        yield {
            "url": url,
            "token": token,
            "settings": settings,
            "sessions": make_sessionmaker(engine),
            "dir": folder,
        }
        engine.dispose()
    finally:
        stop_process(server)


def cli(live: dict, *args: str, stdin: str | None = None):
    """``proxns ARGS`` through click's CliRunner, talking to the live server as alice."""
    env = {"PROXNS_SERVER": live["url"], "PROXNS_TOKEN": live["token"]}
    return CliRunner().invoke(proxns, list(args), env=env, input=stdin, catch_exceptions=False)


def one_line_error(result, words: str) -> None:
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: "), result.stderr
    assert words in result.stderr, result.stderr


def http(live: dict, method: str, path: str, **kwargs):
    headers = {"Authorization": f"Bearer {live['token']}"}
    return httpx.request(method, live["url"] + path, headers=headers, timeout=30, **kwargs)


def test_the_cli_plans_adds_renames_archives_cancels_and_deletes_experiments(
    live: dict, tmp_path: Path
) -> None:
    plan_file = tmp_path / "sweep.yaml"
    plan_file.write_text(yaml.safe_dump(EXAMPLE_SWEEP))
    planned = cli(live, "experiments", "plan", str(plan_file))
    assert planned.exit_code == 0, planned.stderr
    lines = planned.stdout.splitlines()
    assert lines[0] == "would create 10 job(s) (ns 4, proxns 6)"
    assert (
        sum(line.startswith("ns ") for line in lines) == 4
        and sum(line.startswith("proxns ") for line in lines) == 6
    )
    assert http(live, "GET", "/api/experiments?archived=all").json()["total"] == 0  # nothing created
    submitted = cli(live, "submit", str(plan_file), "--dry-run")  # the same plan through `submit`
    assert submitted.exit_code == 0 and submitted.stdout == planned.stdout, submitted.stderr
    job_file = tmp_path / "job.yaml"
    job_file.write_text(yaml.safe_dump(TINY_JOB))
    one_line_error(cli(live, "submit", str(job_file), "--dry-run"), "--dry-run applies to experiment files")
    assert http(live, "GET", "/api/experiments?archived=all").json()["total"] == 0

    exp = http(live, "POST", "/api/experiments", json={**EXAMPLE_SWEEP, "name": "cli"}).json()
    add_file = tmp_path / "add.yaml"
    add_file.write_text(
        yaml.safe_dump(
            {
                "sweep": {
                    "method": ["ns", "proxns"],
                    "seed": [0, 5],
                    "by_method": {"ns": {"lam": [0.01]}, "proxns": {"lam": [0.25]}},
                }
            }
        )
    )
    dry = cli(live, "experiments", "add", str(exp["id"]), str(add_file), "--dry-run")
    assert dry.exit_code == 0, dry.stderr
    assert dry.stdout.splitlines()[0] == (
        f"experiment {exp['id']}: would add 2 job(s) (ns 1, proxns 1); 2 combination(s) skipped as duplicates"
    )
    added = cli(live, "experiments", "add", str(exp["id"]), str(add_file))
    assert (
        added.exit_code == 0
        and "2 job(s) queued" in added.stdout
        and "2 already in it, skipped" in added.stdout
    )
    assert len(http(live, "GET", f"/api/experiments/{exp['id']}").json()["jobs"]) == 12
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"name": "x", "sweep": {"seed": [1]}}))
    one_line_error(cli(live, "experiments", "add", str(exp["id"]), str(bad)), "unexpected key(s) name")
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text(yaml.safe_dump({"sweep": {"method": ["ns"], "by_method": {"ns": {"beta": [1]}}}}))
    one_line_error(
        cli(live, "experiments", "add", str(exp["id"]), str(wrong), "--dry-run"),
        "sweep.by_method.ns.beta: method ns does not take 'beta'",
    )

    assert cli(live, "experiments", "rename", str(exp["id"]), "λ by method").stdout.strip() == (
        f"experiment {exp['id']} renamed 'λ by method'"
    )
    listed = cli(live, "experiments", "list", "--q", "BY METHOD")
    assert (
        listed.exit_code == 0
        and f"{exp['id']:>5}  λ by method" in listed.stdout
        and "1 of 1" in listed.stdout
    )
    assert cli(live, "experiments", "archive", str(exp["id"])).exit_code == 0
    assert "0 of 0 experiments" in cli(live, "experiments", "list", "--q", "by method").stdout
    assert "[archived]" in cli(live, "experiments", "list", "--all", "--q", "by method").stdout
    assert cli(live, "experiments", "unarchive", str(exp["id"])).exit_code == 0

    cancelled = cli(live, "experiments", "cancel", str(exp["id"]))
    assert cancelled.exit_code == 0 and cancelled.stdout.startswith(
        f"experiment {exp['id']}: cancelled 12 job(s): "
    )
    shown = cli(live, "experiments", "show", str(exp["id"]))
    assert shown.stdout.count(" cancelled ") == 12

    refused = cli(live, "experiments", "delete", str(exp["id"]))  # CliRunner's stdin is no terminal
    one_line_error(refused, "no terminal to ask on; pass --yes")
    assert http(live, "GET", f"/api/experiments/{exp['id']}").status_code == 200
    gone = cli(live, "experiments", "delete", str(exp["id"]), "--yes")
    assert gone.exit_code == 0 and gone.stdout.strip() == f"experiment {exp['id']} deleted with its 12 job(s)"
    assert http(live, "GET", f"/api/experiments/{exp['id']}").status_code == 404
    one_line_error(
        cli(live, "experiments", "show", str(exp["id"])), f"HTTP 404: experiment {exp['id']} not found"
    )


def test_the_cli_tags_notes_archives_cancels_and_deletes_jobs(live: dict) -> None:
    alice = user_id(live["sessions"], "alice")
    exp_id, (done,) = seed_jobs(
        live["settings"].database_url,
        [{"config": TINY_JOB, "acc": 0.983, "pruned": 0.5}],
        experiment="seeded",
        owner_id=alice,
    )
    folder = with_model_file(live["settings"], live["sessions"], done)
    assert "98.3 %" in cli(live, "experiments", "show", str(exp_id)).stdout  # accuracies as percentages

    tagged = cli(live, "tag", str(done), "digits", "keep", "digits")
    assert tagged.exit_code == 0 and tagged.stdout.strip() == f"job {done} tags: digits, keep"
    assert cli(live, "tag", str(done), "keep", "--remove").stdout.strip() == f"job {done} tags: digits"
    one_line_error(
        cli(live, "tag", str(done), "nope", "--remove"), f"job {done} has no tag nope; its tags: digits"
    )
    one_line_error(cli(live, "tag", str(done), "a,b"), "tags.1: a tag cannot contain a comma")
    assert cli(live, "note", str(done), "-", stdin="λ too high\nretry at 0.5").exit_code == 0
    job = http(live, "GET", f"/api/jobs/{done}").json()
    assert (job["tags"], job["note"]) == (["digits"], "λ too high\nretry at 0.5")
    assert (
        cli(live, "archive", str(done)).stdout.strip() == f"job {done} archived (hidden from default lists)"
    )
    assert http(live, "GET", f"/api/jobs/{done}").json()["archived_at"] is not None
    assert cli(live, "unarchive", str(done)).exit_code == 0
    assert http(live, "GET", f"/api/jobs/{done}").json()["archived_at"] is None

    queued = [http(live, "POST", "/api/jobs", json={**TINY_JOB, "seed": s}).json()["id"] for s in (1, 2)]
    cancelled = cli(live, "cancel", *map(str, queued))
    assert cancelled.stdout.splitlines() == [f"job {queued[0]} cancelled", f"job {queued[1]} cancelled"]
    one_line_error(cli(live, "cancel", str(done)), f"HTTP 409: job {done} is already succeeded")
    one_line_error(cli(live, "cancel"), "give job ids (proxns cancel 12 13) or --experiment ID")
    one_line_error(cli(live, "cancel", "1", "--experiment", "1"), "not both and not neither")

    one_line_error(cli(live, "delete", str(done)), "pass --yes")
    assert folder.exists() and http(live, "GET", f"/api/jobs/{done}").status_code == 200
    deleted = cli(live, "delete", str(done), *map(str, queued), "--yes")
    assert deleted.stdout.splitlines() == [f"job {i} deleted" for i in (done, *queued)]
    assert not folder.exists() and rows(live["sessions"], Metric, done) == 0
    one_line_error(cli(live, "delete", str(done), "--yes"), f"HTTP 404: job {done} not found")

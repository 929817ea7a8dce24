"""The REST contract in-process: a real SQLite store and a real filesystem queue, no worker needed."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from proxns_testkit import TINY_JOB, embedded_settings
from store.migrate import upgrade
from store.settings import Settings


@pytest.fixture
def api(tmp_path: Path) -> TestClient:
    with TestClient(create_app(embedded_settings(tmp_path))) as client:
        client.queue_dir = tmp_path / "broker" / "queue"
        yield client


def queued_messages(api: TestClient) -> int:
    return len(list(api.queue_dir.glob("*.msg")))


BAD_REQUESTS = [
    # (what, path, body, loc, words the message must contain)
    (
        "unknown arch",
        "/api/jobs",
        {**TINY_JOB, "arch": "alexnet"},
        ["body", "arch"],
        ["vgg", "resnet", "densenet"],
    ),
    (
        "resnet depth 100",
        "/api/jobs",
        {**TINY_JOB, "arch": "resnet", "depth": 100},
        ["body", "depth"],
        ["100", "9n+2"],
    ),
    (
        "negative lambda",
        "/api/jobs",
        {**TINY_JOB, "lam": -0.1},
        ["body", "lam"],
        ["greater than or equal to 0"],
    ),
    ("10,000 epochs", "/api/jobs", {**TINY_JOB, "epochs": 10_000}, ["body", "epochs"], ["1000"]),
    ("epochs not a number", "/api/jobs", {**TINY_JOB, "epochs": "many"}, ["body", "epochs"], ["integer"]),
    ("width as a list", "/api/jobs", {**TINY_JOB, "width": [0.5]}, ["body", "width"], ["number"]),
    (
        "unknown field",
        "/api/jobs",
        {**TINY_JOB, "learning_rate": 0.1},
        ["body", "learning_rate"],
        ["not permitted"],
    ),
    ("beta for ns", "/api/jobs", {**TINY_JOB, "method": "ns", "beta": 10}, ["body", "beta"], ["proxns"]),
    (
        "300-job sweep",
        "/api/experiments",
        {
            "name": "big",
            "base": TINY_JOB,
            "sweep": {"lam": [0.01 * i for i in range(1, 21)], "seed": list(range(15))},
        },
        ["body", "sweep"],
        ["300", "256"],
    ),
    (
        "bad base depth",
        "/api/experiments",
        {"name": "x", "base": {**TINY_JOB, "depth": 12}, "sweep": {}},
        ["body", "base", "depth"],
        ["11, 13, 16, 19"],
    ),
    (
        "negative lambda in a sweep",
        "/api/experiments",
        {"name": "x", "base": TINY_JOB, "sweep": {"lam": [0.1, -1.0]}},
        ["body", "sweep", "lam"],
        ["greater than or equal to 0", "-1.0"],
    ),
    (
        "sweep values of the wrong type",
        "/api/experiments",
        {"name": "x", "base": TINY_JOB, "sweep": {"seed": "0,1"}},
        ["body", "sweep", "seed"],
        ["list"],
    ),
    (
        "unknown sweep axis",
        "/api/experiments",
        {"name": "x", "base": TINY_JOB, "sweep": {"depth": [11, 13]}},
        ["body", "sweep", "depth"],
        ["not permitted"],
    ),
    ("experiment without a name", "/api/experiments", {"base": TINY_JOB}, ["body", "name"], ["required"]),
]


@pytest.mark.parametrize(
    ("what", "path", "body", "loc", "words"), BAD_REQUESTS, ids=[b[0] for b in BAD_REQUESTS]
)
def test_bad_request_answers_422_naming_the_field_and_creates_no_job(
    api: TestClient, what: str, path: str, body: dict, loc: list[str], words: list[str]
) -> None:
    response = api.post(path, json=body)
    assert response.status_code == 422, response.text
    errors = response.json()["detail"]
    match = [e for e in errors if e["loc"] == loc]
    assert match, f"{what}: no error at {loc}: {errors}"
    for word in words:
        assert word in match[0]["msg"], f"{what}: {word!r} not in {match[0]['msg']!r}"
    assert api.get("/api/jobs").json()["total"] == 0
    assert api.get("/api/experiments").json()["total"] == 0
    assert queued_messages(api) == 0


def test_submitted_job_is_stored_resolved_and_enqueued_once(api: TestClient) -> None:
    response = api.post(
        "/api/jobs", json={"dataset": "synthetic", "arch": "resnet", "depth": 20, "epochs": 4}
    )
    assert response.status_code == 201
    job = response.json()
    assert job["config"]["method"] == "proxns"
    assert job["config"]["lam"] == 0.002 and job["config"]["beta"] == 0.25  # published ResNet defaults
    assert job["config"]["lr_milestones"] == [2, 3]
    assert job["status"] == "queued" and job["progress"] == 0.0 and job["result"] is None
    assert queued_messages(api) == 1
    assert api.get(f"/api/jobs/{job['id']}").json() == job


def test_job_list_filters_paginates_and_orders_newest_first(api: TestClient) -> None:
    ids = [
        api.post("/api/jobs", json={**TINY_JOB, "method": m}).json()["id"]
        for m in ["proxns", "ns", "proxns"] * 3
    ]
    page = api.get("/api/jobs", params={"limit": 4, "offset": 2}).json()
    assert page["total"] == 9 and page["limit"] == 4 and page["offset"] == 2
    assert [j["id"] for j in page["items"]] == sorted(ids, reverse=True)[2:6]
    ns = api.get("/api/jobs", params={"method": "ns"}).json()
    assert ns["total"] == 3 and all(j["config"]["method"] == "ns" for j in ns["items"])
    api.post(f"/api/jobs/{ids[0]}/cancel")
    cancelled = api.get("/api/jobs", params={"status": "cancelled"}).json()
    assert [j["id"] for j in cancelled["items"]] == [ids[0]]
    bad = api.get("/api/jobs", params={"status": "done"})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["query", "status"]
    assert api.get("/api/jobs", params={"limit": 0}).json()["detail"][0]["loc"] == ["query", "limit"]


def test_unknown_ids_answer_404_and_finished_jobs_cannot_be_cancelled(api: TestClient) -> None:
    for path in [
        "/api/jobs/41",
        "/api/jobs/41/metrics",
        "/api/jobs/41/artifacts",
        "/api/jobs/41/artifacts/slim.onnx",
    ]:
        response = api.get(path)
        assert response.status_code == 404 and response.json() == {"detail": "job 41 not found"}
    assert api.post("/api/jobs/41/cancel").json() == {"detail": "job 41 not found"}
    assert api.get("/api/experiments/7").json() == {"detail": "experiment 7 not found"}

    job = api.post("/api/jobs", json=TINY_JOB).json()
    first = api.post(f"/api/jobs/{job['id']}/cancel")
    assert first.status_code == 200 and first.json()["status"] == "cancelled"
    assert first.json()["finished_at"] is not None
    second = api.post(f"/api/jobs/{job['id']}/cancel")
    assert second.status_code == 409
    assert (
        second.json()["detail"]
        == f"job {job['id']} is already cancelled; only queued or running jobs can be cancelled"
    )
    missing = api.get(f"/api/jobs/{job['id']}/artifacts/slim.onnx")
    assert missing.status_code == 404 and "slim.onnx" in missing.json()["detail"]


def test_sweep_applies_values_only_where_the_method_takes_them_and_drops_duplicates(api: TestClient) -> None:
    body = {
        "name": "methods",
        "base": {**TINY_JOB, "beta": 50.0},
        "sweep": {"method": ["baseline", "ns", "proxns"], "lam": [0.01, 0.02], "beta": [1.0, 2.0]},
    }
    response = api.post("/api/experiments", json=body)
    assert response.status_code == 201, response.text
    exp = response.json()
    combos = sorted(
        (j["config"]["method"], j["config"]["lam"], j["config"]["beta"], j["config"]["prune_ratio"])
        for j in exp["jobs"]
    )
    # 3 x 2 x 2 = 12 asked; baseline takes neither lam nor beta (1 job), ns takes lam only (2), proxns all (4).
    assert combos == [
        ("baseline", 0.0, None, None),
        ("ns", 0.01, None, 0.7),
        ("ns", 0.02, None, 0.7),
        ("proxns", 0.01, 1.0, None),
        ("proxns", 0.01, 2.0, None),
        ("proxns", 0.02, 1.0, None),
        ("proxns", 0.02, 2.0, None),
    ]
    assert queued_messages(api) == 7
    assert exp["base"] == body["base"] and exp["sweep"] == body["sweep"]
    summary = api.get("/api/experiments").json()["items"][0]
    assert summary["job_count"] == 7
    assert summary["status_counts"] == {
        "queued": 7,
        "running": 0,
        "succeeded": 0,
        "failed": 0,
        "cancelled": 0,
    }


def test_meta_lists_what_a_form_needs(api: TestClient) -> None:
    meta = api.get("/api/meta").json()
    archs = {a["name"]: a for a in meta["archs"]}
    assert archs["vgg"]["depths"] == [11, 13, 16, 19] and archs["vgg"]["default_depth"] == 19
    assert 164 in archs["resnet"]["depths"] and 100 not in archs["resnet"]["depths"]
    assert archs["densenet"]["default_depth"] == 40 and "3n+4" in archs["densenet"]["depth_rule"]
    datasets = {d["name"]: d for d in meta["datasets"]}
    assert datasets["digits"]["available"] and datasets["synthetic"]["available"]
    assert set(datasets) == {"cifar10", "cifar100", "svhn", "digits", "synthetic"}
    assert meta["methods"] == ["baseline", "ns", "proxns"]
    assert meta["defaults"]["lam"]["proxns"]["vgg"] == 0.0045
    assert set(meta["schema"]["properties"]) >= {
        "dataset",
        "arch",
        "depth",
        "method",
        "lam",
        "beta",
        "epochs",
    }


def test_health_reports_database_and_broker(api: TestClient) -> None:
    assert api.get("/healthz").json() == {"status": "ok", "database": "ok", "broker": "ok"}
    openapi = api.get("/openapi.json").json()
    assert {"/api/jobs", "/api/jobs/{job_id}/cancel", "/api/experiments/{experiment_id}", "/api/meta"} <= set(
        openapi["paths"]
    )


def test_health_reports_an_unreachable_broker(tmp_path: Path) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'proxns.db'}",
        broker_url="redis://127.0.0.1:1/0",  # nothing listens on port 1
        artifact_dir=str(tmp_path / "artifacts"),
    )
    upgrade(settings.database_url)
    with TestClient(create_app(settings)) as client:
        response = client.get("/healthz")
        assert response.status_code == 503
        assert response.json() == {"status": "degraded", "database": "ok", "broker": "error"}
        # A job that cannot be queued is not kept.
        submit = client.post("/api/jobs", json=TINY_JOB)
        assert submit.status_code == 503 and "nothing was created" in submit.json()["detail"]
        assert client.get("/api/jobs").json()["total"] == 0


def test_job_list_reflects_every_change_made_by_another_process(api: TestClient, tmp_path: Path) -> None:
    from store import make_engine, make_sessionmaker
    from store.queries import claim_job, report_progress

    job_id = api.post("/api/jobs", json=TINY_JOB).json()["id"]
    assert api.get("/api/jobs").json()["items"][0]["status"] == "queued"
    assert api.get("/api/jobs").json()["items"][0]["status"] == "queued"  # served again, unchanged

    # The worker's writes go through their own engine, as from another process.
    engine = make_engine(f"sqlite:///{tmp_path / 'proxns.db'}")
    with make_sessionmaker(engine)() as s:
        assert claim_job(s, job_id, "elsewhere:1", "cpu")
        first = api.get("/api/jobs").json()["items"][0]
        assert (first["status"], first["worker_host"], first["attempts"]) == ("running", "elsewhere:1", 1)
        report_progress(s, job_id, 0.25, 12.0, epochs_done=1)
    engine.dispose()
    second = api.get("/api/jobs").json()["items"][0]
    assert (second["progress"], second["eta_seconds"], second["epochs_done"]) == (0.25, 12.0, 1)


def test_dashboard_files_are_served_at_the_root_after_the_api_routes(tmp_path: Path) -> None:
    frontend = tmp_path / "frontend"
    frontend.mkdir()
    (frontend / "index.html").write_text("<!doctype html><title>ProxNS Lab</title>")
    (frontend / "app.js").write_text("console.log('hi')")
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'proxns.db'}",
        broker_dir=str(tmp_path / "broker"),
        artifact_dir=str(tmp_path / "artifacts"),
        frontend_dir=str(frontend),
    )
    upgrade(settings.database_url)
    with TestClient(create_app(settings)) as client:
        index = client.get("/")
        assert index.status_code == 200 and "<title>ProxNS Lab</title>" in index.text
        script = client.get("/app.js")
        assert script.headers["content-type"].startswith("text/javascript")
        assert script.headers["cache-control"] == "no-cache"  # never a stale module beside a new one
        assert client.get("/api/jobs").json()["total"] == 0
        assert client.get("/healthz").json()["status"] == "ok"


def test_responses_match_the_schemas_published_in_openapi(api: TestClient) -> None:
    from api.schemas import ExperimentList, ExperimentOut, JobList, JobOut, MetricsOut

    body = {"name": "s", "base": TINY_JOB, "sweep": {"seed": [0, 1]}}
    exp = ExperimentOut.model_validate(api.post("/api/experiments", json=body).json())
    job = JobOut.model_validate(api.post("/api/jobs", json=TINY_JOB).json())
    assert JobList.model_validate(api.get("/api/jobs").json()).total == 3
    assert ExperimentList.model_validate(api.get("/api/experiments").json()).items[0].job_count == 2
    assert ExperimentOut.model_validate(api.get(f"/api/experiments/{exp.id}").json()).jobs[1].config.seed == 1
    assert JobOut.model_validate(api.post(f"/api/jobs/{job.id}/cancel").json()).status == "cancelled"
    assert MetricsOut.model_validate(api.get(f"/api/jobs/{job.id}/metrics").json()).items == []
    schemas = api.get("/openapi.json").json()["components"]["schemas"]
    assert {"JobOut", "JobList", "ExperimentOut", "TrainConfig", "Sweep"} <= set(schemas)

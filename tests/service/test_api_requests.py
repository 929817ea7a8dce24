"""The REST contract in-process: a real SQLite store and a real filesystem queue, no worker needed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from proxns_testkit import TINY_JOB, api_client, embedded_settings
from store.migrate import upgrade
from store.settings import Settings


@pytest.fixture
def api(tmp_path: Path) -> TestClient:
    with api_client(embedded_settings(tmp_path)) as client:
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
    # ---- values JSON allows and no field does (raw text: a client library would refuse to send them)
    ("epochs true", "/api/jobs", {**TINY_JOB, "epochs": True}, ["body", "epochs"], ["boolean"]),
    ("width false", "/api/jobs", {**TINY_JOB, "width": False}, ["body", "width"], ["boolean"]),
    (
        "seed true in a sweep",
        "/api/experiments",
        {"name": "x", "base": TINY_JOB, "sweep": {"seed": [True]}},
        ["body", "sweep", "seed", 0],
        ["boolean"],
    ),
    ("lr NaN", "/api/jobs", '{"dataset": "digits", "lr": NaN}', ["body", "lr"], ["finite"]),
    (
        "width Infinity",
        "/api/jobs",
        '{"dataset": "digits", "width": Infinity}',
        ["body", "width"],
        ["finite"],
    ),
    (
        "-Infinity in a sweep",
        "/api/experiments",
        '{"name": "x", "base": {}, "sweep": {"lam": [0.1, -Infinity]}}',
        ["body", "sweep", "lam", 1],
        ["finite"],
    ),
    (
        "NUL in data_root",
        "/api/jobs",
        {**TINY_JOB, "data_root": "data\x00/x"},
        ["body", "data_root"],
        ["NUL"],
    ),
    ("NUL in device", "/api/jobs", {**TINY_JOB, "device": "cpu\x00"}, ["body", "device"], ["NUL"]),
    (
        "NUL in an experiment name",
        "/api/experiments",
        {"name": "a\x00b", "base": TINY_JOB},
        ["body", "name"],
        ["NUL"],
    ),
    (
        "lone surrogate in data_root",
        "/api/jobs",
        '{"dataset": "digits", "data_root": "\\ud800"}',
        ["body", "data_root"],
        ["surrogate"],
    ),
    (
        "lone surrogate in an experiment name",
        "/api/experiments",
        '{"name": "x\\udfff", "base": {}}',
        ["body", "name"],
        ["surrogate"],
    ),
    (
        "lone surrogate in a key",
        "/api/jobs",
        '{"dataset": "digits", "\\ud800": 1}',
        ["body", "\\ud800"],
        ["surrogate"],
    ),
    (
        "device with a trailing newline",
        "/api/jobs",
        {**TINY_JOB, "device": "cpu\n"},
        ["body", "device"],
        ["control"],
    ),
    (
        "device with Arabic digits",
        "/api/jobs",
        {**TINY_JOB, "device": "cuda:\u0663"},
        ["body", "device"],
        ["cuda:N"],
    ),
    (
        "JSON nested 40 deep",
        "/api/jobs",
        '{"lr_milestones": ' + "[" * 40 + "]" * 40 + "}",
        ["body", "lr_milestones"],
        ["nested deeper than 32"],
    ),
    ("100,000 brackets", "/api/jobs", "[" * 100_000 + "]" * 100_000, ["body"], ["nested too deeply"]),
    (
        "a 5000-digit epochs",
        "/api/jobs",
        '{"epochs": 1' + "0" * 5000 + "}",
        ["body"],
        ["JSON body is invalid"],
    ),
    ("invalid UTF-8", "/api/jobs", b'{"data_root": "\xff"}', ["body"], ["JSON body is invalid"]),
    # ---- this server's limits (store/settings.py, PROXNS_MAX_*)
    (
        "densenet-4801",
        "/api/jobs",
        {"arch": "densenet", "depth": 4801},
        ["body", "depth"],
        ["4801", "250", "PROXNS_MAX_DEPTH_DENSENET"],
    ),
    (
        "resnet-1001",
        "/api/jobs",
        {"arch": "resnet", "depth": 1001},
        ["body", "depth"],
        ["1001", "200", "PROXNS_MAX_DEPTH_RESNET"],
    ),
    (
        "VGG-19 width 4",
        "/api/jobs",
        {"arch": "vgg", "depth": 19, "width": 4, "epochs": 1000},
        ["body", "width"],
        ["4", "2.0", "PROXNS_MAX_WIDTH"],
    ),
    (
        "1000 epochs",
        "/api/jobs",
        {"arch": "vgg", "depth": 19, "width": 4, "epochs": 1000},
        ["body", "epochs"],
        ["1000", "300", "PROXNS_MAX_EPOCHS"],
    ),
    (
        "VGG-19 width 2 for 300 epochs costs too much",
        "/api/jobs",
        {"arch": "vgg", "depth": 19, "width": 2, "epochs": 300},
        ["body"],
        ["estimated cost 1.2e+15", "1e+15", "PROXNS_MAX_COST", "300 epochs", "50,000 training images"],
    ),
    (
        "train_subset 10**9",
        "/api/jobs",
        {**TINY_JOB, "train_subset": 10**9},
        ["body", "train_subset"],
        ["1000000000", "100000", "PROXNS_MAX_TRAIN_SUBSET"],
    ),
    (
        "test_subset 10**6",
        "/api/jobs",
        {**TINY_JOB, "test_subset": 10**6},
        ["body", "test_subset"],
        ["PROXNS_MAX_TEST_SUBSET"],
    ),
    (
        "batch 4096",
        "/api/jobs",
        {**TINY_JOB, "batch_size": 4096},
        ["body", "batch_size"],
        ["1024", "PROXNS_MAX_BATCH_SIZE"],
    ),
    (
        "data_root outside the data roots",
        "/api/jobs",
        {**TINY_JOB, "data_root": "/etc"},
        ["body", "data_root"],
        ["PROXNS_DATA_ROOTS"],
    ),
    (
        "data_root escaping with ..",
        "/api/jobs",
        {**TINY_JOB, "data_root": "data/../.."},
        ["body", "data_root"],
        ["PROXNS_DATA_ROOTS"],
    ),
    (
        "data_root of 5000 characters",
        "/api/jobs",
        {**TINY_JOB, "data_root": "d" * 5000},
        ["body", "data_root"],
        ["4096"],
    ),
    (
        "fp16 on the cpu",
        "/api/jobs",
        {**TINY_JOB, "device": "cpu", "precision": "fp16"},
        ["body", "precision"],
        ["needs a CUDA device", "fp32 or bf16"],
    ),
    (
        "CUDA graphs on the cpu",
        "/api/jobs",
        {**TINY_JOB, "device": "cpu", "cuda_graphs": True},
        ["body", "cuda_graphs"],
        ["needs a CUDA device"],
    ),
    (
        "an unknown precision",
        "/api/jobs",
        {**TINY_JOB, "precision": "fp8"},
        ["body", "precision"],
        ["'fp32'", "'bf16'", "'fp16'"],
    ),
    (
        "densenet-4801 as an experiment's base",
        "/api/experiments",
        {"name": "x", "base": {"arch": "densenet", "depth": 4801}, "sweep": {"seed": [0, 1]}},
        ["body", "base", "depth"],
        ["PROXNS_MAX_DEPTH_DENSENET"],
    ),
]


@pytest.mark.parametrize(
    ("what", "path", "body", "loc", "words"), BAD_REQUESTS, ids=[b[0] for b in BAD_REQUESTS]
)
def test_bad_request_answers_422_naming_the_field_and_creates_no_job(
    api: TestClient, what: str, path: str, body: dict | str | bytes, loc: list[str], words: list[str]
) -> None:
    if isinstance(body, dict):
        response = api.post(path, json=body)
    else:  # sent as it is: Python's json reads NaN, Infinity and lone surrogates
        response = api.post(path, content=body, headers={"content-type": "application/json"})
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
    assert set(datasets) == {"cifar10", "cifar100", "svhn", "digits", "synthetic", "imagefolder"}
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
    with api_client(settings) as client:
        response = client.get("/healthz")
        assert response.status_code == 503
        assert response.json() == {"status": "degraded", "database": "ok", "broker": "error"}


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
    with api_client(settings) as client:
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


# --------------------------------------------------------------------------- issue 9: bad input, limits


def client_with(tmp_path: Path, **settings: object) -> TestClient:
    """A client of an app whose settings differ from the embedded defaults by ``settings``."""
    base = embedded_settings(tmp_path)
    return api_client(base.model_copy(update=settings))


BAD_URLS = [
    # (method, url, loc)
    ("GET", "/api/jobs/0", ["path", "job_id"]),
    ("GET", "/api/jobs/-1", ["path", "job_id"]),
    ("GET", f"/api/jobs/{2**31}", ["path", "job_id"]),
    ("GET", f"/api/jobs/{2**64}/metrics", ["path", "job_id"]),
    ("GET", "/api/jobs/99999999999999999999999999999999/artifacts", ["path", "job_id"]),
    ("POST", f"/api/jobs/{2**63}/cancel", ["path", "job_id"]),
    ("GET", "/api/jobs/1/artifacts/slim%00.onnx", ["path", "name"]),
    ("GET", f"/api/experiments/{2**32}", ["path", "experiment_id"]),
    ("GET", f"/api/jobs?offset={2**31}", ["query", "offset"]),
    ("GET", f"/api/jobs?offset={2**64}", ["query", "offset"]),
    ("GET", f"/api/jobs?experiment_id={2**63}", ["query", "experiment_id"]),
    ("GET", "/api/jobs?experiment_id=0", ["query", "experiment_id"]),
    ("GET", f"/api/jobs?limit={2**64}", ["query", "limit"]),
    ("GET", f"/api/experiments?offset={2**40}", ["query", "offset"]),
    ("GET", "/api/experiments?offset=1e30", ["query", "offset"]),
    ("GET", "/api/jobs?status=queued%00", ["query", "status"]),
]


@pytest.mark.parametrize(("method", "url", "loc"), BAD_URLS, ids=[f"{m} {u}" for m, u, _ in BAD_URLS])
def test_ids_and_offsets_out_of_range_answer_422_naming_the_parameter(
    api: TestClient, method: str, url: str, loc: list[str]
) -> None:
    response = api.request(method, url)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == loc


def test_the_largest_ids_are_merely_unknown(api: TestClient) -> None:
    for url in [f"/api/jobs/{2**31 - 1}", f"/api/jobs/{2**31 - 1}/metrics", f"/api/experiments/{2**31 - 1}"]:
        assert api.get(url).status_code == 404, url
    assert api.get("/api/jobs", params={"offset": 2**31 - 1}).json()["items"] == []


def test_a_lone_surrogate_creates_nothing_and_every_page_still_answers(api: TestClient) -> None:
    body = '{"dataset": "digits", "arch": "vgg", "depth": 11, "width": 0.125, "data_root": "\\ud800"}'
    response = api.post("/api/jobs", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert api.get("/api/jobs").json()["total"] == 0 and queued_messages(api) == 0
    assert api.get("/api/jobs/1").status_code == 404


def test_bodies_above_the_limit_answer_413_naming_it(tmp_path: Path) -> None:
    with client_with(tmp_path, max_body_bytes=4096) as client:
        big = json.dumps({**TINY_JOB, "data_root": "d" * 5000}).encode()
        response = client.post("/api/jobs", content=big, headers={"content-type": "application/json"})
        assert response.status_code == 413
        assert "4096" in response.json()["detail"] and "PROXNS_MAX_BODY_BYTES" in response.json()["detail"]

        def chunks():  # no Content-Length: counted while reading
            for _ in range(10):
                yield b" " * 1000

        chunked = client.post("/api/jobs", content=chunks(), headers={"content-type": "application/json"})
        assert chunked.status_code == 413
        assert client.post("/api/jobs/1/cancel", content=big).status_code == 413
        assert client.post("/api/jobs", json=TINY_JOB).status_code == 201  # small ones still pass
        assert client.get("/api/jobs").json()["total"] == 1


def test_errors_do_not_echo_large_inputs_nor_server_paths(api: TestClient, tmp_path: Path) -> None:
    body = {"name": "n" * 900_000, "base": TINY_JOB}  # under the 1 MiB body limit, far over 200 characters
    response = api.post("/api/experiments", json=body)
    assert response.status_code == 422 and len(response.content) < 2_000
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", "name"] and len(error["input"]) <= 200
    many = api.post(
        "/api/jobs", json={**TINY_JOB, "lr_milestones": list(range(100)), **{f"x{i}": 1 for i in range(50)}}
    )
    assert many.status_code == 422 and len(many.json()["detail"]) == 21  # 20 listed, then how many more
    assert many.json()["detail"][-1]["type"] == "too_many_errors"

    outside = api.post("/api/jobs", json={**TINY_JOB, "data_root": "data/../../x"})
    meta = api.get("/api/meta")
    for text in (outside.text, meta.text):
        assert str(tmp_path) not in text and str(Path.cwd()) not in text
    cifar = next(d for d in meta.json()["datasets"] if d["name"] == "cifar10")
    assert cifar["reason"].startswith("missing cifar-10-batches-py/")


def test_data_root_must_lie_in_the_configured_roots(tmp_path: Path) -> None:
    root, outside = tmp_path / "datasets", tmp_path / "private"
    (root / "cifar").mkdir(parents=True)
    outside.mkdir()
    (root / "escape").symlink_to(outside)
    with client_with(tmp_path, data_roots=[str(root)]) as client:
        for inside in (str(root), str(root / "cifar"), str(root / "not-yet-there"), f"{outside}/../datasets"):
            response = client.post("/api/jobs", json={**TINY_JOB, "data_root": inside})
            assert response.status_code == 201, (inside, response.text)
        for bad in (str(outside), str(root / "escape"), f"{root}/../private", "relative/to/the/api"):
            response = client.post("/api/jobs", json={**TINY_JOB, "data_root": bad})
            assert response.status_code == 422, bad
            assert response.json()["detail"][0]["loc"] == ["body", "data_root"]


def test_meta_publishes_the_limits(api: TestClient) -> None:
    limits = api.get("/api/meta").json()["limits"]
    assert limits["max_depth_densenet"] == 250 and limits["max_depth_resnet"] == 200
    assert limits["max_epochs"] == 300 and limits["max_cost"] == 1e15 and limits["max_sweep_jobs"] == 256
    assert limits["max_body_bytes"] == 1_048_576 and limits["max_queued_jobs"] == 10_000


def test_the_queue_holds_at_most_max_queued_jobs(tmp_path: Path) -> None:
    with client_with(tmp_path, max_queued_jobs=3) as client:
        ids = [client.post("/api/jobs", json={**TINY_JOB, "seed": i}).json()["id"] for i in range(2)]
        sweep = {"name": "s", "base": TINY_JOB, "sweep": {"seed": [5, 6]}}
        refused = client.post("/api/experiments", json=sweep)
        assert refused.status_code == 429 and "PROXNS_MAX_QUEUED_JOBS" in refused.json()["detail"]
        assert client.post("/api/jobs", json=TINY_JOB).status_code == 201
        assert client.post("/api/jobs", json=TINY_JOB).status_code == 429
        client.post(f"/api/jobs/{ids[0]}/cancel")  # a cancelled job no longer counts
        assert client.post("/api/jobs", json=TINY_JOB).status_code == 201
        assert client.get("/api/experiments").json()["total"] == 0


def test_the_sweep_size_limit_is_a_setting(tmp_path: Path) -> None:
    with client_with(tmp_path, max_sweep_jobs=3) as client:
        body = {"name": "s", "base": TINY_JOB, "sweep": {"seed": [0, 1, 2, 3]}}
        response = client.post("/api/experiments", json=body)
        assert response.status_code == 422 and "PROXNS_MAX_SWEEP_JOBS" in response.json()["detail"][0]["msg"]


def test_rendered_job_pages_are_bounded_in_bytes() -> None:
    from api.routes.jobs import RenderedPages

    pages = RenderedPages(size=100, max_bytes=100)
    for i in range(3):
        pages.put(("page", i), 1, b"x" * 40)
    assert len(pages) == 2 and pages.bytes == 80 and pages.get(("page", 0), 1) is None
    pages.put(("page", 1), 1, b"y" * 90)  # replaces its old body; the oldest other page goes
    assert len(pages) == 1 and pages.bytes == 90
    pages.put(("huge",), 1, b"z" * 101)  # served, never kept
    assert pages.get(("huge",), 1) is None and pages.bytes == 90


def test_openapi_lists_the_errors_of_each_route(api: TestClient) -> None:
    paths = api.get("/openapi.json").json()["paths"]
    # A submission never answers 503: with the broker down the job is kept and delivered later.
    posts = {"200", "201", "401", "409", "413", "415", "422", "429"}
    assert set(paths["/api/jobs"]["post"]["responses"]) == posts
    assert set(paths["/api/experiments"]["post"]["responses"]) == posts
    assert {"404", "409", "422"} <= set(paths["/api/jobs/{job_id}/cancel"]["post"]["responses"])
    for path in ["/api/jobs/{job_id}", "/api/jobs/{job_id}/metrics", "/api/jobs/{job_id}/artifacts/{name}"]:
        assert {"401", "404", "422"} <= set(paths[path]["get"]["responses"])
    error = paths["/api/jobs/{job_id}"]["get"]["responses"]["404"]["content"]["application/json"]["schema"]
    assert error == {"$ref": "#/components/schemas/ErrorOut"}
    (header,) = [p for p in paths["/api/jobs"]["post"]["parameters"] if p["in"] == "header"]
    assert header["name"] == "Idempotency-Key"


# --------------------------------------------------------------------------- idempotent submission


def test_the_same_idempotency_key_twice_creates_one_job(api: TestClient) -> None:
    key = {"Idempotency-Key": "3f1c9a4e-retry-me"}
    first = api.post("/api/jobs", json=TINY_JOB, headers=key)
    second = api.post("/api/jobs", json=TINY_JOB, headers=key)
    assert first.status_code == 201 and second.status_code == 200
    assert second.headers["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first.headers
    assert second.json()["id"] == first.json()["id"] and second.json()["config"] == first.json()["config"]
    assert api.get("/api/jobs").json()["total"] == 1 and queued_messages(api) == 1

    other = api.post("/api/jobs", json={**TINY_JOB, "seed": 7}, headers=key)
    assert other.status_code == 422
    assert other.json()["detail"][0]["loc"] == ["header", "Idempotency-Key"]
    assert "different request" in other.json()["detail"][0]["msg"]
    # Keys are scoped to the path: the same key on /api/experiments is another key.
    exp = {"name": "e", "base": TINY_JOB, "sweep": {"seed": [0, 1]}}
    made = api.post("/api/experiments", json=exp, headers=key)
    again = api.post("/api/experiments", json=exp, headers=key)
    assert (made.status_code, again.status_code) == (201, 200) and made.json()["id"] == again.json()["id"]
    assert [j["id"] for j in again.json()["jobs"]] == [j["id"] for j in made.json()["jobs"]]
    assert api.get("/api/jobs").json()["total"] == 3 and api.get("/api/experiments").json()["total"] == 1
    # Without a key, every request creates.
    assert api.post("/api/jobs", json=TINY_JOB).json()["id"] != first.json()["id"]


def test_idempotency_keys_expire_and_refused_requests_do_not_use_them_up(tmp_path: Path) -> None:
    with client_with(tmp_path, idempotency_ttl_hours=1e-9) as client:
        key = {"Idempotency-Key": "k"}
        ids = {client.post("/api/jobs", json=TINY_JOB, headers=key).json()["id"] for _ in range(2)}
        assert len(ids) == 2  # the first key had expired
    with client_with(tmp_path / "b", max_queued_jobs=1) as client:
        key = {"Idempotency-Key": "k2"}
        client.post("/api/jobs", json=TINY_JOB)
        assert client.post("/api/jobs", json={**TINY_JOB, "seed": 1}, headers=key).status_code == 429
        client.post("/api/jobs/1/cancel")
        assert client.post("/api/jobs", json={**TINY_JOB, "seed": 1}, headers=key).status_code == 201
    with client_with(tmp_path / "c") as client:
        for bad in ["", "x" * 201, "two words"]:
            response = client.post("/api/jobs", json=TINY_JOB, headers={"Idempotency-Key": bad})
            assert response.status_code == 422, bad
            assert response.json()["detail"][0]["loc"] == ["header", "Idempotency-Key"]


def test_api_processes_keep_the_garbage_collector_out_of_the_latency_tail(api: TestClient) -> None:
    """The p99 of GET /api/jobs under 50 clients fell from 76-81 ms to 12-16 ms on the 2-core VM once
    start-up objects were frozen and the youngest generation collected every 50,000 allocations."""
    import gc

    assert api.get("/healthz").status_code == 200  # the app started (its lifespan ran)
    assert gc.get_threshold()[0] == 50_000
    assert gc.get_freeze_count() > 10_000  # modules, app and routes are out of the collector's sight

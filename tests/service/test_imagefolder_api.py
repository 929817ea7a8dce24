"""``dataset: imagefolder`` through the service (issue 11, item 5): a generated image folder trains as a
job on a real worker (Postgres, Redis, the API over HTTP); a broken folder is refused with 422 saying
where it looked and what it found, before any worker sees it; with no worker registered a folder the
API cannot see is accepted and waits."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from proxns_testkit import (
    TINY_JOB,
    api_client,
    authorize,
    free_port,
    healthy,
    service_env,
    start_api,
    start_worker,
    stop_process,
    wait_for,
)
from proxns_testkit.services import Stack, forget_redis_queue
from store.migrate import upgrade
from store.settings import Settings
from tests.core.test_imagefolder import make_image_folder

JOB = {
    **TINY_JOB,
    "dataset": "imagefolder",
    "arch": "resnet",
    "depth": 11,
    "width": 0.25,
    "epochs": 1,
    "batch_size": 16,
    "device": "cpu",
}
for _field in ("train_subset", "test_subset"):
    JOB.pop(_field, None)


def _broken(root: Path) -> Path:
    (root / "train" / "only").mkdir(parents=True)
    (root / "val" / "only").mkdir(parents=True)
    return root


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("imagefolder_data")
    make_image_folder(root / "colours")
    _broken(root / "broken")
    return root


@pytest.fixture(scope="module")
def live(make_module_db, redis_url: str, data: Path, tmp_path_factory) -> Iterator[Stack]:
    """The API over HTTP and one real worker, both with ``data`` as their data folder."""
    tmp = tmp_path_factory.mktemp("imagefolder_stack")
    database_url = make_module_db
    queue = f"proxns-test-{uuid.uuid4().hex[:8]}"
    env = service_env(
        database_url=database_url,
        broker_url=redis_url,
        queue=queue,
        artifact_dir=str(tmp / "artifacts"),
        data_root=str(data),
    )
    api = start_api(env, free_port_holder := free_port(), tmp / "api.log")
    worker = start_worker(env, tmp / "worker.log")
    client = httpx.Client(base_url=f"http://127.0.0.1:{free_port_holder}", timeout=30)
    authorize(client, database_url)
    try:
        wait_for(lambda: healthy(client), 60, 0.2, "the API to answer /healthz")
        yield Stack(str(client.base_url), database_url, tmp / "artifacts", tmp, client)
    finally:
        client.close()
        stop_process(api)
        stop_process(worker)
        forget_redis_queue(redis_url, queue)


@pytest.fixture(scope="module")
def make_module_db(postgres_admin_url: str) -> Iterator[str]:
    import psycopg

    name = f"proxns_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = postgres_admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    url = f"{base}/{name}"
    upgrade(url)
    yield url
    with psycopg.connect(postgres_admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_an_image_folder_job_trains_on_a_real_worker_at_its_input_size(live: Stack, data: Path) -> None:
    body = {**JOB, "data_root": str(data / "colours"), "input_size": 24}
    created = live.client.post("/api/jobs", json=body)
    assert created.status_code == 201, created.text
    job = created.json()
    assert job["config"]["input_size"] == 24 and job["config"]["dataset"] == "imagefolder"
    done = live.wait_status(job["id"], {"succeeded", "failed", "cancelled"}, timeout=300)
    assert done["status"] == "succeeded", done["error"]
    assert done["result"]["flops_full"] > 0
    meta = live.client.get(f"/api/jobs/{job['id']}/artifacts/slim.json").json()
    assert meta["input_size"] == 24 and meta["classes"] == ["blue", "green", "red"]


def test_a_broken_folder_is_refused_with_422_saying_where_it_looked(live: Stack, data: Path) -> None:
    broken = data / "broken"
    response = live.client.post("/api/jobs", json={**JOB, "data_root": str(broken), "input_size": 24})
    assert response.status_code == 422, response.text
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", "data_root"]
    assert f"looked in {broken / 'train'}: found 1 class folder" in error["msg"]
    # A sweep is refused the same way, at its base; an input_size above the server's bound too.
    response = live.client.post(
        "/api/experiments",
        json={"name": "s", "base": {**JOB, "data_root": str(broken)}, "sweep": {"lam": [0.01, 0.02]}},
    )
    assert response.status_code == 422 and response.json()["detail"][0]["loc"] == [
        "body",
        "base",
        "data_root",
    ]
    response = live.client.post(
        "/api/jobs", json={**JOB, "data_root": str(data / "colours"), "input_size": 600}
    )
    assert response.status_code == 422 and "PROXNS_MAX_INPUT_SIZE" in response.text
    datasets = {d["name"]: d for d in live.client.get("/api/meta").json()["datasets"]}
    # the default data folder holds colours/ and broken/, not train/ and val/: said without a server path
    assert not datasets["imagefolder"]["available"]
    assert str(data) not in datasets["imagefolder"]["reason"]


def test_without_a_worker_a_folder_the_api_cannot_see_waits(
    make_postgres_db, redis_url: str, redis_queue: str, tmp_path: Path
) -> None:
    url = make_postgres_db()
    upgrade(url)
    data_root = tmp_path / "data"
    data_root.mkdir()
    settings = Settings(
        database_url=url,
        broker_url=redis_url,
        queue=redis_queue,
        artifact_dir=str(tmp_path / "artifacts"),
        data_root=str(data_root),
        frontend_dir=str(tmp_path / "no-frontend"),
        fleet_cache_seconds=0,
    )
    client: TestClient
    with api_client(settings) as client:
        elsewhere = client.post("/api/jobs", json={**JOB, "data_root": str(data_root / "on-the-gpu-hosts")})
        assert elsewhere.status_code == 201, elsewhere.text
        assert elsewhere.json()["waiting_reason"].startswith("no worker is registered yet")
        _broken(data_root / "here")
        broken = client.post("/api/jobs", json={**JOB, "data_root": str(data_root / "here")})
        assert broken.status_code == 422 and "found 1 class folder" in broken.text

"""Workers say what they can run (issue 10, item 5): the workers table, the API's 422s against the live
fleet, the waiting reason without one, /api/meta's fleet, and a real worker registering and leaving.

Real Postgres and Redis, a database and queue of each test's own; API-level tests write worker rows
with the store's own function (what a worker writes), the last test runs a real worker process.
"""

from __future__ import annotations

import signal
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from api.fleet import NO_WORKER
from proxns_core.measure import cpu_name
from proxns_core.spec import DATASET_FILES
from proxns_testkit import TINY_JOB, api_client, service_env, start_worker, stop_process, wait_for
from store import make_engine, make_sessionmaker
from store.fleet import list_workers, register_worker
from store.migrate import upgrade
from store.models import Worker, utcnow
from store.settings import Settings

CPU = {"type": "cpu", "index": None, "name": "Test CPU", "memory_bytes": 8 * 2**30, "bf16": True}
H100 = {"type": "cuda", "index": 0, "name": "NVIDIA H100 80GB HBM3", "memory_bytes": 80 * 2**30, "bf16": True}
T4 = {"type": "cuda", "index": 0, "name": "Tesla T4", "memory_bytes": 15 * 2**30, "bf16": False}


class Fleet:
    """Writes worker rows into a test's database the way worker/fleet.py does."""

    def __init__(self, database_url: str, data_root: Path) -> None:
        self.engine = make_engine(database_url)
        self.sessions = make_sessionmaker(self.engine)
        self.data_root = data_root

    def add(self, name: str, devices: list[dict], datasets: list[str] | None = None) -> str:
        instance = uuid.uuid4().hex
        names = datasets or ["digits", "synthetic"]
        with self.sessions() as s:
            register_worker(
                s,
                instance,
                name=name,
                hostname="host-" + name,
                pid=4242,
                devices=devices,
                datasets=[{"root": str(self.data_root), "default": True, "datasets": names}],
            )
        return instance

    def age(self, instance: str, seconds: float) -> None:
        """Make a worker look last seen ``seconds`` ago (it stopped beating)."""
        with self.sessions() as s:
            s.execute(
                update(Worker)
                .where(Worker.instance == instance)
                .values(last_seen=utcnow() - timedelta(seconds=seconds))
            )
            s.commit()

    def rows(self) -> list[Worker]:
        with self.sessions() as s:
            return list_workers(s)


@pytest.fixture
def stack(
    make_postgres_db, redis_url: str, redis_queue: str, tmp_path: Path
) -> Iterator[tuple[TestClient, Fleet]]:
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
        worker_live_grace=5,
    )
    fleet = Fleet(url, data_root)
    with api_client(settings) as client:
        yield client, fleet
    fleet.engine.dispose()


def refused(client: TestClient, job: dict, path: str = "/api/jobs") -> list[dict]:
    response = client.post(path, json=job)
    assert response.status_code == 422, response.text
    return response.json()["detail"]


def test_cifar10_without_its_files_on_the_fleet_is_refused_naming_the_dataset_and_accepted_once_a_worker_has_it(
    stack,
) -> None:
    client, fleet = stack
    fleet.add("proxns-0@a", [CPU])
    fleet.add("proxns-1@b", [CPU])
    cifar = {**TINY_JOB, "dataset": "cifar10"}
    (error,) = refused(client, cifar)
    assert error["loc"] == ["body", "dataset"]
    assert error["type"] == "no_worker_can_run"
    assert error["msg"].startswith(
        "dataset 'cifar10' is not on any live worker: workers offer digits, synthetic"
    )
    assert error["input"] == "cifar10"
    # A sweep of such configs is refused the same way, at its base.
    (error,) = refused(
        client, {"name": "s", "base": cifar, "sweep": {"lam": [0.01, 0.02]}}, "/api/experiments"
    )
    assert error["loc"] == ["body", "base", "dataset"]
    assert client.get("/api/jobs").json()["total"] == 0
    # With download: true a worker fetches the files itself: any live worker may take it.
    downloading = client.post("/api/jobs", json={**cifar, "download": True})
    assert downloading.status_code == 201, downloading.text
    assert downloading.json()["waiting_reason"] is None
    client.post(f"/api/jobs/{downloading.json()['id']}/cancel")

    fleet.add("proxns-2@c", [CPU], ["digits", "synthetic", "cifar10"])
    created = client.post("/api/jobs", json=cifar)
    assert created.status_code == 201, created.text
    job = created.json()
    assert job["status"] == "queued" and job["config"]["dataset"] == "cifar10"
    assert job["waiting_reason"] is None  # a live worker can run it
    assert client.get(f"/api/jobs/{job['id']}").json()["waiting_reason"] is None
    # Digits and synthetic are on every worker.
    assert client.post("/api/jobs", json={**TINY_JOB, "dataset": "synthetic"}).status_code == 201


def test_cuda_on_a_cpu_only_fleet_is_refused_naming_the_device_and_accepted_once_a_worker_has_a_card(
    stack,
) -> None:
    client, fleet = stack
    fleet.add("proxns-0@a", [CPU])
    fleet.add("proxns-1@b", [CPU])
    (error,) = refused(client, {**TINY_JOB, "device": "cuda"})
    assert error["loc"] == ["body", "device"]
    assert error["msg"] == "device 'cuda' needs a GPU: live workers offer cpu (2 workers)"
    assert refused(client, {**TINY_JOB, "device": "cuda:0"})[0]["loc"] == ["body", "device"]
    assert client.post("/api/jobs", json={**TINY_JOB, "device": "cpu"}).status_code == 201

    fleet.add("proxns-gpu0@g", [CPU, H100])
    job = client.post("/api/jobs", json={**TINY_JOB, "device": "cuda"})
    assert job.status_code == 201, job.text
    assert job.json()["device"] is None and job.json()["waiting_reason"] is None
    assert client.post("/api/jobs", json={**TINY_JOB, "device": "cuda:0"}).status_code == 201
    # cuda:1 needs two cards in one worker: each worker here has at most one.
    (error,) = refused(client, {**TINY_JOB, "device": "cuda:1"})
    assert error["loc"] == ["body", "device"]
    assert error["msg"].startswith(
        "device 'cuda:1' needs 2 GPUs in one worker: live workers offer cpu (3 workers)"
    )
    assert "cuda on 1 worker (at most 1 card each: NVIDIA H100 80GB HBM3 (bf16) x1)" in error["msg"]


def test_fp16_and_bf16_need_cards_that_have_them(stack) -> None:
    client, fleet = stack
    fleet.add("proxns-0@a", [CPU])
    (error,) = refused(client, {**TINY_JOB, "device": "auto", "precision": "fp16"})
    assert error["loc"] == ["body", "precision"]
    assert error["msg"] == "precision 'fp16' needs a CUDA device: live workers offer cpu (1 worker)"
    # bf16 on the CPU, and auto, run anywhere.
    for precision in ("bf16", "auto", "fp32"):
        response = client.post("/api/jobs", json={**TINY_JOB, "device": "auto", "precision": precision})
        assert response.status_code == 201, (precision, response.text)

    fleet.add("proxns-gpu0@t4", [CPU, T4])
    assert (
        client.post("/api/jobs", json={**TINY_JOB, "device": "auto", "precision": "fp16"}).status_code == 201
    )
    (error,) = refused(client, {**TINY_JOB, "device": "cuda", "precision": "bf16"})
    assert error["loc"] == ["body", "precision"]
    assert error["msg"].startswith("precision 'bf16' on device cuda needs a card with bf16: ")
    assert "Tesla T4 x1" in error["msg"]
    fleet.add("proxns-gpu0@h100", [CPU, H100])
    assert (
        client.post("/api/jobs", json={**TINY_JOB, "device": "cuda", "precision": "bf16"}).status_code == 201
    )


def test_a_config_whose_parts_live_on_different_workers_is_refused_as_a_whole(stack) -> None:
    client, fleet = stack
    fleet.add("proxns-gpu0@g", [CPU, H100])  # a card, no CIFAR-10
    fleet.add("proxns-0@c", [CPU], ["digits", "synthetic", "cifar10"])  # CIFAR-10, no card
    (error,) = refused(client, {**TINY_JOB, "dataset": "cifar10", "device": "cuda"})
    assert error["loc"] == ["body"]
    assert error["msg"].startswith(
        "no live worker offers device 'cuda', precision 'auto' and dataset 'cifar10' together"
    )
    assert (
        client.post("/api/jobs", json={**TINY_JOB, "dataset": "cifar10", "device": "cpu"}).status_code == 201
    )


def test_with_no_worker_registered_jobs_are_accepted_and_say_why_they_wait(stack) -> None:
    client, fleet = stack
    created = client.post("/api/jobs", json={**TINY_JOB, "dataset": "cifar10", "device": "cuda"})
    assert created.status_code == 201, created.text
    job = created.json()
    assert job["status"] == "queued"
    assert (
        job["waiting_reason"]
        == NO_WORKER
        == ("no worker is registered yet: the job starts once one is (proxns worker)")
    )
    assert client.get(f"/api/jobs/{job['id']}").json()["waiting_reason"] == NO_WORKER
    (listed,) = client.get("/api/jobs").json()["items"]
    assert listed["waiting_reason"] == NO_WORKER
    meta = client.get("/api/meta").json()["fleet"]
    assert (
        meta["live_workers"] == 0 and meta["registered_workers"] == 0 and meta["waiting_reason"] == NO_WORKER
    )

    # A worker registers: the job's reason now says no live worker can run it (no card, no CIFAR-10).
    instance = fleet.add("proxns@a", [CPU])
    reason = client.get(f"/api/jobs/{job['id']}").json()["waiting_reason"]
    assert reason.startswith(
        "no live worker can run it: device 'cuda' needs a GPU: live workers offer cpu (1 worker)"
    )
    # The list page was rendered before the worker came: its arrival bumped the change counter.
    assert client.get("/api/jobs").json()["items"][0]["waiting_reason"] == reason

    # It stops beating: past the grace it is no longer live, and a job is accepted again, waiting.
    fleet.age(instance, 120)
    again = client.post("/api/jobs", json={**TINY_JOB, "dataset": "cifar10"})
    assert again.status_code == 201, again.text
    assert again.json()["waiting_reason"].startswith("no live worker: 1 registered, the last seen 12")
    # A job that is not queued has no waiting reason.
    cancelled = client.post(f"/api/jobs/{again.json()['id']}/cancel").json()
    assert cancelled["status"] == "cancelled" and cancelled["waiting_reason"] is None


def test_meta_lists_the_fleet_its_devices_and_data_sets(stack, tmp_path: Path) -> None:
    client, fleet = stack
    fleet.add("proxns-gpu0@g", [CPU, H100])
    fleet.add("proxns-gpu1@g", [CPU, {**H100, "index": 0}], ["digits", "synthetic", "svhn"])
    gone = fleet.add("proxns@old", [CPU, T4], ["digits", "synthetic", "cifar100"])
    fleet.age(gone, 600)
    response = client.get("/api/meta")
    assert str(tmp_path) not in response.text  # no server paths
    meta = response.json()["fleet"]
    assert meta["live_workers"] == 2 and meta["registered_workers"] == 3
    assert meta["live_grace_seconds"] == 5 and meta["waiting_reason"] is None
    assert meta["device_types"] == ["cpu", "cuda"]
    assert meta["max_cuda_devices"] == 1
    assert meta["datasets"] == ["digits", "svhn", "synthetic"]  # the stale worker's cifar100 is not offered
    cards = [d for d in meta["devices"] if d["type"] == "cuda"]
    assert cards == [
        {
            "type": "cuda",
            "name": "NVIDIA H100 80GB HBM3",
            "memory_bytes": 80 * 2**30,
            "bf16": True,
            "count": 2,
            "workers": 2,
        }
    ]
    assert [d["count"] for d in meta["devices"] if d["type"] == "cpu"] == [2]
    workers = {w["name"]: w for w in meta["workers"]}
    assert set(workers) == {"proxns-gpu0@g", "proxns-gpu1@g", "proxns@old"}
    assert workers["proxns@old"]["live"] is False and workers["proxns-gpu0@g"]["live"] is True
    assert workers["proxns-gpu1@g"]["datasets"] == ["digits", "svhn", "synthetic"]
    assert workers["proxns-gpu0@g"]["devices"][1]["name"] == "NVIDIA H100 80GB HBM3"
    assert (
        workers["proxns-gpu0@g"]["hostname"] == "host-proxns-gpu0@g"
        and workers["proxns-gpu0@g"]["pid"] == 4242
    )


def test_a_real_worker_registers_what_it_has_runs_auto_on_it_and_leaves(
    make_postgres_db, redis_url: str, redis_queue: str, tmp_path: Path
) -> None:
    url = make_postgres_db()
    upgrade(url)
    data_root = tmp_path / "data"
    for name in DATASET_FILES["cifar10"]:  # the files torchvision looks for: enough to be listed
        (data_root / name).parent.mkdir(parents=True, exist_ok=True)
        (data_root / name).write_bytes(b"")
    common = {
        "database_url": url,
        "broker_url": redis_url,
        "queue": redis_queue,
        "artifact_dir": str(tmp_path / "artifacts"),
        "data_root": str(data_root),
    }
    env = service_env(**common, worker_heartbeat_every="0.5")
    settings = Settings(
        **common, frontend_dir=str(tmp_path / "no"), fleet_cache_seconds=0, worker_live_grace=3
    )
    fleet = Fleet(url, data_root)
    worker = start_worker(env, tmp_path / "worker.log")
    try:
        (row,) = wait_for(fleet.rows, 60, 0.2, "the worker to register")
        assert row.pid == worker.pid and row.name.startswith("proxns@")
        assert [d["type"] for d in row.devices] == ["cpu"]  # this machine has no GPU
        assert row.devices[0]["name"] == cpu_name() and row.devices[0]["memory_bytes"] > 2**28
        (root,) = row.datasets
        assert root == {
            "root": str(data_root.resolve()),
            "default": True,
            "datasets": ["cifar10", "digits", "synthetic"],
        }
        first_seen = row.last_seen
        wait_for(lambda: fleet.rows()[0].last_seen > first_seen, 10, 0.2, "a fleet heartbeat")

        with api_client(settings) as client:
            meta = client.get("/api/meta").json()["fleet"]
            assert meta["live_workers"] == 1 and meta["datasets"] == ["cifar10", "digits", "synthetic"]
            assert meta["devices"][0]["name"] == cpu_name()
            assert refused(client, {**TINY_JOB, "device": "cuda"})[0]["loc"] == ["body", "device"]
            assert refused(client, {**TINY_JOB, "dataset": "svhn"})[0]["loc"] == ["body", "dataset"]
            # device auto runs where the worker is, and says so.
            job = client.post("/api/jobs", json={**TINY_JOB, "device": "auto", "epochs": 1}).json()
            assert job["waiting_reason"] is None

            def finished() -> dict | None:
                j = client.get(f"/api/jobs/{job['id']}").json()
                return j if j["status"] in ("succeeded", "failed", "cancelled") else None

            done = wait_for(finished, 120, 0.5, "the job to finish")
            assert done["status"] == "succeeded", done["error"]
            assert done["device"] == "cpu" and done["result"]["device"] == "cpu"
            assert done["result"]["device_name"] == cpu_name()

            # Killed: its row stays but stops counting once older than the grace (3 s).
            worker.send_signal(signal.SIGKILL)
            worker.wait(10)
            wait_for(
                lambda: client.get("/api/meta").json()["fleet"]["live_workers"] == 0, 15, 0.3, "stale row"
            )
            meta = client.get("/api/meta").json()["fleet"]
            assert meta["registered_workers"] == 1 and meta["workers"][0]["live"] is False
            assert meta["waiting_reason"].startswith("no live worker: 1 registered, the last seen ")
            waiting = client.post("/api/jobs", json={**TINY_JOB, "device": "cuda"})
            assert waiting.status_code == 201 and waiting.json()["waiting_reason"].startswith(
                "no live worker"
            )
            client.post(f"/api/jobs/{waiting.json()['id']}/cancel")

        # A worker stopped cleanly deletes its row.
        worker = start_worker(env, tmp_path / "worker2.log")
        wait_for(lambda: len(fleet.rows()) == 2, 60, 0.2, "the second worker to register")
        assert stop_process(worker) == 0
        (left,) = fleet.rows()
        assert left.pid != worker.pid  # only the killed worker's stale row is left
    finally:
        stop_process(worker)
        fleet.engine.dispose()

"""One worker per GPU, proved on the card (issue 10, items 4 and 5). CUDA-marked: skipped without a GPU,
run by benchmarks/gpu_check.sh on a GPU machine.

Nothing but the embedded defaults: SQLite and the filesystem queue in a temp folder (the GPU machine
has no Postgres or Redis), the API in-process, `proxns worker --gpus ...` as a real process tree.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from proxns_testkit import REPO, api_client, embedded_settings, service_env, wait_for
from store import make_engine, make_sessionmaker
from store.fleet import list_workers
from store.models import Worker

pytestmark = pytest.mark.cuda

#: A short job on generated data: a few seconds on a card, long enough for two to overlap.
GPU_JOB = {
    "dataset": "synthetic",
    "arch": "vgg",
    "depth": 11,
    "width": 0.25,
    "method": "proxns",
    "lam": 0.05,
    "epochs": 30,
    "batch_size": 128,
    "train_subset": 2048,
    "test_subset": 256,
}
FINISHED = ("succeeded", "failed", "cancelled")


def cuda_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


class GpuFleet:
    """The in-process API and `proxns worker --gpus GPUS` over one SQLite store and filesystem queue."""

    def __init__(self, tmp: Path, gpus: str) -> None:
        self.settings = embedded_settings(tmp)
        env = service_env(
            database_url=self.settings.database_url,
            broker_url="filesystem://",
            broker_dir=self.settings.broker_dir,
            artifact_dir=self.settings.artifact_dir,
            worker_heartbeat_every="0.5",
            reconcile_every="0.5",
        )
        self.log = tmp / "workers.log"
        cmd = [sys.executable, "-m", "proxns_cli", "worker", "--gpus", gpus]
        with self.log.open("w") as out:
            self.proc = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
        self.engine = make_engine(self.settings.database_url)
        self.sessions = make_sessionmaker(self.engine)

    def rows(self) -> list[Worker]:
        with self.sessions() as s:
            return list_workers(s)

    def wait_registered(self, n: int) -> list[Worker]:
        def ready() -> list[Worker] | None:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"workers exited {self.proc.returncode}:\n{self.log.read_text()[-3000:]}"
                )
            rows = self.rows()
            return rows if len(rows) == n else None

        return wait_for(ready, 120, 0.2, f"{n} GPU worker(s) to register")

    def wait_finished(self, client: TestClient, job_id: int, timeout: float = 180) -> dict:
        def done() -> dict | None:
            job = client.get(f"/api/jobs/{job_id}").json()
            return job if job["status"] in FINISHED else None

        try:
            return wait_for(done, timeout, 0.3, f"job {job_id} to finish")
        except AssertionError:
            print(self.log.read_text()[-5000:])
            raise

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.engine.dispose()


@pytest.fixture
def fleet_factory(tmp_path: Path) -> Iterator:
    made: list[GpuFleet] = []

    def make(gpus: str) -> GpuFleet:
        made.append(GpuFleet(tmp_path, gpus))
        return made[-1]

    yield make
    for fleet in made:
        fleet.stop()


def pid_of(worker_host: str) -> int:
    """``host:pid gpu N`` -> pid."""
    return int(worker_host.split(":", 1)[1].split()[0])


def test_one_gpu_worker_registers_its_card_and_an_auto_job_runs_there(fleet_factory) -> None:
    import torch

    if cuda_count() < 1:
        pytest.skip("needs a CUDA GPU")
    fleet = fleet_factory("0")
    (row,) = fleet.wait_registered(1)
    assert row.name.startswith("proxns-gpu0@")
    cpu, card = row.devices
    assert cpu["type"] == "cpu"
    assert card["type"] == "cuda" and card["index"] == 0
    assert torch.cuda.get_device_name(0) in card["name"]
    assert card["memory_bytes"] == torch.cuda.get_device_properties(0).total_memory > 0
    assert card["bf16"] == torch.cuda.is_bf16_supported(including_emulation=False)

    with api_client(fleet.settings) as client:
        meta = client.get("/api/meta").json()["fleet"]
        assert meta["live_workers"] == 1 and meta["device_types"] == ["cpu", "cuda"]
        assert meta["max_cuda_devices"] == 1
        # The pinned worker sees one card: cuda:1 is refused, naming the device.
        refused = client.post("/api/jobs", json={**GPU_JOB, "device": "cuda:1"})
        assert refused.status_code == 422 and refused.json()["detail"][0]["loc"] == ["body", "device"]
        created = client.post("/api/jobs", json={**GPU_JOB, "device": "auto"})
        assert created.status_code == 201, created.text
        done = fleet.wait_finished(client, created.json()["id"])
    assert done["status"] == "succeeded", done["error"]
    assert done["device"] == "cuda:0"  # the job row names the card it ran on
    assert done["worker_host"].endswith(" gpu 0") and pid_of(done["worker_host"]) == row.pid
    result = done["result"]
    assert result["device"] == "cuda:0"
    assert result["device_name"] == torch.cuda.get_device_name(0)
    assert result["precision"] in ("bf16", "fp32")


def test_two_gpu_workers_run_two_jobs_at_once_each_on_its_card(fleet_factory) -> None:
    import torch

    if cuda_count() < 2:
        pytest.skip(f"needs 2 CUDA GPUs, {cuda_count()} visible")
    fleet = fleet_factory("0,1")
    rows = fleet.wait_registered(2)
    by_gpu = {}
    for row in rows:
        gpu = int(row.name.split("@", 1)[0].removeprefix("proxns-gpu"))
        (card,) = [d for d in row.devices if d["type"] == "cuda"]  # each sees only its own card
        assert card["index"] == 0
        assert card["name"] == torch.cuda.get_device_name(gpu)
        assert card["memory_bytes"] == torch.cuda.get_device_properties(gpu).total_memory
        by_gpu[gpu] = row
    assert sorted(by_gpu) == [0, 1] and by_gpu[0].pid != by_gpu[1].pid

    with api_client(fleet.settings) as client:
        ids = []
        for seed in (0, 1):
            created = client.post("/api/jobs", json={**GPU_JOB, "device": "cuda", "seed": seed})
            assert created.status_code == 201, created.text
            ids.append(created.json()["id"])
        jobs = [fleet.wait_finished(client, job_id) for job_id in ids]
    for job in jobs:
        assert job["status"] == "succeeded", job["error"]
        assert job["result"]["device"] == "cuda:0"  # each process's only card
    # Each job ran in the worker of a different card, on that card.
    gpus = sorted(int(j["worker_host"].rsplit(" gpu ", 1)[1]) for j in jobs)
    assert gpus == [0, 1]
    for job in jobs:
        gpu = int(job["worker_host"].rsplit(" gpu ", 1)[1])
        assert pid_of(job["worker_host"]) == by_gpu[gpu].pid
        assert job["result"]["device_name"] == torch.cuda.get_device_name(gpu)
    # At the same time: the running intervals overlap.
    (s1, f1), (s2, f2) = (
        (datetime.fromisoformat(j["started_at"]), datetime.fromisoformat(j["finished_at"])) for j in jobs
    )
    overlap = (min(f1, f2) - max(s1, s2)).total_seconds()
    assert overlap > 0, (s1, f1, s2, f2)

"""A mixed fleet on one queue: a worker that receives a job it cannot run passes it on, unclaimed, to a
live worker that can; when no live worker can run it, it fails after one claim with the reason.

Real Postgres and Redis (a database and a queue of each test's own) and two real worker processes.
CPU-only here, so the capability that tells the two workers apart is made real this way: one worker
advertises a card without bf16 (``PROXNS_WORKER_DEVICES_OVERRIDE``), so a job in ``bf16`` on device
``auto`` would land on that card and it cannot run it, while the CPU-only worker trains it in bf16 on
its CPU. (Training CIFAR-10 for real is not possible here: marker files are enough to be listed, not
to be loaded.)
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from proxns_core.spec import TrainConfig
from proxns_testkit import TINY_JOB, service_env, start_worker, stop_process, wait_for
from store import Job, make_engine, make_sessionmaker
from store.fleet import list_workers
from store.migrate import upgrade
from store.queries import create_jobs

pytestmark = pytest.mark.integration

CPU = {"type": "cpu", "index": None, "name": "Test CPU", "memory_bytes": 8 * 2**30, "bf16": True}
T4 = {"type": "cuda", "index": 0, "name": "Tesla T4", "memory_bytes": 15 * 2**30, "bf16": False}
#: One epoch on a small synthetic set, in bf16 wherever ``auto`` lands.
BF16 = {
    **TINY_JOB,
    "dataset": "synthetic",
    "epochs": 1,
    "train_subset": 128,
    "test_subset": 64,
    "device": "auto",
    "precision": "bf16",
}
FAST = {
    "heartbeat_every": "0.5",
    "reconcile_every": "0.5",
    "redeliver_grace": "3",
    "publish_timeout": "1",
    "worker_heartbeat_every": "0.5",
    "worker_live_grace": "5",
    "worker_pass_on_delay": "1",
}


class Fleet:
    """Two workers on one queue: ``able`` (this machine's CPU) and ``unable`` (a CPU and a card
    without bf16, advertised), and the test's database."""

    def __init__(self, url: str, tmp: Path, redis_url: str, queue: str) -> None:
        self.engine = make_engine(url)
        self.sessions = make_sessionmaker(self.engine)
        common = {
            "database_url": url,
            "broker_url": redis_url,
            "queue": queue,
            "artifact_dir": str(tmp / "artifacts"),
            "data_root": str(tmp / "data"),
            **FAST,
        }
        (tmp / "data").mkdir()
        self.unable_log, self.able_log = tmp / "unable.log", tmp / "able.log"
        # The unable worker starts first, so that it is registered and consuming when jobs come.
        self.unable = start_worker(
            service_env(**common, worker_devices_override=json.dumps([CPU, T4])), self.unable_log
        )
        wait_for(lambda: len(self.rows()) == 1, 60, 0.2, "the unable worker to register")
        self.able = start_worker(service_env(**common), self.able_log)
        wait_for(lambda: len(self.rows()) == 2, 60, 0.2, "the able worker to register")

    def rows(self) -> list:
        with self.sessions() as s:
            return list_workers(s)

    def submit(self, *configs: dict) -> list[int]:
        """Queued jobs with their outbox rows, as the API stores them (its fleet check bypassed:
        a worker's reconciler publishes them)."""
        with self.sessions() as s:
            return [j.id for j in create_jobs(s, [TrainConfig.model_validate(c) for c in configs])]

    def jobs(self, ids: list[int]) -> list[Job]:
        with self.sessions() as s:
            return list(s.execute(select(Job).where(Job.id.in_(ids)).order_by(Job.id)).scalars())

    def finished(self, ids: list[int]) -> list[Job] | None:
        jobs = self.jobs(ids)
        return jobs if all(j.status in ("succeeded", "failed", "cancelled") for j in jobs) else None

    def close(self) -> None:
        stop_process(self.able)
        stop_process(self.unable)
        self.engine.dispose()


@pytest.fixture
def fleet(make_postgres_db, redis_url: str, redis_queue: str, tmp_path: Path) -> Iterator[Fleet]:
    url = make_postgres_db()
    upgrade(url)
    f = Fleet(url, tmp_path, redis_url, redis_queue)
    try:
        yield f
    finally:
        f.close()


def test_a_job_the_receiving_worker_cannot_run_is_passed_on_and_succeeds_on_the_one_that_can(
    fleet: Fleet,
) -> None:
    # Two jobs while both workers are idle: with prefetch 1 each takes one, so the unable worker
    # surely receives at least one of them.
    ids = fleet.submit(BF16, BF16)
    jobs = wait_for(lambda: fleet.finished(ids), 180, 0.5, "the jobs to finish")
    unable_log = fleet.unable_log.read_text()
    for job in jobs:
        assert job.status == "succeeded", (job.error, unable_log[-3000:])
        assert job.attempts == 1 and job.handbacks == 0  # passing on claims nothing
        assert job.worker_host.endswith(f":{fleet.able.pid}")
        assert job.device == "cpu"
    passed = {int(n) for n in re.findall(r"job (\d+): this worker cannot run it", unable_log)}
    assert passed and passed <= set(ids), unable_log[-3000:]
    assert "precision 'bf16' on device auto needs a card with bf16" in unable_log
    assert "passing it on to a live worker that can (proxns@" in unable_log
    assert "running (attempt" not in unable_log  # it never claimed one


def test_a_job_no_live_worker_can_run_fails_after_one_claim_with_the_reason(fleet: Fleet) -> None:
    (job_id,) = fleet.submit({**BF16, "dataset": "cifar10", "precision": "fp32"})  # no worker has it
    (job,) = wait_for(lambda: fleet.finished([job_id]), 120, 0.5, "the job to fail")
    assert job.status == "failed" and job.attempts == 1
    assert job.error.startswith("DatasetNotFoundError: dataset 'cifar10' not found"), job.error
    logs = fleet.unable_log.read_text() + fleet.able_log.read_text()
    assert f"job {job_id}: this worker cannot run it (dataset 'cifar10' is not on any live worker" in logs
    assert "and no other live worker can: running it here" in logs
    assert "passing it on" not in logs

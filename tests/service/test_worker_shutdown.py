"""A worker stopped with SIGTERM hands its job back; the next worker resumes it from the checkpoint."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from sqlalchemy import select

from api.queue import JobQueue
from proxns_core.spec import TrainConfig
from proxns_testkit import TINY_JOB, service_env, start_worker, stop_process, wait_for
from store import Job, Metric, make_engine, make_sessionmaker
from store.migrate import upgrade
from store.queries import create_jobs, request_cancel
from store.settings import Settings

pytestmark = pytest.mark.integration


def test_sigterm_requeues_the_running_job_and_the_next_worker_resumes_it(
    make_postgres_db, redis_url: str, redis_queue: str, tmp_path: Path
) -> None:
    database_url = make_postgres_db()
    upgrade(database_url)
    settings = Settings(
        database_url=database_url,
        broker_url=redis_url,
        queue=redis_queue,
        artifact_dir=str(tmp_path / "artifacts"),
    )
    env = service_env(
        database_url=settings.database_url,
        broker_url=settings.broker_url,
        queue=settings.queue,
        artifact_dir=settings.artifact_dir,
    )
    engine = make_engine(database_url)
    sessions = make_sessionmaker(engine)
    config = TrainConfig(
        **{**TINY_JOB, "dataset": "synthetic", "epochs": 1000, "train_subset": 128, "test_subset": 64}
    )
    with sessions() as s:
        (job,) = create_jobs(s, [config])
        job_id = job.id
    queue = JobQueue(settings)
    queue.enqueue(job_id)

    def state() -> Job:
        with sessions() as s:
            return s.get(Job, job_id)

    def metrics() -> dict[int, float]:
        with sessions() as s:
            rows = s.execute(select(Metric.epoch, Metric.seconds).where(Metric.job_id == job_id)).all()
            return {epoch: seconds for epoch, seconds in rows}

    first = start_worker(env, tmp_path / "worker1.log")
    try:
        wait_for(lambda: state().epochs_done >= 2, 120, 0.2, "two epochs on the first worker")
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=30) == 0
    finally:
        stop_process(first)
    handed_back = state()
    assert handed_back.status == "queued" and handed_back.attempts == 1
    kept = metrics()
    assert sorted(kept) == list(range(1, handed_back.epochs_done + 1))

    second = start_worker(env, tmp_path / "worker2.log")
    try:
        resumed = wait_for(
            lambda: (j := state()).attempts == 2 and j.epochs_done > handed_back.epochs_done and j,
            120,
            0.2,
            "the second worker to resume the job",
        )
        assert resumed.status == "running"
        after = metrics()
        # Finished epochs were not trained again: their rows are untouched, numbering continues.
        assert {e: after[e] for e in kept} == kept
        assert sorted(after) == list(range(1, len(after) + 1))
        with sessions() as s:
            request_cancel(s, job_id)
        wait_for(lambda: state().status == "cancelled", 10, 0.1, "the resumed job to be cancelled")
    finally:
        stop_process(second)
        queue.close()
        engine.dispose()


# A worker killed mid-job (SIGKILL): its job is taken back by the reconciler once its heartbeat stops and
# resumes from the checkpoint on the next worker — see tests/service/test_faults.py.

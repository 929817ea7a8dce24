"""The Celery app of the workers: one job per process, acknowledged only once it has ended."""

from __future__ import annotations

import logging

from celery.signals import worker_ready
from celery.worker import state as worker_state

from store.db import make_engine, make_sessionmaker
from store.queries import fail_stale_jobs
from store.settings import RUN_JOB_TASK, get_settings
from worker.config import make_celery
from worker.runner import run_job

log = logging.getLogger("proxns.worker")


settings = get_settings()
app = make_celery(settings)
_engine = make_engine(settings.database_url, pool_size=2)
_sessions = make_sessionmaker(_engine)


def shutting_down() -> bool:
    """True once Celery received SIGTERM/SIGINT: the running job is handed back to the queue."""
    # Celery stores the exit code in these flags (0 for a clean warm shutdown): test for "set", not truth.
    return worker_state.should_stop is not None or worker_state.should_terminate not in (None, False)


def _requeue(job_id: int) -> None:
    run_job_task.apply_async(args=[job_id], queue=settings.queue)


@app.task(name=RUN_JOB_TASK, acks_late=True)
def run_job_task(job_id: int) -> str:
    """Run one job through ``proxns_core.fit``; the returned status is only logged."""
    return run_job(job_id, settings, _sessions, shutting_down=shutting_down, requeue=_requeue)


@worker_ready.connect
def _reap_lost_jobs(**_kwargs) -> None:
    with _sessions() as s:
        lost = fail_stale_jobs(s)
    if lost:
        log.warning("marked jobs %s failed: their worker stopped sending heartbeats", lost)

"""The Celery app of the workers: one job per process, acknowledged only once it has ended."""

from __future__ import annotations

import logging
import os
import socket

from celery.signals import worker_ready
from celery.worker import state as worker_state
from sqlalchemy import select
from sqlalchemy.orm import Session

from store.db import make_engine, make_sessionmaker
from store.models import Job
from store.queries import fail_stale_jobs, finish_job
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


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def jobs_of_dead_local_workers(session: Session) -> list[tuple[int, str]]:
    """Running jobs claimed by a worker process on this host that no longer exists."""
    prefix = f"{socket.gethostname()}:"
    rows = session.execute(
        select(Job.id, Job.worker_host).where(Job.status == "running", Job.worker_host.startswith(prefix))
    ).all()
    dead = []
    for job_id, host in rows:
        pid = host[len(prefix) :].split()[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _process_alive(int(pid)):
            dead.append((job_id, host))
    return dead


@worker_ready.connect
def _reap_lost_jobs(**_kwargs) -> None:
    """At start-up, end the jobs whose worker died without a word (killed, out of memory, power loss)."""
    with _sessions() as s:
        for job_id, host in jobs_of_dead_local_workers(s):
            finish_job(s, job_id, "failed", error=f"worker lost: process {host} died while running this job")
            log.warning("job %s failed: its worker %s died", job_id, host)
        lost = fail_stale_jobs(s)
    if lost:
        log.warning("marked jobs %s failed: their worker stopped sending heartbeats", lost)

"""The Celery app of the workers: one job per process, acknowledged only once it has ended.

Each worker process also runs the reconciler (``store.reconciler``) in a thread: it delivers the
outbox, re-delivers queued jobs whose message was lost, and takes back running jobs whose heartbeat
stopped (their worker was killed, ran out of memory, lost power) so that the next worker resumes
them from their checkpoint. Liveness comes from heartbeats, never from process ids.
"""

from __future__ import annotations

import atexit
import logging
import os
import sys

from celery.signals import worker_ready, worker_shutdown
from celery.worker import state as worker_state

from store.db import make_engine, make_sessionmaker
from store.reconciler import Reconciler, dispatch_outbox
from store.search import ENDED, advance_for_job
from store.settings import RUN_JOB_TASK, get_settings
from worker import fleet
from worker.config import make_celery
from worker.runner import abandoned_training_alive, run_job

log = logging.getLogger("proxns.worker")


settings = get_settings()
app = make_celery(settings)
_engine = make_engine(
    settings.database_url,
    pool_size=2,
    connect_timeout=settings.db_connect_timeout,
    statement_timeout_ms=settings.db_statement_timeout_ms,
)
_sessions = make_sessionmaker(_engine)
_reconciler: Reconciler | None = None
# The workers table: this worker's devices and data sets, registered when ready, refreshed, removed at exit.
fleet.connect(_sessions, settings)


def shutting_down() -> bool:
    """True once Celery received SIGTERM/SIGINT: the running job is handed back to the queue."""
    # Celery stores the exit code in these flags (0 for a clean warm shutdown): test for "set", not truth.
    return worker_state.should_stop is not None or worker_state.should_terminate not in (None, False)


def _publish_options() -> dict:
    """Transport options of a publish: with socket timeouts on Redis, so that a hung broker fails the
    publish after ``publish_timeout`` instead of blocking the reconciler thread (the consumer's own
    connection keeps the worker's defaults)."""
    if not settings.broker_url.startswith(("redis://", "rediss://")):
        return {}
    return {"socket_timeout": settings.publish_timeout, "socket_connect_timeout": settings.publish_timeout}


def publish(job_id: int) -> None:
    """Send one job id to the queue (bounded retries and timeouts: a down or hung broker fails fast,
    the outbox keeps it)."""
    with app.connection_for_write(
        transport_options=_publish_options(), connect_timeout=settings.publish_timeout
    ) as conn:
        run_job_task.apply_async(
            args=[job_id],
            queue=settings.queue,
            connection=conn,
            retry=True,
            retry_policy={"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5},
        )


def _deliver_now(_job_id: int) -> None:
    """After a hand-back: publish the outbox at once so that another worker takes the job."""
    try:
        dispatch_outbox(_sessions, publish)
    except Exception as exc:  # noqa: BLE001 - the reconcilers deliver it later
        log.warning("outbox not delivered now (%s); the reconciler will", exc)


@app.task(name=RUN_JOB_TASK, acks_late=True)
def run_job_task(job_id: int) -> str:
    """Run one job through ``proxns_core.fit``; the returned status is only logged."""
    status = run_job(job_id, settings, _sessions, shutting_down=shutting_down, requeue=_deliver_now)
    if status in ENDED:
        _advance_search(job_id)
    return status


def _advance_search(job_id: int) -> None:
    """After a job ended: the next round of its experiment's budget search, published at once (the
    reconciler advances it later when this fails: a crash here cannot stall the search)."""
    try:
        with _sessions() as s:
            created = advance_for_job(s, job_id)
        if created:
            log.info("job %s ended a round of its budget search: created jobs %s", job_id, created)
            dispatch_outbox(_sessions, publish)
    except Exception as exc:  # noqa: BLE001 - the reconciler advances it on its next pass
        log.warning("budget search not advanced after job %s (%s); the reconciler will", job_id, exc)


@worker_ready.connect
def _start_reconciler(**_kwargs) -> None:
    global _reconciler
    _reconciler = Reconciler(_sessions, settings, publish).start()


@worker_shutdown.connect
def _stop_reconciler(sender=None, **_kwargs) -> None:  # noqa: ANN001 - Celery's WorkController
    global _exit_code
    _exit_code = getattr(sender, "exitcode", None) or 0
    if _reconciler is not None:
        _reconciler.stop()


_exit_code = 0


@atexit.register
def _exit_without_the_abandoned_step() -> None:
    """At exit after a job whose step was abandoned (SIGTERM mid-step, ``worker.runner``): the job is
    already back in the queue, so end the process at once instead of letting interpreter shutdown
    race the training thread inside torch. Registered late, so it runs before earlier handlers."""
    if not abandoned_training_alive():
        return
    log.info("exiting without waiting for the abandoned training step")
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(_exit_code)

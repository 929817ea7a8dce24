"""Hand job ids to the workers through the Celery broker; the API never runs training itself."""

from __future__ import annotations

from celery import Celery
from fastapi import HTTPException
from sqlalchemy import delete
from sqlalchemy.orm import Session

from store.models import Experiment, Job
from store.queries import touch_jobs
from store.settings import RUN_JOB_TASK, Settings


class JobQueue:
    """A send-only Celery client for the job queue named in the settings."""

    def __init__(self, settings: Settings) -> None:
        self.queue = settings.queue
        self.app = Celery("proxns-api", broker=settings.broker_url, set_as_current=False)
        self.app.conf.update(
            broker_transport_options=settings.broker_transport_options(),
            broker_connection_timeout=3,
            task_default_queue=settings.queue,
        )

    def enqueue(self, job_id: int) -> None:
        """Publish one job id; raises when the broker cannot be reached after a short retry."""
        self.app.send_task(
            RUN_JOB_TASK,
            args=[job_id],
            queue=self.queue,
            retry=True,
            retry_policy={"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5},
        )

    def ping(self) -> bool:
        """True when the broker accepts a connection."""
        try:
            with self.app.connection_for_write() as conn:
                conn.ensure_connection(max_retries=1, timeout=2)
            return True
        except Exception:  # noqa: BLE001 - any failure means "not reachable" for the health check
            return False

    def close(self) -> None:
        self.app.close()


def enqueue_or_undo(
    session: Session, queue: JobQueue, job_ids: list[int], experiment_id: int | None = None
) -> None:
    """Publish the new jobs; if the broker is down, delete them again and answer 503.

    A rejected request must leave no job behind, so the rows go when their messages cannot be sent
    (a worker that still receives an already-sent id finds no job and skips it).
    """
    try:
        for job_id in job_ids:
            queue.enqueue(job_id)
    except Exception as exc:
        session.execute(delete(Job).where(Job.id.in_(job_ids)))
        if experiment_id is not None:
            session.execute(delete(Experiment).where(Experiment.id == experiment_id))
        session.commit()
        touch_jobs(session)
        raise HTTPException(
            503, f"job queue unavailable ({type(exc).__name__}: {exc}); nothing was created"
        ) from exc

"""Hand job ids to the workers through the Celery broker; the API never runs training itself."""

from __future__ import annotations

from celery import Celery

from store.settings import RUN_JOB_TASK, Settings


class QueueUnavailable(RuntimeError):
    """The broker could not take a message after a short retry."""


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

    def enqueue(self, *job_ids: int) -> None:
        """Publish job ids; raises :class:`QueueUnavailable` when the broker cannot be reached."""
        try:
            for job_id in job_ids:
                self.app.send_task(
                    RUN_JOB_TASK,
                    args=[job_id],
                    queue=self.queue,
                    retry=True,
                    retry_policy={
                        "max_retries": 2,
                        "interval_start": 0,
                        "interval_step": 0.2,
                        "interval_max": 0.5,
                    },
                )
        except Exception as exc:  # noqa: BLE001 - kombu raises many kinds; all mean "not delivered"
            raise QueueUnavailable(f"{type(exc).__name__}: {exc}") from exc

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

"""Hand job ids to the workers through the Celery broker; the API never runs training itself."""

from __future__ import annotations

import concurrent.futures
import logging

from celery import Celery

from store.settings import RUN_JOB_TASK, Settings

log = logging.getLogger("proxns.api")


class QueueUnavailable(RuntimeError):
    """The broker could not take a message after a short retry."""


def broker_options(settings: Settings) -> dict:
    """Transport options with timeouts, so that a down or hanging broker fails a publish quickly."""
    options = dict(settings.broker_transport_options())
    if settings.broker_url.startswith(("redis://", "rediss://")):
        options.setdefault("socket_timeout", settings.publish_timeout)
        options.setdefault("socket_connect_timeout", settings.publish_timeout)
    return options


class JobQueue:
    """A send-only Celery client for the job queue named in the settings."""

    def __init__(self, settings: Settings) -> None:
        self.queue = settings.queue
        self.timeout = settings.publish_timeout
        self.app = Celery("proxns-api", broker=settings.broker_url, set_as_current=False)
        self.app.conf.update(
            broker_transport_options=broker_options(settings),
            broker_connection_timeout=settings.publish_timeout,
            broker_connection_retry=False,
            broker_connection_max_retries=1,
            task_default_queue=settings.queue,
        )
        # Publishes run here, never on the event loop nor for longer than ``timeout`` in a request.
        self._pool = concurrent.futures.ThreadPoolExecutor(4, thread_name_prefix="proxns-publish")

    def publish(self, job_id: int) -> None:
        """Publish one job id; raises :class:`QueueUnavailable` when the broker cannot take it."""
        try:
            self.app.send_task(
                RUN_JOB_TASK,
                args=[job_id],
                queue=self.queue,
                retry=True,
                retry_policy={
                    "max_retries": 1,
                    "interval_start": 0,
                    "interval_step": 0.2,
                    "interval_max": 0.5,
                },
            )
        except Exception as exc:  # noqa: BLE001 - kombu raises many kinds; all mean "not delivered"
            raise QueueUnavailable(f"{type(exc).__name__}: {exc}") from exc

    def enqueue(self, *job_ids: int) -> None:
        """Publish job ids; raises :class:`QueueUnavailable` when the broker cannot be reached."""
        for job_id in job_ids:
            self.publish(job_id)

    def publish_within(self, job_ids: list[int], timeout: float | None = None) -> list[int]:
        """Publish in the queue's threads, waiting at most ``timeout``; returns the ids published.

        An id not published in time is left to the outbox dispatcher (it may still go out: a
        duplicate message is harmless).
        """
        futures = {self._pool.submit(self.publish, j): j for j in job_ids}
        done, _ = concurrent.futures.wait(futures, timeout=self.timeout if timeout is None else timeout)
        sent = []
        for future in done:
            if future.exception() is None:
                sent.append(futures[future])
            else:
                log.warning("job %s not published yet: %s", futures[future], future.exception())
        return sent

    def ping(self) -> bool:
        """True when the broker accepts a connection within a second (one try: a health check that
        waits for a hung broker is no health check)."""
        try:
            with self.app.connection_for_write(connect_timeout=1) as conn:
                conn.ensure_connection(max_retries=0, timeout=1)
            return True
        except Exception:  # noqa: BLE001 - any failure means "not reachable" for the health check
            return False

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self.app.close()

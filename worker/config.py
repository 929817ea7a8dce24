"""Celery configuration of the workers (kept apart from ``worker.app``, which connects on import)."""

from __future__ import annotations

from celery import Celery

from store.settings import Settings


def make_celery(settings: Settings) -> Celery:
    """A Celery app for ``settings``: late acks, prefetch 1, so a lost worker's job is redelivered."""
    app = Celery("proxns", broker=settings.broker_url, set_as_current=True)
    app.conf.update(
        broker_transport_options=settings.broker_transport_options(),
        broker_connection_retry_on_startup=True,
        task_default_queue=settings.queue,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_ignore_result=True,
        worker_prefetch_multiplier=1,
        worker_concurrency=1,
        worker_pool="solo",
        worker_send_task_events=False,
        # The filesystem queue has no broadcast worth having; Redis keeps `celery inspect` working.
        worker_enable_remote_control=not settings.uses_filesystem_broker,
        worker_hijack_root_logger=False,
    )
    return app

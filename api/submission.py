"""Submission: hand the jobs a request created to the workers.

The jobs and their outbox rows are already committed together (``store.queries.create_jobs``), so
a job is never lost: it is published here at once (in the queue's threads, for at most the publish
timeout); when the broker is down or slow the request still answers 201 with the job ``queued``,
and the reconciler's dispatcher delivers it once the broker is back.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from api.queue import JobQueue
from store.models import Job
from store.queries import mark_jobs_delivered


def publish_now(db: Session, queue: JobQueue, jobs: list[Job]) -> list[int]:
    """Try to publish new jobs right away; mark the published ones delivered. Returns their ids."""
    sent = queue.publish_within([j.id for j in jobs])
    if sent:
        try:
            mark_jobs_delivered(db, sent)
            db.commit()
        except Exception:  # noqa: BLE001 - the dispatcher publishes them again: a duplicate is harmless
            db.rollback()
    return sent

"""Submission: hand the jobs a request created to the workers, or take them back."""

from __future__ import annotations

from fastapi import HTTPException
from sqlalchemy.orm import Session

from api.queue import JobQueue, QueueUnavailable
from store.models import Job
from store.queries import delete_jobs


def enqueue_or_undo(db: Session, queue: JobQueue, jobs: list[Job], experiment_id: int | None = None) -> None:
    """Hand new jobs to the workers; if the broker is down, delete them again and answer 503.

    A rejected request must leave no job behind (a worker that still receives an already-sent id
    finds no job and skips it).
    """
    try:
        queue.enqueue(*(j.id for j in jobs))
    except QueueUnavailable as exc:
        delete_jobs(db, [j.id for j in jobs], experiment_id)
        raise HTTPException(503, f"job queue unavailable ({exc}); nothing was created") from exc

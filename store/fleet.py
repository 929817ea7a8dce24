"""The workers table: each worker process registers what it can run and refreshes its row.

Writers are the workers (``worker/fleet.py``); readers the API (``api/fleet.py``). A row's arrival
and departure bump the jobs' change counter, since a queued job's waiting reason (shown in job
lists) depends on them; the refreshes in between do not.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from store.models import Job, Worker, utcnow
from store.queries import add_outbox, commit_jobs


def aware(dt: datetime) -> datetime:
    """SQLite hands back naive datetimes, which were written as UTC."""
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)


def register_worker(
    session: Session,
    instance: str,
    *,
    name: str,
    hostname: str,
    pid: int,
    devices: list[dict[str, Any]],
    datasets: list[dict[str, Any]],
    forget_after: timedelta | None = None,
) -> bool:
    """Insert this worker's row, or refresh it (what it offers, ``last_seen``); True when inserted.

    On insert, rows unseen for ``forget_after`` (workers that died long ago) are deleted too.
    """
    now = utcnow()
    refreshed = session.execute(
        update(Worker)
        .where(Worker.instance == instance)
        .values(devices=devices, datasets=datasets, last_seen=now)
    ).rowcount
    if refreshed:
        session.commit()
        return False
    session.add(
        Worker(
            instance=instance,
            name=name,
            hostname=hostname,
            pid=pid,
            devices=devices,
            datasets=datasets,
            started_at=now,
            last_seen=now,
        )
    )
    if forget_after is not None:
        session.execute(delete(Worker).where(Worker.last_seen < now - forget_after))
    commit_jobs(session)
    return True


def remove_worker(session: Session, instance: str) -> bool:
    """Delete this worker's row (a clean shutdown); True when there was one."""
    gone = session.execute(delete(Worker).where(Worker.instance == instance)).rowcount
    commit_jobs(session)
    return bool(gone)


def list_workers(session: Session) -> list[Worker]:
    """Every registered worker, live or not, by name."""
    return list(session.execute(select(Worker).order_by(Worker.name, Worker.id)).scalars())


def pass_on_job(session: Session, job_id: int) -> bool:
    """Send a job this worker received but cannot run back to the queue, unclaimed: a new outbox row
    (no attempt counted) if it is still queued and not cancel-requested; True when written."""
    job = session.execute(select(Job.status, Job.cancel_requested).where(Job.id == job_id)).one_or_none()
    if job is None or job.status != "queued" or job.cancel_requested:
        session.rollback()
        return False
    add_outbox(session, [job_id])
    session.commit()
    return True

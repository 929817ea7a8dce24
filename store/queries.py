"""Every write to jobs and experiments: the API's (create, undo, cancel) and the worker's (claim,
report, finish).

Every transition is one conditional UPDATE, so two processes racing on a job cannot both win, and
every write ends in :func:`commit_jobs`, which commits and then bumps the jobs' change counter.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from proxns_core.spec import EpochMetrics, TrainConfig
from proxns_core.spec import Result as ResultSpec
from store.models import (
    METRIC_FIELDS,
    RESULT_FIELDS,
    Artifact,
    Experiment,
    Job,
    Metric,
    Result,
    StoreState,
    utcnow,
)

#: A running job whose heartbeat is older than this has lost its worker.
HEARTBEAT_STALE = timedelta(minutes=10)


def commit_jobs(session: Session) -> None:
    """Commit, then bump the jobs' change counter (the one way job changes are committed).

    After, not within: a reader that sees the new value then also sees the change. Postgres uses a
    sequence (no row lock shared by all writers, and never reused after a crash); SQLite, which has
    one writer at a time anyway, a row of ``store_state``.
    """
    session.commit()
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT nextval('jobs_version_seq')"))
    else:
        session.execute(
            update(StoreState).where(StoreState.id == 1).values(jobs_version=StoreState.jobs_version + 1)
        )
    session.commit()


def jobs_version(conn: Session | Connection) -> int:
    """The jobs' change counter: it grows after every committed change to a job."""
    dialect = conn.get_bind().dialect if isinstance(conn, Session) else conn.dialect
    if dialect.name == "postgresql":
        query = text("SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM jobs_version_seq")
        return conn.execute(query).scalar_one()
    return conn.execute(select(StoreState.jobs_version).where(StoreState.id == 1)).scalar_one()


def _finite(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def new_job(config: TrainConfig, experiment_id: int | None = None) -> Job:
    """The row of a queued job for a resolved config (not added to any session)."""
    return Job(
        config=config.model_dump(mode="json"),
        method=config.method,
        experiment_id=experiment_id,
        status="queued",
        cancel_requested=False,
        created_at=utcnow(),
        attempts=0,
        progress=0.0,
        epochs_done=0,
    )


def create_jobs(
    session: Session, configs: Iterable[TrainConfig], experiment_id: int | None = None
) -> list[Job]:
    """Store one queued job per resolved config and commit; returns the new rows (ids set)."""
    jobs = [new_job(c, experiment_id) for c in configs]
    session.add_all(jobs)
    commit_jobs(session)
    return jobs


def create_experiment(
    session: Session, name: str, base: dict[str, Any], sweep: dict[str, Any], configs: Iterable[TrainConfig]
) -> tuple[Experiment, list[Job]]:
    """Store an experiment and its queued jobs in one transaction."""
    exp = Experiment(name=name, base=base, sweep=sweep, created_at=utcnow())
    session.add(exp)
    session.flush()
    jobs = [new_job(c, exp.id) for c in configs]
    session.add_all(jobs)
    commit_jobs(session)
    return exp, jobs


def delete_jobs(session: Session, job_ids: list[int], experiment_id: int | None = None) -> None:
    """Delete jobs (and their experiment) that were created but could not be handed to a worker."""
    session.execute(delete(Job).where(Job.id.in_(job_ids)))
    if experiment_id is not None:
        session.execute(delete(Experiment).where(Experiment.id == experiment_id))
    commit_jobs(session)


def claim_job(session: Session, job_id: int, host: str, device: str) -> bool:
    """Mark a queued job (or a running one whose worker died) running on this worker; False if taken."""
    now = utcnow()
    stale = or_(Job.heartbeat_at.is_(None), Job.heartbeat_at < now - HEARTBEAT_STALE)
    stmt = (
        update(Job)
        .where(Job.id == job_id, or_(Job.status == "queued", and_(Job.status == "running", stale)))
        .values(
            status="running",
            started_at=func.coalesce(Job.started_at, now),
            heartbeat_at=now,
            attempts=Job.attempts + 1,
            worker_host=host,
            device=device,
            error=None,
        )
    )
    claimed = session.execute(stmt).rowcount == 1
    commit_jobs(session)
    return claimed


def report_progress(
    session: Session, job_id: int, progress: float, eta_seconds: float | None, epochs_done: int | None = None
) -> None:
    """Store progress (0..1), ETA and the heartbeat of a running job."""
    values: dict[str, Any] = {"progress": progress, "eta_seconds": eta_seconds, "heartbeat_at": utcnow()}
    if epochs_done is not None:
        values["epochs_done"] = epochs_done
    session.execute(update(Job).where(Job.id == job_id, Job.status == "running").values(**values))
    commit_jobs(session)


def upsert_metric(session: Session, job_id: int, m: EpochMetrics) -> None:
    """Write one epoch's metrics; writing the same epoch again replaces it (retries are harmless)."""
    values = {k: _finite(v) for k, v in m.model_dump().items()}  # a diverged run's NaN is stored as NULL
    values["job_id"] = job_id
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    stmt = insert(Metric).values(**values)
    stmt = stmt.on_conflict_do_update(
        index_elements=["job_id", "epoch"],
        set_={k: stmt.excluded[k] for k in METRIC_FIELDS if k != "epoch"},
    )
    session.execute(stmt)
    commit_jobs(session)


def cancel_requested(session: Session, job_id: int) -> bool:
    """True when someone asked to cancel this job (or it is no longer ours to run)."""
    row = session.execute(select(Job.cancel_requested, Job.status).where(Job.id == job_id)).one_or_none()
    return row is None or bool(row.cancel_requested) or row.status != "running"


def request_cancel(session: Session, job_id: int) -> str | None:
    """Cancel a job: queued ends at once, running is flagged for its worker.

    Returns the status the job had, or None when it does not exist. Finished jobs are left alone.
    """
    status = session.execute(select(Job.status).where(Job.id == job_id)).scalar_one_or_none()
    if status == "queued":
        done = session.execute(
            update(Job)
            .where(Job.id == job_id, Job.status == "queued")
            .values(status="cancelled", cancel_requested=True, finished_at=utcnow(), eta_seconds=None)
        ).rowcount
        if not done:  # a worker claimed it in between: fall through to the running case
            status = "running"
    if status == "running":
        session.execute(update(Job).where(Job.id == job_id).values(cancel_requested=True))
    commit_jobs(session)
    return status


def finish_job(
    session: Session, job_id: int, status: str, error: str | None = None, progress: float | None = None
) -> None:
    """End a running job as failed or cancelled (a job already ended by someone else is left alone)."""
    values: dict[str, Any] = {"status": status, "finished_at": utcnow(), "eta_seconds": None, "error": error}
    if progress is not None:
        values["progress"] = progress
    session.execute(update(Job).where(Job.id == job_id, Job.status == "running").values(**values))
    commit_jobs(session)


def requeue_job(session: Session, job_id: int) -> None:
    """Give a running job back to the queue (its worker is shutting down); epochs done are kept."""
    session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == "running")
        .values(status="queued", eta_seconds=None, heartbeat_at=None)
    )
    commit_jobs(session)


def save_result(
    session: Session, job_id: int, result: ResultSpec, artifacts: Iterable[dict[str, Any]]
) -> None:
    """Store a succeeded job's result and artifact records and mark it succeeded, in one transaction."""
    values = result.model_dump(mode="json")
    session.merge(Result(job_id=job_id, **{k: _finite(values[k]) for k in RESULT_FIELDS}))
    for a in artifacts:
        existing = session.execute(
            select(Artifact).where(Artifact.job_id == job_id, Artifact.name == a["name"])
        ).scalar_one_or_none()
        row = existing or Artifact(job_id=job_id, name=a["name"])
        row.format, row.bytes, row.sha256, row.location = a["format"], a["bytes"], a["sha256"], a["path"]
        session.add(row)
    session.execute(
        update(Job)
        .where(Job.id == job_id)
        .values(status="succeeded", finished_at=utcnow(), progress=1.0, eta_seconds=0.0, error=None)
    )
    commit_jobs(session)


def fail_stale_jobs(session: Session) -> list[int]:
    """Mark running jobs whose worker stopped sending heartbeats as failed; returns their ids."""
    cutoff = utcnow() - HEARTBEAT_STALE
    ids = list(
        session.execute(select(Job.id).where(Job.status == "running", Job.heartbeat_at < cutoff)).scalars()
    )
    if ids:
        minutes = int(HEARTBEAT_STALE.total_seconds() // 60)
        session.execute(
            update(Job)
            .where(Job.id.in_(ids), Job.status == "running", Job.heartbeat_at < cutoff)
            .values(
                status="failed",
                finished_at=utcnow(),
                eta_seconds=None,
                error=f"worker lost: no heartbeat for {minutes} minutes",
            )
        )
    commit_jobs(session)
    return ids

"""Every write to jobs and experiments: the API's (create, cancel), the worker's (claim, report,
finish) and the reconciler's (deliver the outbox, re-deliver lost messages, take back lost jobs).

Every transition is one conditional UPDATE, so two processes racing on a job cannot both win (a
cancelled or failed job is never overwritten with ``succeeded``), every change that queues a job
writes its outbox row in the same transaction, and every write ends in :func:`commit_jobs`, which
commits and then bumps the jobs' change counter.
"""

from __future__ import annotations

import logging
import math
import shutil
from collections.abc import Callable, Iterable
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
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
    Outbox,
    Result,
    StoreState,
    utcnow,
)

#: Seconds an outbox row written by the API waits before a dispatcher may publish it: the API
#: publishes it at once itself, and leaves it to the dispatchers only when that fails.
IMMEDIATE_PUBLISH_WINDOW = timedelta(seconds=5)

log = logging.getLogger("proxns.store")


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


def new_job(config: TrainConfig, experiment_id: int | None = None, owner_id: int | None = None) -> Job:
    """The row of a queued job for a resolved config (not added to any session)."""
    return Job(
        owner_id=owner_id,
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


def add_outbox(session: Session, job_ids: Iterable[int], delay: timedelta = timedelta(0)) -> None:
    """Add one outbox row per job to the session's transaction (the caller commits)."""
    now = utcnow()
    session.add_all(
        Outbox(job_id=j, created_at=now, available_at=now + delay, publish_attempts=0) for j in job_ids
    )


def create_jobs(
    session: Session,
    configs: Iterable[TrainConfig],
    experiment_id: int | None = None,
    owner_id: int | None = None,
) -> list[Job]:
    """Store one queued job per resolved config with its outbox row, in one transaction; the jobs
    belong to user ``owner_id`` (None: to no one, only admins see them)."""
    jobs = [new_job(c, experiment_id, owner_id) for c in configs]
    session.add_all(jobs)
    session.flush()
    add_outbox(session, [j.id for j in jobs], IMMEDIATE_PUBLISH_WINDOW)
    commit_jobs(session)
    return jobs


def create_experiment(
    session: Session,
    name: str,
    base: dict[str, Any],
    sweep: dict[str, Any],
    configs: Iterable[TrainConfig],
    owner_id: int | None = None,
    search: dict[str, Any] | None = None,
    search_state: dict[str, Any] | None = None,
) -> tuple[Experiment, list[Job]]:
    """Store an experiment and its queued jobs, owned by user ``owner_id``, in one transaction; with
    ``search`` (a budget search, see ``store.search``) the jobs are its first round."""
    exp = Experiment(name=name, base=base, sweep=sweep, created_at=utcnow(), owner_id=owner_id)
    if search is not None:
        exp.search, exp.search_state, exp.search_round = search, search_state, 1
    session.add(exp)
    session.flush()
    jobs = [new_job(c, exp.id, owner_id) for c in configs]
    session.add_all(jobs)
    session.flush()
    add_outbox(session, [j.id for j in jobs], IMMEDIATE_PUBLISH_WINDOW)
    commit_jobs(session)
    return exp, jobs


def claim_job(session: Session, job_id: int, host: str, device: str) -> bool:
    """Mark a queued, not cancel-requested job running on this worker; False if it is not queued.

    A running job whose worker died is first taken back to ``queued`` by the reconciler
    (:func:`take_back_lost_jobs`), never claimed directly.
    """
    now = utcnow()
    stmt = (
        update(Job)
        .where(Job.id == job_id, Job.status == "queued", Job.cancel_requested.is_(False))
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


def _upsert_metric(session: Session, job_id: int, m: EpochMetrics) -> None:
    values = {k: _finite(v) for k, v in m.model_dump().items()}  # a diverged run's NaN is stored as NULL
    values["job_id"] = job_id
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    stmt = insert(Metric).values(**values)
    stmt = stmt.on_conflict_do_update(
        index_elements=["job_id", "epoch"],
        set_={k: stmt.excluded[k] for k in METRIC_FIELDS if k != "epoch"},
    )
    session.execute(stmt)


def upsert_metric(session: Session, job_id: int, m: EpochMetrics) -> None:
    """Write one epoch's metrics; writing the same epoch again replaces it (retries are harmless)."""
    _upsert_metric(session, job_id, m)
    commit_jobs(session)


def write_metrics(
    session: Session,
    job_id: int,
    rows: Iterable[EpochMetrics],
    truncate_after: int | None = None,
    progress: float | None = None,
    eta_seconds: float | None = None,
) -> bool:
    """Write epoch rows in one transaction; with ``truncate_after`` rows of later epochs are deleted.

    A resumed job writes its checkpoint's whole history with ``truncate_after`` = its last epoch: the
    checkpoint is the truth, so rows a crash left beyond it go and rows it missed come back. The
    job's ``epochs_done`` (and ``progress``) follow the last row written.

    Returns False, writing nothing, when the job no longer exists (deleted while it ran: its rows
    would violate the foreign key, and retrying them would never succeed).
    """
    if not job_exists(session, job_id):
        session.rollback()
        return False
    try:
        _write_metrics(session, job_id, rows, truncate_after, progress, eta_seconds)
    except IntegrityError:
        session.rollback()
        if not job_exists(session, job_id):  # deleted between the check and the write
            session.rollback()
            return False
        raise
    return True


def job_exists(session: Session, job_id: int) -> bool:
    return session.execute(select(Job.id).where(Job.id == job_id)).first() is not None


def _write_metrics(
    session: Session,
    job_id: int,
    rows: Iterable[EpochMetrics],
    truncate_after: int | None,
    progress: float | None,
    eta_seconds: float | None,
) -> None:
    if truncate_after is not None:
        session.execute(delete(Metric).where(Metric.job_id == job_id, Metric.epoch > truncate_after))
    last = None
    for m in rows:
        _upsert_metric(session, job_id, m)
        last = m.epoch
    if last is not None:
        values: dict[str, Any] = {"epochs_done": last, "heartbeat_at": utcnow()}
        if progress is not None:
            values["progress"], values["eta_seconds"] = progress, eta_seconds
        session.execute(update(Job).where(Job.id == job_id, Job.status == "running").values(**values))
    commit_jobs(session)


def heartbeat(
    session: Session, job_id: int, progress: float | None = None, eta_seconds: float | None = None
) -> tuple[str, bool] | None:
    """Refresh a running job's heartbeat (and progress); returns its (status, cancel_requested)."""
    values: dict[str, Any] = {"heartbeat_at": utcnow()}
    if progress is not None:
        values["progress"], values["eta_seconds"] = progress, eta_seconds
    session.execute(update(Job).where(Job.id == job_id, Job.status == "running").values(**values))
    row = session.execute(select(Job.status, Job.cancel_requested).where(Job.id == job_id)).one_or_none()
    commit_jobs(session)
    return None if row is None else (row.status, bool(row.cancel_requested))


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
        session.execute(
            update(Job).where(Job.id == job_id, Job.status == "running").values(cancel_requested=True)
        )
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


def requeue_job(session: Session, job_id: int) -> bool:
    """Give a running job back to the queue (its worker is shutting down); epochs done are kept.

    The try does not count as a failed one (``handbacks``); the outbox row is written in the same
    transaction. A cancel requested meanwhile ends the job ``cancelled`` instead. True if requeued.
    """
    done = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == "running", Job.cancel_requested.is_(False))
        .values(status="queued", eta_seconds=None, heartbeat_at=None, handbacks=Job.handbacks + 1)
    ).rowcount
    if done:
        add_outbox(session, [job_id])
    else:
        session.execute(
            update(Job)
            .where(Job.id == job_id, Job.status == "running")
            .values(status="cancelled", finished_at=utcnow(), eta_seconds=None)
        )
    commit_jobs(session)
    return bool(done)


def save_result(
    session: Session, job_id: int, result: ResultSpec, artifacts: Iterable[dict[str, Any]]
) -> str:
    """Store a succeeded job's result and artifact records and mark it succeeded, in one transaction.

    Only a running job with no cancel request succeeds; one cancelled while it was exporting ends
    ``cancelled`` (no result stored), and one that is no longer running (failed, cancelled, taken back
    by the reconciler) is left alone. Returns the status the job has afterwards.
    """
    done = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == "running", Job.cancel_requested.is_(False))
        .values(status="succeeded", finished_at=utcnow(), progress=1.0, eta_seconds=0.0, error=None)
    ).rowcount
    if not done:
        session.execute(
            update(Job)
            .where(Job.id == job_id, Job.status == "running", Job.cancel_requested.is_(True))
            .values(status="cancelled", finished_at=utcnow(), eta_seconds=None)
        )
        status = session.execute(select(Job.status).where(Job.id == job_id)).scalar_one_or_none()
        commit_jobs(session)
        return status or "deleted"
    values = result.model_dump(mode="json")
    session.merge(Result(job_id=job_id, **{k: _finite(values[k]) for k in RESULT_FIELDS}))
    for a in artifacts:
        existing = session.execute(
            select(Artifact).where(Artifact.job_id == job_id, Artifact.name == a["name"])
        ).scalar_one_or_none()
        row = existing or Artifact(job_id=job_id, name=a["name"])
        row.format, row.bytes, row.sha256, row.location = a["format"], a["bytes"], a["sha256"], a["path"]
        session.add(row)
    commit_jobs(session)
    return "succeeded"


def pending_outbox(session: Session, limit: int = 100) -> list[tuple[int, int]]:
    """(outbox id, job id) of rows due for publishing, oldest first; locked (skipping rows another
    dispatcher holds) until the session's transaction ends on Postgres."""
    stmt = (
        select(Outbox.id, Outbox.job_id)
        .where(Outbox.delivered_at.is_(None), Outbox.available_at <= utcnow())
        .order_by(Outbox.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return [(r.id, r.job_id) for r in session.execute(stmt)]


def mark_delivered(session: Session, outbox_ids: Iterable[int]) -> None:
    """Set ``delivered_at`` on published rows (in the caller's transaction; the caller commits)."""
    _mark_delivered(session, Outbox.id, outbox_ids)


def mark_jobs_delivered(session: Session, job_ids: Iterable[int]) -> None:
    """Set ``delivered_at`` on the pending outbox rows of published jobs: one UPDATE, no read
    first (in the caller's transaction; the caller commits)."""
    _mark_delivered(session, Outbox.job_id, job_ids)


def _mark_delivered(session: Session, column: Any, values: Iterable[int]) -> None:
    ids = list(values)
    if ids:
        session.execute(
            update(Outbox).where(column.in_(ids), Outbox.delivered_at.is_(None)).values(delivered_at=utcnow())
        )


def mark_failed_publish(session: Session, outbox_id: int, error: str, retry_in: timedelta) -> None:
    """Count a failed publish and push the row's next try back."""
    session.execute(
        update(Outbox)
        .where(Outbox.id == outbox_id)
        .values(
            publish_attempts=Outbox.publish_attempts + 1,
            last_error=error[:1000],
            available_at=utcnow() + retry_in,
        )
    )


def redeliver_lost_messages(
    session: Session, live_job_ids: Callable[[], set[int] | None], grace: timedelta
) -> list[int]:
    """Queued jobs with no live message in the broker get a new outbox row; returns their ids.

    A job counts as lost when it is queued, older than ``grace``, has no pending outbox row, no row
    delivered within ``grace`` (a worker may be between taking its message and claiming the job),
    and its id is not among ``live_job_ids()`` (None: the broker could not be read, nothing is
    done). The broker is read only when there is such a candidate.
    """
    cutoff = utcnow() - grace
    recent = (
        select(Outbox.id)
        .where(
            Outbox.job_id == Job.id,
            or_(Outbox.delivered_at.is_(None), Outbox.delivered_at > cutoff),
        )
        .exists()
    )
    candidates = session.execute(
        select(Job.id).where(Job.status == "queued", Job.created_at < cutoff, ~recent)
    ).scalars()
    candidates = list(candidates)
    live = live_job_ids() if candidates else None
    if live is None:
        return []
    lost = [j for j in candidates if j not in live]
    if lost:
        add_outbox(session, lost)
        commit_jobs(session)  # only on a change: every bump makes each API process re-render its pages
    return lost


def take_back_lost_jobs(
    session: Session, timeout: timedelta, max_attempts: int
) -> tuple[list[int], list[int]]:
    """Running jobs whose heartbeat is older than ``timeout`` lost their worker: each goes back to
    ``queued`` with an outbox row (the next worker resumes its checkpoint), or — after
    ``max_attempts`` failed tries, or when a cancel was requested — ends. Returns (requeued, ended)."""
    now = utcnow()
    cutoff = now - timeout
    rows = session.execute(
        select(Job.id, Job.attempts, Job.handbacks, Job.cancel_requested, Job.heartbeat_at).where(
            Job.status == "running", or_(Job.heartbeat_at.is_(None), Job.heartbeat_at < cutoff)
        )
    ).all()
    requeued, ended = [], []
    seconds = int(timeout.total_seconds())
    for row in rows:
        same = and_(
            Job.id == row.id,
            Job.status == "running",
            Job.attempts == row.attempts,
            or_(Job.heartbeat_at.is_(None), Job.heartbeat_at < cutoff),
        )
        failed_tries = row.attempts - row.handbacks
        if row.cancel_requested:
            values: dict[str, Any] = {"status": "cancelled", "finished_at": now, "eta_seconds": None}
        elif failed_tries >= max_attempts:
            values = {
                "status": "failed",
                "finished_at": now,
                "eta_seconds": None,
                "error": f"worker lost: no heartbeat for {seconds} s, {failed_tries} of {max_attempts} tries used",
            }
        else:
            values = {"status": "queued", "eta_seconds": None, "heartbeat_at": None}
        if session.execute(update(Job).where(same).values(**values)).rowcount:
            if values["status"] == "queued":
                add_outbox(session, [row.id])
                requeued.append(row.id)
            else:
                ended.append(row.id)
    if requeued or ended:
        commit_jobs(session)
    return requeued, ended


# --------------------------------------------------------------------------- organising: labels, cancel, delete


def update_labels(session: Session, model: type[Job] | type[Experiment], row_id: int, changes: dict) -> bool:
    """Set tags / note / archived (and an experiment's name) of one job or experiment; False when it
    does not exist. ``archived`` True keeps the first archiving time; False clears it."""
    values = {k: v for k, v in changes.items() if k in ("tags", "note", "name")}
    if "archived" in changes:
        values["archived_at"] = func.coalesce(model.archived_at, utcnow()) if changes["archived"] else None
    if not values:
        return session.execute(select(model.id).where(model.id == row_id)).first() is not None
    done = session.execute(update(model).where(model.id == row_id).values(**values)).rowcount
    commit_jobs(session) if model is Job else session.commit()
    return bool(done)


def cancel_jobs(session: Session, job_ids: Iterable[int]) -> list[int]:
    """Cancel many jobs at once as :func:`request_cancel` cancels one: queued ones end now, running
    ones are flagged for their worker; finished ones are left alone. Returns the ids it cancelled."""
    cancelled = _cancel_rows(session, list(job_ids))
    commit_jobs(session)
    return cancelled


def _cancel_rows(session: Session, ids: list[int]) -> list[int]:
    if not ids:
        return []
    now = utcnow()
    queued = session.execute(
        update(Job)
        .where(Job.id.in_(ids), Job.status == "queued")
        .values(status="cancelled", cancel_requested=True, finished_at=now, eta_seconds=None)
        .returning(Job.id)
    ).scalars()
    cancelled = set(queued)
    # after the queued ones: a job a worker claimed in between is flagged here
    running = session.execute(
        update(Job)
        .where(Job.id.in_(ids), Job.status == "running", Job.cancel_requested.is_(False))
        .values(cancel_requested=True)
        .returning(Job.id)
    ).scalars()
    return sorted(cancelled | set(running))


def cancel_experiment(session: Session, experiment_id: int) -> list[int] | None:
    """Cancel every queued and running job of an experiment, and stop its budget search (status
    ``cancelled``; its round counter moves so that an advance raced by this one is rolled back).
    Returns the ids of the jobs it cancelled, or None when the experiment does not exist."""
    exp = session.execute(
        select(Experiment).where(Experiment.id == experiment_id).with_for_update()
    ).scalar_one_or_none()
    if exp is None:
        session.rollback()
        return None
    if exp.search and (exp.search_state or {}).get("status", "running") == "running":
        state = {
            **(exp.search_state or {}),
            "status": "cancelled",
            "reason": "cancelled: its queued and running jobs were cancelled",
            "updated_at": utcnow().isoformat(),
        }
        session.execute(
            update(Experiment)
            .where(Experiment.id == experiment_id)
            .values(search_state=state, search_round=func.coalesce(Experiment.search_round, 0) + 1)
            .execution_options(synchronize_session=False)
        )
    ids = session.execute(
        select(Job.id).where(Job.experiment_id == experiment_id, Job.status.in_(("queued", "running")))
    ).scalars()
    cancelled = _cancel_rows(session, list(ids))
    commit_jobs(session)  # also when nothing was cancelled: ends the lock and the search update
    return cancelled


def delete_jobs(session: Session, job_ids: Iterable[int], artifact_dir: str | Path) -> list[int]:
    """Delete jobs with everything they own: queued and running ones are cancelled first (a worker
    running one stops at its next heartbeat); then their metrics, results, artifact records, outbox
    rows and the jobs go in one transaction; then each job's folder in the artifact store.

    Returns the ids deleted (those that existed). A folder that cannot be removed is logged, not
    raised: the rows are gone already, and a worker still writing there removes it when it stops.
    """
    ids = sorted(set(job_ids))
    if not ids:
        return []
    cancel_jobs(session, ids)
    deleted, files = _delete_job_rows(session, Job.id.in_(ids))
    commit_jobs(session)
    remove_job_files(artifact_dir, deleted, files)
    return deleted


def delete_experiment(session: Session, experiment_id: int, artifact_dir: str | Path) -> list[int] | None:
    """Delete an experiment: its jobs as :func:`delete_jobs` does, then its row. Returns the ids of
    the jobs deleted, or None when it does not exist."""
    if cancel_experiment(session, experiment_id) is None:
        return None
    # Locked first (Postgres): a budget search advancing meanwhile either committed its jobs before
    # (they are read below and deleted) or finds the experiment gone.
    if (
        session.execute(select(Experiment.id).where(Experiment.id == experiment_id).with_for_update()).first()
        is None
    ):
        session.rollback()
        return None
    deleted, files = _delete_job_rows(session, Job.experiment_id == experiment_id)
    session.execute(delete(Experiment).where(Experiment.id == experiment_id))
    commit_jobs(session)
    remove_job_files(artifact_dir, deleted, files)
    return deleted


def _delete_job_rows(session: Session, which: Any) -> tuple[list[int], list[str]]:
    """Delete the rows of the jobs ``which`` selects and of their children (explicitly: both backends
    alike, whatever their foreign keys cascade); returns their ids and their artifacts' locations.

    The first statement writes, so on SQLite the write lock is held before the ids are read: a job
    added meanwhile is either read and deleted here, or added after this transaction.
    """
    jobs = select(Job.id).where(which).scalar_subquery()
    session.execute(delete(Outbox).where(Outbox.job_id.in_(jobs)))
    ids = sorted(session.execute(select(Job.id).where(which)).scalars())
    if not ids:
        return [], []
    files = list(session.execute(select(Artifact.location).where(Artifact.job_id.in_(ids))).scalars())
    for table in (Metric, Result, Artifact):
        session.execute(delete(table).where(table.job_id.in_(ids)))
    session.execute(delete(Job).where(Job.id.in_(ids)))
    return ids, files


def remove_job_files(artifact_dir: str | Path, job_ids: Iterable[int], locations: Iterable[str] = ()) -> None:
    """Remove each job's folder in the artifact store and any of its artifact files stored elsewhere
    in the store; a missing folder is fine, files outside the store are never touched."""
    root = Path(artifact_dir).resolve()
    for job_id in job_ids:
        _remove(root / str(job_id))
    for location in locations:
        path = (root / location).resolve()
        if path.is_relative_to(root) and path != root and path.is_file():
            _remove(path)


def _remove(path: Path) -> None:
    try:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=False)
        else:
            path.unlink()
    except FileNotFoundError:
        pass  # never written, or removed by the worker meanwhile
    except OSError as exc:
        log.warning("could not remove %s from the artifact store: %s", path, exc)

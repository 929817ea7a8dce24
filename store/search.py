"""Budget searches: an experiment's jobs are rounds of λ chosen by ``proxns_core.search.decide``.

:func:`advance_search` looks at a searching experiment's jobs and, once its round has ended, either
creates the next round's jobs (with their outbox rows, in the same transaction) or records the
outcome (met / closest, the best job, the reason). It is called by the worker after every job it
ends and by the reconciler on every pass, so a crash between a job's end and the advance cannot
stall a search.

Exactly once, however raced: the experiment's row is locked (``SELECT … FOR UPDATE`` on Postgres)
and the advance is a conditional UPDATE of ``search_round`` (``WHERE search_round = <read>``); the
loser of a race (SQLite, or any backend without the lock) matches no row and rolls its jobs back.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from proxns_core.search import Point, SearchSpec, decide, measured
from proxns_core.spec import TrainConfig, method_default
from store.models import Experiment, Job, Result, utcnow
from store.queries import add_outbox, commit_jobs, new_job

#: The result fields a target is measured from.
MEASURED_FIELDS = ("pruned_fraction", "flops_full", "flops_slim")
#: Job statuses that end a job: a round waits for the others.
ENDED = ("succeeded", "failed", "cancelled")

log = logging.getLogger("proxns.search")


def default_lam(base: TrainConfig) -> float:
    """Where the search starts: the base config's λ, else the method's default for its network."""
    if base.lam is not None:
        return float(base.lam)
    return float(method_default("lam", base.method, base.arch) or 1e-4)


def initial_state(spec: SearchSpec, start: float) -> dict[str, Any]:
    return {
        "status": "running",
        "reason": "waiting for the first round",
        "best_job_id": None,
        "best_lam": None,
        "best_value": None,
        "default_lam": start,
        "points": [],
    }


def _points(session: Session, exp: Experiment, spec: SearchSpec) -> tuple[list[Point], list[dict]]:
    rows = session.execute(
        select(Job, Result)
        .outerjoin(Result, Result.job_id == Job.id)
        .where(Job.experiment_id == exp.id)
        .order_by(Job.id)
    ).all()
    shown = [search_point(job, res, spec.target) for job, res in rows]
    points = [Point(p["lam"], p["value"], p["job_id"], p["status"] in ENDED) for p in shown]
    return points, shown


def search_point(job: Job, result: Result | None, target: str) -> dict:
    """One job of a search as reported: its λ, the share it removed (None unless it succeeded), status."""
    value = None
    if job.status == "succeeded" and result is not None:
        value = measured(target, {k: getattr(result, k) for k in MEASURED_FIELDS})
    return {
        "job_id": job.id,
        "lam": float(job.config.get("lam") or 0.0),
        "value": value,
        "status": job.status,
    }


def advance_search(session: Session, experiment_id: int) -> list[int]:
    """Advance one searching experiment (a no-op for others); returns the ids of the jobs it created."""
    exp = session.execute(
        select(Experiment).where(Experiment.id == experiment_id).with_for_update()
    ).scalar_one_or_none()
    if exp is None or not exp.search or (exp.search_state or {}).get("status", "running") != "running":
        session.rollback()
        return []
    spec = SearchSpec.model_validate(exp.search)
    state = dict(exp.search_state or {})
    start = float(state.get("default_lam") or default_lam(TrainConfig.model_validate(exp.base)))
    points, shown = _points(session, exp, spec)
    decision = decide(spec, points, start)
    before = {k: v for k, v in (exp.search_state or {}).items() if k != "updated_at"}
    state.pop("updated_at", None)
    state.update(points=shown, reason=decision.reason, default_lam=start)
    if decision.best is not None:
        state.update(
            best_job_id=decision.best.job_id, best_lam=decision.best.lam, best_value=decision.best.value
        )
    created: list[Job] = []
    if decision.done:
        state["status"] = decision.status
    elif decision.lams:
        configs = [TrainConfig.model_validate({**exp.base, "lam": lam}) for lam in decision.lams]
        created = [new_job(c, exp.id, exp.owner_id) for c in configs]
        session.add_all(created)
        session.flush()
        add_outbox(session, [j.id for j in created])
        state["points"] = shown + [
            {"job_id": j.id, "lam": float(j.config["lam"]), "value": None, "status": "queued"}
            for j in created
        ]
        state["reason"] = f"round {int(exp.search_round or 0) + 1}: trying λ " + ", ".join(
            f"{lam:.4g}" for lam in decision.lams
        )
    elif state == before:  # still waiting, nothing new to record
        session.rollback()
        return []
    state["updated_at"] = utcnow().isoformat()
    round_now = exp.search_round or 0
    done = session.execute(
        update(Experiment)
        .where(Experiment.id == exp.id, Experiment.search_round == round_now)
        .values(search_state=state, search_round=round_now + (1 if created else 0))
        .execution_options(synchronize_session=False)
    ).rowcount
    if not done:  # another process advanced it first
        session.rollback()
        return []
    commit_jobs(session)
    return [j.id for j in created]


def advance_for_job(session: Session, job_id: int) -> list[int]:
    """After job ``job_id`` ended: advance its experiment's search, if it has one."""
    exp_id = session.execute(select(Job.experiment_id).where(Job.id == job_id)).scalar_one_or_none()
    session.rollback()
    return advance_search(session, exp_id) if exp_id is not None else []


def advance_all(session: Session) -> list[int]:
    """Advance every search still running (the reconciler's pass); returns the jobs created."""
    ids = list(
        session.execute(
            select(Experiment.id).where(Experiment.search.is_not(None)).order_by(Experiment.id)
        ).scalars()
    )
    session.rollback()
    created: list[int] = []
    for exp_id in ids:
        exp_state = session.execute(select(Experiment.search_state).where(Experiment.id == exp_id)).scalar()
        session.rollback()
        if (exp_state or {}).get("status", "running") == "running":
            try:
                created += advance_search(session, exp_id)
            except Exception:  # one broken search must not hold back the others or the outbox
                session.rollback()
                log.exception("budget search of experiment %s could not advance", exp_id)
    return created


__all__ = [
    "ENDED",
    "MEASURED_FIELDS",
    "advance_all",
    "advance_for_job",
    "advance_search",
    "default_lam",
    "initial_state",
    "search_point",
]

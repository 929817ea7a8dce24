"""/api/experiments: a base config and sweep lists become one job per combination; or a base config
and a budget (``search``) become rounds of jobs that search λ until one meets it.

Budget search rules: ``search: {target, value, tolerance=0.02, max_jobs=8, parallel=2}`` needs
``base.method`` proxns (422 at ``body.search`` otherwise: NS removes its ``prune_ratio`` share by
construction, baseline removes nothing) and excludes ``sweep`` entirely (422 at ``body.sweep``): the
search chooses λ itself, one experiment per other value. The first round is created here; the next
rounds by the worker that ends a round's last job, or the reconciler (``store.search``).
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from fastapi.responses import JSONResponse
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api.auth import can_see, owned, require_user
from api.deps import get_db, get_queue, get_settings
from api.errors import error_responses
from api.idempotency import idempotency_key_header, idempotent
from api.limits import check_queue_room
from api.queue import JobQueue
from api.schemas import (
    MAX_ID,
    ExperimentCreate,
    ExperimentList,
    ExperimentOut,
    experiment_summary,
    iso,
    job_dict,
    plot_point,
)
from api.submission import check_submission, publish_now
from api.sweep import expand, search_configs
from store.models import Experiment, Job, Result
from store.queries import create_experiment as store_experiment
from store.search import default_lam, initial_state, search_point
from store.settings import Settings
from store.users import Principal

router = APIRouter(prefix="/api/experiments", tags=["experiments"])


def load_experiment(db: Session, experiment_id: int, user: Principal) -> dict:
    exp = db.get(Experiment, experiment_id)
    if exp is None or not can_see(exp.owner_id, user):
        raise HTTPException(404, f"experiment {experiment_id} not found")
    rows = db.execute(
        select(Job, Result)
        .outerjoin(Result, Result.job_id == Job.id)
        .where(Job.experiment_id == experiment_id)
        .order_by(Job.id)
    ).all()
    done = [(r.Job, r.Result) for r in rows if r.Job.status == "succeeded" and r.Result is not None]
    baseline = [res.acc_full for job, res in done if job.method == "baseline"]
    state = None
    if exp.search:
        target = exp.search.get("target", "pruned_fraction")
        state = dict(exp.search_state or {})
        # live: every job of the search, λ → the share it removed
        state["points"] = [search_point(r.Job, r.Result, target) for r in rows]
    return {
        "id": exp.id,
        "name": exp.name,
        "created_at": iso(exp.created_at),
        "base": exp.base,
        "sweep": exp.sweep,
        "search": exp.search or None,
        "search_state": state,
        "tags": list(exp.tags or []),
        "note": exp.note or "",
        "archived_at": iso(exp.archived_at),
        "jobs": [job_dict(r.Job, r.Result) for r in rows],
        "points": [plot_point(job, res) for job, res in done],
        "baseline_acc": sum(baseline) / len(baseline) if baseline else None,
    }


@router.post(
    "",
    status_code=201,
    response_model=ExperimentOut,
    summary="Create an experiment: one job per combination of the sweep lists",
    description="A sweep value applies only to the methods that take its field (``method_fields`` in "
    "GET /api/meta: beta to proxns, prune_ratio to ns, lam not to baseline); combinations resolving to the "
    "same config are created once; at most PROXNS_MAX_SWEEP_JOBS (default 256) combinations, each "
    "within this server's limits (``limits`` in GET /api/meta). With ``search`` (a budget: target "
    "pruned_fraction or flops_fraction, value, tolerance, max_jobs, parallel) instead of sweep lists, the "
    "jobs search λ of a proxns base in rounds of ``parallel`` until one removes value ± tolerance or "
    "max_jobs exist; ``search_state`` reports the outcome (met / closest, best job, reason). A search "
    "with a base method other than proxns is refused at body.search, one with any sweep axis at "
    "body.sweep. With an ``Idempotency-Key`` header, a "
    "repeat of the same request returns the experiment the first one created, with status 200.",
    responses={
        200: {
            "model": ExperimentOut,
            "description": "Repeat of an earlier request with the same Idempotency-Key",
        },
        **error_responses(409, 413, 415, 429),
    },
)
def create_experiment(
    body: ExperimentCreate,
    db: Session = Depends(get_db),
    queue: JobQueue = Depends(get_queue),
    settings: Settings = Depends(get_settings),
    user: Principal = Depends(require_user),
    idempotency_key: str | None = idempotency_key_header(),
) -> JSONResponse:
    search = state = None
    if body.search is not None:
        start = default_lam(body.base)
        configs = search_configs(body, start)
        search, state = body.search.model_dump(mode="json"), initial_state(body.search, start)
    else:
        configs = expand(body, settings.max_sweep_jobs)
    check_submission(configs, db, user, settings, ("body", "base"))
    sweep = body.sweep.model_dump(exclude_none=True)

    def create() -> tuple[int, JSONResponse]:
        check_queue_room(db, settings, len(configs), user.id)
        exp, jobs = store_experiment(
            db, body.name, body.raw_base, sweep, configs, owner_id=user.id, search=search, search_state=state
        )
        publish_now(db, queue, jobs)
        return exp.id, JSONResponse(load_experiment(db, exp.id, user), status_code=201)

    payload = {"name": body.name, "base": body.raw_base, "sweep": sweep}
    if search is not None:
        payload["search"] = search
    replay = lambda exp_id: JSONResponse(load_experiment(db, exp_id, user))  # noqa: E731
    return idempotent(db, settings, "/api/experiments", user.id, idempotency_key, payload, create, replay)


@router.get("", response_model=ExperimentList, summary="List experiments, newest first")
def list_experiments(
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0, le=MAX_ID),
    db: Session = Depends(get_db),
    user: Principal = Depends(require_user),
) -> JSONResponse:
    mine = owned(Experiment.owner_id, user)
    total = db.scalar(select(func.count(Experiment.id)).where(*mine))
    exps = list(
        db.execute(
            select(Experiment).where(*mine).order_by(Experiment.id.desc()).limit(limit).offset(offset)
        ).scalars()
    )
    counts: dict[int, dict[str, int]] = {e.id: {} for e in exps}
    if exps:
        grouped = db.execute(
            select(Job.experiment_id, Job.status, func.count(Job.id))
            .where(Job.experiment_id.in_(list(counts)))
            .group_by(Job.experiment_id, Job.status)
        )
        for exp_id, status, n in grouped:
            counts[exp_id][status] = n
    items = [experiment_summary(e, counts[e.id]) for e in exps]
    return JSONResponse({"items": items, "total": total, "limit": limit, "offset": offset})


@router.get(
    "/{experiment_id}",
    response_model=ExperimentOut,
    summary="An experiment, its jobs and plot points",
    responses=error_responses(404),
)
def get_experiment(
    experiment_id: int = Path(ge=1, le=MAX_ID, description="Experiment id."),
    db: Session = Depends(get_db),
    user: Principal = Depends(require_user),
) -> JSONResponse:
    return JSONResponse(load_experiment(db, experiment_id, user))

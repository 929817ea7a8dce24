"""/api/experiments: a base config and sweep lists become one job per combination; or a base config
and a budget (``search``) become rounds of jobs that search λ until one meets it. Organising: rename,
tag, note and archive (PATCH), delete with the jobs' rows and files (DELETE), cancel every queued and
running job (``/cancel``), add jobs (``/jobs``), and dry runs (``dry_run=true``) that store nothing.

Budget search rules: ``search: {target, value, tolerance=0.02, max_jobs=8, parallel=2}`` needs
``base.method`` proxns (422 at ``body.search`` otherwise: NS removes its ``prune_ratio`` share by
construction, baseline removes nothing) and excludes ``sweep`` entirely (422 at ``body.sweep``): the
search chooses λ itself, one experiment per other value. The first round is created here; the next
rounds by the worker that ends a round's last job, or the reconciler (``store.search``).
"""

from __future__ import annotations

import json
from typing import Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api.auth import can_see, owned, require_user
from api.deps import get_db, get_queue, get_settings
from api.errors import error_responses, validation_response
from api.idempotency import idempotency_key_header, idempotent
from api.limits import check_queue_room
from api.queue import JobQueue
from api.routes.jobs import text_problem
from api.schemas import (
    MAX_ID,
    AddJobs,
    DryRunOut,
    ExperimentCancelled,
    ExperimentCreate,
    ExperimentList,
    ExperimentOut,
    ExperimentPatch,
    JobsAdded,
    experiment_summary,
    iso,
    job_dict,
    plot_point,
)
from api.submission import check_submission, publish_now
from api.sweep import applicable, expansion, search_configs
from proxns_core.spec import TrainConfig
from store.filter import text_search
from store.models import Experiment, Job, Result
from store.queries import cancel_experiment, create_jobs, delete_experiment, update_labels
from store.queries import create_experiment as store_experiment
from store.search import default_lam, initial_state, search_point
from store.settings import Settings
from store.users import Principal

router = APIRouter(prefix="/api/experiments", tags=["experiments"])

#: ``?dry_run=true``: answer what would be created, store nothing.
DryRun = Query(
    False, description="true: store nothing; answer (200) the configs it would create and their count."
)


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
    "GET /api/meta: beta to proxns, prune_ratio to ns, lam not to baseline); ``sweep.by_method`` gives a "
    "method lists of its own (``{ns: {lam: [0.01, 0.02]}, proxns: {lam: [0.25, 0.5, 1]}}``) that replace "
    "the shared list of that field for its combinations; combinations resolving to the "
    "same config are created once; at most PROXNS_MAX_SWEEP_JOBS (default 256) combinations (counted per "
    "method over the lists it takes), each "
    "within this server's limits (``limits`` in GET /api/meta). With ``search`` (a budget: target "
    "pruned_fraction or flops_fraction, value, tolerance, max_jobs, parallel) instead of sweep lists, the "
    "jobs search λ of a proxns base in rounds of ``parallel`` until one removes value ± tolerance or "
    "max_jobs exist; ``search_state`` reports the outcome (met / closest, best job, reason). A search "
    "with a base method other than proxns is refused at body.search, one with any sweep axis at "
    "body.sweep. With ``dry_run=true`` nothing is stored: the answer (200) lists the configs it would "
    "create, with the same 422s as a real submission. With an ``Idempotency-Key`` header, a "
    "repeat of the same request returns the experiment the first one created, with status 200.",
    responses={
        200: {
            "model": ExperimentOut | DryRunOut,
            "description": "A dry run (``dry_run=true``): the jobs it would create; or the repeat of an "
            "earlier request with the same Idempotency-Key: the experiment it created",
        },
        **error_responses(409, 413, 415, 429),
    },
)
def create_experiment(
    body: ExperimentCreate,
    dry_run: bool = DryRun,
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
        combinations = len(configs)
        search, state = body.search.model_dump(mode="json"), initial_state(body.search, start)
    else:
        planned = expansion(body, settings.max_sweep_jobs)
        configs, combinations = planned.configs, planned.combinations
    check_submission(configs, db, user, settings, ("body", "base"))
    if dry_run:
        return JSONResponse(dry_run_answer(configs, combinations - len(configs)))
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


def dry_run_answer(configs: list[TrainConfig], duplicates: int) -> dict:
    by_method: dict[str, int] = {}
    for c in configs:
        by_method[c.method] = by_method.get(c.method, 0) + 1
    return {
        "jobs": [c.model_dump(mode="json") for c in configs],
        "count": len(configs),
        "count_by_method": by_method,
        "skipped_duplicates": duplicates,
    }


@router.get("", response_model=ExperimentList, summary="List experiments, newest first")
def list_experiments(
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0, le=MAX_ID),
    archived: Literal["false", "true", "all"] = Query(
        "false", description="false: hide archived experiments; true: only archived ones; all: both."
    ),
    q: str | None = Query(
        None,
        max_length=200,
        description="Only experiments whose name, note or a tag holds this text (any case).",
    ),
    db: Session = Depends(get_db),
    user: Principal = Depends(require_user),
) -> JSONResponse:
    if q is not None and text_problem(q):
        return validation_response([{"loc": ["query", "q"], "msg": text_problem(q), "type": "value_error"}])
    mine = [*owned(Experiment.owner_id, user), *archive_filter(archived), *text_filter(q)]
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


# --------------------------------------------------------------------------- organising


def archive_filter(archived: str) -> list:
    """``archived`` of a list request (false: hide archived; true: only archived; all) as filters."""
    if archived == "false":
        return [Experiment.archived_at.is_(None)]
    if archived == "true":
        return [Experiment.archived_at.is_not(None)]
    return []


def text_filter(q: str | None) -> list:
    """Experiments whose name, note or one of its tags holds ``q``, in any case (as the jobs list's
    ``q``: one tag element at a time, never the serialised list)."""
    return [text_search(q, Experiment)] if q else []


def visible_experiment(db: Session, experiment_id: int, user: Principal) -> Experiment:
    """The experiment, if ``user`` may see it; else 404 (another user's is not found, never forbidden)."""
    exp = db.get(Experiment, experiment_id)
    if exp is None or not can_see(exp.owner_id, user):
        raise HTTPException(404, f"experiment {experiment_id} not found")
    return exp


ExperimentId = Path(ge=1, le=MAX_ID, description="Experiment id.")


@router.patch(
    "/{experiment_id}",
    response_model=ExperimentOut,
    summary="Rename, tag, note or archive an experiment",
    description="Changes only the fields sent: ``name``, ``tags`` (the whole list; at most 20, each 1 to "
    "40 characters without commas or control characters), ``note`` (at most 10 000 characters), "
    "``archived`` (true hides it from default lists; its jobs are not archived). 422 names the field.",
    responses=error_responses(404, 413, 415),
)
def patch_experiment(
    body: ExperimentPatch,
    experiment_id: int = ExperimentId,
    db: Session = Depends(get_db),
    user: Principal = Depends(require_user),
) -> JSONResponse:
    visible_experiment(db, experiment_id, user)
    db.rollback()
    if not update_labels(db, Experiment, experiment_id, body.changes()):
        raise HTTPException(404, f"experiment {experiment_id} not found")
    return JSONResponse(load_experiment(db, experiment_id, user))


@router.delete(
    "/{experiment_id}",
    status_code=204,
    summary="Delete an experiment, its jobs and their files",
    description="Its queued and running jobs are cancelled first (a budget search stops); then every job "
    "goes as DELETE /api/jobs/{id} removes one, and the experiment with them.",
    responses=error_responses(404),
)
def remove_experiment(
    experiment_id: int = ExperimentId,
    db: Session = Depends(get_db),
    settings: Settings = Depends(get_settings),
    user: Principal = Depends(require_user),
) -> Response:
    visible_experiment(db, experiment_id, user)
    db.rollback()
    if delete_experiment(db, experiment_id, settings.artifact_dir) is None:
        raise HTTPException(404, f"experiment {experiment_id} not found")
    return Response(status_code=204)


@router.post(
    "/{experiment_id}/cancel",
    response_model=ExperimentCancelled,
    summary="Cancel every queued and running job of an experiment",
    description="Queued jobs end at once, running ones within seconds (finished epochs kept); finished "
    "jobs are left alone; a budget search stops (search_state.status ``cancelled``). ``cancelled`` lists "
    "the jobs this cancelled (empty when none was queued or running).",
    responses=error_responses(404, 413, 415),
)
def cancel_experiment_jobs(
    experiment_id: int = ExperimentId,
    db: Session = Depends(get_db),
    user: Principal = Depends(require_user),
) -> JSONResponse:
    visible_experiment(db, experiment_id, user)
    db.rollback()
    cancelled = cancel_experiment(db, experiment_id)
    if cancelled is None:
        raise HTTPException(404, f"experiment {experiment_id} not found")
    return JSONResponse({"cancelled": cancelled, "experiment": load_experiment(db, experiment_id, user)})


@router.post(
    "/{experiment_id}/jobs",
    status_code=201,
    response_model=JobsAdded,
    summary="Add jobs to an experiment",
    description="``sweep`` lists (``by_method`` included) expand as when creating an experiment, over the "
    "experiment's base with the fields of ``base`` (partial) changed; combinations whose config the "
    "experiment already has are skipped (``skipped`` counts them). With ``dry_run=true`` nothing is "
    "stored: the answer (200) lists the configs it would add. A budget search's experiment refuses (409): "
    "its search chooses its jobs.",
    responses={
        200: {"model": DryRunOut, "description": "A dry run: the jobs it would add"},
        **error_responses(404, 409, 413, 415, 429),
    },
)
def add_jobs(
    body: AddJobs,
    experiment_id: int = ExperimentId,
    dry_run: bool = DryRun,
    db: Session = Depends(get_db),
    queue: JobQueue = Depends(get_queue),
    settings: Settings = Depends(get_settings),
    user: Principal = Depends(require_user),
) -> JSONResponse:
    exp = visible_experiment(db, experiment_id, user)
    if exp.search:
        raise HTTPException(
            409,
            f"experiment {experiment_id} is a budget search: it chooses its own jobs; create a new experiment",
        )
    planned = expansion(extended(exp, body), settings.max_sweep_jobs)
    have = {
        _key(c) for c in db.execute(select(Job.config).where(Job.experiment_id == experiment_id)).scalars()
    }
    configs = [c for c in planned.configs if _key(c.model_dump(mode="json")) not in have]
    skipped = len(planned.configs) - len(configs)
    check_submission(configs, db, user, settings, ("body", "base"))
    if dry_run:
        return JSONResponse(dry_run_answer(configs, planned.duplicates + skipped))
    owner = exp.owner_id
    check_queue_room(db, settings, len(configs), owner)  # the jobs are the experiment owner's
    db.rollback()
    try:
        jobs = create_jobs(db, configs, experiment_id=experiment_id, owner_id=owner)
    except IntegrityError:  # the experiment was deleted meanwhile
        db.rollback()
        raise HTTPException(404, f"experiment {experiment_id} not found") from None
    publish_now(db, queue, jobs)
    answer = load_experiment(db, experiment_id, user)
    created = {j.id for j in jobs}
    return JSONResponse(
        {
            "created": [j for j in answer["jobs"] if j["id"] in created],
            "skipped": skipped,
            "experiment": answer,
        },
        status_code=201,
    )


def extended(exp: Experiment, body: AddJobs) -> ExperimentCreate:
    """The experiment as a submission of the added sweep: its base with ``body.base``'s fields changed
    (a new method drops the base's fields it does not take); 422 at ``body.base``/``body.sweep``."""
    stored = dict(exp.base or {})
    if "method" in body.base:
        stored = applicable({**stored, "method": body.base["method"]})
    data = {
        "name": exp.name,
        "base": {**stored, **body.base},
        "sweep": body.sweep.model_dump(exclude_none=True),
    }
    try:
        return ExperimentCreate.model_validate(data)
    except ValidationError as exc:
        raise RequestValidationError(
            [
                {"type": e["type"], "loc": ("body", *e["loc"]), "msg": e["msg"], "input": e.get("input")}
                for e in exc.errors(include_url=False)
            ]
        ) from None


def _key(config: dict) -> str:
    return json.dumps(config, sort_keys=True)

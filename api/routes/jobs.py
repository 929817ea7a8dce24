"""/api/jobs: submit, list, inspect and cancel jobs; their metrics and model files."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import OrderedDict
from pathlib import Path as FilePath
from typing import Any, Literal

import anyio
from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse, Response
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from api.auth import can_see, owned, require_user
from api.deps import get_db, get_queue, get_settings
from api.errors import clean_text, error_responses, validation_response
from api.idempotency import idempotency_key_header, idempotent
from api.limits import check_queue_room
from api.queue import JobQueue
from api.schemas import (
    MAX_ID,
    ArtifactList,
    JobList,
    JobOut,
    MethodName,
    MetricsOut,
    Status,
    artifact_dict,
    job_dict,
    metric_dict,
)
from api.submission import check_submission, publish_now
from proxns_core.spec import ARTIFACT_FORMATS, FINISHED_STATUSES, TrainConfig
from store.filter import MAX_LENGTH as MAX_FILTER_LENGTH
from store.filter import FilterError, has_tag, parse_filter, sort_column, text_search
from store.models import Artifact, Job, Metric, Result
from store.queries import create_jobs, jobs_version, request_cancel
from store.settings import Settings
from store.users import Principal

router = APIRouter(prefix="/api/jobs", tags=["jobs"])


class RenderedPages:
    """Job-list pages one app rendered, each tagged with the ``jobs_version`` it was read at.

    Dashboards poll the same page every few seconds; while no job changed, the page is served from
    here after one tiny query instead of being read and serialised again. ``max_age`` bounds how
    long a page can outlive a change whose counter bump was lost (a writer dying between its commit
    and the bump). At most ``size`` pages and ``max_bytes`` bytes are kept (least recently used
    go first; a page larger than ``max_bytes`` is served but not kept).
    """

    def __init__(self, size: int = 256, max_age: float = 30.0, max_bytes: int = 32 * 2**20) -> None:
        self._pages: OrderedDict[tuple, tuple[int, float, bytes]] = OrderedDict()
        self._size = size
        self._max_bytes = max_bytes
        self._bytes = 0
        self._max_age = max_age
        self._lock = threading.Lock()
        self._rendering: dict[tuple, asyncio.Task] = {}

    def get(self, key: tuple, version: int) -> bytes | None:
        with self._lock:
            hit = self._pages.get(key)
            if hit is None or hit[0] != version or time.monotonic() - hit[1] > self._max_age:
                return None
            self._pages.move_to_end(key)
            return hit[2]

    @property
    def bytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._pages)

    def put(self, key: tuple, version: int, body: bytes) -> None:
        with self._lock:
            old = self._pages.pop(key, None)
            if old is not None:
                self._bytes -= len(old[2])
            if len(body) > self._max_bytes or self._size <= 0:
                return
            self._pages[key] = (version, time.monotonic(), body)
            self._bytes += len(body)
            while len(self._pages) > self._size or self._bytes > self._max_bytes:
                self._bytes -= len(self._pages.popitem(last=False)[1][2])

    async def render_once(self, sessions: sessionmaker[Session], key: tuple, version: int) -> bytes:
        """Render a page that missed; requests that miss the same page at the same version wait for
        one render instead of all rendering it (after each change, every polling client misses)."""
        task = self._rendering.get((key, version))
        if task is None:
            task = asyncio.ensure_future(run_in_threadpool(_render_in_thread, sessions, key))
            self._rendering[(key, version)] = task

            def done(t: asyncio.Task) -> None:
                self._rendering.pop((key, version), None)
                if not t.cancelled() and t.exception() is None:
                    self.put(key, version, t.result())

            task.add_done_callback(done)
        # Shielded: a client that goes away must not cancel the render others are waiting for.
        return await asyncio.shield(task)


#: A job id in a path: a 32-bit id (beyond it 422, an unknown one 404).
JobId = Path(ge=1, le=MAX_ID, description="Job id.")
#: An artifact name in a path: printable, no separators.
ArtifactName = Path(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f/\\]+$")
NOT_FOUND = error_responses(404)


def not_found(job_id: int) -> HTTPException:
    return HTTPException(404, f"job {job_id} not found")


def load_job(db: Session, job_id: int, user: Principal) -> dict:
    row = db.execute(
        select(Job, Result)
        .outerjoin(Result, Result.job_id == Job.id)
        .where(Job.id == job_id, *owned(Job.owner_id, user))
    ).one_or_none()
    if row is None:
        raise not_found(job_id)
    return job_dict(row.Job, row.Result)


def visible_job(db: Session, job_id: int, user: Principal) -> Job:
    """The job, if ``user`` may see it; else 404 (another user's job is not found, never forbidden)."""
    job = db.get(Job, job_id)
    if job is None or not can_see(job.owner_id, user):
        raise not_found(job_id)
    return job


@router.post(
    "",
    status_code=201,
    response_model=JobOut,
    summary="Submit a training job",
    description="422 names each invalid field, and each limit of this server a valid config exceeds "
    "(GET /api/meta lists them under ``limits``). With an ``Idempotency-Key`` header, a repeat of the "
    "same request returns the job the first one created, with status 200.",
    responses={
        200: {"model": JobOut, "description": "Repeat of an earlier request with the same Idempotency-Key"},
        **error_responses(409, 413, 415, 429),
    },
)
def create_job(
    config: TrainConfig,
    db: Session = Depends(get_db),
    queue: JobQueue = Depends(get_queue),
    settings: Settings = Depends(get_settings),
    user: Principal = Depends(require_user),
    idempotency_key: str | None = idempotency_key_header(),
) -> JSONResponse:
    check_submission([config], db, user, settings)

    def create() -> tuple[int, JSONResponse]:
        check_queue_room(db, settings, 1, user.id)
        jobs = create_jobs(db, [config], owner_id=user.id)
        publish_now(db, queue, jobs)
        return jobs[0].id, JSONResponse(job_dict(jobs[0], None), status_code=201)

    payload = config.model_dump(mode="json")
    replay = lambda job_id: JSONResponse(load_job(db, job_id, user))  # noqa: E731
    return idempotent(db, settings, "/api/jobs", user.id, idempotency_key, payload, create, replay)


#: Most ``tag`` parameters one list request may name (a job holds at most 20 tags).
MAX_TAG_PARAMS = 20
#: Longest ``q``.
MAX_Q_LENGTH = 200
#: Longest ``where`` parsed on the event loop (longer ones go to a worker thread).
INLINE_PARSE_CHARS = 200


@router.get(
    "",
    response_model=JobList,
    summary="List jobs: filter, sort, page",
    description="Filters combine with AND. ``where`` is an expression of the filter language over any "
    "job, config, result or derived field (``method = proxns and lam >= 0.1 and acc_slim > 0.95``; "
    "GET /api/meta lists the fields under ``filter``); a bad one is a 422 whose ``ctx`` gives the "
    "0-based ``position`` and ``length`` of the offending part and what was ``expected`` or the "
    "``fields``. ``sort`` names any such field (``-`` prefix: descending; jobs without a value last; "
    "ties newest first). Archived jobs are hidden unless ``archived`` is true or all.",
)
async def list_jobs(
    request: Request,
    status: Status | None = None,
    method: MethodName | None = None,
    experiment_id: int | None = Query(None, ge=1, le=MAX_ID),
    where: str | None = Query(
        None,
        max_length=MAX_FILTER_LENGTH,
        description="Filter expression, e.g. method = proxns and lam >= 0.1.",
    ),
    sort: str = Query("-id", max_length=100, description="A field name; a leading - sorts descending."),
    tag: list[str] = Query([], description="Only jobs with this tag (repeat for several: all of them)."),
    q: str | None = Query(
        None, max_length=MAX_Q_LENGTH, description="Text the note or a tag holds (ignoring case)."
    ),
    archived: Literal["false", "true", "all"] = Query(
        "false", description="false: hide archived jobs; true: only archived ones; all."
    ),
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0, le=MAX_ID),
    user: Principal = Depends(require_user),
) -> Response:
    # Blank means "not given" (a dashboard sends its empty boxes as they are).
    where = where if where and where.strip() else None
    q = q if q and q.strip() else None
    sort = sort.strip() or "-id"
    # Checked before the cache: a bad expression is a 422 however often it is sent. Parsing never
    # touches the database and is cached; a short expression parses in well under a millisecond,
    # a long one (up to ~10 ms at 2000 characters) is parsed off the event loop.
    if where is not None and len(where) > INLINE_PARSE_CHARS:
        problem = await run_in_threadpool(_list_problem, where, sort, tag, q)
    else:
        problem = _list_problem(where, sort, tag, q)
    if problem is not None:
        return problem
    # Pages are per owner (None: an admin's page of every job).
    key = (
        None if user.is_admin else user.id,
        status,
        method,
        experiment_id,
        limit,
        offset,
        where,
        sort,
        tuple(tag),
        q,
        archived,
    )
    # The one-row version read runs off the event loop (a slow database must not stall other
    # requests), shared by every request that arrived before it began (see VersionReader).
    # Read before rendering: a change committed meanwhile can only make the page look stale.
    version = await VersionReader.of(request.app).read()
    pages: RenderedPages = request.app.state.job_pages
    body = pages.get(key, version)
    if body is None:
        body = await pages.render_once(request.app.state.sessionmaker, key, version)
    return Response(body, media_type="application/json")


def _list_problem(where: str | None, sort: str, tags: list[str], q: str | None) -> JSONResponse | None:
    """A 422 for a bad ``where``, ``sort``, ``tag`` or ``q``; None when all are good."""
    try:
        if where is not None:
            parse_filter(where)
    except FilterError as exc:
        return filter_error("where", exc)
    try:
        sort_column(sort)
    except FilterError as exc:
        return filter_error("sort", exc)
    errors = []
    if len(tags) > MAX_TAG_PARAMS:
        errors.append((["query", "tag"], f"at most {MAX_TAG_PARAMS} tags, got {len(tags)}"))
    errors += [(["query", "tag", i], text_problem(t)) for i, t in enumerate(tags) if text_problem(t)]
    if q is not None and text_problem(q):
        errors.append((["query", "q"], text_problem(q)))
    if errors:
        return validation_response([{"loc": loc, "msg": msg, "type": "value_error"} for loc, msg in errors])
    return None


def filter_error(param: str, exc: FilterError) -> JSONResponse:
    """The 422 of a refused filter expression or sort: FastAPI's shape, with ``ctx`` saying where
    (``position``, ``length``) and what could stand there (``expected``) or the ``fields``."""
    detail = {"loc": ["query", param], "msg": clean_text(exc.message), "type": exc.kind, "ctx": exc.ctx()}
    return JSONResponse({"detail": [detail]}, status_code=422)


def text_problem(text: str) -> str | None:
    """Why ``text`` cannot be searched for: control characters (Postgres refuses NUL in text)."""
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        return "must not contain control characters (such as NUL)"
    return None


class VersionReader:
    """The jobs' change counter, read in a worker thread and shared by concurrent requests.

    A request needs a read that *began after it arrived* (else it could be served a page older than
    a change it already saw, e.g. its own submission). Requests that arrive while a read is running
    wait for the next one, which starts as soon as the running one ends and serves all of them: one
    query per round trip instead of one per request, and never a database call on the event loop.
    """

    def __init__(self, engine: Engine) -> None:
        # Autocommit: one round trip per read (no BEGIN before it, no ROLLBACK when it is returned).
        self.engine = engine.execution_options(isolation_level="AUTOCOMMIT")
        self._next: asyncio.Future[int] | None = None  # the read that starts after the running one
        self._task: asyncio.Task | None = None  # the loop running reads while requests wait
        self._limiter = anyio.CapacityLimiter(1)  # not the shared pool sync routes wait for

    @classmethod
    def of(cls, app: Any) -> VersionReader:
        reader = getattr(app.state, "version_reader", None)
        if reader is None:
            reader = app.state.version_reader = cls(app.state.version_engine)
        return reader

    async def read(self) -> int:
        if self._next is None:
            self._next = asyncio.get_running_loop().create_future()
            self._next.add_done_callback(_retrieve)
        future = self._next
        if self._task is None:
            self._task = asyncio.ensure_future(self._run())
        # Shielded: a client that goes away must not cancel a read others wait for.
        return await asyncio.shield(future)

    async def _run(self) -> None:
        try:
            while self._next is not None:
                future, self._next = self._next, None
                try:
                    value = await anyio.to_thread.run_sync(read_version, self.engine, limiter=self._limiter)
                except Exception as exc:  # noqa: BLE001 - handed to the requests that wait for it
                    future.set_exception(exc)
                else:
                    future.set_result(value)
        finally:
            self._task = None


def _retrieve(future: asyncio.Future) -> None:
    if not future.cancelled():
        future.exception()  # retrieved: no "exception was never retrieved" when every waiter left


def read_version(engine: Engine) -> int:
    """The jobs' change counter; a connection the server dropped (restart, killed backend) is
    replaced and the read retried once, since this engine skips the pre-ping."""
    for attempt in (1, 2):
        try:
            with engine.connect() as conn:
                return jobs_version(conn)
        except DBAPIError as exc:
            if attempt == 2 or not exc.connection_invalidated:
                raise
    raise AssertionError("unreachable")


def _render_in_thread(sessions: sessionmaker[Session], key: tuple) -> bytes:
    with sessions() as db:
        return render_job_page(db, *key)


def render_job_page(
    db: Session,
    owner_id: int | None,
    status: str | None,
    method: str | None,
    experiment_id: int | None,
    limit: int,
    offset: int,
    where: str | None = None,
    sort: str = "-id",
    tags: tuple[str, ...] = (),
    q: str | None = None,
    archived: str = "false",
) -> bytes:
    """One page of the job list as JSON; ``owner_id`` None lists every owner's jobs. ``where`` and
    ``sort`` were checked by the route (a :class:`FilterError` here would be a bug)."""
    filters = []
    if owner_id is not None:
        filters.append(Job.owner_id == owner_id)
    if status is not None:
        filters.append(Job.status == status)
    if method is not None:
        filters.append(Job.method == method)
    if experiment_id is not None:
        filters.append(Job.experiment_id == experiment_id)
    if archived == "false":
        filters.append(Job.archived_at.is_(None))
    elif archived == "true":
        filters.append(Job.archived_at.is_not(None))
    filters += [has_tag(t) for t in dict.fromkeys(tags)]
    if q is not None:
        filters.append(text_search(q))
    if where is not None:
        filters.append(parse_filter(where))
    total = db.scalar(
        select(func.count(Job.id)).select_from(Job).outerjoin(Result, Result.job_id == Job.id).where(*filters)
    )
    rows = db.execute(
        select(Job, Result)
        .outerjoin(Result, Result.job_id == Job.id)
        .where(*filters)
        .order_by(*sort_column(sort))
        .limit(limit)
        .offset(offset)
    ).all()
    items = [job_dict(r.Job, r.Result) for r in rows]
    page = {"items": items, "total": total, "limit": limit, "offset": offset}
    return json.dumps(page, separators=(",", ":"), allow_nan=False).encode()


@router.get("/{job_id}", response_model=JobOut, summary="One job with its result", responses=NOT_FOUND)
def get_job(
    job_id: int = JobId, db: Session = Depends(get_db), user: Principal = Depends(require_user)
) -> JSONResponse:
    return JSONResponse(load_job(db, job_id, user))


@router.get(
    "/{job_id}/metrics", response_model=MetricsOut, summary="Per-epoch metrics, by epoch", responses=NOT_FOUND
)
def get_metrics(
    job_id: int = JobId, db: Session = Depends(get_db), user: Principal = Depends(require_user)
) -> JSONResponse:
    visible_job(db, job_id, user)
    rows = db.execute(select(Metric).where(Metric.job_id == job_id).order_by(Metric.epoch)).scalars()
    return JSONResponse({"items": [metric_dict(m) for m in rows]})


@router.post(
    "/{job_id}/cancel",
    response_model=JobOut,
    summary="Cancel a job",
    description="Queued jobs end at once; running ones end as cancelled within seconds, keeping "
    "finished epochs; finished jobs answer 409.",
    responses=error_responses(404, 409, 413, 415),
)
def cancel_job(
    job_id: int = JobId, db: Session = Depends(get_db), user: Principal = Depends(require_user)
) -> JSONResponse:
    visible_job(db, job_id, user)
    db.rollback()  # end the read transaction before the conditional update
    before = request_cancel(db, job_id)
    if before is None:
        raise not_found(job_id)
    if before in FINISHED_STATUSES:
        raise HTTPException(
            409, f"job {job_id} is already {before}; only queued or running jobs can be cancelled"
        )
    return JSONResponse(load_job(db, job_id, user))


@router.get(
    "/{job_id}/artifacts",
    response_model=ArtifactList,
    summary="Model files of a finished job",
    responses=NOT_FOUND,
)
def list_artifacts(
    job_id: int = JobId, db: Session = Depends(get_db), user: Principal = Depends(require_user)
) -> JSONResponse:
    visible_job(db, job_id, user)
    rows = db.execute(select(Artifact).where(Artifact.job_id == job_id).order_by(Artifact.name)).scalars()
    return JSONResponse({"items": [artifact_dict(a) for a in rows]})


@router.get(
    "/{job_id}/artifacts/{name}",
    response_class=FileResponse,
    summary="Download one model file",
    responses={200: {"content": {"application/octet-stream": {}}}, **NOT_FOUND},
)
def download_artifact(
    job_id: int = JobId,
    name: str = ArtifactName,
    db: Session = Depends(get_db),
    settings: Settings = Depends(get_settings),
    user: Principal = Depends(require_user),
) -> FileResponse:
    visible_job(db, job_id, user)
    artifact = db.execute(
        select(Artifact).where(Artifact.job_id == job_id, Artifact.name == name)
    ).scalar_one_or_none()
    if artifact is None:
        raise HTTPException(404, f"artifact {name!r} of job {job_id} not found")
    # Locations are relative to the artifact store so that hosts may mount it at different paths.
    path = FilePath(settings.artifact_dir) / artifact.location
    if not path.is_file():
        raise HTTPException(
            404, f"file of artifact {name!r} of job {job_id} is missing from the artifact store"
        )
    return FileResponse(
        path,
        media_type=ARTIFACT_FORMATS[artifact.format].media_type
        if artifact.format in ARTIFACT_FORMATS
        else "application/octet-stream",
        filename=artifact.name,
    )


# --------------------------------------------------------------------------- organising (PATCH, DELETE)

from api.schemas import Labels  # noqa: E402 - the organising routes' own imports, kept with them
from store.queries import delete_jobs, update_labels  # noqa: E402


@router.patch(
    "/{job_id}",
    response_model=JobOut,
    summary="Tag, note or archive a job",
    description="Changes only the fields sent: ``tags`` (the whole list; at most 20, each 1 to 40 "
    "characters without commas or control characters, duplicates dropped), ``note`` (at most 10 000 "
    "characters), ``archived`` (true hides the job from default lists). 422 names the field.",
    responses=error_responses(404, 413, 415),
)
def patch_job(
    body: Labels,
    job_id: int = JobId,
    db: Session = Depends(get_db),
    user: Principal = Depends(require_user),
) -> JSONResponse:
    visible_job(db, job_id, user)
    db.rollback()  # end the read transaction before the write
    if not update_labels(db, Job, job_id, body.changes()):
        raise not_found(job_id)
    return JSONResponse(load_job(db, job_id, user))


@router.delete(
    "/{job_id}",
    status_code=204,
    summary="Delete a job and its files",
    description="A queued or running job is cancelled first (its worker stops and writes nothing "
    "more); then its metrics, result, model files and the job itself are gone for good.",
    responses=error_responses(404),
)
def delete_job(
    job_id: int = JobId,
    db: Session = Depends(get_db),
    settings: Settings = Depends(get_settings),
    user: Principal = Depends(require_user),
) -> Response:
    visible_job(db, job_id, user)
    db.rollback()
    if not delete_jobs(db, [job_id], settings.artifact_dir):
        raise not_found(job_id)
    return Response(status_code=204)

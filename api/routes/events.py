"""/api/events: job changes and new epochs as server-sent events (see api/events.py)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Annotated

import anyio
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from pydantic import Field
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from sse_starlette import EventSourceResponse

from api.auth import authenticate, owned, require_user
from api.errors import error_responses
from api.events import MAX_JOB_IDS, SEP, EventHub, Subscriber, encode
from api.schemas import MAX_ID
from store.models import Experiment, Job
from store.users import Principal

router = APIRouter(prefix="/api/events", tags=["events"])

#: One ``job_id`` value: a 32-bit id (beyond it 422; an unknown one 404).
JobIdValue = Annotated[int, Field(ge=1, le=MAX_ID)]
#: Milliseconds a client waits before reconnecting after the stream drops (the ``retry:`` field).
RETRY_MS = 3000

DESCRIPTION = f"""A stream of `text/event-stream` messages, each `data:` one JSON object:

- `hello` `{{version}}` first (the jobs' change counter when the stream opened), with `retry: {RETRY_MS}`;
- `job`: a job's full JSON (as `GET /api/jobs/{{id}}`) whenever it changed;
- `epoch`: `{{job_id, ...metrics of one epoch}}` for each new epoch row;
- `deleted`: `{{job_id}}` when a job the stream follows (by id, by experiment, or any of yours) is deleted;
- `dropped`: `{{reason}}`, the last message: the client fell too far behind, its token was revoked, or
  the server is stopping (reconnect and reload);
- a comment line (`: ping`) every 15 s.

Filter by `job_id` (repeatable, at most {MAX_JOB_IDS}) or `experiment_id`, or neither (every job you may
see). An unknown job or experiment, or another user's, is 404 before the stream starts. Browsers: send
the Bearer header with `fetch()` and read the body as a stream (`EventSource` cannot send headers)."""


def hub_of(request: Request) -> EventHub:
    return request.app.state.events


def bad_filter(msg: str, loc: str = "job_id", kind: str = "value_error") -> RequestValidationError:
    return RequestValidationError([{"loc": ("query", loc), "msg": msg, "type": kind, "input": None}])


def check_filter(
    sessions: sessionmaker[Session], user: Principal, job_ids: list[int], experiment_id: int | None
) -> list[int]:
    """404 for a job or experiment the user cannot see; returns the experiment's job ids (to notice
    those deleted later)."""
    with sessions() as db:
        if job_ids:
            found = set(db.scalars(select(Job.id).where(Job.id.in_(job_ids), *owned(Job.owner_id, user))))
            missing = [j for j in job_ids if j not in found]
            if missing:
                raise HTTPException(404, f"job {missing[0]} not found")
        if experiment_id is None:
            return []
        exp = db.scalar(
            select(Experiment.id).where(Experiment.id == experiment_id, *owned(Experiment.owner_id, user))
        )
        if exp is None:
            raise HTTPException(404, f"experiment {experiment_id} not found")
        return list(db.scalars(select(Job.id).where(Job.experiment_id == experiment_id)))


@router.get(
    "",
    summary="Live job changes and new epochs (server-sent events)",
    description=DESCRIPTION,
    response_class=EventSourceResponse,
    responses={200: {"content": {"text/event-stream": {}}}, **error_responses(404)},
)
async def events(
    request: Request,
    job_id: Annotated[list[JobIdValue] | None, Query(description="Follow these jobs (repeatable).")] = None,
    experiment_id: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="Follow this experiment's jobs.")
    ] = None,
    user: Principal = Depends(require_user),
) -> EventSourceResponse:
    job_ids = list(dict.fromkeys(job_id or []))  # repeats once, order kept
    if len(job_ids) > MAX_JOB_IDS:
        raise bad_filter(
            f"at most {MAX_JOB_IDS} job_id values, got {len(job_ids)}; follow an experiment instead"
        )
    if job_ids and experiment_id is not None:
        raise bad_filter("give job_id or experiment_id, not both", "experiment_id")
    hub = hub_of(request)
    members = await run_in_threadpool(
        check_filter, request.app.state.sessionmaker, user, job_ids, experiment_id
    )
    opened: list[Subscriber] = []
    shutdown = anyio.Event()  # set by sse-starlette when the server is stopping

    async def farewell() -> None:
        """On shutdown, end the stream with a last event instead of cutting it mid-response."""
        await shutdown.wait()
        for sub in opened:
            sub.drop("the server is shutting down; reconnect")

    subscription = hub.subscription(user, job_ids or None, experiment_id, members)

    def subscribe() -> Subscriber:
        opened.append(subscription())
        return opened[-1]

    return EventSourceResponse(
        stream(request, hub, subscribe),
        ping=hub.ping_seconds,
        sep=SEP,
        send_timeout=hub.send_timeout,
        headers={"Cache-Control": "no-cache, no-store"},
        data_sender_callable=farewell,
        shutdown_event=shutdown,
        shutdown_grace_period=2.0,
    )


async def stream(request: Request, hub: EventHub, subscription: Callable[[], Subscriber]):
    """``hello`` first, then what the watcher queues, until the client leaves (the response cancels
    this generator) or the subscriber is dropped; either way it is unregistered. The subscriber is
    registered here, when the response starts, so that one whose response never starts is not left
    behind; and before ``hello``, so that nothing a client loads after ``hello`` can be missed.
    Every ``hub.reauth_seconds`` the token is checked again: a revoked one ends the stream."""
    sub = subscription()
    try:
        await hub.ready()
        yield encode("hello", {"version": hub.version}, retry=RETRY_MS)
        check_at = time.monotonic() + hub.reauth_seconds
        while True:
            try:
                message = await asyncio.wait_for(sub.queue.get(), max(0.0, check_at - time.monotonic()))
            except TimeoutError:
                if not await still_signed_in(request):
                    yield encode("dropped", {"reason": "the token was revoked; sign in again"})
                    return
                check_at = time.monotonic() + hub.reauth_seconds
                continue
            if message is None:
                return
            yield message
    finally:
        hub.unsubscribe(sub)


async def still_signed_in(request: Request) -> bool:
    """Whether the stream's token is still valid (a database outage is not a revocation)."""
    try:
        await authenticate(request.app.state, dict(request.scope["headers"]))
    except HTTPException as exc:
        return exc.status_code != 401
    return True

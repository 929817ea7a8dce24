"""Dependencies injected into the routes: a database session per request, the queue, the settings."""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import Depends, Request, params
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session

from api.auth import require_user
from api.queue import JobQueue
from store.settings import Settings

#: Dependencies of every ``/api`` route (``api.main`` includes the routers with them): the user that
#: ``api.auth.Authenticate`` (a middleware: 401 without a valid token, 415 for a non-JSON body)
#: found, so that no route can be added without it, and the Bearer scheme in OpenAPI. Routes that
#: need the user depend on ``require_user`` again (FastAPI runs it once per request).
API_DEPENDENCIES: list[params.Depends] = [Depends(require_user)]


async def get_db(request: Request) -> AsyncIterator[Session]:
    """A session per request. Async on purpose: making a Session does no I/O, and a sync dependency
    would cost two extra thread-pool hops per request; the queries run in the route's thread."""
    session = request.app.state.sessionmaker()
    try:
        yield session
    finally:
        if session.in_transaction():
            # Returning its connection rolls the transaction back: a database round trip, which
            # must not run on the event loop (a route that committed has none left: closed here).
            await run_in_threadpool(session.close)
        else:
            session.close()


async def get_queue(request: Request) -> JobQueue:
    return request.app.state.queue


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings

"""The FastAPI application factory: routes under /api, /healthz, and the dashboard at /."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles
from starlette.middleware.trustedhost import TrustedHostMiddleware

from api.auth import Authenticate, TokenCache
from api.deps import API_DEPENDENCIES
from api.docs import add_offline_docs
from api.errors import error_responses, validation_error_handler
from api.events import EventHub
from api.fleet import FleetCache
from api.limits import UPLOAD_PATHS, RequestLimits
from api.queue import JobQueue
from api.routes import events, experiments, health, jobs, me, meta, weights
from api.routes.jobs import RenderedPages
from api.routes.meta import DatasetStatuses
from store.db import make_engine, make_sessionmaker
from store.reconciler import Reconciler
from store.settings import Settings

#: The dashboard built in ``frontend/`` at the repository root.
FRONTEND_DIR = Path(__file__).resolve().parent.parent / "frontend"


class DashboardFiles(StaticFiles):
    """The dashboard's files, revalidated on every load so a browser never mixes old and new modules."""

    def file_response(self, *args, **kwargs):
        response = super().file_response(*args, **kwargs)
        response.headers["Cache-Control"] = "no-cache"
        return response


def quiet_garbage_collector() -> None:
    """Keep the cyclic garbage collector out of the latency tail.

    Everything imported and built at start-up (modules, the app, routes, schemas) is moved out of
    the collector's sight (``gc.freeze``), and the youngest generation is collected every 50,000
    allocations instead of 700: a request allocates thousands of short-lived objects, and with the
    defaults a full collection over the whole heap landed in one request in a few hundred and
    stalled every other request of that process (the p99 of ``GET /api/jobs``).
    """
    if gc.get_freeze_count() == 0:  # once per process (tests build many apps in one)
        gc.collect()
        gc.freeze()
    gc.set_threshold(50_000, 20, 20)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app for ``settings`` (default: from ``PROXNS_*``). The schema must already be migrated."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Delivers the outbox, re-delivers lost messages, takes back jobs whose worker died.
        reconciler = Reconciler(app.state.sessionmaker, settings, app.state.queue.publish).start()
        quiet_garbage_collector()
        yield
        await app.state.events.close()
        reconciler.stop()
        app.state.queue.close()
        app.state.engine.dispose()
        app.state.version_engine.dispose()

    app = FastAPI(
        title="ProxNS Lab",
        version="0.1.0",
        description="Submit pruning jobs (proximal network slimming), follow them, download slim models.",
        lifespan=lifespan,
        docs_url=None,  # /docs comes from add_offline_docs, with no CDN; no /redoc (needs one)
        redoc_url=None,
    )
    app.state.settings = settings
    timeouts = {
        "connect_timeout": settings.db_connect_timeout,
        "statement_timeout_ms": settings.db_statement_timeout_ms,
    }
    app.state.engine = make_engine(settings.database_url, **timeouts)
    app.state.sessionmaker = make_sessionmaker(app.state.engine)
    # For the jobs' change counter: the job list's reads and the event watcher's (api/events.py).
    # No pre-ping here (a round trip per request): list_jobs retries a dropped connection once.
    app.state.version_engine = make_engine(settings.database_url, pool_size=1, pre_ping=False, **timeouts)
    app.state.queue = JobQueue(settings)
    # Caches belong to the app: two apps in one process (tests, embedding) never share them.
    app.state.job_pages = RenderedPages(size=settings.page_cache_entries, max_bytes=settings.page_cache_bytes)
    app.state.datasets = DatasetStatuses()
    app.state.tokens = TokenCache(settings.token_cache_seconds)
    # The live workers (what they can run), read at most once per fleet_cache_seconds; sessions find it.
    app.state.fleet = FleetCache.attach(app.state.sessionmaker, settings)
    # GET /api/events: one watcher of the jobs per app, fanning changes out to the open streams.
    app.state.events = EventHub(app.state.sessionmaker, app.state.version_engine)

    for module in (jobs, experiments, meta, me, weights, events):
        app.include_router(module.router, dependencies=API_DEPENDENCIES, responses=error_responses(401))
    app.include_router(health.router)
    # 422s name the field without echoing megabytes of input; bodies are bounded before routing.
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    uploads = {path: getattr(settings, setting) for path, setting in UPLOAD_PATHS.items()}
    app.add_middleware(RequestLimits, max_body_bytes=settings.max_body_bytes, upload_bytes=uploads)
    # Before the body is read or checked: an /api request without a valid token gets 401 at once.
    app.add_middleware(Authenticate, fastapi_app=app)
    if settings.cors_origins:  # none by default: a foreign page gets no CORS headers at all
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key"],
        )
    # Outermost: a request naming a host this server does not answer to (DNS rebinding) gets 400.
    hosts = settings.allowed_hosts or Settings.model_fields["allowed_hosts"].default_factory()
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=hosts)
    add_offline_docs(app)

    frontend = Path(settings.frontend_dir) if settings.frontend_dir else FRONTEND_DIR
    if frontend.is_dir():
        app.mount("/", DashboardFiles(directory=frontend, html=True), name="frontend")
    return app

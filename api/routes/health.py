"""/healthz: is the database reachable, is the broker reachable."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from api.deps import get_queue
from api.queue import JobQueue
from api.schemas import Health
from store.db import ping

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health, responses={503: {"model": Health}})
def healthz(request: Request, queue: JobQueue = Depends(get_queue)) -> JSONResponse:
    database = "ok" if ping(request.app.state.engine) else "error"
    broker = "ok" if queue.ping() else "error"
    ok = database == "ok" and broker == "ok"
    body = {"status": "ok" if ok else "degraded", "database": database, "broker": broker}
    return JSONResponse(body, status_code=200 if ok else 503)

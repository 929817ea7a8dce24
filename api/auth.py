"""Authentication: every ``/api`` route needs ``Authorization: Bearer <token>``.

:func:`require_user` (in ``api.deps.API_DEPENDENCIES``, so no ``/api`` route can go without it)
hashes the token (SHA-256) and looks the hash up in ``api_tokens`` (one indexed query, in a
thread); a missing, malformed, unknown or revoked token gets 401 with ``WWW-Authenticate: Bearer``.
A verified token is remembered by the app for ``PROXNS_TOKEN_CACHE_SECONDS`` (default 5 s), so a
revoked token stops working within that time in every API process.

:func:`require_json_body` refuses a state-changing request whose body is not JSON (415), so a
foreign page cannot reach a route with a "simple" cross-site form or ``text/plain`` request
(which it could send without a CORS preflight); it cannot send the Bearer header either way.

Ownership: jobs and experiments belong to the user who created them (``owner_id``); :func:`owned`
is the filter every query of them adds: other users' rows are simply not found (404, never 403),
admins see all.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from fastapi import Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from fastapi.security import HTTPBearer
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from starlette.types import ASGIApp, Receive, Scope, Send

from api.limits import UPLOAD_CONTENT_TYPE, UPLOAD_PATHS, _is_json
from store.users import Principal, hash_token, verify_token

bearer = HTTPBearer(
    auto_error=False,
    description="An API token (pxn_…): `proxns user create NAME` prints one; the first `proxns serve` "
    "writes the admin's to ./var/admin-token.",
)

HOW_TO = "send Authorization: Bearer <token> (proxns user create NAME prints one)"


def unauthorized(reason: str) -> HTTPException:
    return HTTPException(401, f"{reason}; {HOW_TO}", headers={"WWW-Authenticate": "Bearer"})


class TokenCache:
    """Verified token hashes of one app → their user, for ``ttl`` seconds (at most ``size`` kept)."""

    def __init__(self, ttl: float, size: int = 10_000) -> None:
        self.ttl = ttl
        self.size = size
        self._entries: dict[str, tuple[float, Principal]] = {}
        self._lock = threading.Lock()

    def get(self, digest: str) -> Principal | None:
        hit = self._entries.get(digest)
        if hit is None or hit[0] < time.monotonic():
            return None
        return hit[1]

    def put(self, digest: str, principal: Principal) -> None:
        if self.ttl <= 0:
            return
        with self._lock:
            if len(self._entries) >= self.size:
                now = time.monotonic()
                self._entries = {k: v for k, v in self._entries.items() if v[0] >= now}
                if len(self._entries) >= self.size:
                    self._entries.clear()
            self._entries[digest] = (time.monotonic() + self.ttl, principal)


def _verify(sessions: sessionmaker[Session], token: str) -> Principal | None:
    with sessions() as db:
        return verify_token(db, token)


def _credentials(headers: dict[bytes, bytes]) -> str:
    """The token of an ``Authorization: Bearer`` header; raises 401 when there is none."""
    raw = headers.get(b"authorization", b"").decode("latin-1").strip()
    scheme, _, token = raw.partition(" ")
    if not raw or scheme.lower() != "bearer":
        raise unauthorized("missing Authorization: Bearer header")
    token = token.strip()
    if not token or len(token) > 200:
        raise unauthorized("invalid token")
    return token


async def authenticate(app_state: Any, headers: dict[bytes, bytes]) -> Principal:
    """The user of a request's Bearer token (cached per app for a few seconds), or 401/503."""
    token = _credentials(headers)
    cache: TokenCache = app_state.tokens
    digest = hash_token(token)
    principal = cache.get(digest)
    if principal is None:
        try:
            principal = await run_in_threadpool(_verify, app_state.sessionmaker, token)
        except SQLAlchemyError:
            raise HTTPException(503, "the database is unavailable; retry in a few seconds") from None
        if principal is None:
            raise unauthorized("invalid or revoked token")
        cache.put(digest, principal)
    return principal


def check_json_body(method: str, headers: dict[bytes, bytes], path: str = "") -> None:
    """415 for a state-changing request that carries a body other than JSON (an upload route:
    other than application/octet-stream)."""
    if method in ("GET", "HEAD", "OPTIONS"):
        return
    length = headers.get(b"content-length", b"").strip()
    has_body = length not in (b"", b"0") or b"transfer-encoding" in headers
    content_type = headers.get(b"content-type")
    if method == "POST" and path in UPLOAD_PATHS:
        kind = (content_type or b"").decode("latin-1").split(";")[0].strip().lower()
        if has_body and kind != UPLOAD_CONTENT_TYPE:
            raise HTTPException(
                415, f"the request body must be the file (Content-Type: {UPLOAD_CONTENT_TYPE})"
            )
        return
    if has_body and not _is_json(content_type.decode("latin-1") if content_type else None):
        raise HTTPException(415, "the request body must be JSON (Content-Type: application/json)")


class Authenticate:
    """ASGI middleware: every ``/api`` request needs a valid Bearer token (401) and, when it
    changes state with a body, a JSON one (415); the user lands in ``request.state.user``.

    A middleware rather than a route dependency: it runs before the body is read or parsed, and it
    costs a header lookup instead of a dependency solve per request (the job list's p99).
    """

    def __init__(self, app: ASGIApp, fastapi_app: Any) -> None:
        self.app = app
        self.fastapi_app = fastapi_app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if path != "/api" and not path.startswith("/api/"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        try:
            principal = await authenticate(self.fastapi_app.state, headers)
            check_json_body(scope["method"], headers, path)
        except HTTPException as exc:
            response = JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)
            await response(scope, receive, send)
            return
        scope.setdefault("state", {})["user"] = principal
        await self.app(scope, receive, send)


async def require_user(request: Request, _: Any = Depends(bearer)) -> Principal:
    """The request's user, authenticated by :class:`Authenticate` (``bearer`` only declares the
    scheme, for OpenAPI and the docs' Authorize button)."""
    principal = getattr(request.state, "user", None)
    if principal is None:  # an app built without the middleware: never serve anonymously
        raise unauthorized("missing Authorization: Bearer header")
    return principal


def owned(column: Any, user: Principal) -> list[Any]:
    """The filter that keeps a user to their own rows (none for an admin)."""
    return [] if user.is_admin else [column == user.id]


def can_see(owner_id: int | None, user: Principal) -> bool:
    return user.is_admin or (owner_id is not None and owner_id == user.id)

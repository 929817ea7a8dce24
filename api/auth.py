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
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from api.limits import _is_json
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


async def require_user(
    request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)
) -> Principal:
    """The user of the request's Bearer token, or 401."""
    if credentials is None:
        raise unauthorized("missing Authorization: Bearer header")
    token = credentials.credentials.strip()
    if not token or len(token) > 200:
        raise unauthorized("invalid token")
    cache: TokenCache = request.app.state.tokens
    digest = hash_token(token)
    principal = cache.get(digest)
    if principal is None:
        try:
            principal = await run_in_threadpool(_verify, request.app.state.sessionmaker, token)
        except SQLAlchemyError:
            raise HTTPException(503, "the database is unavailable; retry in a few seconds") from None
        if principal is None:
            raise unauthorized("invalid or revoked token")
        cache.put(digest, principal)
    request.state.user = principal
    return principal


async def require_json_body(request: Request) -> None:
    """415 for a state-changing request that carries a body other than JSON."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    length = request.headers.get("content-length", "").strip()
    has_body = (length not in ("", "0")) or "transfer-encoding" in request.headers
    if has_body and not _is_json(request.headers.get("content-type")):
        raise HTTPException(415, "the request body must be JSON (Content-Type: application/json)")


def owned(column: Any, user: Principal) -> list[Any]:
    """The filter that keeps a user to their own rows (none for an admin)."""
    return [] if user.is_admin else [column == user.id]


def can_see(owner_id: int | None, user: Principal) -> bool:
    return user.is_admin or (owner_id is not None and owner_id == user.id)

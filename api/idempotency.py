"""``Idempotency-Key`` on the creating POSTs: the same key with the same request creates once.

The first request answers 201 with what it created; a repeat (same path, same key, same request,
within ``PROXNS_IDEMPOTENCY_TTL_HOURS``) answers 200 with the same job or experiment as it is now,
and the header ``Idempotent-Replayed: true``. The same key with a different request is refused
with 422; a repeat while the first is still being processed gets 409. Keys are per user: the
same key sent by another user is another key. They live in the store (``store/idempotency.py``),
so every API process sees them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from fastapi import Header, HTTPException
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from store.idempotency import MAX_KEY_LENGTH, claim_key, finish_key, release_key
from store.settings import Settings

HEADER = "Idempotency-Key"


def idempotency_key_header() -> Any:
    """The optional header, as a route parameter (documented in OpenAPI)."""
    return Header(
        None,
        alias=HEADER,
        min_length=1,
        max_length=MAX_KEY_LENGTH,
        pattern=r"^[!-~]+$",
        description="Any printable ASCII string (a UUID, say): repeating the request with the same "
        "key returns what the first one created (200) instead of creating it again.",
    )


def request_digest(payload: Any) -> str:
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()


def owner_scope(path: str, owner_id: int) -> str:
    """The scope a key is stored under: the path and the user who sent it."""
    return f"{path} user {owner_id}"


def idempotent(
    db: Session,
    settings: Settings,
    scope: str,
    owner_id: int,
    key: str | None,
    payload: Any,
    create: Callable[[], tuple[int, JSONResponse]],
    replay: Callable[[int], JSONResponse],
) -> JSONResponse:
    """Run ``create`` (returning the new resource's id and the 201 response) once per key and user;
    answer a repeat with ``replay(id)`` and status 200."""
    if key is None:
        return create()[1]
    ttl_hours = settings.idempotency_ttl_hours
    claim = claim_key(
        db, owner_scope(scope, owner_id), key, request_digest(payload), timedelta(hours=ttl_hours)
    )
    if claim.outcome == "mismatch":
        raise RequestValidationError(
            [
                {
                    "type": "idempotency_key_reused",
                    "loc": ("header", HEADER),
                    "msg": f"this {HEADER} was already used for a different request to {scope} "
                    f"(keys are remembered for {ttl_hours:g} h); send a new key",
                    "input": key,
                }
            ]
        )
    if claim.outcome == "pending":
        raise HTTPException(
            409, f"a request with this {HEADER} is still being processed; retry in a few seconds"
        )
    if claim.outcome == "replay":
        response = replay(claim.resource_id)
        response.status_code = 200
        response.headers["Idempotent-Replayed"] = "true"
        return response
    try:
        resource_id, response = create()
    except BaseException:
        release_key(db, claim.key_id)
        raise
    finish_key(db, claim.key_id, resource_id)
    return response

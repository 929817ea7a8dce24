"""Idempotency keys: a client that retries ``POST /api/jobs`` or ``/api/experiments`` with the same
``Idempotency-Key`` gets the resource its first request created instead of a second one.

A key is scoped to the request path and its sender (``api.idempotency.owner_scope``), remembers a
digest of the request it came with and the id of what it created, and expires after the
configured time. Its life: :func:`claim_key` (committed before anything is created, so a
concurrent request with the same key finds it) → :func:`finish_key` with the new id, or
:func:`release_key` when the request failed and created nothing. A key whose request died in
between stays "pending" for :data:`PENDING_TIMEOUT`, after which a retry may take it over.

Its own table on the store's ``Base`` (migration ``alembic/versions/0004_idempotency_keys.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from sqlalchemy import DateTime, Integer, String, UniqueConstraint, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from store.models import Base, utcnow

#: Longest key accepted (clients usually send a UUID).
MAX_KEY_LENGTH = 200
#: A claimed key whose request neither finished nor released it within this time is abandoned.
PENDING_TIMEOUT = timedelta(minutes=5)


class IdempotencyKey(Base):
    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("scope", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # The request path the key was sent to and the user who sent it: the same key elsewhere is another key.
    scope: Mapped[str] = mapped_column(String(200))
    key: Mapped[str] = mapped_column(String(MAX_KEY_LENGTH))
    # SHA-256 of the canonical request, to tell a retry from a different request reusing the key.
    request_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    # Id of the job or experiment created; null while the first request is still working.
    resource_id: Mapped[int | None] = mapped_column(Integer)


@dataclass(frozen=True)
class Claim:
    """What a key says about a request: ``new`` (go ahead, then finish or release ``key_id``),
    ``replay`` (answer with ``resource_id``), ``mismatch`` (the key came with another request) or
    ``pending`` (its first request is still running)."""

    outcome: Literal["new", "replay", "mismatch", "pending"]
    key_id: int | None = None
    resource_id: int | None = None


def _aware(dt: datetime) -> datetime:
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)


def claim_key(session: Session, scope: str, key: str, request_sha256: str, ttl: timedelta) -> Claim:
    """Look ``key`` up in ``scope``, or claim it for this request (committed)."""
    now = utcnow()
    session.execute(delete(IdempotencyKey).where(IdempotencyKey.created_at < now - ttl))
    session.commit()
    for _ in range(3):
        row = session.execute(
            select(IdempotencyKey).where(IdempotencyKey.scope == scope, IdempotencyKey.key == key)
        ).scalar_one_or_none()
        if row is not None:
            if row.request_sha256 != request_sha256:
                return Claim("mismatch")
            if row.resource_id is not None:
                return Claim("replay", row.id, row.resource_id)
            if now - _aware(row.created_at) < PENDING_TIMEOUT:
                return Claim("pending", row.id)
            # Abandoned by a request that died: take it over.
            session.execute(delete(IdempotencyKey).where(IdempotencyKey.id == row.id))
            session.commit()
        claimed = IdempotencyKey(scope=scope, key=key, request_sha256=request_sha256, created_at=now)
        session.add(claimed)
        try:
            session.commit()
        except IntegrityError:  # a concurrent request claimed it first: read what it stored
            session.rollback()
            continue
        return Claim("new", claimed.id)
    return Claim("pending")


def finish_key(session: Session, key_id: int, resource_id: int) -> None:
    """Record what the key's request created."""
    session.execute(update(IdempotencyKey).where(IdempotencyKey.id == key_id).values(resource_id=resource_id))
    session.commit()


def release_key(session: Session, key_id: int) -> None:
    """Forget a claimed key whose request created nothing (a retry may then use it)."""
    session.rollback()
    session.execute(delete(IdempotencyKey).where(IdempotencyKey.id == key_id))
    session.commit()

"""ORM tables of the experiment service. Alembic migrations create them; never ``create_all``.

The columns of ``results`` and ``metrics`` are derived from the spec's ``Result`` and
``EpochMetrics`` (one column per field, typed from the field), so a field added to the contract
appears here, and the migration test fails until a migration adds it.
"""

from __future__ import annotations

import types
import typing
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeEngine

from proxns_core.spec import EpochMetrics
from proxns_core.spec import Result as ResultSpec

#: Width of columns holding one of a few short names (statuses, methods, phases).
CODE_LENGTH = 16

# Stable constraint names so that migrations and autogenerate agree on every backend.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


def _column_type(field: Any) -> tuple[TypeEngine, bool]:
    """The SQL type of one pydantic field and whether it is nullable."""
    annotation, nullable = field.annotation, False
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        nullable, annotation = len(args) < len(typing.get_args(annotation)), args[0]
    extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
    if typing.get_origin(annotation) is typing.Literal:
        return String(CODE_LENGTH), nullable
    if annotation is bool:
        return Boolean(), nullable
    if annotation is int:
        return (BigInteger() if extra.get("format") == "int64" else Integer()), nullable
    if annotation is float:
        return Float(), nullable
    if annotation is str:
        max_length = next((m.max_length for m in field.metadata if hasattr(m, "max_length")), None)
        return (String(max_length) if max_length else Text()), nullable
    if typing.get_origin(annotation) in (list, dict) or (
        isinstance(annotation, type) and issubclass(annotation, BaseModel)
    ):
        return JSON(), nullable
    raise TypeError(f"no column type for {annotation!r}")


def columns_of(model: type[BaseModel]) -> dict[str, Any]:
    """One ``mapped_column`` per field of a spec model."""
    columns = {}
    for name, field in model.model_fields.items():
        sql_type, nullable = _column_type(field)
        columns[name] = mapped_column(sql_type, nullable=nullable)
    return columns


RESULT_FIELDS: tuple[str, ...] = tuple(ResultSpec.model_fields)
METRIC_FIELDS: tuple[str, ...] = tuple(EpochMetrics.model_fields)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class StoreState(Base):
    """One row: ``jobs_version`` grows with every committed change to any job.

    Readers compare it to decide whether a rendered job list is still current (see api/routes/jobs.py).
    """

    __tablename__ = "store_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    jobs_version: Mapped[int] = mapped_column(BigInteger, default=0)


class User(Base):
    """Someone who may use the API: owns the jobs and experiments they create; an admin sees all."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ApiToken(Base):
    """A Bearer token of a user, stored only as the hex SHA-256 of its text (see store/users.py)."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Experiment(Base):
    __tablename__ = "experiments"
    # SQLite: never hand a deleted experiment's id to a new one (Postgres sequences never do).
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Who created it (null: made before users existed; only admins see those).
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    base: Mapped[dict[str, Any]] = mapped_column(JSON)
    sweep: Mapped[dict[str, Any]] = mapped_column(JSON)
    # A budget search (``proxns_core.search.SearchSpec``) instead of λ lists; null for a plain sweep.
    search: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # Where the search stands: status (running / met / closest), reason, best job, points, default λ.
    search_state: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # Rounds created so far: each advance is a conditional UPDATE on it (created once, however raced).
    search_round: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # Organising (PATCH): free tags, a free-text note, and when it was archived (hidden from default lists).
    tags: Mapped[list[str]] = mapped_column(JSON, default=list, server_default=text("'[]'"))
    note: Mapped[str] = mapped_column(Text, default="", server_default="")
    archived_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), index=True)
    updated_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )


class Job(Base):
    __tablename__ = "jobs"
    # SQLite: never hand a deleted job's id to a new one; the id names its artifact folder and URLs.
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Who submitted it (null: made before users existed, or by a store-level caller; only admins see those).
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    experiment_id: Mapped[int | None] = mapped_column(
        ForeignKey("experiments.id", ondelete="CASCADE"), index=True
    )
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    # Copied out of ``config`` so that lists can filter on it with an index.
    method: Mapped[str] = mapped_column(String(CODE_LENGTH), index=True)
    status: Mapped[str] = mapped_column(String(CODE_LENGTH), index=True, default="queued")
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Written by the worker while it trains; a stale heartbeat on a running job means its worker died.
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Every claim by a worker counts; ``handbacks`` counts the tries a worker gave back on a graceful
    # shutdown, so ``attempts - handbacks`` is the number of tries that really failed.
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    handbacks: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    worker_host: Mapped[str | None] = mapped_column(String(255))
    device: Mapped[str | None] = mapped_column(String(64))
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    eta_seconds: Mapped[float | None] = mapped_column(Float)
    epochs_done: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    # Organising (PATCH): free tags, a free-text note, and when it was archived (hidden from default lists).
    tags: Mapped[list[str]] = mapped_column(JSON, default=list, server_default=text("'[]'"))
    note: Mapped[str] = mapped_column(Text, default="", server_default="")
    archived_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), index=True)
    # Every UPDATE of the row sets it (``onupdate`` applies to Core ``update()`` too): the event
    # stream (GET /api/events) reads the jobs changed since its last look.
    updated_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow, index=True
    )


class Metric(Base):
    """One row per job and epoch: the fields of the spec's ``EpochMetrics``."""

    __tablename__ = "metrics"
    __table_args__ = (UniqueConstraint("job_id", "epoch"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    # A class body's namespace is a plain dict: the spec's fields become mapped columns here.
    locals().update(columns_of(EpochMetrics))


class Result(Base):
    """One row per succeeded job: the fields of the spec's ``Result``."""

    __tablename__ = "results"

    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    locals().update(columns_of(ResultSpec))


class Artifact(Base):
    """A model file of a finished job; ``location`` is its path in the artifact store."""

    __tablename__ = "artifacts"
    __table_args__ = (UniqueConstraint("job_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    format: Mapped[str] = mapped_column(String(32))
    bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    location: Mapped[str] = mapped_column(Text)


class Weights(Base):
    """An uploaded state_dict (``POST /api/weights``) that configs start from (``init_weights``:
    ``weights:ID``); checked at upload against the network it names. ``location`` is its path in
    the artifact store (relative to it)."""

    __tablename__ = "weights"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    arch: Mapped[str] = mapped_column(String(64))
    # None for a torchvision network (its name fixes its structure).
    depth: Mapped[int | None] = mapped_column(Integer, nullable=True)
    width: Mapped[float] = mapped_column(Float)
    num_classes: Mapped[int] = mapped_column(Integer)
    format: Mapped[str] = mapped_column(String(32))
    bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    location: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Worker(Base):
    """A live (or lately live) worker process and what it can run: its devices and the data sets it can
    load. Each worker writes its own row at start and on every fleet heartbeat (``worker/fleet.py``) and
    deletes it on a clean shutdown; the API treats rows seen within ``worker_live_grace`` as live and
    refuses configs no live worker can run (``api/fleet.py``).
    """

    __tablename__ = "workers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # One per worker process run (a fresh random id at each start): node names may repeat.
    instance: Mapped[str] = mapped_column(String(32), unique=True)
    # Celery node name (proxns-gpu0@host), host name and process id.
    name: Mapped[str] = mapped_column(String(255))
    hostname: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    # [{"type": "cpu"|"cuda", "index": int|None, "name": str, "memory_bytes": int, "bf16": bool}]
    devices: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    # [{"root": "/abs/path", "default": bool, "datasets": [names]}]: per data folder it can read.
    datasets: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)


class Outbox(Base):
    """A job id to hand to the workers, written in the same transaction as the change that queued it.

    A dispatcher publishes rows whose ``available_at`` has come and sets ``delivered_at``; a row is
    never lost when the broker is down, only delivered later (a duplicate message is harmless: a
    worker claims only a queued job).
    """

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    available_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), index=True)
    publish_attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)

"""ORM tables of the experiment service. Alembic migrations create them; never ``create_all``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

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
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

JOB_STATUSES: tuple[str, ...] = ("queued", "running", "succeeded", "failed", "cancelled")
FINISHED_STATUSES: frozenset[str] = frozenset({"succeeded", "failed", "cancelled"})

# Stable constraint names so that migrations and autogenerate agree on every backend.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class StoreState(Base):
    """One row: ``jobs_version`` grows with every committed change to any job.

    Readers compare it to decide whether a rendered job list is still current (see api/routes/jobs.py).
    """

    __tablename__ = "store_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    jobs_version: Mapped[int] = mapped_column(BigInteger, default=0)


class Experiment(Base):
    __tablename__ = "experiments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    base: Mapped[dict[str, Any]] = mapped_column(JSON)
    sweep: Mapped[dict[str, Any]] = mapped_column(JSON)

    jobs: Mapped[list[Job]] = relationship(back_populates="experiment", order_by="Job.id")


class Job(Base):
    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    experiment_id: Mapped[int | None] = mapped_column(
        ForeignKey("experiments.id", ondelete="CASCADE"), index=True
    )
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    # Copied out of ``config`` so that lists can filter on it with an index.
    method: Mapped[str] = mapped_column(String(16), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True, default="queued")
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Written by the worker while it trains; a stale heartbeat on a running job means its worker died.
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    worker_host: Mapped[str | None] = mapped_column(String(255))
    device: Mapped[str | None] = mapped_column(String(64))
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    eta_seconds: Mapped[float | None] = mapped_column(Float)
    epochs_done: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)

    experiment: Mapped[Experiment | None] = relationship(back_populates="jobs")
    result: Mapped[Result | None] = relationship(back_populates="job", uselist=False, lazy="raise")
    metrics: Mapped[list[Metric]] = relationship(order_by="Metric.epoch", lazy="raise")
    artifacts: Mapped[list[Artifact]] = relationship(order_by="Artifact.name", lazy="raise")


class Metric(Base):
    """One row per job and epoch (fine-tune epochs continue the numbering)."""

    __tablename__ = "metrics"
    __table_args__ = (UniqueConstraint("job_id", "epoch"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    epoch: Mapped[int] = mapped_column(Integer)
    phase: Mapped[str] = mapped_column(String(16))
    epochs: Mapped[int] = mapped_column(Integer)
    lr: Mapped[float] = mapped_column(Float)
    train_loss: Mapped[float | None] = mapped_column(Float)
    objective: Mapped[float | None] = mapped_column(Float)
    test_loss: Mapped[float | None] = mapped_column(Float)
    test_acc: Mapped[float | None] = mapped_column(Float)
    zero_fraction: Mapped[float | None] = mapped_column(Float)
    seconds: Mapped[float | None] = mapped_column(Float)


METRIC_FIELDS: tuple[str, ...] = (
    "phase",
    "epoch",
    "epochs",
    "lr",
    "train_loss",
    "objective",
    "test_loss",
    "test_acc",
    "zero_fraction",
    "seconds",
)


class Result(Base):
    """The result fields of ARCHITECTURE.md, one row per succeeded job."""

    __tablename__ = "results"

    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    acc_full: Mapped[float] = mapped_column(Float)
    acc_slim: Mapped[float] = mapped_column(Float)
    acc_finetuned: Mapped[float | None] = mapped_column(Float)
    channels_total: Mapped[int] = mapped_column(Integer)
    channels_pruned: Mapped[int] = mapped_column(Integer)
    pruned_fraction: Mapped[float] = mapped_column(Float)
    params_full: Mapped[int] = mapped_column(BigInteger)
    params_slim: Mapped[int] = mapped_column(BigInteger)
    flops_full: Mapped[int] = mapped_column(BigInteger)
    flops_slim: Mapped[int] = mapped_column(BigInteger)
    latency_full_ms: Mapped[float] = mapped_column(Float)
    latency_slim_ms: Mapped[float] = mapped_column(Float)
    layers: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    kept_forced: Mapped[list[str]] = mapped_column(JSON, default=list)
    device: Mapped[str | None] = mapped_column(String(64))

    job: Mapped[Job] = relationship(back_populates="result")


RESULT_FIELDS: tuple[str, ...] = (
    "acc_full",
    "acc_slim",
    "acc_finetuned",
    "channels_total",
    "channels_pruned",
    "pruned_fraction",
    "params_full",
    "params_slim",
    "flops_full",
    "flops_slim",
    "latency_full_ms",
    "latency_slim_ms",
    "layers",
    "kept_forced",
    "device",
)


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

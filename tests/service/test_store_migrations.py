"""Alembic makes the schema on empty Postgres and SQLite databases, and the ORM agrees with it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, select

from proxns_core.spec import EpochMetrics, TrainConfig
from store import Base, Job, Metric, make_engine, make_sessionmaker
from store.migrate import upgrade
from store.queries import commit_jobs, create_jobs, jobs_version, upsert_metric

TABLES = {
    "alembic_version",
    "experiments",
    "jobs",
    "metrics",
    "results",
    "artifacts",
    "store_state",
    "outbox",
    "idempotency_keys",
    "users",
    "api_tokens",
    "workers",
    "weights",
}


def check_migrated_database(url: str) -> None:
    upgrade(url)
    engine = make_engine(url)
    try:
        assert set(inspect(engine).get_table_names()) == TABLES
        with engine.connect() as conn:
            diff = compare_metadata(
                MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata
            )
        assert diff == [], f"ORM and migrations disagree: {diff}"
        check_metric_upsert_is_idempotent(engine)
        check_jobs_version_grows_with_every_change(engine)
    finally:
        engine.dispose()
    upgrade(url)  # a second upgrade is a no-op


def check_metric_upsert_is_idempotent(engine) -> None:  # noqa: ANN001
    sessions = make_sessionmaker(engine)
    with sessions() as s:
        (job,) = create_jobs(s, [TrainConfig(method="proxns", epochs=2)])
        row = {
            "phase": "train",
            "epoch": 1,
            "epochs": 2,
            "lr": 0.1,
            "train_loss": 2.0,
            "objective": 2.5,
            "test_loss": 2.1,
            "test_acc": 0.2,
            "zero_fraction": 0.0,
            "seconds": 1.0,
        }
        upsert_metric(s, job.id, EpochMetrics(**row))
        again = EpochMetrics(**{**row, "test_acc": 0.3, "train_loss": float("nan")})  # the same epoch
        upsert_metric(s, job.id, again)
        metrics = s.execute(select(Metric).where(Metric.job_id == job.id)).scalars().all()
        assert [(m.epoch, m.test_acc, m.train_loss) for m in metrics] == [(1, 0.3, None)]
        assert s.get(Job, job.id).status == "queued"


@pytest.mark.integration
def test_migrations_build_empty_postgres_matching_the_orm(make_postgres_db: Callable[[], str]) -> None:
    check_migrated_database(make_postgres_db())


def test_migrations_build_empty_sqlite_matching_the_orm(tmp_path: Path) -> None:
    check_migrated_database(f"sqlite:///{tmp_path / 'fresh' / 'proxns.db'}")


def check_jobs_version_grows_with_every_change(engine) -> None:  # noqa: ANN001
    sessions = make_sessionmaker(engine)
    with sessions() as writer, sessions() as reader:
        seen = [jobs_version(reader)]
        for _ in range(3):
            reader.rollback()
            commit_jobs(writer)
            seen.append(jobs_version(reader))
        assert seen[1] > seen[0] and seen[2] > seen[1] and seen[3] > seen[2], seen

"""tags, notes and archiving on jobs and experiments; jobs.updated_at for the event stream;
results.num_classes (chance accuracy)

Revision ID: 0012_organise_and_events
Revises: 0011_budget_search
Create Date: 2026-11-27 23:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0012_organise_and_events"
down_revision: str | None = "0011_budget_search"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _organise(batch: object) -> None:
    batch.add_column(sa.Column("tags", sa.JSON(), nullable=False, server_default=sa.text("'[]'")))
    batch.add_column(sa.Column("note", sa.Text(), nullable=False, server_default=""))
    batch.add_column(sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True))
    batch.add_column(sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True))


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        _organise(batch)
    with op.batch_alter_table("experiments") as batch:
        _organise(batch)
    with op.batch_alter_table("results") as batch:
        batch.add_column(sa.Column("num_classes", sa.Integer(), nullable=True))
    jobs = sa.table(
        "jobs",
        sa.column("updated_at", sa.DateTime(timezone=True)),
        sa.column("created_at", sa.DateTime(timezone=True)),
        sa.column("started_at", sa.DateTime(timezone=True)),
        sa.column("finished_at", sa.DateTime(timezone=True)),
        sa.column("heartbeat_at", sa.DateTime(timezone=True)),
    )
    op.execute(
        jobs.update().values(
            updated_at=sa.func.coalesce(
                jobs.c.finished_at, jobs.c.heartbeat_at, jobs.c.started_at, jobs.c.created_at
            )
        )
    )
    experiments = sa.table(
        "experiments",
        sa.column("updated_at", sa.DateTime(timezone=True)),
        sa.column("created_at", sa.DateTime(timezone=True)),
    )
    op.execute(experiments.update().values(updated_at=experiments.c.created_at))
    op.create_index("ix_jobs_updated_at", "jobs", ["updated_at"])
    op.create_index("ix_jobs_archived_at", "jobs", ["archived_at"])
    op.create_index("ix_experiments_archived_at", "experiments", ["archived_at"])


def downgrade() -> None:
    op.drop_index("ix_experiments_archived_at", "experiments")
    op.drop_index("ix_jobs_archived_at", "jobs")
    op.drop_index("ix_jobs_updated_at", "jobs")
    with op.batch_alter_table("results") as batch:
        batch.drop_column("num_classes")
    for table in ("experiments", "jobs"):
        with op.batch_alter_table(table) as batch:
            for column in ("updated_at", "archived_at", "note", "tags"):
                batch.drop_column(column)

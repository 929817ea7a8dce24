"""jobs change counter: a value that grows after every committed change to a job

Postgres keeps it in a sequence (no row lock shared by every writer); SQLite in a one-row table.
Readers compare it to decide whether a rendered job list is still current.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 15:23:34
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    state = op.create_table(
        "store_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("jobs_version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_store_state")),
    )
    op.bulk_insert(state, [{"id": 1, "jobs_version": 0}])
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE SEQUENCE jobs_version_seq")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP SEQUENCE jobs_version_seq")
    op.drop_table("store_state")

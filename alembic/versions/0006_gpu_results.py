"""results record where and how a run trained and timed: card name, precision, layout, latency spread

Revision ID: 0006_gpu_results
Revises: 0005_auth
Create Date: 2026-11-27 17:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_gpu_results"
down_revision: str | None = "0005_auth"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("results") as batch:
        batch.add_column(sa.Column("device_name", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("precision", sa.String(length=8), nullable=True))
        batch.add_column(sa.Column("channels_last", sa.Boolean(), nullable=True))
        batch.add_column(sa.Column("latency", sa.JSON(), nullable=False, server_default="[]"))


def downgrade() -> None:
    with op.batch_alter_table("results") as batch:
        batch.drop_column("latency")
        batch.drop_column("channels_last")
        batch.drop_column("precision")
        batch.drop_column("device_name")

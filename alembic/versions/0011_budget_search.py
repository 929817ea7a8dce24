"""experiments may search λ for a budget (pruned or FLOPs share) instead of sweeping λ lists

Revision ID: 0011_budget_search
Revises: 0010_epoch_sparsity
Create Date: 2026-11-27 21:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0011_budget_search"
down_revision: str | None = "0010_epoch_sparsity"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("experiments") as batch:
        batch.add_column(sa.Column("search", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("search_state", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("search_round", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("experiments") as batch:
        batch.drop_column("search_round")
        batch.drop_column("search_state")
        batch.drop_column("search")

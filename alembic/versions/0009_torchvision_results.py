"""torchvision networks: results record the masked accuracy and whether slimming was exact; uploads of
a torchvision network have no depth

Revision ID: 0009_torchvision
Revises: 0008_weights
Create Date: 2026-11-27 20:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_torchvision"
down_revision: str | None = "0008_weights"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("results") as batch:
        batch.add_column(sa.Column("acc_masked", sa.Float(), nullable=True))
        batch.add_column(sa.Column("slim_exact", sa.Boolean(), nullable=True))
        batch.add_column(sa.Column("inexact_layers", sa.JSON(), nullable=False, server_default="{}"))
    with op.batch_alter_table("weights") as batch:
        batch.alter_column("depth", existing_type=sa.Integer(), nullable=True)


def downgrade() -> None:
    # An upload without a depth (a torchvision network's) cannot stay once depth is required again.
    op.execute("DELETE FROM weights WHERE depth IS NULL")
    with op.batch_alter_table("weights") as batch:
        batch.alter_column("depth", existing_type=sa.Integer(), nullable=False)
    with op.batch_alter_table("results") as batch:
        batch.drop_column("inexact_layers")
        batch.drop_column("slim_exact")
        batch.drop_column("acc_masked")

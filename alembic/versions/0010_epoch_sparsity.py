"""epochs record the accuracy of the network as it would be delivered, and per BN layer the zero
count and |ξ| histogram of the sparse vector

Revision ID: 0010_epoch_sparsity
Revises: 0009_torchvision
Create Date: 2026-11-27 20:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_epoch_sparsity"
down_revision: str | None = "0009_torchvision"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("metrics") as batch:
        batch.add_column(sa.Column("test_acc_delivered", sa.Float(), nullable=True))
        batch.add_column(sa.Column("layers", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("metrics") as batch:
        batch.drop_column("layers")
        batch.drop_column("test_acc_delivered")

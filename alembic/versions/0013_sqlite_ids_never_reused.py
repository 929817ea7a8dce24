"""ids of jobs and experiments are never reused on SQLite (AUTOINCREMENT): a deleted job's id names
its folder in the artifact store, its URLs and the Idempotency-Key records that point at it

Revision ID: 0013_sqlite_ids_never_reused
Revises: 0012_organise_and_events
Create Date: 2026-11-28 00:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0013_sqlite_ids_never_reused"
down_revision: str | None = "0012_organise_and_events"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("experiments", "jobs")


def _recreate(autoincrement: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return  # Postgres sequences never hand out an id twice
    # Recreating a table drops the old one: with foreign keys on, that deletes its children
    # (ON DELETE CASCADE). The pragma only takes effect outside a transaction.
    with op.get_context().autocommit_block():
        op.execute("PRAGMA foreign_keys=OFF")
        try:
            for table in TABLES:
                with op.batch_alter_table(
                    table, recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}
                ):
                    pass
        finally:
            op.execute("PRAGMA foreign_keys=ON")


def upgrade() -> None:
    _recreate(True)


def downgrade() -> None:
    _recreate(False)

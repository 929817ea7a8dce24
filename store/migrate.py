"""Run the alembic migrations programmatically (``proxns serve`` and the tests use this)."""

from __future__ import annotations

from pathlib import Path

from alembic.config import Config

from alembic import command

#: The repository's ``alembic/`` folder (scripts live beside the packages, not inside them).
ALEMBIC_DIR = Path(__file__).resolve().parent.parent / "alembic"


def alembic_config(database_url: str) -> Config:
    """An alembic config for ``database_url`` that does not depend on the working directory."""
    cfg = Config()
    cfg.set_main_option("script_location", str(ALEMBIC_DIR))
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    cfg.attributes["configure_logging"] = False
    return cfg


def upgrade(database_url: str, revision: str = "head") -> None:
    """Bring the database at ``database_url`` to ``revision`` (creating the schema if empty)."""
    command.upgrade(alembic_config(database_url), revision)

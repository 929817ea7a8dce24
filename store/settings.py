"""Service settings, read once from ``PROXNS_*`` environment variables.

They live in ``store`` because both sides of the queue need them (the API and the worker may
both import ``store``, neither may import the other).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

#: Name under which the worker registers the job task and the API enqueues it.
RUN_JOB_TASK = "proxns.run_job"


class Settings(BaseSettings):
    """Everything that differs between the embedded default and a distributed deployment."""

    model_config = SettingsConfigDict(env_prefix="PROXNS_", extra="ignore")

    database_url: str = Field(
        "sqlite:///./var/proxns.db",
        description="SQLAlchemy URL of the store: sqlite:///path or postgresql+psycopg://user@host/db.",
    )
    broker_url: str = Field(
        "filesystem://",
        description="Celery broker: filesystem:// (a folder queue under BROKER_DIR) or redis://host:6379/0.",
    )
    broker_dir: str = Field(
        "./var/broker", description="Folder of the filesystem broker (filesystem:// only)."
    )
    queue: str = Field("proxns", description="Name of the job queue; workers and API must agree.")
    artifact_dir: str = Field(
        "./var/artifacts", description="Model files, one folder per job; shared by API and workers."
    )
    data_root: str | None = Field(None, description="Data set folder handed to training; default ./data.")
    frontend_dir: str | None = Field(
        None, description="Dashboard folder served at /; default the repository's frontend/."
    )

    def broker_transport_options(self) -> dict:
        """Transport options for kombu; the filesystem queue needs its folders made and named."""
        if not self.broker_url.startswith("filesystem:"):
            return {}
        root = Path(self.broker_dir).resolve()
        queue, processed, control = root / "queue", root / "processed", root / "control"
        for folder in (queue, processed, control):
            folder.mkdir(parents=True, exist_ok=True)
        return {
            "data_folder_in": str(queue),
            "data_folder_out": str(queue),
            "processed_folder": str(processed),
            "control_folder": str(control),
            "polling_interval": 0.1,
        }

    @property
    def uses_filesystem_broker(self) -> bool:
        return self.broker_url.startswith("filesystem:")


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings (cached; tests build their own ``Settings`` instead)."""
    return Settings()

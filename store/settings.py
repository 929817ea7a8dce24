"""Service settings, read once from ``PROXNS_*`` environment variables.

They live in ``store`` because both sides of the queue need them (the API and the worker may
both import ``store``, neither may import the other).
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

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

    # ---- limits on what one request may ask for (README, "Limits and bad input")
    data_roots: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Folders a config's data_root must lie in (symlinks and .. resolved), separated "
        "by the OS path separator (':'); default: data_root, else ./data.",
    )
    max_depth_resnet: int = Field(200, ge=11, description="Deepest ResNet a job may ask for (9n+2).")
    max_depth_densenet: int = Field(250, ge=7, description="Deepest DenseNet a job may ask for (3n+4).")
    max_width: float = Field(2.0, gt=0, description="Largest width multiplier a job may ask for.")
    max_epochs: int = Field(
        300, ge=1, description="Most training epochs, and most fine-tuning epochs, of one job."
    )
    max_batch_size: int = Field(1024, ge=1, description="Largest batch size of one job.")
    max_input_size: int = Field(
        512, ge=16, description="Largest input_size (image side, pixels) of one job; pixels scale its cost."
    )
    max_train_subset: int = Field(100_000, ge=1, description="Largest train_subset of one job.")
    max_test_subset: int = Field(100_000, ge=1, description="Largest test_subset of one job.")
    max_cost: float = Field(
        1e15,
        gt=0,
        description="Largest parameters x epochs (training + fine-tuning) x training images of one "
        "job (VGG-19 on CIFAR-10 for 160 epochs: 1.6e14).",
    )
    max_sweep_jobs: int = Field(256, ge=1, description="Most jobs one experiment may ask for.")
    max_queued_jobs: int = Field(
        10_000, ge=1, description="Most queued jobs in the whole service; submissions beyond get 429."
    )
    max_queued_jobs_per_user: int = Field(
        100, ge=1, description="Most queued jobs of one user; submissions beyond get 429 (admins too)."
    )
    max_body_bytes: int = Field(
        1_048_576, ge=1024, description="Largest request body (bytes); larger ones get 413."
    )
    max_weights_bytes: int = Field(
        512 * 2**20,
        ge=1024,
        description="Largest weights file POST /api/weights takes (bytes); larger get 413.",
    )
    page_cache_bytes: int = Field(
        32 * 2**20, ge=0, description="Bytes of rendered job-list pages the API keeps (per process)."
    )
    page_cache_entries: int = Field(256, ge=0, description="Rendered job-list pages the API keeps.")
    idempotency_ttl_hours: float = Field(24.0, gt=0, description="How long an Idempotency-Key is remembered.")

    # ---- who may reach the API (README, "Authentication")
    allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["127.0.0.1", "localhost", "[::1]"],
        description="Host header values the API answers, comma-separated ('*': any; '*.example.org': "
        "a domain and its subdomains); others get 400. proxns serve adds its --host.",
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Origins allowed to call the API from a browser page (CORS), comma-separated; "
        "default none (no CORS headers at all).",
    )
    token_cache_seconds: float = Field(
        5.0,
        ge=0,
        description="Seconds an API process trusts a token it verified before looking it up again: "
        "a revoked token stops working within this time (0: look it up on every request).",
    )

    @field_validator("allowed_hosts", "cors_origins", mode="before")
    @classmethod
    def _split_commas(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("data_roots", mode="before")
    @classmethod
    def _split_roots(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part for part in value.split(os.pathsep) if part]
        return value

    def allowed_data_roots(self) -> list[Path]:
        """The folders a config's data_root must lie in, resolved (symlinks and ..)."""
        roots = self.data_roots or [self.data_root or "data"]
        return [Path(os.path.realpath(Path(r).expanduser())) for r in roots]

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

    # Reliability (issue 9: nothing lost, crash-safe training).
    heartbeat_every: float = Field(2.0, gt=0, description="Seconds between a running job's heartbeats.")
    heartbeat_timeout: float = Field(
        60.0, gt=0, description="A running job whose heartbeat is older than this lost its worker."
    )
    max_attempts: int = Field(3, ge=1, description="Tries of a job whose worker keeps dying before it fails.")
    reconcile_every: float = Field(5.0, gt=0, description="Seconds between the reconciler's passes.")
    redeliver_grace: float = Field(
        30.0, gt=0, description="A queued job with no broker message for this long is delivered again."
    )
    publish_timeout: float = Field(3.0, gt=0, description="Seconds a broker publish may take.")
    db_connect_timeout: int = Field(5, ge=1, description="Seconds to open a Postgres connection.")
    db_statement_timeout_ms: int = Field(30000, ge=0, description="Postgres statement timeout (0: none).")
    keep_checkpoints: bool = Field(False, description="Keep a job's epoch checkpoint after it succeeded.")
    stop_grace: float = Field(
        3.0,
        ge=0,
        description="Seconds a cancelled job, or the job of a worker told to stop (SIGTERM), gets to "
        "stop at a step boundary; after that its step is abandoned and the job ends cancelled or goes "
        "back to the queue at once (a long step never delays either by more than this).",
    )

    # The fleet (issue 10: workers say what they can run; worker/fleet.py, api/fleet.py).
    worker_heartbeat_every: float = Field(
        5.0, gt=0, description="Seconds between a worker's fleet heartbeats (its devices and data sets)."
    )
    worker_live_grace: float = Field(
        20.0,
        gt=0,
        description="A worker seen within this many seconds is live: the API refuses (422) a config no "
        "live worker can run; with none live it accepts jobs, which wait with a reason.",
    )
    worker_forget_after: float = Field(
        86400.0, gt=0, description="A worker row unseen this long is deleted when another worker starts."
    )
    fleet_cache_seconds: float = Field(
        1.0, ge=0, description="Seconds an API process reuses the workers it read (0: read on every check)."
    )
    worker_pass_on_delay: float = Field(
        1.5,
        ge=0,
        description="Seconds a worker waits before handing back, unclaimed, a job it cannot run (its "
        "devices or data sets) while another live worker can; the job goes back to the queue.",
    )
    worker_devices_override: list[dict[str, Any]] | None = Field(
        None,
        description="JSON list of the devices this worker advertises instead of the probed ones "
        '([{"type": "cpu"|"cuda", "index", "name", "memory_bytes", "bf16"}]); for tests and to offer '
        "fewer cards than a host has. Training still uses what torch sees.",
    )


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings (cached; tests build their own ``Settings`` instead)."""
    return Settings()

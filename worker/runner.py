"""Run one job through ``proxns_core.fit`` and keep its row in the store up to date.

Every exit path ends the job: succeeded (result and model files stored), cancelled (finished
epochs kept), queued again (the worker is shutting down; the job resumes from its checkpoint
elsewhere), or failed with the exception's message.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path

import torch
from sqlalchemy.orm import Session, sessionmaker

from proxns_core import Callbacks, EpochMetrics, TrainConfig, TrainingStopped, export_slim, fit
from store.models import Job
from store.queries import (
    cancel_requested,
    claim_job,
    finish_job,
    report_progress,
    requeue_job,
    save_result,
    upsert_metric,
)
from store.settings import Settings

log = logging.getLogger("proxns.worker")

#: Seconds between progress/heartbeat writes during an epoch, and between cancel checks.
PROGRESS_EVERY = 2.0
CANCEL_CHECK_EVERY = 0.5


def resolved_device(spec: str) -> str:
    """The device a config will train on here (``auto`` picks CUDA when this process sees a GPU)."""
    if spec != "auto":
        return spec
    return "cuda" if torch.cuda.is_available() else "cpu"


def worker_host() -> str:
    """Host name and process id, so that several workers on one host are told apart."""
    gpus = os.environ.get("CUDA_VISIBLE_DEVICES")
    suffix = f" gpu {gpus}" if gpus else ""
    return f"{socket.gethostname()}:{os.getpid()}{suffix}"


class JobCallbacks(Callbacks):
    """Writes metrics, progress, ETA and heartbeats to the store; stops on cancel or shutdown."""

    def __init__(self, make_session: sessionmaker[Session], job_id: int, shutting_down: Callable[[], bool]):
        super().__init__()
        self.make_session = make_session
        self.job_id = job_id
        self.shutting_down = shutting_down
        self.stop_reason: str | None = None
        self._t0 = time.monotonic()
        self._first_step: int | None = None
        self._last_report = 0.0
        self._last_cancel_check = 0.0
        self.step, self.total_steps = 0, 0

    def eta(self) -> float | None:
        if self._first_step is None or self.step <= self._first_step or not self.total_steps:
            return None
        rate = (time.monotonic() - self._t0) / (self.step - self._first_step)
        return rate * (self.total_steps - self.step)

    def on_step(self, step: int, total_steps: int) -> None:
        if self._first_step is None:
            # Steps restored from a checkpoint do not count towards this attempt's speed.
            self._first_step, self._t0 = step - 1, time.monotonic()
        self.step, self.total_steps = step, total_steps
        now = time.monotonic()
        if now - self._last_report >= PROGRESS_EVERY:
            self._last_report = now
            with self.make_session() as s:
                report_progress(s, self.job_id, step / total_steps, self.eta())

    def on_epoch_end(self, m: EpochMetrics) -> None:
        progress = self.step / self.total_steps if self.total_steps else m.epoch / m.epochs
        with self.make_session() as s:
            upsert_metric(s, self.job_id, m)
            report_progress(s, self.job_id, progress, self.eta(), epochs_done=m.epoch)
        log.info(
            "job %s epoch %s/%s test_acc %.4f zero_fraction %.3f",
            self.job_id,
            m.epoch,
            m.epochs,
            m.test_acc or 0.0,
            m.zero_fraction or 0.0,
        )

    def should_stop(self) -> bool:
        if self.shutting_down():
            self.stop_reason = "shutdown"
            return True
        now = time.monotonic()
        if now - self._last_cancel_check < CANCEL_CHECK_EVERY:
            return False
        self._last_cancel_check = now
        with self.make_session() as s:
            if cancel_requested(s, self.job_id):
                self.stop_reason = "cancel"
                return True
        return False


def run_job(
    job_id: int,
    settings: Settings,
    make_session: sessionmaker[Session],
    shutting_down: Callable[[], bool] = lambda: False,
    requeue: Callable[[int], None] | None = None,
) -> str:
    """Run job ``job_id`` to its end; returns the status it ended in (or ``skipped``)."""
    with make_session() as s:
        job = s.get(Job, job_id)
        if job is None:
            log.warning("job %s does not exist (deleted after a failed submission?); skipping", job_id)
            return "skipped"
        stored = dict(job.config)
    try:
        config: TrainConfig | None = TrainConfig.model_validate(stored)
        if settings.data_root and not config.data_root:
            config = config.model_copy(update={"data_root": settings.data_root})
        device = resolved_device(config.device)
        invalid = None
    except ValueError as exc:  # stored before a rule changed: the job fails with the reason below
        config, device, invalid = None, str(stored.get("device")), exc

    callbacks = JobCallbacks(make_session, job_id, shutting_down)
    with make_session() as s:
        if not claim_job(s, job_id, worker_host(), device):
            log.info("job %s is not queued (cancelled, finished or running elsewhere); skipping", job_id)
            return "skipped"
        attempts = s.get(Job, job_id, populate_existing=True).attempts

    job_dir = Path(settings.artifact_dir) / str(job_id)
    try:
        if config is None:
            raise invalid
        log.info("job %s running (attempt %s) on %s", job_id, attempts, device)
        fitted = fit(config, callbacks, checkpoint_dir=str(job_dir / "checkpoint"), resume=attempts > 1)
        files = export_slim(fitted, job_dir)
        root = Path(settings.artifact_dir).resolve()
        for f in files:
            path = Path(f["path"]).resolve()
            # Stored relative to the artifact store, so hosts may mount it at different paths.
            f["path"] = str(path.relative_to(root)) if path.is_relative_to(root) else str(path)
        with make_session() as s:
            save_result(s, job_id, fitted.result, files)
        log.info(
            "job %s succeeded: acc_slim %.4f pruned %.3f",
            job_id,
            fitted.result.acc_slim,
            fitted.result.pruned_fraction,
        )
        return "succeeded"
    except TrainingStopped as stop:
        with make_session() as s:
            if callbacks.stop_reason == "shutdown":
                requeue_job(s, job_id)
                if requeue is not None:
                    requeue(job_id)
                log.info(
                    "job %s handed back to the queue after %s epochs (worker shutting down)",
                    job_id,
                    stop.epochs_done,
                )
                return "queued"
            finish_job(s, job_id, "cancelled")
        log.info("job %s cancelled after %s epochs", job_id, stop.epochs_done)
        return "cancelled"
    except Exception as exc:
        log.exception("job %s failed", job_id)
        with make_session() as s:
            finish_job(s, job_id, "failed", error=f"{type(exc).__name__}: {exc}")
        return "failed"

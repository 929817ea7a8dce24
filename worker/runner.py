"""Run one job through ``proxns_core.fit`` and keep its row in the store up to date.

Every exit path ends the job: succeeded (result and model files stored), cancelled (finished
epochs kept), queued again (the worker is shutting down; the job resumes from its checkpoint
elsewhere), or failed with the exception's message ("artifact store full" for a full disk). A job
deleted while it runs (``DELETE /api/jobs/{id}``) stops at its next heartbeat as a cancelled one
would, writes nothing more, and its folder is removed once training has stopped (``deleted``).

Liveness does not depend on step length: a heartbeat thread refreshes the job's heartbeat every
``heartbeat_every`` seconds, reads its cancel flag (so ``should_stop`` never touches the database)
and writes the epoch rows training produced. Training never waits for the database: when it is
away the rows stay buffered and are written once it is back; the final writes are retried with
backoff. The epoch checkpoint is written before its metric row, and a resumed job rewrites its rows
from the checkpoint's history, so a crash can neither duplicate nor lose an epoch row.

Training runs in a thread of its own (:class:`TrainingThread`), so a cancel or a SIGTERM takes effect
within ``stop_grace`` seconds even in the middle of a long step, with nothing added to the step loop.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import torch
from sqlalchemy.orm import Session, sessionmaker

from proxns_core import Callbacks, EpochMetrics, TrainConfig, TrainingStopped, export_slim, fit
from store.models import Job
from store.queries import (
    claim_job,
    finish_job,
    heartbeat,
    job_exists,
    requeue_job,
    save_result,
    write_metrics,
)
from store.settings import Settings
from worker.fleet import pass_on

log = logging.getLogger("proxns.worker")

#: The error of a job that could not write its checkpoint or model files for lack of space.
DISK_FULL = "artifact store full"
#: How long the final writes (metrics, result) are retried while the database is away.
FINAL_WRITE_DEADLINE = 600.0

T = TypeVar("T")


def resolved_device(spec: str) -> str:
    """The device a config will train on here, as the job shows it while it runs: ``auto`` picks the
    first GPU this process sees, else the CPU; ``cuda`` is named with its index (``cuda:0``)."""
    if spec == "auto":
        spec = "cuda" if torch.cuda.is_available() else "cpu"
    if spec == "cuda" and torch.cuda.is_available():
        return f"cuda:{torch.cuda.current_device()}"
    return spec


def worker_host() -> str:
    """Host name and process id, so that several workers on one host are told apart."""
    gpus = os.environ.get("CUDA_VISIBLE_DEVICES")
    suffix = f" gpu {gpus}" if gpus else ""
    return f"{socket.gethostname()}:{os.getpid()}{suffix}"


def with_retries(what: str, fn: Callable[[], T], deadline: float = FINAL_WRITE_DEADLINE) -> T:
    """``fn()``, retried with exponential backoff (0.25 s doubling to 8 s) for up to ``deadline`` s."""
    end, delay = time.monotonic() + deadline, 0.25
    while True:
        try:
            return fn()
        except Exception as exc:  # noqa: BLE001 - the database may be restarting: try again
            if time.monotonic() + delay > end:
                raise
            log.warning("%s failed (%s: %s); retrying in %.2f s", what, type(exc).__name__, exc, delay)
            time.sleep(delay)
            delay = min(delay * 2, 8.0)


def _free_bytes(path: Path | None) -> int:
    try:
        return shutil.disk_usage(path).free if path is not None else 2**62
    except OSError:
        return 2**62


def disk_full(exc: BaseException, path: Path | None = None) -> bool:
    """Whether ``exc`` (or what caused it) is a write under ``path`` that failed for lack of space."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if "No space left on device" in str(seen):
            return True
        if isinstance(seen, RuntimeError) and "write failed" in str(seen) and _free_bytes(path) < 2**20:
            return True  # torch.save reports a full disk as "PytorchStreamWriter ... file write failed"
        seen = seen.__cause__ or seen.__context__
    return False


class JobCallbacks(Callbacks):
    """Buffers metrics for the heartbeat thread; stops on cancel or shutdown without a database call."""

    def __init__(
        self,
        make_session: sessionmaker[Session],
        job_id: int,
        shutting_down: Callable[[], bool],
        heartbeat_every: float = 2.0,
    ):
        super().__init__()
        self.make_session = make_session
        self.job_id = job_id
        self.shutting_down = shutting_down
        self.heartbeat_every = heartbeat_every
        self.stop_reason: str | None = None
        self._t0 = time.monotonic()
        self._first_step: int | None = None
        self.step, self.total_steps = 0, 0
        self._lock = threading.Lock()  # guards the buffer only, never held during database I/O
        self._writing = threading.Lock()  # one flush at a time
        self._pending: list[EpochMetrics] = []
        self._truncate_after: int | None = None
        #: Epochs fit reported (restored ones included): what a job abandoned mid-step has done.
        self.epochs_reported = 0
        self._cancelled = threading.Event()
        #: Set once the store says the job no longer exists (deleted while it ran).
        self.deleted = False
        self._done = threading.Event()
        self._wake = threading.Event()  # rows to write: the heartbeat thread writes them at once
        self._thread = threading.Thread(target=self._beat, name=f"proxns-heartbeat-{job_id}", daemon=True)

    # --- called by fit, on the training thread -------------------------------------------------
    def eta(self) -> float | None:
        if self._first_step is None or self.step <= self._first_step or not self.total_steps:
            return None
        rate = (time.monotonic() - self._t0) / (self.step - self._first_step)
        return rate * (self.total_steps - self.step)

    def progress(self) -> float | None:
        return self.step / self.total_steps if self.total_steps else None

    def on_step(self, step: int, total_steps: int) -> None:
        if self._first_step is None:
            # Steps restored from a checkpoint do not count towards this attempt's speed.
            self._first_step, self._t0 = step - 1, time.monotonic()
        self.step, self.total_steps = step, total_steps

    def on_resume(self, history: list[EpochMetrics]) -> None:
        with self._lock:
            self._pending = list(history)
            self._truncate_after = len(history)
        self.epochs_reported = len(history)
        self._wake.set()

    def on_epoch_end(self, m: EpochMetrics) -> None:
        # The training thread only buffers: the heartbeat thread writes the row (at once, or when
        # the database is back), so a slow or absent database never holds training up.
        with self._lock:
            self._pending.append(m)
        self.epochs_reported = m.epoch
        self._wake.set()
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
        if self._cancelled.is_set():
            self.stop_reason = "cancel"
            return True
        return False

    @property
    def cancelled(self) -> bool:
        """Whether the heartbeat thread saw a cancel request (or the job is no longer ours)."""
        return self._cancelled.is_set()

    # --- the store side -------------------------------------------------------------------------
    def flush(self) -> bool:
        """Write buffered epoch rows (one try); True when nothing is left to write."""
        with self._writing:
            with self._lock:
                rows, truncate = list(self._pending), self._truncate_after
            if not rows and truncate is None:
                return True
            try:
                with self.make_session() as s:
                    written = write_metrics(s, self.job_id, rows, truncate, self.progress(), self.eta())
            except Exception as exc:  # noqa: BLE001 - kept for the next try
                log.warning("job %s: %d epoch row(s) not written yet (%s)", self.job_id, len(rows), exc)
                return False
            if not written:  # the job was deleted: its rows have nowhere to go, and training stops
                self.deleted = True
                self._cancelled.set()
                with self._lock:
                    self._pending, self._truncate_after = [], None
                return True
            with self._lock:
                self._pending, self._truncate_after = self._pending[len(rows) :], None
                return not self._pending

    def flush_or_raise(self) -> None:
        def once() -> None:
            if not self.flush():
                raise RuntimeError("epoch rows not written")

        with_retries(f"job {self.job_id}: writing epoch rows", once)

    def beat(self) -> None:
        """One heartbeat: refresh it, read the cancel flag, write buffered rows."""
        try:
            with self.make_session() as s:
                state = heartbeat(s, self.job_id, self.progress(), self.eta())
        except Exception as exc:  # noqa: BLE001 - training goes on; the next beat tries again
            log.warning("job %s: heartbeat failed (%s: %s)", self.job_id, type(exc).__name__, exc)
            return
        if state is None:
            self.deleted = True
        if state is None or state[1] or state[0] != "running":
            self._cancelled.set()  # cancel requested, deleted, or taken from us
        self.flush()

    def _beat(self) -> None:
        while True:
            self._wake.wait(self.heartbeat_every)
            self._wake.clear()
            if self._done.is_set():
                return
            self.beat()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._done.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(30)


class TrainingThread:
    """Training (and export) of one job in a daemon thread, so that the worker's main thread stays
    free to notice a cancel or a SIGTERM while one long step runs in torch (a signal handler only
    runs between Python bytecodes of the main thread). Nothing is added to the training loop."""

    #: Threads whose step was abandoned, still running it (the process exits or waits for them).
    abandoned: list[threading.Thread] = []

    def __init__(self, target: Callable[[], T], name: str) -> None:
        self.result: T | None = None
        self.error: BaseException | None = None
        self.done = threading.Event()
        self.given_up = threading.Event()  # set when abandoned: the thread must not start anything new
        self._target = target
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _run(self) -> None:
        try:
            self.result = self._target()
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread, which raises it
            self.error = exc
        finally:
            self.done.set()

    def start(self) -> TrainingThread:
        self.thread.start()
        return self

    def wait(self, stop_reason: Callable[[], str | None], grace: float, poll: float = 0.1) -> str | None:
        """Wait for the thread to end; None when it did. When ``stop_reason()`` names a reason
        (``cancel``, ``shutdown``) and the thread is still running ``grace`` seconds later (it is in
        a long step: ``should_stop`` is only consulted between steps), it is abandoned and the
        reason returned."""
        asked_at: float | None = None
        while not self.done.wait(poll):
            if asked_at is None:
                if stop_reason() is not None:
                    asked_at = time.monotonic()
            elif time.monotonic() - asked_at >= grace:
                self.given_up.set()
                alive = [t for t in TrainingThread.abandoned if t.is_alive()]
                TrainingThread.abandoned[:] = [*alive, self.thread]
                return stop_reason() or "cancel"
        return None


def abandoned_training_alive() -> bool:
    """Whether a thread whose step was abandoned (see :class:`TrainingThread`) still runs it."""
    return any(t.is_alive() for t in TrainingThread.abandoned)


def _remove_checkpoints(job_dir: Path) -> None:
    shutil.rmtree(job_dir / "checkpoint", ignore_errors=True)


def job_gone(make_session: sessionmaker[Session], job_id: int) -> bool:
    """Whether the job's row is gone (deleted); False when the store cannot say (it is away)."""
    try:
        with make_session() as s:
            return not job_exists(s, job_id)
    except Exception as exc:  # noqa: BLE001 - unknown: keep what was written
        log.warning("job %s: cannot tell whether it still exists (%s)", job_id, exc)
        return False


def _remove_if_deleted(make_session: sessionmaker[Session], job_id: int, job_dir: Path) -> None:
    """After a job ended here: when it was deleted meanwhile (DELETE /api/jobs/{id} removes its folder,
    but this worker may have written checkpoints or model files after that), remove what it left."""
    if job_dir.exists() and job_gone(make_session, job_id):
        shutil.rmtree(job_dir, ignore_errors=True)
        log.info("job %s was deleted while it ran; its folder %s is removed", job_id, job_dir)


def run_job(
    job_id: int,
    settings: Settings,
    make_session: sessionmaker[Session],
    shutting_down: Callable[[], bool] = lambda: False,
    requeue: Callable[[int], None] | None = None,
) -> str:
    """Run job ``job_id`` to its end; returns the status it ended in (or ``skipped``, or ``passed on``:
    this worker cannot run it and handed it back unclaimed for a live worker that can).

    ``requeue`` is called after a graceful hand-back (the job's outbox row is already committed):
    it should publish the outbox at once so that another worker takes the job without waiting.
    """

    def load() -> dict | None:
        with make_session() as s:
            job = s.get(Job, job_id)
            return None if job is None else dict(job.config)

    stored = with_retries(f"job {job_id}: reading it", load, 60)
    if stored is None:
        log.warning("job %s does not exist (deleted?); skipping", job_id)
        return "skipped"
    try:
        config: TrainConfig | None = TrainConfig.model_validate(stored)
        if settings.data_root and not config.data_root:
            config = config.model_copy(update={"data_root": settings.data_root})
        if config.init_weights:  # weights:ID → the uploaded file in the artifact store
            from store.weights import weights_file

            ref = config.init_weights

            def find() -> str:
                with make_session() as s:
                    return weights_file(s, ref, settings.artifact_dir)

            path = with_retries(f"job {job_id}: finding its init_weights", find, 60)
            if path is None:
                raise ValueError(f"init_weights {ref} does not exist (deleted?)")
            config = config.model_copy(update={"init_weights": path})
        device = resolved_device(config.device)
        invalid = None
    except ValueError as exc:  # stored before a rule changed: the job fails with the reason below
        config, device, invalid = None, str(stored.get("device")), exc

    callbacks = JobCallbacks(make_session, job_id, shutting_down, settings.heartbeat_every)

    def claim() -> int | None:
        with make_session() as s:
            if not claim_job(s, job_id, worker_host(), device):
                return None
            job = s.get(Job, job_id, populate_existing=True)
            return None if job is None else job.attempts  # None: deleted right after the claim

    # A job only another live worker can run (its device, data set) goes back unclaimed (worker/fleet.py).
    if config is not None and pass_on(job_id, stored, settings, make_session, requeue):
        return "passed on"
    attempts = claim()
    if attempts is None:
        log.info("job %s is not queued (cancelled, finished or running elsewhere); skipping", job_id)
        return "skipped"

    def end(status: str, error: str | None = None) -> None:
        def once() -> None:
            with make_session() as s:
                finish_job(s, job_id, status, error=error)

        with_retries(f"job {job_id}: ending it {status}", once)

    job_dir = Path(settings.artifact_dir) / str(job_id)

    def train_and_export() -> tuple:
        fitted = fit(config, callbacks, checkpoint_dir=str(job_dir / "checkpoint"), resume=attempts > 1)
        if training.given_up.is_set():  # abandoned in its last step: its job already ended
            raise TrainingStopped(callbacks.epochs_reported)
        return fitted, export_slim(fitted, job_dir)

    def stop_reason() -> str | None:
        return "shutdown" if shutting_down() else "cancel" if callbacks.cancelled else None

    training = TrainingThread(train_and_export, f"proxns-train-{job_id}")
    abandoned: str | None = None
    callbacks.start()
    try:
        if config is None:
            raise invalid
        log.info("job %s running (attempt %s) on %s", job_id, attempts, device)
        abandoned = training.start().wait(stop_reason, settings.stop_grace)
        if abandoned is not None:
            # Mid-step after the grace period: end the job now from this thread; the training thread
            # finishes its step in the background and stops at the next should_stop.
            log.warning(
                "job %s: training did not stop at a step boundary within %.1f s of the %s; "
                "abandoning its step (%s finished epochs kept)",
                job_id,
                settings.stop_grace,
                abandoned,
                callbacks.epochs_reported,
            )
            raise TrainingStopped(callbacks.epochs_reported)
        if training.error is not None:
            raise training.error
        fitted, files = training.result
        root = Path(settings.artifact_dir).resolve()
        for f in files:
            path = Path(f["path"]).resolve()
            # Stored relative to the artifact store, so hosts may mount it at different paths.
            f["path"] = str(path.relative_to(root)) if path.is_relative_to(root) else str(path)
        callbacks.stop()
        callbacks.flush_or_raise()

        def store_result() -> str:
            with make_session() as s:
                return save_result(s, job_id, fitted.result, files)

        status = with_retries(f"job {job_id}: storing its result", store_result)
        if status == "succeeded" and not settings.keep_checkpoints:
            _remove_checkpoints(job_dir)
        log.info("job %s %s: acc_slim %.4f", job_id, status, fitted.result.acc_slim)
        return status
    except TrainingStopped as stop:
        reason = abandoned or callbacks.stop_reason
        callbacks.stop()
        callbacks.flush_or_raise()
        if reason == "shutdown":

            def hand_back() -> bool:
                with make_session() as s:
                    return requeue_job(s, job_id)

            if with_retries(f"job {job_id}: handing it back", hand_back):
                if requeue is not None:
                    requeue(job_id)
                log.info(
                    "job %s handed back to the queue after %s epochs (worker shutting down)",
                    job_id,
                    stop.epochs_done,
                )
                return "queued"
            return "cancelled"
        if callbacks.deleted or job_gone(make_session, job_id):
            log.info("job %s was deleted after %s epochs; stopped", job_id, stop.epochs_done)
            return "deleted"
        end("cancelled")
        log.info("job %s cancelled after %s epochs", job_id, stop.epochs_done)
        return "cancelled"
    except Exception as exc:
        callbacks.stop()
        if callbacks.deleted or job_gone(make_session, job_id):
            # Deleted while it ran: its folder may have vanished under it (a failed write) and its
            # rows cannot be written; nothing to report.
            log.info("job %s was deleted while it ran; stopped (%s: %s)", job_id, type(exc).__name__, exc)
            return "deleted"
        if disk_full(exc, Path(settings.artifact_dir)):
            log.error("job %s failed: %s (%s)", job_id, DISK_FULL, exc)
            shutil.rmtree(job_dir, ignore_errors=True)  # its partial files; frees what it can
            end("failed", f"{DISK_FULL}: {exc}")
            return "failed"
        log.exception("job %s failed", job_id)
        try:
            callbacks.flush_or_raise()
        except Exception:  # noqa: BLE001 - the failure below matters more than the rows
            log.exception("job %s: epoch rows lost", job_id)
        end("failed", f"{type(exc).__name__}: {exc}")
        return "failed"
    finally:
        callbacks.stop()
        _after_abandoned_step(training, job_id, shutting_down)
        _remove_if_deleted(make_session, job_id, job_dir)


def _after_abandoned_step(training: TrainingThread, job_id: int, shutting_down: Callable[[], bool]) -> None:
    """After a job whose step was abandoned: a worker that goes on waits until the training thread
    has stopped (at its next step boundary), so that it never trains two jobs at once; a worker that
    is shutting down does not wait (the process exits, see ``worker.app``)."""
    if not training.given_up.is_set() or training.done.is_set():
        return
    log.info("job %s: waiting for its abandoned step to end before taking another job", job_id)
    t0 = time.monotonic()
    while not training.done.wait(0.2):
        if shutting_down():
            return
    log.info("job %s: its abandoned step ended after %.1f s more", job_id, time.monotonic() - t0)

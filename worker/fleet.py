"""This worker's entry in the fleet: its devices and the data sets it can load, kept fresh.

At ``worker_ready`` the worker probes its devices once (the CPU; each CUDA card it sees: name,
memory, bf16) and writes its row in the ``workers`` table; a daemon thread then refreshes the row
(and re-reads which data sets are on disk: a job with ``download`` may have fetched one) every
``worker_heartbeat_every`` seconds, never from the training loop. A clean shutdown deletes the row;
a killed worker's row stops being refreshed and the API stops counting it after
``worker_live_grace`` seconds.

The API refuses a config no live worker can run (``api/fleet.py``); the data sets a worker can load
are listed per data folder it may read: its default (``PROXNS_DATA_ROOT``, else ./data) and each of
``PROXNS_DATA_ROOTS``.

All workers consume one queue, so a worker may receive a job only another worker can run (a ``cuda``
job on a CPU-only worker, a data set it lacks). Before claiming a job the runner asks
:func:`pass_on`: a job this worker cannot run (by the same rules as the API, ``store/capabilities.py``)
goes back to the queue unclaimed (no attempt counted) after ``worker_pass_on_delay`` seconds, when
another live worker can run it; when none can, the worker runs it as before and it fails with the
reason training gives (no endless ping-pong).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from celery.signals import worker_ready, worker_shutdown
from sqlalchemy.orm import Session, sessionmaker

from proxns_core.measure import cpu_name
from proxns_core.spec import DATASETS, dataset_status, resolve_data_root
from store.capabilities import WorkerInfo, can_run, fleet_problems
from store.fleet import aware, list_workers, pass_on_job, register_worker, remove_worker
from store.settings import Settings

log = logging.getLogger("proxns.worker")


def _memory_bytes() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 0


def probe_devices() -> list[dict[str, Any]]:
    """The CPU, then every CUDA card this process sees (after CUDA_VISIBLE_DEVICES), index as torch
    numbers it: ``{"type", "index", "name", "memory_bytes", "bf16"}``."""
    import torch

    devices: list[dict[str, Any]] = [
        {"type": "cpu", "index": None, "name": cpu_name(), "memory_bytes": _memory_bytes(), "bf16": True}
    ]
    if torch.cuda.is_available():
        for index in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(index)
            with torch.cuda.device(index):
                bf16 = torch.cuda.is_bf16_supported(including_emulation=False)
            devices.append(
                {
                    "type": "cuda",
                    "index": index,
                    "name": torch.cuda.get_device_name(index),
                    "memory_bytes": int(props.total_memory),
                    "bf16": bool(bf16),
                }
            )
    return devices


def data_roots(settings: Settings) -> list[tuple[Path, bool]]:
    """The data folders this worker reads, resolved, with whether each is its default."""
    default = Path(os.path.realpath(resolve_data_root(settings.data_root)))
    roots = [(default, True)]
    for root in settings.allowed_data_roots():
        if root != default and all(root != r for r, _ in roots):
            roots.append((root, False))
    return roots


def probe_datasets(settings: Settings) -> list[dict[str, Any]]:
    """Per data folder: ``{"root", "default", "datasets"}``, the data sets loadable there without a
    download (digits and synthetic always)."""
    return [
        {
            "root": str(root),
            "default": default,
            "datasets": [name for name in DATASETS if dataset_status(name, str(root))[0]],
        }
        for root, default in data_roots(settings)
    ]


class FleetEntry:
    """This worker process's row in the ``workers`` table, refreshed from a daemon thread."""

    def __init__(self, sessions: sessionmaker[Session], settings: Settings) -> None:
        self.sessions = sessions
        self.settings = settings
        self.instance = uuid.uuid4().hex
        self.name = f"proxns@{socket.gethostname()}"
        self.devices: list[dict[str, Any]] = []
        self.datasets: list[dict[str, Any]] = []  # as last probed (each fleet heartbeat)
        self.started_at = datetime.now(UTC)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def beat(self) -> bool:
        """Write the row once (one try); False when the database did not take it."""
        try:
            self.datasets = probe_datasets(self.settings)
            with self.sessions() as s:
                register_worker(
                    s,
                    self.instance,
                    name=self.name,
                    hostname=socket.gethostname(),
                    pid=os.getpid(),
                    devices=self.devices,
                    datasets=self.datasets,
                    forget_after=timedelta(seconds=self.settings.worker_forget_after),
                )
            return True
        except Exception as exc:  # noqa: BLE001 - the next beat tries again
            log.warning("fleet heartbeat not written (%s: %s)", type(exc).__name__, exc)
            return False

    def _run(self) -> None:
        while not self._stop.wait(self.settings.worker_heartbeat_every):
            self.beat()

    def start(self, name: str | None = None) -> FleetEntry:
        """Probe the devices, register, and refresh from a daemon thread until :meth:`stop`."""
        if name:
            self.name = name
        override = self.settings.worker_devices_override
        self.devices = [dict(d) for d in override] if override is not None else probe_devices()
        if self.beat():
            offered = ", ".join(
                d["name"] if d["type"] == "cpu" else f"cuda:{d['index']} {d['name']}" for d in self.devices
            )
            log.info("registered in the fleet as %s: %s", self.name, offered)
        self._thread = threading.Thread(target=self._run, name="proxns-fleet", daemon=True)
        self._thread.start()
        global current
        current = self
        return self

    def info(self, reprobe: bool = False) -> WorkerInfo:
        """What this worker offers, as its row says (devices probed once; data sets as of the last
        heartbeat, or probed now with ``reprobe``: a download may have added one)."""
        if reprobe or not self.datasets:
            self.datasets = probe_datasets(self.settings)
        now = datetime.now(UTC)
        return WorkerInfo(
            name=self.name,
            hostname=socket.gethostname(),
            pid=os.getpid(),
            devices=tuple(self.devices),
            datasets=tuple(self.datasets),
            started_at=self.started_at,
            last_seen=now,
            instance=self.instance,
        )

    def stop(self, wait: float = 3.0) -> None:
        """Stop refreshing and delete the row: one try, waited for at most ``wait`` seconds, so that a
        database that is away never holds a shutdown up (a row left behind goes stale)."""
        self._stop.set()
        if self._thread is not None and self._thread.is_alive():
            self._thread.join(wait)

        def remove() -> None:
            try:
                with self.sessions() as s:
                    remove_worker(s, self.instance)
            except Exception as exc:  # noqa: BLE001 - the row goes stale after worker_live_grace
                log.warning("fleet row not removed (%s: %s)", type(exc).__name__, exc)

        remover = threading.Thread(target=remove, name="proxns-fleet-leave", daemon=True)
        remover.start()
        remover.join(wait)


#: This process's entry once registered (:meth:`FleetEntry.start`); None outside a Celery worker.
current: FleetEntry | None = None


def pass_on(
    job_id: int,
    config: Mapping[str, Any],
    settings: Settings,
    sessions: sessionmaker[Session],
    requeue: Callable[[int], None] | None = None,
) -> bool:
    """Before claiming job ``job_id`` (its stored ``config``): True when this worker cannot run it and
    handed it back to the queue, unclaimed, for another live worker that can. False (claim and run it
    here) when this worker can, when it is no registered worker (``run_job`` called directly), when no
    other live worker can either (it then fails here with training's reason, as before), or when the
    workers table cannot be read.

    The hand-back waits ``worker_pass_on_delay`` seconds (so that two workers never spin on one
    message; meanwhile the other consumers take what is queued), then writes an outbox row while the
    job is still queued and publishes it through ``requeue`` (the reconciler otherwise). The message
    that brought the job is acknowledged only after that, when the task returns."""
    entry = current
    if entry is None or not entry.devices:
        return False
    if can_run(entry.info(), config) or can_run(entry.info(reprobe=True), config):
        return False
    me = entry.info()
    why = fleet_problems(config, [me])
    reason = why[0]["msg"] if why else "it needs what this worker lacks"
    try:
        with sessions() as s:
            rows = list_workers(s)
    except Exception as exc:  # noqa: BLE001 - cannot tell: run it here, as before
        log.warning("job %s: this worker cannot run it (%s); workers not readable (%s)", job_id, reason, exc)
        return False
    now = datetime.now(UTC)
    able = [
        w.name
        for w in (WorkerInfo.of(r) for r in rows)
        if w.instance != entry.instance
        and (now - aware(w.last_seen)).total_seconds() <= settings.worker_live_grace
        and can_run(w, config)
    ]
    if not able:
        log.warning(
            "job %s: this worker cannot run it (%s) and no other live worker can: running it here",
            job_id,
            reason,
        )
        return False
    log.info(
        "job %s: this worker cannot run it (%s); passing it on to a live worker that can (%s)",
        job_id,
        reason,
        ", ".join(sorted(set(able))),
    )
    time.sleep(settings.worker_pass_on_delay)
    try:
        with sessions() as s:
            written = pass_on_job(s, job_id)
    except Exception as exc:  # noqa: BLE001 - the database is away: claim it as before
        log.warning("job %s: not handed back (%s); running it here", job_id, exc)
        return False
    if written and requeue is not None:
        requeue(job_id)
    if not written:
        log.info("job %s is no longer queued (cancelled, or taken elsewhere)", job_id)
    return True


def connect(sessions: sessionmaker[Session], settings: Settings) -> FleetEntry:
    """Register at Celery's ``worker_ready`` (under its node name) and leave at ``worker_shutdown``."""
    entry = FleetEntry(sessions, settings)

    def ready(sender: Any = None, **_kwargs: Any) -> None:
        entry.start(getattr(sender, "hostname", None))

    def shutdown(**_kwargs: Any) -> None:
        entry.stop()

    worker_ready.connect(ready, weak=False)
    worker_shutdown.connect(shutdown, weak=False)
    return entry

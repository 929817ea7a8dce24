"""What the live workers can run: refuse a config none of them can, say why a queued job waits.

Workers register their devices and data sets in the ``workers`` table (``worker/fleet.py``). A
worker seen within ``worker_live_grace`` seconds is live. Each API app keeps the rows it read for
``fleet_cache_seconds`` (:class:`FleetCache`, one small query at most that often), and hands the
cache to its sessions (``Session.info["fleet"]``) so that the routes and ``job_dict`` find it from
the session they already have.

- :func:`check_fleet` (after ``check_configs`` on submission): with live workers, a config none of
  them can run is a 422 naming the field (``device``, ``dataset``, ``precision``, or the whole config
  when each part is offered but by different workers) and what the workers offer. With no live
  worker the job is accepted and waits, saying why (:func:`waiting_reason`).
- A config's needs: its device (``cpu``: any worker; ``cuda``: a CUDA card; ``cuda:N``: more than N
  cards in one worker; ``auto``: any), its data set in its ``data_root`` (the worker's default folder
  when unset; a folder below one a worker lists cannot be checked and is let through), and its
  precision (``fp16`` needs a card; ``bf16`` on a card needs a card with bf16).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel
from sqlalchemy.orm import Session, object_session, sessionmaker

from store.fleet import aware, list_workers
from store.settings import Settings

#: The fields of a config that decide where it can run.
NEEDS = ("device", "dataset", "data_root", "precision", "download")
NO_WORKER = "no worker is registered yet: the job starts once one is (proxns worker)"


@dataclass(frozen=True)
class WorkerInfo:
    """One registered worker as the API read it."""

    name: str
    hostname: str
    pid: int
    devices: tuple[dict[str, Any], ...]
    datasets: tuple[dict[str, Any], ...]
    started_at: datetime
    last_seen: datetime

    def cuda(self) -> list[dict[str, Any]]:
        return [d for d in self.devices if d.get("type") == "cuda"]

    def datasets_in(self, data_root: str | None) -> set[str] | None:
        """The data sets this worker can load from ``data_root`` (its default folder when None); None
        when it lists no such folder but one containing it (it may be there: not checkable)."""
        if data_root is None:
            entry = next((e for e in self.datasets if e.get("default")), None)
            return set(entry["datasets"]) if entry else set()
        try:
            wanted = Path(os.path.realpath(Path(data_root).expanduser()))
        except (OSError, ValueError):
            return set()
        for entry in self.datasets:
            if Path(entry["root"]) == wanted:
                return set(entry["datasets"])
        if any(wanted.is_relative_to(Path(e["root"])) for e in self.datasets):
            return None
        return {"digits", "synthetic"}  # bundled or generated: no folder needed


@dataclass(frozen=True)
class Fleet:
    """The registered workers at one moment, and which of them are live."""

    workers: tuple[WorkerInfo, ...]
    read_at: datetime
    grace: float

    def live(self) -> list[WorkerInfo]:
        return [w for w in self.workers if (self.read_at - w.last_seen).total_seconds() <= self.grace]

    def idle_reason(self) -> str | None:
        """Why no job can start now (no worker registered, none live); None when some is live."""
        if not self.workers:
            return NO_WORKER
        if self.live():
            return None
        newest = max(w.last_seen for w in self.workers)
        ago = int((self.read_at - newest).total_seconds())
        return (
            f"no live worker: {len(self.workers)} registered, the last seen {ago} s ago; the job starts "
            "once one is back"
        )


class FleetCache:
    """The workers one app read, reused for ``ttl`` seconds (one small query at most that often)."""

    def __init__(self, sessions: sessionmaker[Session], settings: Settings) -> None:
        self.sessions = sessions
        self.ttl = settings.fleet_cache_seconds
        self.grace = settings.worker_live_grace
        self._lock = threading.Lock()
        self._fleet: Fleet | None = None
        self._read = 0.0

    @classmethod
    def attach(cls, sessions: sessionmaker[Session], settings: Settings) -> FleetCache:
        """A cache for ``sessions``' database, found by every session they make (``info["fleet"]``)."""
        cache = cls(sessions, settings)
        sessions.configure(info={"fleet": cache})
        return cache

    def get(self) -> Fleet:
        with self._lock:
            if self._fleet is None or time.monotonic() - self._read >= self.ttl:
                with self.sessions() as s:
                    rows = list_workers(s)
                    workers = tuple(
                        WorkerInfo(
                            name=w.name,
                            hostname=w.hostname,
                            pid=w.pid,
                            devices=tuple(w.devices or ()),
                            datasets=tuple(w.datasets or ()),
                            started_at=aware(w.started_at),
                            last_seen=aware(w.last_seen),
                        )
                        for w in rows
                    )
                self._read = time.monotonic()
                self._fleet = Fleet(workers, datetime.now(UTC), self.grace)
                return self._fleet
            # Live-ness moves with the clock even while the rows are reused.
            return Fleet(self._fleet.workers, datetime.now(UTC), self.grace)


def fleet_of(session: Session | None) -> FleetCache | None:
    return None if session is None else session.info.get("fleet")


# --------------------------------------------------------------------------- matching


def _needs(config: BaseModel | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(config, BaseModel):
        return {k: getattr(config, k, None) for k in NEEDS}
    return {k: config.get(k) for k in NEEDS}


def _device_ok(w: WorkerInfo, device: str | None) -> bool:
    device = device or "auto"
    if device in ("auto", "cpu"):
        return True
    cards = len(w.cuda())
    if device == "cuda":
        return cards > 0
    return cards > int(device.split(":", 1)[1])


def _card(w: WorkerInfo, device: str) -> dict[str, Any] | None:
    """The card a config's device lands on in this worker (cuda is its first card; auto too)."""
    index = int(device.split(":", 1)[1]) if device.startswith("cuda:") else 0
    return next((d for d in w.cuda() if d.get("index") == index), None)


def _precision_ok(w: WorkerInfo, device: str | None, precision: str | None) -> bool:
    device, precision = device or "auto", precision or "auto"
    if precision in ("auto", "fp32") or device == "cpu":
        return True
    card = _card(w, device)
    if precision == "fp16":
        return card is not None
    # bf16: fine on the CPU (auto on a worker without cards), needs bf16 arithmetic on a card.
    if card is None:
        return device == "auto" or not device.startswith("cuda")
    return bool(card.get("bf16"))


def _dataset_ok(w: WorkerInfo, dataset: str | None, data_root: str | None) -> bool:
    offered = w.datasets_in(data_root)
    return offered is None or dataset in offered


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _offered_devices(live: list[WorkerInfo]) -> str:
    """``cpu (2 workers)``, or ``cpu (3 workers), cuda on 1 worker (at most 2 cards each: NVIDIA H100
    80GB HBM3 (bf16) x2)``."""
    parts = [f"cpu ({_plural(len(live), 'worker')})"]
    with_cards = [w for w in live if w.cuda()]
    if with_cards:
        counts: dict[str, int] = {}
        for w in with_cards:
            for d in w.cuda():
                name = f"{d.get('name')}{' (bf16)' if d.get('bf16') else ''}"
                counts[name] = counts.get(name, 0) + 1
        cards = ", ".join(f"{name} x{n}" for name, n in counts.items())
        most = max(len(w.cuda()) for w in with_cards)
        parts.append(
            f"cuda on {_plural(len(with_cards), 'worker')} (at most {_plural(most, 'card')} each: {cards})"
        )
    return ", ".join(parts)


def _offered_datasets(live: list[WorkerInfo], data_root: str | None) -> str:
    names: set[str] = set()
    for w in live:
        names |= w.datasets_in(data_root) or set()
    where = "" if data_root is None else " in that data_root"
    return f"workers offer{where} {', '.join(sorted(names)) or 'none'}"


def fleet_problems(
    config: BaseModel | Mapping[str, Any], live: list[WorkerInfo], loc: tuple = ("body",)
) -> list[dict[str, Any]]:
    """Why no worker in ``live`` (non-empty) can run ``config``, as validation errors at ``loc``."""
    need = _needs(config)
    device, precision = need["device"] or "auto", need["precision"] or "auto"
    dataset, data_root = need["dataset"], need["data_root"]
    errors: list[dict[str, Any]] = []

    def has_data(w: WorkerInfo) -> bool:
        # download: true lets the worker fetch a missing torchvision data set: any worker may take it
        return bool(need["download"]) or _dataset_ok(w, dataset, data_root)

    def refuse(field: str | None, msg: str, value: Any) -> None:
        where = (*loc, field) if field else loc
        errors.append({"type": "no_worker_can_run", "loc": where, "msg": msg, "input": value})

    devices = _offered_devices(live)
    with_device = [w for w in live if _device_ok(w, device)]
    if not with_device:
        if device == "cuda":
            refuse("device", f"device 'cuda' needs a GPU: live workers offer {devices}", device)
        else:
            n = int(device.split(":", 1)[1]) + 1
            msg = f"device {device!r} needs {_plural(n, 'GPU')} in one worker: live workers offer {devices}"
            refuse("device", msg, device)
    elif not any(_precision_ok(w, device, precision) for w in with_device):
        if precision == "fp16":
            msg = f"precision 'fp16' needs a CUDA device: live workers offer {devices}"
        else:
            msg = f"precision 'bf16' on device {device} needs a card with bf16: live workers offer {devices}"
        refuse("precision", msg, precision)
    if not any(has_data(w) for w in live):
        refuse(
            "dataset",
            f"dataset {dataset!r} is not on any live worker: {_offered_datasets(live, data_root)} "
            "(a worker lists the data sets found in its data folders)",
            dataset,
        )
    if not errors and not any(
        _device_ok(w, device) and _precision_ok(w, device, precision) and has_data(w) for w in live
    ):
        refuse(
            None,
            f"no live worker offers device {device!r}, precision {precision!r} and dataset {dataset!r} "
            f"together: live workers offer {devices}; {_offered_datasets(live, data_root)}",
            {"device": device, "precision": precision, "dataset": dataset},
        )
    return errors


def check_fleet(configs: Iterable[BaseModel], db: Session, loc: tuple = ("body",)) -> None:
    """422 listing why no live worker can run each config (each reason once); nothing when no worker
    is live (the jobs wait, :func:`waiting_reason` says why) or the app keeps no fleet."""
    cache = fleet_of(db)
    if cache is None:
        return
    live = cache.get().live()
    if not live:
        return
    found: dict[tuple, dict[str, Any]] = {}
    for config in configs:
        for err in fleet_problems(config, live, loc):
            found.setdefault((err["loc"], err["msg"]), err)
    if found:
        raise RequestValidationError(list(found.values()))


def waiting_reason(job: Any) -> str | None:
    """Why a queued job cannot start now: no worker registered or live, or none of the live ones can
    run its config. None for a job that is not queued, or that a live worker can take."""
    if job.status != "queued":
        return None
    cache = fleet_of(object_session(job))
    if cache is None:
        return None
    fleet = cache.get()
    reason = fleet.idle_reason()
    if reason is not None:
        return reason
    problems = fleet_problems(job.config or {}, fleet.live())
    return f"no live worker can run it: {problems[0]['msg']}" if problems else None


# --------------------------------------------------------------------------- /api/meta


def fleet_summary(fleet: Fleet) -> dict[str, Any]:
    """The fleet as GET /api/meta serves it: every registered worker (no server paths) and, over the
    live ones, the devices and the data sets (in their default data folders) they offer."""
    live = fleet.live()
    live_ids = {id(w) for w in live}
    devices: dict[tuple, dict[str, Any]] = {}
    datasets: set[str] = set()
    for w in live:
        datasets |= w.datasets_in(None) or set()
        for d in w.devices:
            key = (d.get("type"), d.get("name"), d.get("memory_bytes"), d.get("bf16"))
            entry = devices.setdefault(
                key,
                {
                    "type": d.get("type"),
                    "name": d.get("name"),
                    "memory_bytes": d.get("memory_bytes"),
                    "bf16": d.get("bf16"),
                    "count": 0,
                    "workers": 0,
                },
            )
            entry["count"] += 1
        for key in {(d.get("type"), d.get("name"), d.get("memory_bytes"), d.get("bf16")) for d in w.devices}:
            devices[key]["workers"] += 1
    most_cards = max((len(w.cuda()) for w in live), default=0)
    return {
        "live_workers": len(live),
        "registered_workers": len(fleet.workers),
        "live_grace_seconds": fleet.grace,
        "waiting_reason": fleet.idle_reason(),
        "device_types": sorted({d["type"] for d in devices.values()}),
        "devices": sorted(devices.values(), key=lambda d: (d["type"] != "cpu", str(d["name"]))),
        "max_cuda_devices": most_cards,
        "datasets": sorted(datasets),
        "workers": [
            {
                "name": w.name,
                "hostname": w.hostname,
                "pid": w.pid,
                "live": id(w) in live_ids,
                "started_at": w.started_at.isoformat(),
                "last_seen": w.last_seen.isoformat(),
                "devices": list(w.devices),
                "datasets": sorted(w.datasets_in(None) or set()),
            }
            for w in fleet.workers
        ],
    }

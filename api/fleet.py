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
  precision (``fp16`` needs a card; ``bf16`` on a card needs a card with bf16). These rules live in
  ``store/capabilities.py``, shared with the workers: a worker passes on a job it cannot run.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel
from sqlalchemy.orm import Session, object_session, sessionmaker

# The matching rules are shared with the workers (a worker passes on a job it cannot run).
from store.capabilities import WorkerInfo, fleet_problems
from store.fleet import list_workers
from store.settings import Settings

NO_WORKER = "no worker is registered yet: the job starts once one is (proxns worker)"


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
                    workers = tuple(WorkerInfo.of(w) for w in rows)
                self._read = time.monotonic()
                self._fleet = Fleet(workers, datetime.now(UTC), self.grace)
                return self._fleet
            # Live-ness moves with the clock even while the rows are reused.
            return Fleet(self._fleet.workers, datetime.now(UTC), self.grace)


def fleet_of(session: Session | None) -> FleetCache | None:
    return None if session is None else session.info.get("fleet")


# --------------------------------------------------------------------------- matching
# WorkerInfo, NEEDS and fleet_problems live in store/capabilities.py (shared with the workers).


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

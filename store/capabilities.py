"""Can this worker run this config: the capability record of a worker and the matching rules.

Torch-free and free of FastAPI and Celery, so that both rooms use the same rules: the API refuses a
config no live worker can run (``api/fleet.py``); a worker that receives a job it cannot run passes
it on to a live worker that can (``worker/fleet.py``).

A config's needs: its device (``cpu``: any worker; ``cuda``: a CUDA card; ``cuda:N``: more than N cards
in one worker; ``auto``: any), its data set in its ``data_root`` (the worker's default folder when
unset; a folder below one a worker lists cannot be checked and is let through; ``download: true``
lets any worker fetch it), and its precision (``fp16`` needs a card; ``bf16`` on a card needs a card
with bf16).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from store.fleet import aware
from store.models import Worker

#: The fields of a config that decide where it can run.
NEEDS = ("device", "dataset", "data_root", "precision", "download")


@dataclass(frozen=True)
class WorkerInfo:
    """One registered worker: what its row in the ``workers`` table says it offers."""

    name: str
    hostname: str
    pid: int
    devices: tuple[dict[str, Any], ...]
    datasets: tuple[dict[str, Any], ...]
    started_at: datetime
    last_seen: datetime
    instance: str = ""

    @classmethod
    def of(cls, row: Worker) -> WorkerInfo:
        """The record of one ``workers`` row."""
        return cls(
            name=row.name,
            hostname=row.hostname,
            pid=row.pid,
            devices=tuple(row.devices or ()),
            datasets=tuple(row.datasets or ()),
            started_at=aware(row.started_at),
            last_seen=aware(row.last_seen),
            instance=row.instance,
        )

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


def needs(config: BaseModel | Mapping[str, Any]) -> dict[str, Any]:
    """The fields of ``config`` (a ``TrainConfig`` or its stored dict) that decide where it runs."""
    if isinstance(config, BaseModel):
        return {k: getattr(config, k, None) for k in NEEDS}
    return {k: config.get(k) for k in NEEDS}


def device_ok(w: WorkerInfo, device: str | None) -> bool:
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


def precision_ok(w: WorkerInfo, device: str | None, precision: str | None) -> bool:
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


def dataset_ok(w: WorkerInfo, dataset: str | None, data_root: str | None) -> bool:
    offered = w.datasets_in(data_root)
    return offered is None or dataset in offered


def can_run(w: WorkerInfo, config: BaseModel | Mapping[str, Any]) -> bool:
    """Whether worker ``w`` offers everything ``config`` needs (device, precision, data set)."""
    need = needs(config)
    device, precision = need["device"] or "auto", need["precision"] or "auto"
    return (
        device_ok(w, device)
        and precision_ok(w, device, precision)
        and (bool(need["download"]) or dataset_ok(w, need["dataset"], need["data_root"]))
    )


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def offered_devices(live: list[WorkerInfo]) -> str:
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


def offered_datasets(live: list[WorkerInfo], data_root: str | None) -> str:
    names: set[str] = set()
    for w in live:
        names |= w.datasets_in(data_root) or set()
    where = "" if data_root is None else " in that data_root"
    return f"workers offer{where} {', '.join(sorted(names)) or 'none'}"


def fleet_problems(
    config: BaseModel | Mapping[str, Any], live: list[WorkerInfo], loc: tuple = ("body",)
) -> list[dict[str, Any]]:
    """Why no worker in ``live`` (non-empty) can run ``config``, as validation errors at ``loc``
    (``type`` ``no_worker_can_run``, ``loc`` the field or the whole config, ``msg``, ``input``)."""
    need = needs(config)
    device, precision = need["device"] or "auto", need["precision"] or "auto"
    dataset, data_root = need["dataset"], need["data_root"]
    errors: list[dict[str, Any]] = []

    def has_data(w: WorkerInfo) -> bool:
        # download: true lets the worker fetch a missing torchvision data set: any worker may take it
        return bool(need["download"]) or dataset_ok(w, dataset, data_root)

    def refuse(field: str | None, msg: str, value: Any) -> None:
        where = (*loc, field) if field else loc
        errors.append({"type": "no_worker_can_run", "loc": where, "msg": msg, "input": value})

    devices = offered_devices(live)
    with_device = [w for w in live if device_ok(w, device)]
    if not with_device:
        if device == "cuda":
            refuse("device", f"device 'cuda' needs a GPU: live workers offer {devices}", device)
        else:
            n = int(device.split(":", 1)[1]) + 1
            msg = f"device {device!r} needs {_plural(n, 'GPU')} in one worker: live workers offer {devices}"
            refuse("device", msg, device)
    elif not any(precision_ok(w, device, precision) for w in with_device):
        if precision == "fp16":
            msg = f"precision 'fp16' needs a CUDA device: live workers offer {devices}"
        else:
            msg = f"precision 'bf16' on device {device} needs a card with bf16: live workers offer {devices}"
        refuse("precision", msg, precision)
    if not any(has_data(w) for w in live):
        refuse(
            "dataset",
            f"dataset {dataset!r} is not on any live worker: {offered_datasets(live, data_root)} "
            "(a worker lists the data sets found in its data folders)",
            dataset,
        )
    if not errors and not any(can_run(w, config) for w in live):
        refuse(
            None,
            f"no live worker offers device {device!r}, precision {precision!r} and dataset {dataset!r} "
            f"together: live workers offer {devices}; {offered_datasets(live, data_root)}",
            {"device": device, "precision": precision, "dataset": dataset},
        )
    return errors


__all__ = [
    "NEEDS",
    "WorkerInfo",
    "can_run",
    "dataset_ok",
    "device_ok",
    "fleet_problems",
    "needs",
    "offered_datasets",
    "offered_devices",
    "precision_ok",
]

"""Finished jobs written straight into a store, for tests of the views that read many results.

Training hundreds of jobs for a test of a plot or a filter would take hours; these rows go through
the real store (its tables, its change counter) as a worker's would, with made-up numbers the test
chooses. No outbox row is written, so no worker ever picks them up. Torch-free.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from proxns_core.spec import EpochMetrics, LayerSparsity, TrainConfig
from store.models import Experiment, Job, Metric, Result, utcnow
from store.queries import commit_jobs


def result_for(config: TrainConfig, acc: float, pruned: float, **extra: Any) -> dict[str, Any]:
    """A plausible result row: ``pruned`` of 64 channels over 4 layers gone, FLOPs and parameters
    shrinking like the channels' square; ``extra`` overrides any field."""
    total = 256
    kept_total = round(total * (1 - pruned))
    per_layer = [kept_total // 4 + (1 if i < kept_total % 4 else 0) for i in range(4)]
    share = kept_total / total
    row = {
        "acc_full": extra.pop("acc_full", min(1.0, acc + 0.01)),
        "acc_slim": acc,
        "acc_finetuned": None,
        "channels_total": total,
        "channels_pruned": total - kept_total,
        "pruned_fraction": (total - kept_total) / total,
        "params_full": 100_000,
        "params_slim": int(100_000 * share**2),
        "flops_full": 5_000_000,
        "flops_slim": int(5_000_000 * share**2),
        "latency_full_ms": 1.0,
        "latency_slim_ms": 1.0 * max(0.1, share),
        "latency": [],
        "layers": [
            {"name": f"features.{3 * i + 1}", "total": 64, "kept": k} for i, k in enumerate(per_layer)
        ],
        "kept_forced": [],
        "num_classes": 10,
        "device": "cpu",
        "device_name": "seeded",
        "precision": "fp32",
        "channels_last": False,
    }
    row.update(extra)
    return row


def epochs_for(config: TrainConfig, final_acc: float, zero: float) -> list[EpochMetrics]:
    """One row per training (and fine-tune) epoch, climbing to ``final_acc`` and ``zero``."""
    total = config.epochs + (config.finetune_epochs or 0)
    rows = []
    for e in range(1, total + 1):
        t = e / total
        finetune = e > config.epochs
        layers = None
        if not finetune:
            zeros = [min(64, round(64 * zero * t * (0.5 + i / 4))) for i in range(4)]
            # hist[0] counts the exact zeros, as the worker's layer_sparsity does; the rest sit in the top bin
            layers = [
                LayerSparsity(name=f"features.{3 * i + 1}", total=64, zeros=z, hist=[z] + [0] * 15 + [64 - z])
                for i, z in enumerate(zeros)
            ]
        rows.append(
            EpochMetrics(
                phase="finetune" if finetune else "train",
                epoch=e,
                epochs=total,
                lr=0.1,
                train_loss=2.0 * (1 - t) + 0.1,
                objective=2.2 * (1 - t) + 0.2,
                test_loss=1.5 * (1 - t) + 0.2,
                test_acc=0.1 + (final_acc - 0.1) * t,
                zero_fraction=zero * t if not finetune else zero,
                seconds=0.5,
                layers=layers,
            )
        )
    return rows


def seed_jobs(
    database_url: str,
    jobs: list[dict[str, Any]],
    experiment: str | None = None,
    owner_id: int | None = None,
) -> tuple[int | None, list[int]]:
    """Write succeeded jobs (and an experiment named ``experiment`` holding them, when given).

    Each item of ``jobs``: ``config`` (a partial TrainConfig), ``acc`` and ``pruned`` (the result),
    optional ``result`` (fields to override), ``zero`` (final share of ξ at zero, default
    ``pruned``), ``status`` (default succeeded; others get no result), ``tags``, ``note``.
    Returns (experiment id or None, job ids in order).
    """
    engine = create_engine(database_url)
    try:
        with Session(engine) as db:
            exp_id = None
            if experiment is not None:
                exp = Experiment(name=experiment, base={}, sweep={}, created_at=utcnow(), owner_id=owner_id)
                db.add(exp)
                db.flush()
                exp_id = exp.id
            ids = []
            now = utcnow()
            for item in jobs:
                config = TrainConfig.model_validate(item["config"])
                status = item.get("status", "succeeded")
                finished = status in ("succeeded", "failed", "cancelled")
                job = Job(
                    owner_id=owner_id,
                    experiment_id=exp_id,
                    config=config.model_dump(mode="json"),
                    method=config.method,
                    status=status,
                    cancel_requested=False,
                    created_at=now - timedelta(minutes=5),
                    started_at=now - timedelta(minutes=4),
                    finished_at=now if finished else None,
                    heartbeat_at=now,
                    attempts=1,
                    progress=1.0 if finished else 0.5,
                    epochs_done=config.epochs + (config.finetune_epochs or 0) if finished else 1,
                    worker_host="seeded",
                    device="cpu",
                    error=item.get("error") if status == "failed" else None,
                    tags=list(item.get("tags", [])),
                    note=item.get("note", ""),
                )
                db.add(job)
                db.flush()
                ids.append(job.id)
                if status == "succeeded":
                    result = result_for(config, item["acc"], item["pruned"], **item.get("result", {}))
                    db.add(Result(job_id=job.id, **result))
                if item.get("metrics", status == "succeeded"):
                    zero = item.get("zero", item.get("pruned", 0.0))
                    for m in epochs_for(config, item.get("acc", 0.5), zero):
                        db.add(Metric(job_id=job.id, **m.model_dump()))
            commit_jobs(db)
            return exp_id, ids
    finally:
        engine.dispose()

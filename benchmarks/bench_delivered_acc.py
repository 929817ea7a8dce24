"""Overhead of the per-epoch "as delivered" accuracy (issue 12): epoch time with it vs without.

One training run per setting; its epochs alternate on / off in the same process (the record is a
private switch of the trainer, training itself is identical either way), and each epoch is timed
whole: steps, schedule, the record (test evaluation, layer histograms, the delivered network:
masked copy, BN re-estimated on ``delivered_bn_batches(steps)`` training batches, test evaluation).
The first two epochs warm up and are dropped; medians. The ratio is the cost of one measurement
against an epoch; where it exceeds 1.10, training records it on spaced epochs only
(``proxns_core.train.delivered_due``), which keeps the run's total within 10 %. On a shared CPU the
wall ratio is noisy: the process CPU-time ratio is printed beside it.

    .venv/bin/python benchmarks/bench_delivered_acc.py [--device cpu|cuda] [--epochs 8] [--only digits]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from proxns_core import train as train_module
from proxns_core.spec import TrainConfig
from proxns_core.train import Callbacks, _Trainer, delivered_bn_batches

SETTINGS = {
    "digits": dict(dataset="digits", arch="vgg", depth=11, width=0.25),
    "synthetic10k": dict(
        dataset="synthetic", arch="vgg", depth=19, width=0.25, train_subset=10000, test_subset=2000
    ),  # CIFAR's 1:5 test:train ratio
}


def bench(name: str, extra: dict, device: str, epochs: int, batches: int | None) -> float:
    config = TrainConfig(
        **extra, method="proxns", lam=0.5, beta=100, epochs=epochs + 1, batch_size=64, lr=0.1, device=device
    )
    if batches is not None:  # a fixed count instead of the rule, to compare
        train_module.delivered_bn_batches = lambda steps: min(batches, steps)
    else:
        train_module.delivered_bn_batches = delivered_bn_batches
    t = _Trainer(config, Callbacks(), None)
    times = {True: [], False: []}
    cpu = {True: [], False: []}  # process CPU time: less sensitive than wall time to a shared machine
    for epoch in range(epochs):
        on = epoch % 2 == 0
        t.record_delivered = "every" if on else False  # the cost of one measurement, every other epoch
        if t.device.type == "cuda":
            torch.cuda.synchronize(t.device)
        t0, c0 = time.perf_counter(), time.process_time()
        t.train_epoch(epoch)
        if t.device.type == "cuda":
            torch.cuda.synchronize(t.device)
        if epoch >= 2:
            times[on].append(time.perf_counter() - t0)
            cpu[on].append(time.process_time() - c0)
    on, off = statistics.median(times[True]), statistics.median(times[False])
    cpu_ratio = statistics.median(cpu[True]) / statistics.median(cpu[False])
    used = train_module.delivered_bn_batches(t.steps_per_epoch)
    print(
        f"{name}: {t.steps_per_epoch} steps/epoch, {len(t.data.y_test)} test images, {used} BN batches; "
        f"epoch {off:.3f} s without, {on:.3f} s with: ratio {on / off:.3f} (CPU time ratio {cpu_ratio:.3f}) "
        f"(epochs timed: {len(times[False])} off, {len(times[True])} on; {t.device})",
        flush=True,
    )
    return on / off


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--epochs", type=int, default=8, help="epochs per setting (alternating; first 2 dropped)")
    p.add_argument("--only", choices=sorted(SETTINGS), default=None)
    p.add_argument("--batches", type=int, default=None, help="fixed BN batches instead of the rule")
    args = p.parse_args()
    for name, extra in SETTINGS.items():
        if args.only in (None, name):
            bench(name, extra, args.device, args.epochs, args.batches)


if __name__ == "__main__":
    main()

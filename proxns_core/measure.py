"""Parameters, FLOPs (multiply-adds of conv and linear layers) and forward latency."""

from __future__ import annotations

import contextlib
import functools
import platform
import statistics
import time
from collections.abc import Mapping, Sequence

import torch
from torch import nn

from .models.layers import ConstantFold
from .spec import INPUT_SIZE, Latency

#: Batch sizes every result's latency is measured at: one image, and a batch the size of training's.
LATENCY_BATCH_SIZES = (1, 64)


def count_params(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def count_flops(model: nn.Module, input_size: int = INPUT_SIZE, channels: int = 3) -> int:
    """Multiply-adds of one image through every conv and linear layer (folded constants included)."""
    total = 0

    def conv_hook(m: nn.Conv2d, _inp, out: torch.Tensor) -> None:
        nonlocal total
        k = m.kernel_size[0] * m.kernel_size[1]
        total += out[0].numel() * (m.in_channels // m.groups) * k

    def fold_hook(m: ConstantFold, _inp, out: torch.Tensor) -> None:
        nonlocal total
        total += out[0].numel() * m.kernel.shape[-1] * m.kernel.shape[-2]

    def linear_hook(m: nn.Linear, _inp, out: torch.Tensor) -> None:
        nonlocal total
        total += m.in_features * m.out_features

    hooks = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            hooks.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, ConstantFold):
            hooks.append(m.register_forward_hook(fold_hook))
        elif isinstance(m, nn.Linear):
            hooks.append(m.register_forward_hook(linear_hook))
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    try:
        model(torch.zeros(1, channels, input_size, input_size, device=device))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return total


@torch.inference_mode()
def measure_latency_ms(
    model: nn.Module,
    batch_size: int = 1,
    input_size: int = INPUT_SIZE,
    repeats: int = 30,
    warmup: int = 5,
    device: torch.device | str | None = None,
) -> float:
    """Median wall time of one eval-mode forward pass of ``model`` (a module or a frozen TorchScript
    module, which has no ``training`` flag), in milliseconds."""
    device = torch.device(device) if device is not None else next(model.parameters()).device
    was_training = getattr(model, "training", False)
    if was_training:
        model.eval()
    x = torch.randn(batch_size, 3, input_size, input_size, device=device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(warmup):
        model(x)
    sync()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        model(x)
        sync()
        times.append((time.perf_counter() - t0) * 1000)
    if was_training:
        model.train()
    return statistics.median(times)


@functools.cache
def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "cpu"


def device_name(device: torch.device | str) -> str:
    """The card's name for a CUDA device, the CPU's model name otherwise."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return cpu_name()


def _quartiles(times: list[float]) -> tuple[float, float, float]:
    if len(times) < 2:
        return times[0], times[0], times[0]
    q1, median, q3 = statistics.quantiles(times, n=4, method="inclusive")
    return q1, median, q3


@torch.inference_mode()
def measure_latencies(
    networks: Mapping[str, nn.Module],
    batch_sizes: Sequence[int] = LATENCY_BATCH_SIZES,
    input_size: int = INPUT_SIZE,
    device: torch.device | str = "cpu",
    repeats: int = 30,
    warmup: int = 5,
    min_repeats: int = 7,
    max_seconds: float = 10.0,
) -> list[Latency]:
    """Latency of each network (``{"full": ..., "slim": ...}``) at each batch size, timed alternately.

    After ``warmup`` passes of every network, each round times every network once, in an order that
    reverses every round, so that slow drifts (clocks, caches, other processes) hit all networks
    alike; ``repeats`` rounds, fewer when a round is slow (at least ``min_repeats``, about
    ``max_seconds`` per batch size). On CUDA each pass is timed by a pair of CUDA events (device
    time; one synchronisation after all rounds), on the CPU by ``time.perf_counter``. Returns median,
    quartiles and minimum per network and batch size: equal networks measure equal within that
    spread.
    """
    device = torch.device(device)
    cuda = device.type == "cuda"
    # CUDA events record on the current device's stream: make it the networks' card.
    with torch.cuda.device(device) if cuda else contextlib.nullcontext():
        sync = torch.cuda.synchronize if cuda else (lambda: None)
        names = list(networks)
        out: list[Latency] = []
        for batch_size in batch_sizes:
            x = torch.randn(batch_size, 3, input_size, input_size, device=device)
            for _ in range(warmup):
                for name in names:
                    networks[name](x)
            sync()
            t0 = time.perf_counter()
            for name in names:
                networks[name](x)
            sync()
            per_round = max(time.perf_counter() - t0, 1e-9)
            rounds = max(min_repeats, min(repeats, int(max_seconds / per_round)))
            times = _time_rounds(networks, x, rounds, cuda)
            for name in names:
                q1, median, q3 = _quartiles(times[name])
                out.append(
                    Latency(
                        network=name,
                        batch_size=batch_size,
                        median_ms=median,
                        q1_ms=q1,
                        q3_ms=q3,
                        min_ms=min(times[name]),
                        repeats=rounds,
                        timer="cuda_events" if cuda else "perf_counter",
                    )
                )
        return out


def _time_rounds(networks: Mapping[str, nn.Module], x: torch.Tensor, rounds: int, cuda: bool) -> dict:
    """Milliseconds of each network's pass over ``x``, ``rounds`` times, the order reversed every
    round; CUDA events read after one synchronisation at the end, else ``perf_counter``."""
    names = list(networks)
    times: dict[str, list] = {name: [] for name in names}
    for r in range(rounds):
        for name in names if r % 2 == 0 else reversed(names):
            if cuda:
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                networks[name](x)
                end.record()
                times[name].append((start, end))
            else:
                t = time.perf_counter()
                networks[name](x)
                times[name].append((time.perf_counter() - t) * 1000)
    if cuda:
        torch.cuda.synchronize(x.device)
        return {name: [s.elapsed_time(e) for s, e in pairs] for name, pairs in times.items()}
    return times

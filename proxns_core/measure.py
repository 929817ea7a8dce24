"""Parameters, FLOPs (multiply-adds of conv and linear layers) and forward latency."""

from __future__ import annotations

import statistics
import time

import torch
from torch import nn

from .models.layers import ConstantFold
from .spec import INPUT_SIZE


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

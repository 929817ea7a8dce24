"""Small building blocks shared by the architectures."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ChannelSelection(nn.Module):
    """Keeps the channels listed in ``indices`` (all of them in an unpruned network)."""

    def __init__(self, num_channels: int, num_kept: int | None = None) -> None:
        super().__init__()
        self.register_buffer("indices", torch.arange(num_kept if num_kept is not None else num_channels))
        self.num_channels = num_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.indices.numel() == self.num_channels:
            return x
        return x.index_select(1, self.indices)


class ConstantFold(nn.Module):
    """The exact contribution of deleted constant channels to a zero-padded convolution.

    A deleted channel that output the constant c feeds ``sum_c W[:, c] * c`` to each output position,
    but only through the kernel taps that land inside the image. Convolving a map of ones with the
    folded kernel reproduces that border-dependent bias exactly, for any input size.
    """

    def __init__(self, out_channels: int, kernel_size: int, stride: int, padding: int) -> None:
        super().__init__()
        self.register_buffer("kernel", torch.zeros(out_channels, 1, kernel_size, kernel_size))
        self.stride = stride
        self.padding = padding
        self._cache: tuple | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The map depends only on the input's size and the kernel: compute it once per size (an extra
        # convolution per layer would cost as much as the FLOPs saved on small, slimmed layers).
        if torch.compiler.is_compiling() or (x.is_cuda and torch.cuda.is_current_stream_capturing()):
            # (While a CUDA graph is captured the map is computed inside it: a cached tensor could be
            # replaced and freed by a later call of another dtype while the graph still reads it.)
            # no Python cache inside a compiled graph (it would recompile per call): the map is an
            # expression of constants there, which inductor folds away when freezing
            return self._bias_map(x)
        key = (x.shape[-2], x.shape[-1], x.device, x.dtype, self.kernel._version, self.kernel.data_ptr())
        if self._cache is None or self._cache[0] != key:
            with torch.no_grad():
                self._cache = (key, self._bias_map(x))
        return self._cache[1]

    def _bias_map(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(torch.ones_like(x[:1, :1]), self.kernel, stride=self.stride, padding=self.padding)

    def __getstate__(self) -> dict:
        state = super().__getstate__().copy()
        state["_cache"] = None  # deepcopy/pickle never carry a map of another kernel
        return state


class FoldableConv2d(nn.Conv2d):
    """Conv2d that can carry a :class:`ConstantFold` for channels deleted from its input."""

    fold: ConstantFold | None

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fold = None

    def add_fold(self) -> ConstantFold:
        """Attach (once) and return the fold module of this convolution."""
        if self.fold is None:
            self.fold = ConstantFold(self.out_channels, self.kernel_size[0], self.stride[0], self.padding[0])
            self.fold.to(self.weight.device, self.weight.dtype)
        return self.fold

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = super().forward(x)
        if self.fold is not None:
            out = out + self.fold(x)
        return out


def init_weights(model: nn.Module) -> None:
    """Initialisation of docs/method.md: BN γ = 0.5, bias 0; He-normal convs; small-normal linear."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.constant_(m.weight, 0.5)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            nn.init.zeros_(m.bias)


def scaled(channels: int, width: float) -> int:
    """Channel count after the width multiplier (at least one)."""
    return max(1, int(round(channels * width)))

"""DenseNet without bottlenecks (depth 3n+4, growth 12) with a channel selection at each BN."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..spec import check_depth
from .layers import ChannelSelection, FoldableConv2d, init_weights, scaled


class DenseLayer(nn.Module):
    """select → BN → ReLU → 3×3 conv producing ``growth`` channels, concatenated to the input."""

    def __init__(self, inplanes: int, kept: int, growth: int) -> None:
        super().__init__()
        self.select = ChannelSelection(inplanes, kept)
        self.bn1 = nn.BatchNorm2d(kept)
        self.conv1 = FoldableConv2d(kept, growth, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(F.relu(self.bn1(self.select(x))))
        return torch.cat((x, out), 1)


class Transition(nn.Module):
    """select → BN → ReLU → 1×1 conv → 2×2 average pooling."""

    def __init__(self, inplanes: int, kept: int, outplanes: int) -> None:
        super().__init__()
        self.select = ChannelSelection(inplanes, kept)
        self.bn1 = nn.BatchNorm2d(kept)
        self.conv1 = FoldableConv2d(kept, outplanes, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(self.conv1(F.relu(self.bn1(self.select(x)))), 2)


def full_outputs(depth: int, width: float = 1.0) -> list[int]:
    """Output channels of the unpruned producers: the stem, then each dense layer and transition."""
    n = (depth - 4) // 3
    growth = scaled(12, width)
    channels = 2 * growth
    outs = [channels]
    for stage in range(3):
        outs += [growth] * n
        channels += n * growth
        if stage < 2:
            outs.append(channels)  # a transition keeps the width (no compression)
    return outs


def default_densenet_cfg(depth: int, width: float = 1.0) -> list:
    """Kept input channels of each dense layer and transition, then of the final BN.

    A network whose concatenated feature channels were deleted (:mod:`proxns_core.stream`) appends one
    dict, ``{"stream": [stem, features.0, features.1, ...]}``: the output channels of the stem conv and
    of each dense layer's and transition's conv. Without it they have their full widths, so every cfg
    written before stream pruning keeps its meaning.
    """
    n = (depth - 4) // 3
    growth = scaled(12, width)
    channels = 2 * growth
    cfg = []
    for _stage in range(3):
        for _ in range(n):
            cfg.append(channels)
            channels += growth
        cfg.append(channels)  # transition, or the final BN after the last stage
    return cfg


class DenseNet(nn.Module):
    """DenseNet-(3n+4) for 32×32 inputs; a slimmed one is the same class with a smaller cfg."""

    def __init__(self, depth: int = 40, num_classes: int = 10, cfg: list | None = None, width: float = 1.0):
        super().__init__()
        check_depth("densenet", depth)
        self.depth = depth
        n = (depth - 4) // 3
        self.cfg = list(cfg) if cfg is not None else default_densenet_cfg(depth, width)
        self.full_outputs = full_outputs(depth, width)
        counts, outs = self.cfg, iter(self.full_outputs)
        if self.cfg and isinstance(self.cfg[-1], dict):
            counts, outs = self.cfg[:-1], iter(int(c) for c in self.cfg[-1]["stream"])
        channels = next(outs)
        self.conv1 = nn.Conv2d(3, channels, 3, padding=1, bias=False)
        it = iter(counts)
        stages: list[nn.Module] = []
        for stage in range(3):
            for _ in range(n):
                stages.append(DenseLayer(channels, next(it), next(outs)))
                channels += stages[-1].conv1.out_channels
            if stage < 2:
                stages.append(Transition(channels, next(it), next(outs)))
                channels = stages[-1].conv1.out_channels
        self.features = nn.Sequential(*stages)
        self.select = ChannelSelection(channels, next(it))
        self.bn = nn.BatchNorm2d(self.select.indices.numel())
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(self.select.indices.numel(), num_classes)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(self.conv1(x))
        x = F.relu(self.bn(self.select(x)))
        return self.fc(torch.flatten(self.avgpool(x), 1))

    def prune_units(self) -> list[dict]:
        """Every BN is followed by a channel selection; its consumer is the next conv (or fc)."""
        units = [
            {
                "name": f"features.{i}.bn1",
                "bn": m.bn1,
                "producer": None,
                "selection": m.select,
                "consumer": m.conv1,
            }
            for i, m in enumerate(self.features)
        ]
        units.append(
            {"name": "bn", "bn": self.bn, "producer": None, "selection": self.select, "consumer": self.fc}
        )
        return units

    def stream_units(self) -> list[dict]:
        """The concatenated feature map of each dense block, for :mod:`proxns_core.stream`.

        Its channels are written by the block's first producer (stem or previous transition) and by
        each dense layer's conv, in order: ``producers`` lists (conv, first, stop). Every later dense
        layer of the block reads a prefix of it, and the transition (or final BN) all of it, each
        through its selection and BN: ``readers`` lists (unit name, selection, prefix). No raw readers.
        """
        units, head = [], self.conv1
        layers = list(enumerate(self.features))
        for block in range(3):
            width = head.out_channels
            producers, readers = [(head, 0, width)], []
            while layers and isinstance(layers[0][1], DenseLayer):
                i, m = layers.pop(0)
                readers.append((f"features.{i}.bn1", m.select, width))
                producers.append((m.conv1, width, width + m.conv1.out_channels))
                width += m.conv1.out_channels
            if layers:
                i, m = layers.pop(0)
                readers.append((f"features.{i}.bn1", m.select, width))
                head = m.conv1
            else:
                readers.append(("bn", self.select, width))
            units.append(
                {
                    "name": f"block{block + 1}.stream",
                    "width": width,
                    "producers": producers,
                    "readers": readers,
                    "raw_readers": [],
                }
            )
        return units

    def current_cfg(self) -> list:
        cfg: list = [m.select.indices.numel() for m in self.features] + [self.select.indices.numel()]
        outs = [self.conv1.out_channels] + [m.conv1.out_channels for m in self.features]
        if outs != self.full_outputs:
            cfg.append({"stream": outs})
        return cfg

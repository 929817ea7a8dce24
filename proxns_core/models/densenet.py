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


def default_densenet_cfg(depth: int, width: float = 1.0) -> list[int]:
    """Kept input channels of each dense layer and transition, then of the final BN."""
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
        growth = scaled(12, width)
        self.cfg = list(cfg) if cfg is not None else default_densenet_cfg(depth, width)
        channels = 2 * growth
        self.conv1 = nn.Conv2d(3, channels, 3, padding=1, bias=False)
        it = iter(self.cfg)
        stages: list[nn.Module] = []
        for stage in range(3):
            for _ in range(n):
                stages.append(DenseLayer(channels, next(it), growth))
                channels += growth
            if stage < 2:
                stages.append(Transition(channels, next(it), channels))
        self.features = nn.Sequential(*stages)
        self.select = ChannelSelection(channels, next(it))
        self.bn = nn.BatchNorm2d(self.select.indices.numel())
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(self.cfg[-1], num_classes)
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

    def current_cfg(self) -> list[int]:
        return [m.select.indices.numel() for m in self.features] + [self.select.indices.numel()]

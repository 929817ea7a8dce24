"""Pre-activation bottleneck ResNet (depth 9n+2) with channel selection, as in docs/method.md."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..spec import check_depth
from .layers import ChannelSelection, FoldableConv2d, init_weights, scaled


class Bottleneck(nn.Module):
    """select → BN → ReLU → 1×1 conv → BN → ReLU → 3×3 conv → BN → ReLU → 1×1 conv, plus the shortcut.

    Selecting before the (per-channel) BN equals the paper's BN → select, and a slimmed block then
    normalises only the channels it keeps.
    """

    expansion = 4

    def __init__(
        self, inplanes: int, planes: int, cfg: list[int], stride: int = 1, downsample: nn.Module | None = None
    ) -> None:
        super().__init__()
        self.select = ChannelSelection(inplanes, cfg[0])
        self.bn1 = nn.BatchNorm2d(cfg[0])
        self.conv1 = FoldableConv2d(cfg[0], cfg[1], 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cfg[1])
        self.conv2 = FoldableConv2d(cfg[1], cfg[2], 3, stride=stride, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(cfg[2])
        self.conv3 = FoldableConv2d(cfg[2], planes * self.expansion, 1, bias=False)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(F.relu(self.bn1(self.select(x))))
        out = self.conv2(F.relu(self.bn2(out)))
        out = self.conv3(F.relu(self.bn3(out)))
        residual = self.downsample(x) if self.downsample is not None else x
        return out + residual


def default_resnet_cfg(depth: int, width: float = 1.0) -> list[int]:
    """Per block [kept inputs, conv1 outputs, conv2 outputs], then the final BN's kept channels."""
    n = (depth - 2) // 9
    cfg: list[int] = []
    inplanes = scaled(16, width)
    for planes in (scaled(16, width), scaled(32, width), scaled(64, width)):
        for _ in range(n):
            cfg += [inplanes, planes, planes]
            inplanes = planes * Bottleneck.expansion
    return cfg + [inplanes]


class ResNet(nn.Module):
    """Pre-activation ResNet for 32×32 inputs; a slimmed one is the same class with a smaller cfg."""

    def __init__(self, depth: int = 164, num_classes: int = 10, cfg: list | None = None, width: float = 1.0):
        super().__init__()
        check_depth("resnet", depth)
        self.depth = depth
        n = (depth - 2) // 9
        self.cfg = list(cfg) if cfg is not None else default_resnet_cfg(depth, width)
        self.inplanes = scaled(16, width)  # the residual stream is never pruned, only selected from
        self.conv1 = nn.Conv2d(3, self.inplanes, 3, padding=1, bias=False)
        stages = []
        for s, (planes, stride) in enumerate(((16, 1), (32, 2), (64, 2))):
            stages.append(
                self._make_layer(scaled(planes, width), n, self.cfg[3 * n * s : 3 * n * (s + 1)], stride)
            )
        self.layer1, self.layer2, self.layer3 = stages
        final = scaled(64, width) * Bottleneck.expansion
        self.select = ChannelSelection(final, self.cfg[-1])
        self.bn = nn.BatchNorm2d(self.cfg[-1])
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(self.cfg[-1], num_classes)
        self.width = width
        init_weights(self)

    def _make_layer(self, planes: int, blocks: int, cfg: list[int], stride: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * Bottleneck.expansion:
            downsample = nn.Conv2d(self.inplanes, planes * Bottleneck.expansion, 1, stride=stride, bias=False)
        layers = [Bottleneck(self.inplanes, planes, cfg[0:3], stride, downsample)]
        self.inplanes = planes * Bottleneck.expansion
        for i in range(1, blocks):
            layers.append(Bottleneck(self.inplanes, planes, cfg[3 * i : 3 * i + 3]))
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer3(self.layer2(self.layer1(self.conv1(x))))
        x = F.relu(self.bn(self.select(x)))
        return self.fc(torch.flatten(self.avgpool(x), 1))

    def blocks(self) -> list[tuple[str, Bottleneck]]:
        return [
            (f"layer{s}.{i}", b)
            for s, layer in enumerate((self.layer1, self.layer2, self.layer3), 1)
            for i, b in enumerate(layer)
        ]

    def prune_units(self) -> list[dict]:
        """Each BN with the conv producing its channels (or its selection) and its consumer."""
        units = []
        for name, b in self.blocks():
            units += [
                {
                    "name": f"{name}.bn1",
                    "bn": b.bn1,
                    "producer": None,
                    "selection": b.select,
                    "consumer": b.conv1,
                    "consumer_bn": b.bn2,  # what follows conv1, where its folded shift goes
                },
                {
                    "name": f"{name}.bn2",
                    "bn": b.bn2,
                    "producer": b.conv1,
                    "selection": None,
                    "consumer": b.conv2,
                },
                {
                    "name": f"{name}.bn3",
                    "bn": b.bn3,
                    "producer": b.conv2,
                    "selection": None,
                    "consumer": b.conv3,
                },
            ]
        units.append(
            {"name": "bn", "bn": self.bn, "producer": None, "selection": self.select, "consumer": self.fc}
        )
        return units

    def current_cfg(self) -> list[int]:
        cfg: list[int] = []
        for _, b in self.blocks():
            cfg += [b.select.indices.numel(), b.conv1.out_channels, b.conv2.out_channels]
        return cfg + [self.select.indices.numel()]

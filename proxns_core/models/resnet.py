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
        self,
        inplanes: int,
        planes: int,
        cfg: list[int],
        stride: int = 1,
        downsample: nn.Module | None = None,
        outplanes: int | None = None,
    ) -> None:
        super().__init__()
        self.select = ChannelSelection(inplanes, cfg[0])
        self.bn1 = nn.BatchNorm2d(cfg[0])
        self.conv1 = FoldableConv2d(cfg[0], cfg[1], 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cfg[1])
        self.conv2 = FoldableConv2d(cfg[1], cfg[2], 3, stride=stride, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(cfg[2])
        # outplanes: the width of the residual stream it writes (smaller once stream channels are deleted)
        outplanes = planes * self.expansion if outplanes is None else outplanes
        self.conv3 = FoldableConv2d(cfg[2], outplanes, 1, bias=False)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(F.relu(self.bn1(self.select(x))))
        out = self.conv2(F.relu(self.bn2(out)))
        out = self.conv3(F.relu(self.bn3(out)))
        residual = self.downsample(x) if self.downsample is not None else x
        return out + residual


def full_stream_widths(width: float = 1.0) -> list[int]:
    """Widths of the unpruned residual streams: the stem's output, then each stage's stream."""
    return [scaled(16, width)] + [scaled(p, width) * Bottleneck.expansion for p in (16, 32, 64)]


def default_resnet_cfg(depth: int, width: float = 1.0) -> list:
    """Per block [kept inputs, conv1 outputs, conv2 outputs], then the final BN's kept channels.

    A network whose residual streams lost channels (:mod:`proxns_core.stream`) appends one dict,
    ``{"stream": [stem, layer1, layer2, layer3]}``, the widths of its streams; without it the streams
    have their full widths (so every cfg written before stream pruning keeps its meaning).
    """
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
        counts, streams = split_stream_cfg(self.cfg, full_stream_widths(width))
        self.inplanes = streams[0]  # the stem's output: read raw by layer1's downsample, never pruned
        self.conv1 = nn.Conv2d(3, self.inplanes, 3, padding=1, bias=False)
        stages = []
        for s, (planes, stride) in enumerate(((16, 1), (32, 2), (64, 2))):
            stages.append(
                self._make_layer(
                    scaled(planes, width), n, counts[3 * n * s : 3 * n * (s + 1)], stride, streams[s + 1]
                )
            )
        self.layer1, self.layer2, self.layer3 = stages
        self.select = ChannelSelection(streams[3], counts[-1])
        self.bn = nn.BatchNorm2d(counts[-1])
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(counts[-1], num_classes)
        self.width = width
        init_weights(self)

    def _make_layer(
        self, planes: int, blocks: int, cfg: list[int], stride: int, stream: int
    ) -> nn.Sequential:
        """One stage writing a residual stream of ``stream`` channels (planes × 4 unless pruned).

        Every stage has a downsample conv: stride 2, or a stream 4× wider than its input (stage 1).
        """
        downsample = nn.Conv2d(self.inplanes, stream, 1, stride=stride, bias=False)
        layers = [Bottleneck(self.inplanes, planes, cfg[0:3], stride, downsample, outplanes=stream)]
        self.inplanes = stream
        for i in range(1, blocks):
            layers.append(Bottleneck(self.inplanes, planes, cfg[3 * i : 3 * i + 3], outplanes=stream))
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

    def stream_units(self) -> list[dict]:
        """The residual streams, for :mod:`proxns_core.stream`: who writes each channel and who reads it.

        ``producers``: (conv, first, stop) writing stream channels first..stop-1; ``readers``: (unit name,
        selection, prefix) — a prune unit's BN reading the first ``prefix`` stream channels through its
        selection; ``raw_readers``: modules reading the stream not through a BN (they pin every channel).
        """
        stages = (self.layer1, self.layer2, self.layer3)
        units = []
        names = ["stem"] + [f"layer{s}" for s in (1, 2, 3)]
        widths = [self.conv1.out_channels] + [layer[0].conv3.out_channels for layer in stages]
        for k, (name, width) in enumerate(zip(names, widths)):
            if k == 0:
                producers = [(self.conv1, 0, width)]
            else:
                layer = stages[k - 1]
                producers = [(layer[0].downsample, 0, width)] + [(b.conv3, 0, width) for b in layer]
            readers, raw = [], []
            own = [] if k == 0 else [(f"{name}.{i}", b) for i, b in enumerate(stages[k - 1]) if i > 0]
            if k < 3:  # the next stage's first block reads it through bn1 and raw through its downsample
                own.append((f"layer{k + 1}.0", stages[k][0]))
                raw.append(stages[k][0].downsample)
            readers = [(f"{n}.bn1", b.select, width) for n, b in own]
            if k == 3:
                readers.append(("bn", self.select, width))
            units.append(
                {
                    "name": f"{name}.stream",
                    "width": width,
                    "producers": producers,
                    "readers": readers,
                    "raw_readers": raw,
                }
            )
        return units

    def current_cfg(self) -> list:
        cfg: list = []
        for _, b in self.blocks():
            cfg += [b.select.indices.numel(), b.conv1.out_channels, b.conv2.out_channels]
        cfg.append(self.select.indices.numel())
        streams = [u["width"] for u in self.stream_units()]
        if streams != full_stream_widths(self.width):
            cfg.append({"stream": streams})
        return cfg


def split_stream_cfg(cfg: list, full_streams: list[int]) -> tuple[list[int], list[int]]:
    """A cfg's per-BN counts and its stream widths (the full ones unless it ends with a stream dict)."""
    if cfg and isinstance(cfg[-1], dict):
        streams = [int(w) for w in cfg[-1]["stream"]]
        if len(streams) != len(full_streams):
            raise ValueError(f"cfg stream widths {streams}: expected {len(full_streams)} entries")
        return [int(c) for c in cfg[:-1]], streams
    return list(cfg), list(full_streams)

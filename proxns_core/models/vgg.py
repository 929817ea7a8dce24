"""VGG with batch normalisation for 32×32 inputs (docs/method.md: cfg, then 2×2 average pooling and one linear layer);
other input sizes take the global average before the linear layer."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..spec import VGG_CFGS, check_depth
from .layers import FoldableConv2d, init_weights, scaled


def default_vgg_cfg(depth: int, width: float = 1.0) -> list[int | str]:
    """The full cfg of VGG-``depth`` with the width multiplier applied."""
    return [v if v == "M" else scaled(v, width) for v in VGG_CFGS[depth]]


class VGG(nn.Module):
    """VGG-BN; ``cfg`` lists conv widths and 'M' for max-pooling, so a slimmed VGG is a smaller cfg."""

    def __init__(self, depth: int = 19, num_classes: int = 10, cfg: list | None = None, width: float = 1.0):
        super().__init__()
        check_depth("vgg", depth)
        self.depth = depth
        self.cfg = list(cfg) if cfg is not None else default_vgg_cfg(depth, width)
        layers: list[nn.Module] = []
        in_c = 3
        for v in self.cfg:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [
                    FoldableConv2d(in_c, int(v), 3, padding=1, bias=False),
                    nn.BatchNorm2d(int(v)),
                    nn.ReLU(True),
                ]
                in_c = int(v)
        self.features = nn.Sequential(*layers)
        self.pool = nn.AvgPool2d(2)
        self.classifier = nn.Linear(in_c, num_classes)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        # The paper's 2×2 average pooling of a 32×32 input's 2×2 map; any other input size: the
        # global average, which is the same mean (the classifier takes one value per channel).
        x = self.pool(x) if x.shape[-2:] == (2, 2) else F.adaptive_avg_pool2d(x, 1)
        return self.classifier(torch.flatten(x, 1))

    def prune_units(self) -> list[dict]:
        """Each BN with its producing conv and the layer that consumes its channels."""
        convs = [(i, m) for i, m in enumerate(self.features) if isinstance(m, nn.Conv2d)]
        units = []
        for k, (i, conv) in enumerate(convs):
            consumer = convs[k + 1][1] if k + 1 < len(convs) else self.classifier
            units.append(
                {
                    "name": f"features.{i + 1}",
                    "bn": self.features[i + 1],
                    "producer": conv,
                    "selection": None,
                    "consumer": consumer,
                }
            )
        return units

    def current_cfg(self) -> list:
        """The cfg that rebuilds this network's shapes."""
        return [
            m.out_channels if isinstance(m, nn.Conv2d) else "M"
            for m in self.features
            if isinstance(m, nn.Conv2d | nn.MaxPool2d)
        ]

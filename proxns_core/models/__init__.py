"""Model registry: ``build_model(arch, depth, num_classes, cfg=None, width=1.0)``."""

from __future__ import annotations

from torch import nn

from .densenet import DenseNet
from .layers import ChannelSelection, ConstantFold, FoldableConv2d
from .resnet import ResNet
from .vgg import VGG

MODELS: dict[str, type[nn.Module]] = {"vgg": VGG, "resnet": ResNet, "densenet": DenseNet}


def build_model(
    arch: str, depth: int, num_classes: int, cfg: list | None = None, width: float = 1.0
) -> nn.Module:
    """Build ``arch``-``depth``; with ``cfg``, the (slimmed) network of that channel configuration."""
    if arch not in MODELS:
        raise ValueError(f"unknown arch {arch!r}: allowed {', '.join(MODELS)}")
    return MODELS[arch](depth=depth, num_classes=num_classes, cfg=cfg, width=width)


__all__ = [
    "MODELS",
    "build_model",
    "VGG",
    "ResNet",
    "DenseNet",
    "ChannelSelection",
    "ConstantFold",
    "FoldableConv2d",
]

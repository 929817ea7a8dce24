"""Model registry: ``build_model(arch, depth, num_classes, cfg=None, width=1.0)``."""

from __future__ import annotations

from torch import nn

from ..spec import TORCHVISION_ARCHS
from .densenet import DenseNet
from .layers import ChannelSelection, ConstantFold, FoldableConv2d
from .resnet import ResNet
from .vgg import VGG

MODELS: dict[str, type[nn.Module]] = {"vgg": VGG, "resnet": ResNet, "densenet": DenseNet}


def build_model(
    arch: str, depth: int | None, num_classes: int, cfg: list | None = None, width: float = 1.0
) -> nn.Module:
    """Build ``arch``-``depth``; with ``cfg``, the (slimmed) network of that channel configuration.

    A torchvision name (``spec.TORCHVISION_ARCHS``) builds that network, randomly initialised, with a
    ``num_classes`` classifier; its structure is fixed by the name, so ``depth`` must be None, ``width``
    1 and ``cfg`` None (a slimmed torchvision network is rebuilt by :func:`proxns_core.anynet.rebuild_slim`).
    """
    if arch in TORCHVISION_ARCHS:
        if depth is not None or width != 1.0 or cfg is not None:
            raise ValueError(f"{arch} is a torchvision network: it takes no depth, width or cfg")
        from ..anynet import build_torchvision

        return build_torchvision(arch, num_classes)
    if arch not in MODELS:
        raise ValueError(f"unknown arch {arch!r}: allowed {', '.join((*MODELS, *TORCHVISION_ARCHS))}")
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

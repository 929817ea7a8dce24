"""What a config costs, estimated without torch: parameters of its network, training images, and
their product over the epochs (the API refuses configs above a configured bound).

The parameter counts follow the model classes exactly (``proxns_core.models``: the same channel
tables and width rounding), so the estimate equals ``count_params(build_model(...))``; a test
checks that. Only the standard library and the spec are imported.
"""

from __future__ import annotations

import os
from pathlib import Path

from proxns_core.spec import (
    INPUT_SIZE,
    VGG_CFGS,
    TrainConfig,
    check_depth,
    image_files,
    imagefolder_classes,
    imagefolder_problem,
    resolve_data_root,
)

#: Classes per data set (``proxns_core.data.NUM_CLASSES``, restated here to stay torch-free; a
#: test checks they agree).
NUM_CLASSES = {"cifar10": 10, "cifar100": 100, "svhn": 10, "digits": 10, "synthetic": 10}
#: Training images per data set, in full (synthetic: its default size, or ``train_subset``).
TRAIN_IMAGES = {"cifar10": 50_000, "cifar100": 50_000, "svhn": 73_257, "digits": 1_437, "synthetic": 1_024}
#: Deepest network :func:`param_count` will walk (its loops are linear in depth); callers check
#: their own, much lower, limits first.
MAX_ESTIMATED_DEPTH = 100_000


def scaled(channels: int, width: float) -> int:
    """Channel count after the width multiplier, as ``proxns_core.models.layers.scaled``."""
    return max(1, int(round(channels * width)))


def _bn(c: int) -> int:
    return 2 * c


def _linear(c_in: int, classes: int) -> int:
    return c_in * classes + classes


def vgg_params(depth: int, width: float, classes: int) -> int:
    total, c_in = 0, 3
    for v in VGG_CFGS[depth]:
        if v == "M":
            continue
        c = scaled(int(v), width)
        total += c_in * c * 9 + _bn(c)
        c_in = c
    return total + _linear(c_in, classes)


def resnet_params(depth: int, width: float, classes: int) -> int:
    n = (depth - 2) // 9
    inplanes = scaled(16, width)
    total = 3 * inplanes * 9
    for planes, stride in ((scaled(16, width), 1), (scaled(32, width), 2), (scaled(64, width), 2)):
        out = planes * 4
        if stride != 1 or inplanes != out:
            total += inplanes * out  # the 1x1 downsample of the stage's first block
        for _ in range(n):
            # select -> BN -> 1x1 -> BN -> 3x3 -> BN -> 1x1 (bottleneck, no biases)
            total += _bn(inplanes) + inplanes * planes + _bn(planes) + planes * planes * 9
            total += _bn(planes) + planes * out
            inplanes = out
    return total + _bn(inplanes) + _linear(inplanes, classes)


def densenet_params(depth: int, width: float, classes: int) -> int:
    n = (depth - 4) // 3
    growth = scaled(12, width)
    channels = 2 * growth
    total = 3 * channels * 9
    for stage in range(3):
        for _ in range(n):
            total += _bn(channels) + channels * growth * 9
            channels += growth
        if stage < 2:
            total += _bn(channels) + channels * channels  # transition: BN, 1x1 conv
    return total + _bn(channels) + _linear(channels, classes)


_PARAMS = {"vgg": vgg_params, "resnet": resnet_params, "densenet": densenet_params}

#: torchvision networks (``spec.TORCHVISION_ARCHS``, torchvision 0.2x): parameters without the final
#: classifier, and the classifier's input features; the network for ``c`` classes has
#: ``base + in_features·c + c`` (tests/core/test_cost.py checks the table against the built networks).
TORCHVISION_PARAMS: dict[str, tuple[int, int]] = {
    "resnet18": (11176512, 512),
    "resnet50": (23508032, 2048),
    "mobilenet_v2": (2223872, 1280),
    "mobilenet_v3_small": (1517856, 1024),
    "vgg11_bn": (128771840, 4096),
    "vgg16_bn": (134268992, 4096),
    "densenet121": (6953856, 1024),
    "efficientnet_b0": (4007548, 1280),
    "regnet_x_400mf": (5094976, 400),
}


def param_count(arch: str, depth: int | None, width: float = 1.0, num_classes: int = 10) -> int:
    """Trainable parameters of the full ``arch``-``depth`` network at ``width`` (no torch); a
    torchvision network (depth None, width 1) from :data:`TORCHVISION_PARAMS`, exactly."""
    if arch in TORCHVISION_PARAMS:
        if depth is not None or width != 1.0:
            raise ValueError(f"{arch} is a torchvision network: it takes no depth or width")
        base, features = TORCHVISION_PARAMS[arch]
        return base + _linear(features, num_classes)
    check_depth(arch, depth)
    if depth > MAX_ESTIMATED_DEPTH:
        raise ValueError(f"depth {depth} is beyond the estimate's reach ({MAX_ESTIMATED_DEPTH})")
    return _PARAMS[arch](depth, width, num_classes)


#: Classes and training images assumed for an image folder this host cannot read (ImageNet's).
IMAGEFOLDER_GUESS = (1000, 1_281_167)


def _imagefolder_counts(data_root: str | None) -> tuple[int, int]:
    """Classes and training images of the image folder at ``data_root``, counted when this host can
    read it (cached per folder while its train/ folder is unchanged), else :data:`IMAGEFOLDER_GUESS`."""
    root = Path(os.path.realpath(resolve_data_root(data_root)))
    try:
        stamp = (root / "train").stat().st_mtime_ns
    except OSError:
        return IMAGEFOLDER_GUESS
    cached = _COUNTS.get(root)
    if cached and cached[0] == stamp:
        return cached[1]
    if imagefolder_problem(root):
        return IMAGEFOLDER_GUESS
    classes = imagefolder_classes(root)
    counts = (len(classes), sum(len(image_files(root / "train" / c)) for c in classes))
    _COUNTS[root] = (stamp, counts)
    return counts


_COUNTS: dict[Path, tuple[int, tuple[int, int]]] = {}


def num_classes(config: TrainConfig) -> int:
    """Classes of ``config``'s data set (an image folder's counted where readable)."""
    if config.dataset == "imagefolder":
        return _imagefolder_counts(config.data_root)[0]
    return NUM_CLASSES[config.dataset]


def train_images(config: TrainConfig) -> int:
    """Training images one epoch of ``config`` goes through."""
    if config.dataset == "imagefolder":
        full = _imagefolder_counts(config.data_root)[1]
        return full if config.train_subset is None else min(config.train_subset, full)
    full = TRAIN_IMAGES[config.dataset]
    if config.train_subset is None:
        return full
    return config.train_subset if config.dataset == "synthetic" else min(config.train_subset, full)


def training_cost(config: TrainConfig) -> int:
    """Parameters x epochs (training and fine-tuning) x training images x pixels relative to 32×32:
    a bound on the work a config asks for, in parameter-image passes at 32×32 (fine-tuning is counted
    at full size)."""
    params = param_count(config.arch, config.depth, config.width, num_classes(config))
    pixels = pixel_factor(config)
    return round(params * (config.epochs + config.finetune_epochs) * train_images(config) * pixels)


def pixel_factor(config: TrainConfig) -> float:
    """How much more a config's images cost than 32×32 ones (pixels scale the convolutions' work)."""
    return ((config.input_size or INPUT_SIZE) / INPUT_SIZE) ** 2


__all__ = [
    "NUM_CLASSES",
    "num_classes",
    "pixel_factor",
    "TRAIN_IMAGES",
    "param_count",
    "TORCHVISION_PARAMS",
    "train_images",
    "training_cost",
]

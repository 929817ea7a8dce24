"""What a config costs, estimated without torch: parameters of its network, training images, and
their product over the epochs (the API refuses configs above a configured bound).

The parameter counts follow the model classes exactly (``proxns_core.models``: the same channel
tables and width rounding), so the estimate equals ``count_params(build_model(...))``; a test
checks that. Only the standard library and the spec are imported.
"""

from __future__ import annotations

from proxns_core.spec import VGG_CFGS, TrainConfig, check_depth

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


def param_count(arch: str, depth: int, width: float = 1.0, num_classes: int = 10) -> int:
    """Trainable parameters of the full ``arch``-``depth`` network at ``width`` (no torch)."""
    check_depth(arch, depth)
    if depth > MAX_ESTIMATED_DEPTH:
        raise ValueError(f"depth {depth} is beyond the estimate's reach ({MAX_ESTIMATED_DEPTH})")
    return _PARAMS[arch](depth, width, num_classes)


def train_images(config: TrainConfig) -> int:
    """Training images one epoch of ``config`` goes through."""
    full = TRAIN_IMAGES[config.dataset]
    if config.train_subset is None:
        return full
    return config.train_subset if config.dataset == "synthetic" else min(config.train_subset, full)


def training_cost(config: TrainConfig) -> int:
    """Parameters x epochs (training and fine-tuning) x training images: a bound on the work a
    config asks for, in parameter-image passes (fine-tuning is counted at full size)."""
    params = param_count(config.arch, config.depth, config.width, NUM_CLASSES[config.dataset])
    return params * (config.epochs + config.finetune_epochs) * train_images(config)


__all__ = [
    "NUM_CLASSES",
    "TRAIN_IMAGES",
    "param_count",
    "train_images",
    "training_cost",
]

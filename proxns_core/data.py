"""Data sets as tensors on the training device, with batched augmentation (no DataLoader workers).

CIFAR-10/100 and SVHN come from ``data_root`` through torchvision; ``digits`` is scikit-learn's bundled
8×8 digits upsampled to 32×32; ``synthetic`` is seeded, learnable data of any size for fast tests.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .spec import DATASET_FILES, INPUT_SIZE, dataset_status, resolve_data_root

__all__ = ["DatasetNotFoundError", "TensorData", "dataset_status", "load_dataset", "resolve_data_root"]

CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2023, 0.1994, 0.2010)
NUM_CLASSES = {"cifar10": 10, "cifar100": 100, "svhn": 10, "digits": 10, "synthetic": 10}
DIGITS_TEST_SIZE = 360
SYNTHETIC_DEFAULT = (1024, 512)


class DatasetNotFoundError(FileNotFoundError):
    """A data set's files are missing and downloading was not allowed."""


@dataclass
class TensorData:
    """Images in [0, 1] (N, 3, 32, 32) and labels, plus how to augment and normalise them."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int
    augment: bool
    flip: bool
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    #: imagefolder: "pad" (pad, random crop) or "rrc" (random resized crop); the pad; class names.
    crop: str = "pad"
    pad: int = 4
    classes: list[str] | None = None

    def to(self, device: torch.device) -> TensorData:
        for name in ("x_train", "y_train", "x_test", "y_test"):
            setattr(self, name, getattr(self, name).to(device))
        return self


def load_dataset(
    name: str,
    data_root: str | None = None,
    download: bool = False,
    train_subset: int | None = None,
    test_subset: int | None = None,
    input_size: int = INPUT_SIZE,
    mean: list[float] | None = None,
    std: list[float] | None = None,
) -> TensorData:
    """Load ``name`` as tensors (CPU); subsets take a fixed, seed-independent selection.

    ``imagefolder`` (``proxns_core.imagefolder``) is uint8 images at ``input_size``, or a StreamData
    when too large for the device; the other data sets are 32×32 floats in [0, 1] (``input_size``
    other than 32 resizes them)."""
    if name == "imagefolder":
        from .imagefolder import load_imagefolder

        return load_imagefolder(
            resolve_data_root(data_root), input_size, mean, std, train_subset, test_subset
        )
    if name == "digits":
        data = _digits()
    elif name == "synthetic":
        data = _synthetic(train_subset or SYNTHETIC_DEFAULT[0], test_subset or SYNTHETIC_DEFAULT[1])
    elif name in DATASET_FILES:
        data = _torchvision(name, resolve_data_root(data_root), download)
    else:
        raise ValueError(f"unknown dataset {name!r}: allowed {', '.join(NUM_CLASSES)}")
    data.x_train, data.y_train = _subset(data.x_train, data.y_train, train_subset)
    data.x_test, data.y_test = _subset(data.x_test, data.y_test, test_subset)
    if input_size != INPUT_SIZE:
        data.x_train, data.x_test = (
            F.interpolate(x, size=(input_size, input_size), mode="bilinear", align_corners=False).clamp_(0, 1)
            for x in (data.x_train, data.x_test)
        )
    if mean is not None:
        data.mean = tuple(mean)
    if std is not None:
        data.std = tuple(std)
    return data


def _subset(x: torch.Tensor, y: torch.Tensor, n: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    if n is None or n >= len(y):
        return x, y
    idx = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))[:n]
    return x[idx], y[idx]


def _torchvision(name: str, root: Path, download: bool) -> TensorData:
    ok, reason = dataset_status(name, str(root))
    if not ok and not download:
        raise DatasetNotFoundError(
            f"dataset {name!r} not found: looked in {root.resolve()} ({reason}). Put the torchvision files "
            f"there, point data_root (or PROXNS_DATA_ROOT) at the folder holding them, or set download=true "
            "on a machine with internet access."
        )
    import torchvision

    if name == "svhn":
        train = torchvision.datasets.SVHN(str(root), split="train", download=download)
        test = torchvision.datasets.SVHN(str(root), split="test", download=download)
        xs = [torch.from_numpy(d.data) for d in (train, test)]  # already N, 3, 32, 32
        ys = [torch.as_tensor(d.labels, dtype=torch.long) for d in (train, test)]
        augment, flip = True, False  # digits must not be mirrored
    else:
        cls = torchvision.datasets.CIFAR10 if name == "cifar10" else torchvision.datasets.CIFAR100
        train = cls(str(root), train=True, download=download)
        test = cls(str(root), train=False, download=download)
        xs = [torch.from_numpy(d.data).permute(0, 3, 1, 2) for d in (train, test)]
        ys = [torch.as_tensor(d.targets, dtype=torch.long) for d in (train, test)]
        augment, flip = True, True
    x_train, x_test = (x.float().div_(255).contiguous() for x in xs)
    return TensorData(x_train, ys[0], x_test, ys[1], NUM_CLASSES[name], augment, flip, CIFAR_MEAN, CIFAR_STD)


def _digits() -> TensorData:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = torch.from_numpy(digits.images.astype(np.float32) / 16.0).unsqueeze(1)
    x = (
        F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False)
        .clamp_(0, 1)
        .repeat(1, 3, 1, 1)
    )
    y = torch.from_numpy(digits.target.astype(np.int64))
    # One fixed stratified split (1437 train / 360 test), whatever the run's seed.
    tr, te = train_test_split(
        np.arange(len(y)), test_size=DIGITS_TEST_SIZE, stratify=digits.target, random_state=0
    )
    tr, te = torch.from_numpy(np.sort(tr)), torch.from_numpy(np.sort(te))
    mean = tuple(float(x[tr, c].mean()) for c in range(3))
    std = tuple(float(x[tr, c].std()) for c in range(3))
    return TensorData(x[tr].contiguous(), y[tr], x[te].contiguous(), y[te], 10, False, False, mean, std)


def _synthetic(n_train: int, n_test: int, num_classes: int = 10, seed: int = 1234) -> TensorData:
    """Each class is a smooth random colour pattern; samples add noise and a small random shift."""
    g = torch.Generator().manual_seed(seed)
    protos = F.interpolate(
        torch.rand(num_classes, 3, 4, 4, generator=g),
        size=(INPUT_SIZE, INPUT_SIZE),
        mode="bilinear",
        align_corners=False,
    )

    def draw(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        y = torch.randint(0, num_classes, (n,), generator=g)
        x = protos[y] + 0.15 * torch.randn(n, 3, 32, 32, generator=g)
        shifts = torch.randint(-2, 3, (2,), generator=g).tolist()
        x = torch.roll(x, shifts=shifts, dims=(2, 3))
        return x.clamp_(0, 1).contiguous(), y

    x_train, y_train = draw(n_train)
    x_test, y_test = draw(n_test)
    return TensorData(
        x_train, y_train, x_test, y_test, num_classes, False, False, (0.5, 0.5, 0.5), (0.3, 0.3, 0.3)
    )


def normalize(x: torch.Tensor, mean: tuple, std: tuple) -> torch.Tensor:
    if x.dtype == torch.uint8:  # imagefolder keeps its images as bytes
        x = x.float().div_(255)
    # Made once per device and kept, not a host tensor copied to the device at every call (a sync on CUDA).
    m, s = _device_constant(mean, x), _device_constant(std, x)
    return (x - m.view(1, 3, 1, 1)) / s.view(1, 3, 1, 1)


_CONSTANTS: dict[tuple, torch.Tensor] = {}


def _device_constant(values: tuple, like: torch.Tensor) -> torch.Tensor:
    """``values`` as a tensor on ``like``'s device, copied there once and kept."""
    key = (tuple(values), like.device, like.dtype)
    if key not in _CONSTANTS:
        _CONSTANTS[key] = torch.tensor(values, dtype=like.dtype).to(like.device)
    return _CONSTANTS[key]


def augment_batch(x: torch.Tensor, generator: torch.Generator, flip: bool, pad: int = 4) -> torch.Tensor:
    """Zero-pad by ``pad``, random crop back to size, random horizontal flip — per image, batched."""
    b, c, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    # Drawn on the generator's device (the training device's own generator on CUDA): a host-drawn
    # tensor copied to the card at every step would synchronise the host with it.
    dy = torch.randint(0, 2 * pad + 1, (b,), generator=generator, device=generator.device).to(x.device)
    dx = torch.randint(0, 2 * pad + 1, (b,), generator=generator, device=generator.device).to(x.device)
    rows = (dy[:, None] + torch.arange(h, device=x.device)).view(b, 1, h, 1)
    cols = (dx[:, None] + torch.arange(w, device=x.device)).view(b, 1, 1, w)
    out = padded[
        torch.arange(b, device=x.device).view(b, 1, 1, 1),
        torch.arange(c, device=x.device).view(1, c, 1, 1),
        rows,
        cols,
    ]
    if flip:
        mirror = (
            (torch.rand(b, generator=generator, device=generator.device) < 0.5).to(x.device).view(b, 1, 1, 1)
        )
        out = torch.where(mirror, out.flip(3), out)
    return out


def train_batches(data: TensorData, batch_size: int, generator: torch.Generator) -> Iterator[tuple]:
    """One epoch of shuffled, augmented, normalised training batches.

    Nothing here waits for the device: the order and the augmentation are drawn with ``generator``
    on its own device (pass a CUDA generator when the data lives on a card).
    """
    n = len(data.y_train)
    if not isinstance(data, TensorData):  # a streamed image folder: its DataLoader decodes the batches
        perm = torch.randperm(n, generator=generator, device=generator.device).tolist()
        for x, y in data.batches(data.train, batch_size, "train", perm):
            yield normalize(_augment(data, x, generator), data.mean, data.std), y
        return
    perm = torch.randperm(n, generator=generator, device=generator.device).to(data.x_train.device)
    for i in range(0, n, batch_size):
        idx = perm[i : i + batch_size]
        x = data.x_train[idx]
        if data.augment:
            x = _augment(data, x, generator)
        yield normalize(x, data.mean, data.std), data.y_train[idx]


def _augment(data: TensorData, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    if data.crop == "rrc":
        from .imagefolder import random_resized_crop

        return random_resized_crop(x, generator, data.flip)
    return augment_batch(x, generator, data.flip, data.pad)


def test_batches(data: TensorData, batch_size: int = 500) -> Iterator[tuple]:
    """The test set in order, normalised."""
    if not isinstance(data, TensorData):  # a streamed image folder
        order = list(range(len(data.y_test)))
        for x, y in data.batches(data.test, batch_size, "test", order):
            yield normalize(x, data.mean, data.std), y
        return
    for i in range(0, len(data.y_test), batch_size):
        yield normalize(data.x_test[i : i + batch_size], data.mean, data.std), data.y_test[i : i + batch_size]


def steps_per_epoch(data: TensorData, batch_size: int) -> int:
    return -(-len(data.y_train) // batch_size)

"""``imagefolder``: your own images, ``data_root/train/<class>/*`` and ``data_root/val/<class>/*``.

Images of any size are decoded with PIL and brought to ``input_size`` squares (shorter side resized,
centre crop; the validation images from a 8/7 larger shorter side above 64 pixels, as ImageNet's
256 → 224), kept as uint8 (a quarter of float32's memory) and turned into floats batch by batch.

- A set whose decoded images fit in ``PROXNS_MAX_DEVICE_DATA_BYTES`` (default 2 GiB) is one
  :class:`~proxns_core.data.TensorData` on the training device, like the other data sets.
- A larger one is a :class:`StreamData`: a DataLoader with ``PROXNS_DATA_WORKERS`` worker processes
  (default min(4, CPUs)) decodes each batch, pinned memory on CUDA; the order and the augmentation
  are drawn as for the on-device sets.

Augmentation: inputs up to 64 pixels get the CIFAR recipe (pad by input_size/8, random crop, flip);
larger ones a random resized crop (scale 0.08-1, aspect 3/4-4/3) and flip, batched on the device.
Normalisation: ``mean``/``std`` of the config, else computed from the training images (up to
:data:`STATS_SAMPLE` of them, a fixed selection, for a streamed set).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .spec import IMAGEFOLDER_SPLITS, image_files, imagefolder_classes, imagefolder_problem

#: Largest set of decoded images (uint8 bytes, train and val) kept on the device.
DEFAULT_MAX_DEVICE_DATA_BYTES = 2 * 2**30
#: Inputs above this side get the random resized crop, up to it the pad-and-crop.
SMALL_INPUT = 64
#: Training images the statistics of a streamed set are computed from.
STATS_SAMPLE = 2048


def max_device_data_bytes() -> int:
    return int(os.environ.get("PROXNS_MAX_DEVICE_DATA_BYTES") or DEFAULT_MAX_DEVICE_DATA_BYTES)


def data_workers() -> int:
    value = os.environ.get("PROXNS_DATA_WORKERS")
    return int(value) if value else min(4, os.cpu_count() or 1)


def val_resize(input_size: int) -> int:
    """Shorter side validation images are resized to before the centre crop."""
    return input_size if input_size <= SMALL_INPUT else round(input_size * 8 / 7)


def decode(path: str | Path, size: int, resize: int) -> torch.Tensor:
    """One image as uint8 (3, size, size): RGB, shorter side resized to ``resize``, centre crop."""
    from PIL import Image

    with Image.open(path) as img:
        img = img.convert("RGB")
        w, h = img.size
        scale = resize / min(w, h)
        nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
        img = img.resize((nw, nh), Image.BILINEAR)
        left, top = (nw - size) // 2, (nh - size) // 2
        img = img.crop((left, top, left + size, top + size))
        return torch.from_numpy(np.asarray(img, dtype=np.uint8).copy()).permute(2, 0, 1).contiguous()


class Files(torch.utils.data.Dataset):
    """Image files with labels, decoded on demand (in DataLoader workers for a streamed set)."""

    def __init__(self, paths: list[str], labels: list[int], size: int, resize: int) -> None:
        self.paths, self.labels, self.size, self.resize = paths, labels, size, resize

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return decode(self.paths[i], self.size, self.resize), self.labels[i]

    def decode_many(self, indices: list[int], threads: int) -> torch.Tensor:
        """Images ``indices`` as one uint8 tensor, decoded by a thread pool (PIL releases the GIL)."""
        out = torch.empty(len(indices), 3, self.size, self.size, dtype=torch.uint8)
        if not indices:
            return out

        def one(k: int) -> None:
            out[k] = decode(self.paths[indices[k]], self.size, self.resize)

        with ThreadPoolExecutor(max(1, threads)) as pool:
            list(pool.map(one, range(len(indices))))
        return out


def _listing(root: Path, split: str, classes: list[str]) -> tuple[list[str], list[int]]:
    paths: list[str] = []
    labels: list[int] = []
    for label, name in enumerate(classes):
        folder = root / split / name
        for rel in image_files(folder):
            paths.append(str(folder / rel))
            labels.append(label)
    return paths, labels


def _pick(n: int, subset: int | None) -> list[int]:
    """The same fixed, seed-independent selection as the other data sets' subsets."""
    if subset is None or subset >= n:
        return list(range(n))
    return torch.randperm(n, generator=torch.Generator().manual_seed(0))[:subset].tolist()


def channel_stats(x: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and standard deviation of uint8 images, in [0, 1] units."""
    total = torch.zeros(3, dtype=torch.float64)
    squares = torch.zeros(3, dtype=torch.float64)
    count = 0
    for i in range(0, len(x), 256):
        chunk = x[i : i + 256].to(torch.float64).div_(255)
        total += chunk.sum(dim=(0, 2, 3))
        squares += chunk.square().sum(dim=(0, 2, 3))
        count += chunk.numel() // 3
    mean = total / max(count, 1)
    std = (squares / max(count, 1) - mean.square()).clamp_min(1e-12).sqrt()
    return tuple(float(v) for v in mean), tuple(max(float(v), 1e-3) for v in std)


def random_resized_crop(
    x: torch.Tensor,
    generator: torch.Generator,
    flip: bool,
    scale: tuple[float, float] = (0.08, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
) -> torch.Tensor:
    """Per image: a random box of ``scale`` of the area and ``ratio`` aspect, resized back to the
    image's size (bilinear), randomly mirrored; batched with one affine grid. Returns floats in [0, 1]."""
    b, c, h, w = x.shape
    dev = generator.device
    area = torch.empty(b, device=dev).uniform_(scale[0], scale[1], generator=generator)
    log_r = torch.empty(b, device=dev).uniform_(math.log(ratio[0]), math.log(ratio[1]), generator=generator)
    r = torch.exp(log_r)
    cw, ch = torch.sqrt(area * r).clamp(max=1.0), torch.sqrt(area / r).clamp(max=1.0)
    cx = (torch.rand(b, generator=generator, device=dev) * 2 - 1) * (1 - cw)
    cy = (torch.rand(b, generator=generator, device=dev) * 2 - 1) * (1 - ch)
    sx = torch.where(torch.rand(b, generator=generator, device=dev) < 0.5, -cw, cw) if flip else cw
    theta = torch.zeros(b, 2, 3, device=dev)
    theta[:, 0, 0], theta[:, 0, 2], theta[:, 1, 1], theta[:, 1, 2] = sx, cx, ch, cy
    grid = F.affine_grid(theta.to(x.device), [b, c, h, w], align_corners=False)
    src = x.float().div_(255) if x.dtype == torch.uint8 else x.float()
    return F.grid_sample(src, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


class LazyImages:
    """A streamed set's training images, sliceable like a tensor (``recalibrate_bn`` reads slices)."""

    def __init__(self, files: Files, data: StreamData) -> None:
        self.files, self.data = files, data

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: slice) -> torch.Tensor:
        indices = list(range(len(self.files)))[index]
        batch = self.files.decode_many(indices, self.data.workers)
        return batch.to(self.data.device, non_blocking=True)


class _Order(torch.utils.data.Sampler):
    """The indices of the current epoch (set before each pass; persistent workers stay)."""

    def __init__(self, order: list[int]) -> None:
        self.order = order

    def __iter__(self) -> Iterator[int]:
        return iter(self.order)

    def __len__(self) -> int:
        return len(self.order)


@dataclass
class StreamData:
    """An image folder too large for the device, decoded batch by batch by DataLoader workers.

    Plugs into ``train_batches``, ``test_batches``, ``steps_per_epoch`` and ``recalibrate_bn`` like a
    :class:`~proxns_core.data.TensorData`."""

    train: Files
    test: Files
    y_train: torch.Tensor
    y_test: torch.Tensor
    num_classes: int
    augment: bool
    flip: bool
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    crop: str = "pad"
    pad: int = 4
    classes: list[str] | None = None
    workers: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    _loaders: dict = field(default_factory=dict, repr=False)

    @property
    def x_train(self) -> LazyImages:
        return LazyImages(self.train, self)

    def to(self, device: torch.device) -> StreamData:
        self.device = torch.device(device)
        self.y_train, self.y_test = self.y_train.to(self.device), self.y_test.to(self.device)
        return self

    def _loader(self, files: Files, batch_size: int, key: str) -> torch.utils.data.DataLoader:
        cached = self._loaders.get(key)
        if cached is not None and cached.batch_size == batch_size:
            return cached
        workers = self.workers
        loader = torch.utils.data.DataLoader(
            files,
            batch_size=batch_size,
            sampler=_Order(list(range(len(files)))),
            num_workers=workers,
            pin_memory=self.device.type == "cuda",
            # spawn: the training process may hold threads (a forked copy of a lock could deadlock)
            multiprocessing_context="spawn" if workers else None,
            persistent_workers=workers > 0,
            prefetch_factor=4 if workers else None,
        )
        self._loaders[key] = loader
        return loader

    def batches(self, files: Files, batch_size: int, key: str, order: list[int]) -> Iterator[tuple]:
        loader = self._loader(files, batch_size, key)
        loader.sampler.order = order
        for x, y in loader:
            yield x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)

    def close(self) -> None:
        """Stop the loaders' worker processes."""
        self._loaders.clear()


def load_imagefolder(
    data_root: Path,
    input_size: int,
    mean: list[float] | None = None,
    std: list[float] | None = None,
    train_subset: int | None = None,
    test_subset: int | None = None,
):
    """The image folder at ``data_root`` as a TensorData (CPU, uint8), or a StreamData when the
    decoded images would exceed :func:`max_device_data_bytes`."""
    from .data import DatasetNotFoundError, TensorData

    problem = imagefolder_problem(data_root)
    if problem:
        raise DatasetNotFoundError(
            f"dataset 'imagefolder' is not usable: {problem}. data_root (or PROXNS_DATA_ROOT) must hold "
            f"{' and '.join(s + '/' for s in IMAGEFOLDER_SPLITS)}, each with one sub-folder per class "
            "(the same names in both) holding that class's images."
        )
    classes = imagefolder_classes(data_root)
    train_paths, train_labels = _listing(data_root, "train", classes)
    test_paths, test_labels = _listing(data_root, "val", classes)
    tr, te = _pick(len(train_paths), train_subset), _pick(len(test_paths), test_subset)
    train = Files([train_paths[i] for i in tr], [train_labels[i] for i in tr], input_size, input_size)
    test = Files(
        [test_paths[i] for i in te], [test_labels[i] for i in te], input_size, val_resize(input_size)
    )
    y_train = torch.tensor(train.labels, dtype=torch.long)
    y_test = torch.tensor(test.labels, dtype=torch.long)
    small = input_size <= SMALL_INPUT
    look = {"augment": True, "flip": True, "crop": "pad" if small else "rrc", "pad": max(1, input_size // 8)}
    workers = data_workers()
    decoded = (len(train) + len(test)) * 3 * input_size * input_size
    if decoded > max_device_data_bytes():
        if mean is None or std is None:
            sample = _pick(len(train), STATS_SAMPLE)
            computed = channel_stats(train.decode_many(sorted(sample), workers))
        stats = (tuple(mean) if mean else computed[0], tuple(std) if std else computed[1])
        return StreamData(
            train, test, y_train, y_test, len(classes), mean=stats[0], std=stats[1],
            classes=classes, workers=workers, **look,
        )  # fmt: skip
    x_train = train.decode_many(list(range(len(train))), workers)
    x_test = test.decode_many(list(range(len(test))), workers)
    computed = channel_stats(x_train) if mean is None or std is None else None
    stats = (tuple(mean) if mean else computed[0], tuple(std) if std else computed[1])
    return TensorData(
        x_train, y_train, x_test, y_test, len(classes), mean=stats[0], std=stats[1], classes=classes, **look
    )

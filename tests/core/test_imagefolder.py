"""``dataset: imagefolder`` (issue 11, item 5): a folder of PNG files the test writes (uneven classes,
images of mixed sizes) trains through ``proxns train`` at two input sizes (pad-crop and random resized
crop), a set above the device bound streams through DataLoader workers, and broken folders are
refused saying where it looked and what it found."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from proxns_core.spec import TrainConfig, dataset_status, imagefolder_problem

#: Images per class in train and val: uneven on purpose.
COUNTS = {"red": (24, 6), "green": (14, 5), "blue": (8, 4)}
COLOURS = {"red": (200, 40, 40), "green": (40, 200, 40), "blue": (40, 40, 200)}


def make_image_folder(root: Path, seed: int = 0) -> Path:
    """PNG files of mixed sizes (40-90 pixels a side), a noisy colour per class."""
    rng = np.random.default_rng(seed)
    for split, k in (("train", 0), ("val", 1)):
        for name, rgb in COLOURS.items():
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(COUNTS[name][k]):
                w, h = int(rng.integers(40, 90)), int(rng.integers(40, 90))
                pixels = np.asarray(rgb)[None, None, :] + rng.normal(0, 30, (h, w, 3))
                Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(folder / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_image_folder(tmp_path_factory.mktemp("images") / "colours")


def _proxns(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "proxns_cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )


NET = ["--arch", "resnet", "--depth", "11", "--width", "0.25", "--epochs", "2", "--batch-size", "16"]


@pytest.mark.parametrize("size", [16, 72])
def test_proxns_train_on_an_image_folder_at_two_input_sizes(folder: Path, tmp_path: Path, size: int) -> None:
    out = tmp_path / "run"
    proc = _proxns(
        "train", "--dataset", "imagefolder", "--data-root", str(folder), "--input-size", str(size),
        *NET, "--device", "cpu", "--out", str(out), "--quiet",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    config = json.loads((out / "config.json").read_text())
    assert config["input_size"] == size and config["dataset"] == "imagefolder"
    meta = json.loads((out / "slim.json").read_text())
    assert meta["input_size"] == size and meta["num_classes"] == 3
    assert meta["classes"] == ["blue", "green", "red"]
    assert all(0 < m < 1 for m in meta["mean"]) and all(0 < s < 1 for s in meta["std"])
    # the exported slim network takes input_size images
    program = torch.export.load(str(out / "slim.pt2")).module()
    assert program(torch.randn(2, 3, size, size)).shape == (2, 3)
    result = json.loads((out / "result.json").read_text())
    assert result["flops_full"] > 0
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 2


def test_data_objects_sizes_statistics_and_augmentation(folder: Path) -> None:
    from proxns_core.data import TensorData, load_dataset, train_batches

    small = load_dataset("imagefolder", str(folder), input_size=20)
    assert isinstance(small, TensorData) and small.x_train.dtype == torch.uint8
    assert small.x_train.shape == (46, 3, 20, 20) and small.x_test.shape == (15, 3, 20, 20)
    assert small.num_classes == 3 and small.crop == "pad" and small.pad == 2
    assert torch.bincount(small.y_train).tolist() == [8, 14, 24]  # blue, green, red (sorted names)
    large = load_dataset("imagefolder", str(folder), input_size=80, mean=[0.5, 0.5, 0.5], std=[0.25] * 3)
    assert large.crop == "rrc" and large.mean == (0.5, 0.5, 0.5) and large.std == (0.25, 0.25, 0.25)
    g = torch.Generator().manual_seed(0)
    x, y = next(train_batches(large, 8, g))
    assert x.shape == (8, 3, 80, 80) and x.dtype == torch.float32 and torch.isfinite(x).all()
    # the red class's images are red: the computed statistics see it
    assert small.mean[0] > small.mean[2]
    # TrainConfig defaults: 224 for imagefolder, 32 otherwise
    assert TrainConfig(dataset="imagefolder").input_size == 224
    assert TrainConfig(dataset="digits").input_size == 32


def test_a_set_above_the_device_bound_streams_through_dataloader_workers(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from proxns_core.data import load_dataset, steps_per_epoch, test_batches, train_batches
    from proxns_core.imagefolder import StreamData
    from proxns_core.train import fit

    monkeypatch.setenv("PROXNS_MAX_DEVICE_DATA_BYTES", str(10**9))
    monkeypatch.setenv("PROXNS_DATA_WORKERS", "2")
    on_device = load_dataset("imagefolder", str(folder), input_size=24, train_subset=40)
    monkeypatch.setenv("PROXNS_MAX_DEVICE_DATA_BYTES", "1000")
    data = load_dataset("imagefolder", str(folder), input_size=24, train_subset=40)
    assert isinstance(data, StreamData) and data.workers == 2
    assert steps_per_epoch(data, 16) == 3
    # the same images (decoded on demand) and statistics as on the device
    assert torch.equal(data.x_train[0:40], on_device.x_train) and data.mean == pytest.approx(on_device.mean)
    seen = [(x.shape, y) for x, y in train_batches(data, 16, torch.Generator().manual_seed(0))]
    assert [s[0][0] for s in seen] == [16, 16, 8]
    assert sorted(torch.cat([y for _, y in seen]).tolist()) == sorted(data.y_train.tolist())
    xs = torch.cat([x for x, _ in test_batches(data, 500)])
    ys = torch.cat([y for _, y in test_batches(data, 500)])
    ref = torch.cat([x for x, _ in test_batches(on_device, 500)])
    assert torch.equal(ys, on_device.y_test) and torch.allclose(xs, ref)
    data.close()
    config = TrainConfig(
        dataset="imagefolder", data_root=str(folder), input_size=24, arch="vgg", depth=11, width=0.25,
        epochs=1, batch_size=16, device="cpu",
    )  # fmt: skip
    fitted = fit(config)
    assert fitted.meta["input_size"] == 24 and len(fitted.history) == 1


def _broken(tmp_path: Path) -> dict[str, Path]:
    cases = {name: tmp_path / name for name in ("empty", "no_val", "one_class", "mismatch", "no_images")}
    cases["empty"].mkdir()
    make_image_folder(cases["no_val"])
    for p in (cases["no_val"] / "val").rglob("*"):
        if p.is_file():
            p.unlink()
    for d in sorted((cases["no_val"] / "val").rglob("*"), reverse=True):
        d.rmdir()
    (cases["no_val"] / "val").rmdir()
    for split in ("train", "val"):
        (cases["one_class"] / split / "only").mkdir(parents=True)
        Image.new("RGB", (8, 8)).save(cases["one_class"] / split / "only" / "a.png")
    make_image_folder(cases["mismatch"])
    (cases["mismatch"] / "val" / "blue").rename(cases["mismatch"] / "val" / "cyan")
    make_image_folder(cases["no_images"])
    for p in (cases["no_images"] / "train" / "green").iterdir():
        p.rename(p.with_suffix(".txt"))
    return cases


def test_broken_folders_say_where_they_looked_and_what_they_found(tmp_path: Path) -> None:
    cases = _broken(tmp_path)
    expect = {
        "empty": ("empty/train", "no such folder"),
        "no_val": ("no_val/val", "no such folder"),
        "one_class": ("one_class/train", "found 1 class folder"),
        "mismatch": ("mismatch/train", "only in train: blue; only in val: cyan"),
        "no_images": ("no_images/train", "green hold(s) no images"),
    }
    for name, (where, what) in expect.items():
        problem = imagefolder_problem(cases[name])
        assert problem is not None and where in problem and what in problem, (name, problem)
        ok, reason = dataset_status("imagefolder", str(cases[name]))
        assert not ok and reason == problem
    proc = _proxns(
        "train", "--dataset", "imagefolder", "--data-root", str(cases["one_class"]), "--out",
        str(tmp_path / "o"),
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert f"looked in {cases['one_class'] / 'train'}: found 1 class folder" in proc.stderr

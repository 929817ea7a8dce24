"""The training config: defined once here, reused by the CLI, the API and the worker."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

Dataset = Literal["cifar10", "cifar100", "svhn", "digits", "synthetic"]
Arch = Literal["vgg", "resnet", "densenet"]
Method = Literal["baseline", "ns", "proxns"]

DATASETS: tuple[str, ...] = ("cifar10", "cifar100", "svhn", "digits", "synthetic")
ARCHS: tuple[str, ...] = ("vgg", "resnet", "densenet")
METHODS: tuple[str, ...] = ("baseline", "ns", "proxns")
VGG_DEPTHS: tuple[int, ...] = (11, 13, 16, 19)
MAX_EPOCHS = 1000

# Published settings (PAPER.md, "Reference settings").
DEFAULT_DEPTH = {"vgg": 19, "resnet": 164, "densenet": 40}
DEFAULT_LAM = {
    "proxns": {"vgg": 0.0045, "densenet": 0.004, "resnet": 0.002},
    "ns": {"vgg": 1e-4, "densenet": 1e-5, "resnet": 1e-5},
    "baseline": {"vgg": 0.0, "densenet": 0.0, "resnet": 0.0},
}
DEFAULT_BETA = {"vgg": 100.0, "densenet": 100.0, "resnet": 0.25}
DEFAULT_PRUNE_RATIO = {"vgg": 0.7, "densenet": 0.4, "resnet": 0.4}
_DEVICE_RE = re.compile(r"^(auto|cpu|cuda|cuda:\d+)$")


def valid_depths(arch: str, limit: int = 300) -> list[int]:
    """Valid depths of an architecture up to ``limit`` (VGG: 11/13/16/19; ResNet 9n+2; DenseNet 3n+4)."""
    if arch == "vgg":
        return list(VGG_DEPTHS)
    if arch == "resnet":
        return list(range(11, limit + 1, 9))
    if arch == "densenet":
        return list(range(7, limit + 1, 3))
    raise ValueError(f"unknown arch {arch!r}")


def depth_rule(arch: str) -> str:
    """Human-readable rule for the depths of ``arch``."""
    return {
        "vgg": "one of 11, 13, 16, 19",
        "resnet": "9n+2 with n >= 1 (11, 20, 29, ..., 164, ...)",
        "densenet": "3n+4 with n >= 1 (7, 10, 13, ..., 40, ...)",
    }[arch]


class TrainConfig(BaseModel):
    """One pruning job: data, architecture, sparsity method and optimiser settings."""

    model_config = ConfigDict(extra="forbid")

    dataset: Dataset = Field("cifar10", description="Training data set.")
    data_root: str | None = Field(
        None, description="Folder holding the data set files; default $PROXNS_DATA_ROOT or ./data."
    )
    download: bool = Field(False, description="Let torchvision download a missing data set.")
    arch: Arch = Field("vgg", description="vgg (with BN), resnet (pre-activation bottleneck), densenet.")
    depth: int | None = Field(None, description="Network depth; default 19 / 164 / 40 by arch.")
    width: float = Field(1.0, gt=0, le=4, description="Channel width multiplier (small runs: 0.25).")
    method: Method = Field("proxns", description="baseline, ns (network slimming) or proxns.")
    lam: float | None = Field(None, ge=0, le=10, description="λ, the ℓ1 weight; default by method and arch.")
    beta: float | None = Field(None, gt=0, le=1e6, description="β, the coupling weight (proxns only).")
    prune_ratio: float | None = Field(
        None, gt=0, lt=1, description="Share of channels NS prunes by global |γ| threshold (ns only)."
    )
    epochs: int = Field(160, ge=1, le=MAX_EPOCHS)
    batch_size: int = Field(64, ge=1, le=4096)
    lr: float = Field(0.1, gt=0, le=10)
    momentum: float = Field(0.9, ge=0, lt=1)
    weight_decay: float = Field(1e-4, ge=0, lt=1)
    lr_milestones: list[int] | None = Field(
        None, description="Epochs after which lr is divided by 10; default 50 % and 75 % of epochs."
    )
    finetune_epochs: int = Field(0, ge=0, le=MAX_EPOCHS)
    channel_multiple: int = Field(
        1,
        ge=1,
        le=64,
        description="Round each slimmed layer's kept channels up to a multiple of this (16 matches "
        "AVX-512 CPUs' convolution blocks, 8 GPU tensor cores), re-keeping its strongest pruned "
        "channels; 1 prunes exactly.",
    )
    precise_bn: bool = Field(
        True,
        description="Re-estimate BN running statistics on the training data before the final measurements "
        "(no learned weight changes); the running averages lag behind a network whose γ shrink.",
    )
    seed: int = Field(0, ge=0, le=2**31 - 1)
    device: str = Field("auto", description="auto, cpu, cuda or cuda:N.")
    train_subset: int | None = Field(None, ge=1, description="Use only this many training images.")
    test_subset: int | None = Field(None, ge=1, description="Use only this many test images.")

    @field_validator("depth")
    @classmethod
    def _check_depth(cls, depth: int | None, info: ValidationInfo) -> int | None:
        arch = info.data.get("arch")
        if depth is None or arch is None:
            return depth
        ok = {
            "vgg": depth in VGG_DEPTHS,
            "resnet": depth >= 11 and (depth - 2) % 9 == 0,
            "densenet": depth >= 7 and (depth - 4) % 3 == 0,
        }[arch]
        if not ok:
            raise ValueError(f"depth {depth} is not valid for {arch}: allowed {depth_rule(arch)}")
        return depth

    @field_validator("lam")
    @classmethod
    def _check_lam(cls, lam: float | None, info: ValidationInfo) -> float | None:
        if lam and info.data.get("method") == "baseline":
            raise ValueError("lam must be 0 or unset for method 'baseline' (it has no sparsity penalty)")
        return lam

    @field_validator("beta")
    @classmethod
    def _check_beta(cls, beta: float | None, info: ValidationInfo) -> float | None:
        method = info.data.get("method")
        if beta is not None and method not in (None, "proxns"):
            raise ValueError(f"beta applies only to method 'proxns', not {method!r}; leave it unset")
        return beta

    @field_validator("prune_ratio")
    @classmethod
    def _check_prune_ratio(cls, ratio: float | None, info: ValidationInfo) -> float | None:
        method = info.data.get("method")
        if ratio is not None and method not in (None, "ns"):
            raise ValueError(
                f"prune_ratio applies only to method 'ns', not {method!r}: proxns prunes exactly the "
                "channels whose ξ is 0, baseline prunes nothing; leave it unset"
            )
        return ratio

    @field_validator("device")
    @classmethod
    def _check_device(cls, device: str) -> str:
        if not _DEVICE_RE.match(device):
            raise ValueError(f"device {device!r} is not valid: allowed auto, cpu, cuda, cuda:N")
        return device

    @field_validator("lr_milestones")
    @classmethod
    def _check_milestones(cls, ms: list[int] | None, info: ValidationInfo) -> list[int] | None:
        if ms is None:
            return ms
        epochs = info.data.get("epochs")
        if any(b <= a for a, b in zip(ms, ms[1:])):
            raise ValueError(f"lr_milestones must be strictly increasing, got {ms}")
        if epochs is not None and any(m < 1 or m >= epochs for m in ms):
            raise ValueError(f"lr_milestones must lie in 1..{epochs - 1} (epochs - 1), got {ms}")
        return ms

    @model_validator(mode="after")
    def _fill_defaults(self) -> TrainConfig:
        if self.depth is None:
            self.depth = DEFAULT_DEPTH[self.arch]
        if self.lam is None:
            self.lam = DEFAULT_LAM[self.method][self.arch]
        if self.method == "proxns" and self.beta is None:
            self.beta = DEFAULT_BETA[self.arch]
        if self.method == "ns" and self.prune_ratio is None:
            self.prune_ratio = DEFAULT_PRUNE_RATIO[self.arch]
        if self.lr_milestones is None:
            self.lr_milestones = sorted(
                {m for m in (self.epochs // 2, self.epochs * 3 // 4) if 0 < m < self.epochs}
            )
        return self


def config_defaults() -> dict:
    """Defaults a form needs: plain field defaults plus the per-arch/method published values."""
    plain = {name: f.default for name, f in TrainConfig.model_fields.items()}
    return {
        "fields": plain,
        "depth": DEFAULT_DEPTH,
        "lam": DEFAULT_LAM,
        "beta": DEFAULT_BETA,
        "prune_ratio": DEFAULT_PRUNE_RATIO,
    }

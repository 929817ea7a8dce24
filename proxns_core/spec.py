"""The contract of ProxNS Lab, defined once: what goes in (``TrainConfig``) and what comes out
(``Result``, ``EpochMetrics``, job statuses, artifact formats), with the rules that tie them together.

Torch-free on purpose: the API, the store, the HTTP client and the dashboard (through
``GET /api/meta`` and OpenAPI) all read this module, and none of them may pay for importing torch.
Everything here imports pydantic and the standard library only.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

# --------------------------------------------------------------------------- names

Dataset = Literal["cifar10", "cifar100", "svhn", "digits", "synthetic", "imagefolder"]
Arch = Literal[
    "vgg",
    "resnet",
    "densenet",
    "resnet18",
    "resnet50",
    "mobilenet_v2",
    "mobilenet_v3_small",
    "vgg11_bn",
    "vgg16_bn",
    "densenet121",
    "efficientnet_b0",
    "regnet_x_400mf",
]
Method = Literal["baseline", "ns", "proxns"]
JobStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]
Phase = Literal["train", "finetune"]
ArtifactFormatName = Literal["safetensors", "json", "pt2", "torchscript", "onnx"]
Precision = Literal["auto", "fp32", "bf16", "fp16"]
Penalty = Literal["l1", "l0", "l1/2", "tl1", "l1-l2", "mcp", "scad"]

DATASETS: tuple[str, ...] = Dataset.__args__
ARCHS: tuple[str, ...] = Arch.__args__
#: The paper's networks, built from a depth and width (``proxns_core.models``).
PAPER_ARCHS: tuple[str, ...] = ("vgg", "resnet", "densenet")
#: torchvision classification networks of conv + BN, named as torchvision names them; their
#: structure is fixed by the name (no depth or width), their channel coupling found by tracing
#: (``proxns_core.anynet``).
TORCHVISION_ARCHS: tuple[str, ...] = tuple(a for a in ARCHS if a not in PAPER_ARCHS)
#: The paper network whose published λ, β and prune ratio a torchvision network starts from (the
#: nearest kind: plain stacks → vgg, residual and inverted-residual nets → resnet, dense → densenet).
#: These defaults are a starting point, not published settings for these networks.
ARCH_FAMILY: dict[str, str] = {
    **{a: a for a in PAPER_ARCHS},
    "resnet18": "resnet",
    "resnet50": "resnet",
    "mobilenet_v2": "resnet",
    "mobilenet_v3_small": "resnet",
    "vgg11_bn": "vgg",
    "vgg16_bn": "vgg",
    "densenet121": "densenet",
    "efficientnet_b0": "resnet",
    "regnet_x_400mf": "resnet",
}
assert set(ARCH_FAMILY) == set(ARCHS)
#: The archs whose residual or dense stream ``prune_stream`` may prune (torchvision networks always
#: prune coupled stream channels, by their traced groups).
STREAM_ARCHS: tuple[str, ...] = ("resnet", "densenet")
METHODS: tuple[str, ...] = Method.__args__
JOB_STATUSES: tuple[str, ...] = JobStatus.__args__
#: Statuses a job never leaves.
FINISHED_STATUSES: tuple[str, ...] = ("succeeded", "failed", "cancelled")
PHASES: tuple[str, ...] = Phase.__args__
PRECISIONS: tuple[str, ...] = Precision.__args__
PENALTIES: tuple[str, ...] = Penalty.__args__
#: The penalties with a shape parameter ``penalty_a``: its default and the rule it must meet
#: (PAPER.md, "Nonconvex penalties"): (exclusive lower bound, the rule in words).
PENALTY_A_DEFAULT: dict[str, float] = {"tl1": 1.0, "mcp": 3.0, "scad": 3.7}
PENALTY_A_RULE: dict[str, tuple[float, str]] = {
    "tl1": (0.0, "a > 0"),
    "mcp": (0.0, "a > 0"),
    "scad": (2.0, "a > 2"),
}
#: NS adds the penalty's subgradient to ∂L/∂γ; ℓ0's is 0 wherever it exists, so NS cannot use it.
NS_PENALTIES: tuple[str, ...] = tuple(p for p in PENALTIES if p != "l0")

#: Most epochs a config may ask for (training and fine-tuning each).
MAX_EPOCHS = 1000
#: Side of the square input images the CIFAR family (and digits, synthetic) is brought to: the
#: default of ``TrainConfig.input_size`` except for ``imagefolder``.
INPUT_SIZE = 32
#: Default ``input_size`` of an ``imagefolder`` data set (ImageNet's).
IMAGEFOLDER_INPUT_SIZE = 224
#: Bounds of ``input_size`` (a server may set a lower upper bound: PROXNS_MAX_INPUT_SIZE).
MIN_INPUT_SIZE, MAX_INPUT_SIZE = 16, 1024
#: A run's checkpoint in its folder (``proxns train --out``, a job's folder in the artifact store),
#: and the partial file it is written to before an atomic rename.
CHECKPOINT_FILE = "checkpoint.pt"
CHECKPOINT_PARTIAL = "checkpoint.tmp"

# --------------------------------------------------------------------------- which method takes which field

#: For each method, the method-specific config fields it takes. A field listed for some method
#: and not for another is refused by the validators, dropped by the sweep expander and hidden by
#: the form for the other method (``GET /api/meta`` serves this table as ``method_fields``).
METHOD_FIELDS: dict[str, tuple[str, ...]] = {
    "baseline": (),
    "ns": ("lam", "prune_ratio", "penalty", "penalty_a"),
    "proxns": ("lam", "beta", "penalty", "penalty_a"),
}
#: The config fields whose applicability depends on the method.
METHOD_SPECIFIC_FIELDS: tuple[str, ...] = tuple(
    dict.fromkeys(f for fields in METHOD_FIELDS.values() for f in fields)
)

# --------------------------------------------------------------------------- architectures and depths


@dataclass(frozen=True)
class DepthRule:
    """Valid depths of one architecture: an explicit set, or ``step·n + offset`` with n ≥ 1."""

    explicit: tuple[int, ...] = ()
    step: int = 0
    offset: int = 0
    text: str = ""

    def allows(self, depth: int) -> bool:
        if self.explicit:
            return depth in self.explicit
        return depth >= self.step + self.offset and (depth - self.offset) % self.step == 0

    def depths(self, limit: int = 300) -> list[int]:
        if self.explicit:
            return list(self.explicit)
        return list(range(self.step + self.offset, limit + 1, self.step))


#: Conv widths of VGG-depth ("M": 2×2 max-pooling); its keys are VGG's valid depths. Plain data, so
#: the depth rule below needs no torch; ``proxns_core.models.vgg`` builds the networks from it.
VGG_CFGS: dict[int, list[int | str]] = {
    11: [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512],
    13: [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512],
    16: [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512],
    19: [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512],
}

#: The model classes check their depth against these rules (``check_depth``); a test checks that
#: the smallest depths of each rule build and the next integer is refused.
DEPTH_RULES: dict[str, DepthRule] = {
    "vgg": DepthRule(explicit=tuple(VGG_CFGS), text="one of " + ", ".join(map(str, VGG_CFGS))),
    "resnet": DepthRule(step=9, offset=2, text="9n+2 with n >= 1 (11, 20, 29, ..., 164, ...)"),
    "densenet": DepthRule(step=3, offset=4, text="3n+4 with n >= 1 (7, 10, 13, ..., 40, ...)"),
}


def valid_depths(arch: str, limit: int = 300) -> list[int]:
    """Valid depths of ``arch`` up to ``limit`` (none for a torchvision network)."""
    return DEPTH_RULES[arch].depths(limit) if arch in DEPTH_RULES else []


def depth_rule(arch: str) -> str | None:
    """Human-readable rule for the depths of ``arch`` (None for a torchvision network)."""
    return DEPTH_RULES[arch].text if arch in DEPTH_RULES else None


#: Why a torchvision network takes no depth or width.
def fixed_structure_rule(field: str, arch: str) -> str:
    return (
        f"{field} applies only to arch {', '.join(PAPER_ARCHS)}; {arch} is a torchvision network whose "
        f"structure its name fixes: leave {field} unset"
    )


def network_label(arch: str, depth: int | None, width: float) -> str:
    """How a network is named to people: ``vgg-11 x0.25``, or ``resnet18`` (a torchvision network)."""
    return arch if depth is None else f"{arch}-{depth} x{width:g}"


def check_depth(arch: str, depth: int) -> None:
    """Raise ``ValueError`` naming the rule when ``depth`` is not a valid depth of ``arch``."""
    if arch in TORCHVISION_ARCHS:
        raise ValueError(fixed_structure_rule("depth", arch))
    if arch not in DEPTH_RULES:
        raise ValueError(f"unknown arch {arch!r}: allowed {', '.join(ARCHS)}")
    if not DEPTH_RULES[arch].allows(depth):
        raise ValueError(f"depth {depth} is not valid for {arch}: allowed {depth_rule(arch)}")


# --------------------------------------------------------------------------- published defaults

# Published settings (docs/method.md, "Reference settings").
DEFAULT_DEPTH = {"vgg": 19, "resnet": 164, "densenet": 40}
DEFAULT_LAM = {
    "proxns": {"vgg": 0.0045, "densenet": 0.004, "resnet": 0.002},
    "ns": {"vgg": 1e-4, "densenet": 1e-5, "resnet": 1e-5},
    "baseline": {"vgg": 0.0, "densenet": 0.0, "resnet": 0.0},
}
DEFAULT_BETA = {"vgg": 100.0, "densenet": 100.0, "resnet": 0.25}
DEFAULT_PRUNE_RATIO = {"vgg": 0.7, "densenet": 0.4, "resnet": 0.4}
# torchvision networks take their family's values (ARCH_FAMILY): a starting point, not published.
for _arch in TORCHVISION_ARCHS:
    for _table in (*DEFAULT_LAM.values(), DEFAULT_BETA, DEFAULT_PRUNE_RATIO):
        _table[_arch] = _table[ARCH_FAMILY[_arch]]
_METHOD_DEFAULTS = {"lam": DEFAULT_LAM, "beta": DEFAULT_BETA, "prune_ratio": DEFAULT_PRUNE_RATIO}


def method_default(name: str, method: str, arch: str) -> float | None:
    """The published default of method-specific field ``name`` for ``method`` on ``arch``.

    None where the method does not take the field, except λ of the baseline, which is 0. The
    penalty's default is ℓ1 (the paper); ``penalty_a``'s depends on the penalty (``_fill_defaults``).
    """
    if name == "penalty":
        return "l1" if name in METHOD_FIELDS[method] else None
    if name == "penalty_a":
        return None
    table = _METHOD_DEFAULTS[name]
    if name == "lam":
        return table[method][arch]
    return table[arch] if name in METHOD_FIELDS[method] else None


def default_milestones(epochs: int) -> list[int]:
    """The epochs after which lr is divided by 10 by default: 50 % and 75 % of ``epochs``."""
    return sorted({m for m in (epochs // 2, epochs * 3 // 4) if 0 < m < epochs})


# --------------------------------------------------------------------------- artifact formats


@dataclass(frozen=True)
class ArtifactFormat:
    """One file a finished job exports."""

    format: str
    file: str
    media_type: str
    description: str


ARTIFACT_FORMATS: dict[str, ArtifactFormat] = {
    f.format: f
    for f in (
        ArtifactFormat(
            "safetensors",
            "slim.safetensors",
            "application/octet-stream",
            "Weights of the slim network; load with proxns_core.load_slim beside slim.json.",
        ),
        ArtifactFormat(
            "json",
            "slim.json",
            "application/json",
            "Architecture of the slim network (arch, depth, cfg, normalisation) for proxns_core.load_slim.",
        ),
        ArtifactFormat(
            "pt2",
            "slim.pt2",
            "application/octet-stream",
            "Inference form for today's PyTorch: torch.export.load(path).module(); no project code.",
        ),
        ArtifactFormat(
            "torchscript",
            "slim.torchscript.pt",
            "application/octet-stream",
            "Frozen inference form for older runtimes: torch.jit.load(path); no project code.",
        ),
        ArtifactFormat(
            "onnx",
            "slim.onnx",
            "application/onnx",
            "ONNX (opset 17, dynamic batch, input 'input', output 'logits') for ONNX Runtime.",
        ),
    )
}
assert tuple(ARTIFACT_FORMATS) == ArtifactFormatName.__args__

# --------------------------------------------------------------------------- data sets on disk

#: Files torchvision needs under the data root, per data set that is not bundled or generated.
DATASET_FILES = {
    "cifar10": ["cifar-10-batches-py/data_batch_1", "cifar-10-batches-py/test_batch"],
    "cifar100": ["cifar-100-python/train", "cifar-100-python/test"],
    "svhn": ["train_32x32.mat", "test_32x32.mat"],
}


def resolve_data_root(data_root: str | None) -> Path:
    """``data_root``, else $PROXNS_DATA_ROOT, else ./data."""
    return Path(data_root or os.environ.get("PROXNS_DATA_ROOT") or "data").expanduser()


#: File endings ``imagefolder`` reads as images (case-insensitive), as torchvision's ImageFolder.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
#: The two folders an ``imagefolder`` data_root holds, each with one sub-folder per class.
IMAGEFOLDER_SPLITS = ("train", "val")


def is_image_file(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS) and not name.startswith(".")


def _class_folders(split: Path) -> list[str]:
    with os.scandir(split) as entries:
        return sorted(e.name for e in entries if e.is_dir() and not e.name.startswith("."))


def image_files(folder: Path, limit: int | None = None) -> list[str]:
    """Image files under ``folder`` (recursively, sorted, relative to it); at most ``limit``."""
    found: list[str] = []
    for top, dirs, files in os.walk(folder, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        rel = os.path.relpath(top, folder)
        for f in sorted(files):
            if is_image_file(f):
                found.append(f if rel == "." else os.path.join(rel, f))
                if limit is not None and len(found) >= limit:
                    return found
    return found


def imagefolder_problem(data_root: str | Path) -> str | None:
    """Why ``data_root`` is not a valid image folder (where it looked, what it found); None when it
    is: ``train/`` and ``val/`` each holding the same ≥ 2 class sub-folders, every training class
    with images and the validation folder with some. Reads directory entries only (stops at each
    class's first image)."""
    root = Path(data_root).expanduser()
    if not root.is_dir():
        return f"looked in {root}: it is not a folder"
    classes: dict[str, list[str]] = {}
    for split in IMAGEFOLDER_SPLITS:
        folder = root / split
        if not folder.is_dir():
            found = (
                ", ".join(sorted(p.name for p in root.iterdir() if not p.name.startswith("."))[:10])
                or "nothing"
            )
            return f"looked in {folder}: no such folder ({root} holds {found}; expected train/ and val/)"
        try:
            names = _class_folders(folder)
        except OSError as exc:
            return f"looked in {folder}: cannot read it ({exc.strerror or exc})"
        if len(names) < 2:
            loose = len(image_files(folder, limit=1000)) if not names else 0
            extra = f" and {loose} loose image(s)" if loose else ""
            return (
                f"looked in {folder}: found {len(names)} class folder(s){extra}; expected at least 2 "
                "sub-folders, one per class, holding that class's images"
            )
        classes[split] = names
    if classes["train"] != classes["val"]:
        only_train = sorted(set(classes["train"]) - set(classes["val"]))
        only_val = sorted(set(classes["val"]) - set(classes["train"]))
        return (
            f"looked in {root / 'train'} and {root / 'val'}: the class folders differ "
            f"(only in train: {', '.join(only_train[:5]) or 'none'}; only in val: {', '.join(only_val[:5]) or 'none'})"
        )
    empty = [c for c in classes["train"] if not image_files(root / "train" / c, limit=1)]
    if empty:
        return (
            f"looked in {root / 'train'}: found {len(classes['train'])} class folders, but "
            f"{', '.join(empty[:5])} hold(s) no images ({', '.join(IMAGE_EXTENSIONS)})"
        )
    if not any(image_files(root / "val" / c, limit=1) for c in classes["val"]):
        return f"looked in {root / 'val'}: found {len(classes['val'])} class folders but no images"
    return None


def imagefolder_classes(data_root: str | Path) -> list[str]:
    """The class names of an image folder (its train/ sub-folders, sorted)."""
    return _class_folders(Path(data_root).expanduser() / "train")


def dataset_status(name: str, data_root: str | None = None) -> tuple[bool, str]:
    """Whether ``name`` can be loaded here without downloading, and why not."""
    if name in ("digits", "synthetic"):
        return True, "bundled" if name == "digits" else "generated"
    if name == "imagefolder":
        root = resolve_data_root(data_root)
        problem = imagefolder_problem(root)
        return (False, problem) if problem else (True, f"found in {root}")
    if name not in DATASET_FILES:
        return False, f"unknown dataset {name!r}"
    root = resolve_data_root(data_root)
    missing = [f for f in DATASET_FILES[name] if not (root / f).exists()]
    if missing:
        return False, f"missing {', '.join(str(root / f) for f in missing)}"
    return True, f"found in {root}"


# --------------------------------------------------------------------------- the input

# ASCII digits only (``\d`` also matches other scripts' digits) and matched with fullmatch: ``$``
# would accept a trailing newline.
_DEVICE_RE = re.compile(r"auto|cpu|cuda|cuda:[0-9]{1,4}")
#: The rule for fp16, which needs a grad scaler and a CUDA device.
PRECISION_RULE = (
    "precision 'fp16' needs a CUDA device (fp16 autocast with a grad scaler runs on CUDA only): "
    "use device cuda or auto, or precision fp32 or bf16 on cpu"
)
#: Longest ``data_root`` a config may name (a path; Linux's PATH_MAX).
MAX_PATH_LENGTH = 4096
#: Default lr of a run that starts from ``init_weights`` (fine-tuning a trained network).
FINETUNE_LR = 0.01
#: How a service job's ``init_weights`` names an upload (``POST /api/weights``): ``weights:ID``.
WEIGHTS_REF_PREFIX = "weights:"


def _refuse_bool(value: Any) -> Any:
    """JSON's true/false are not numbers (pydantic would read them as 1/0): refuse them."""
    if isinstance(value, bool):
        raise ValueError("Input should be a number, not a boolean")
    return value


def _refuse_control_chars(value: Any) -> Any:
    """Refuse NUL and other control characters, and lone surrogates (not encodable as UTF-8)."""
    if isinstance(value, str):
        if any(ord(c) < 32 or ord(c) == 127 for c in value):
            raise ValueError("String should not contain control characters (such as NUL)")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("String should be valid Unicode (it holds a lone surrogate)") from None
    return value


#: Numbers that refuse booleans; the CLI's text flags (``--epochs 20``) still parse.
Int = Annotated[int, BeforeValidator(_refuse_bool)]
Float = Annotated[float, BeforeValidator(_refuse_bool)]
#: Text without control characters or lone surrogates.
Text = Annotated[str, BeforeValidator(_refuse_control_chars)]


class TrainConfig(BaseModel):
    """One pruning job: data, architecture, sparsity method and optimiser settings."""

    # NaN and ±Infinity are never a valid setting (Python's json and YAML's .nan accept them).
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    dataset: Dataset = Field("cifar10", description="Training data set.")
    data_root: Text | None = Field(
        None,
        max_length=MAX_PATH_LENGTH,
        description="Folder holding the data set files; default $PROXNS_DATA_ROOT or ./data.",
    )
    download: bool = Field(False, description="Let torchvision download a missing data set.")
    arch: Arch = Field(
        "vgg",
        description="The paper's vgg (with BN), resnet (pre-activation bottleneck), densenet, or a "
        "torchvision network by its name (resnet18, resnet50, mobilenet_v2, mobilenet_v3_small, vgg11_bn, "
        "vgg16_bn, densenet121, efficientnet_b0, regnet_x_400mf; random start, classes from the data).",
    )
    depth: Int | None = Field(
        None, description="Network depth of vgg / resnet / densenet; default 19 / 164 / 40 by arch."
    )
    width: Float = Field(
        1.0, gt=0, le=4, description="Channel width multiplier of vgg / resnet / densenet (small runs: 0.25)."
    )
    prune_stream: bool = Field(
        False,
        description="resnet and densenet only: also delete the residual (dense) stream channels whose ξ "
        "is 0 in every BN that reads them; off is the paper's behaviour (the stream is kept whole). "
        "torchvision networks always prune coupled stream channels this way.",
    )
    init_weights: Text | None = Field(
        None,
        max_length=MAX_PATH_LENGTH,
        description="Starting weights: a state_dict of this arch, depth, width and data set's classes "
        "(safetensors, or torch.save read with weights_only). For a service job the reference of an "
        "upload (weights:ID, from POST /api/weights); for proxns train a file. With it, lr defaults "
        f"to {FINETUNE_LR} (fine-tuning) instead of 0.1, and proxns's ξ start at the loaded γ.",
    )
    method: Method = Field("proxns", description="baseline, ns (network slimming) or proxns.")
    lam: Float | None = Field(None, ge=0, le=10, description="λ, the ℓ1 weight; default by method and arch.")
    beta: Float | None = Field(None, gt=0, le=1e6, description="β, the coupling weight (proxns only).")
    prune_ratio: Float | None = Field(
        None, gt=0, lt=1, description="Share of channels NS prunes by global |γ| threshold (ns only)."
    )
    penalty: Penalty | None = Field(
        None,
        description="The sparsity penalty P on ξ (proxns: its exact proximal step) or on γ (ns: its "
        "subgradient): l1 (the paper, default), l0, l1/2, tl1, l1-l2 (per BN layer), mcp, scad, as "
        "defined in PAPER.md; λ is its weight. ns takes all but l0.",
    )
    penalty_a: Float | None = Field(
        None,
        description="Shape parameter of tl1 (a > 0, default 1), mcp (a > 0, default 3) and scad (a > 2, "
        "default 3.7); only for those penalties.",
    )
    epochs: Int = Field(160, ge=1, le=MAX_EPOCHS)
    batch_size: Int = Field(64, ge=1, le=4096)
    lr: Float = Field(
        0.1, gt=0, le=10, description=f"Learning rate; when unset and init_weights is given: {FINETUNE_LR}."
    )
    momentum: Float = Field(0.9, ge=0, lt=1)
    weight_decay: Float = Field(1e-4, ge=0, lt=1)
    lr_milestones: list[Int] | None = Field(
        None,
        max_length=100,
        description="Epochs after which lr is divided by 10; default 50 % and 75 % of epochs.",
    )
    finetune_epochs: Int = Field(0, ge=0, le=MAX_EPOCHS)
    channel_multiple: Int = Field(
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
    seed: Int = Field(0, ge=0, le=2**31 - 1)
    device: Text = Field("auto", max_length=16, description="auto, cpu, cuda or cuda:N.")
    precision: Precision = Field(
        "auto",
        description="Arithmetic of the forward and backward passes: auto (bf16 autocast on CUDA cards that "
        "support it, else fp32), fp32, bf16 (autocast), fp16 (autocast with a grad scaler; CUDA only). "
        "The proxns and NS updates always run in fp32 on the fp32 master γ, so ξ's zeros stay exact.",
    )
    channels_last: bool | None = Field(
        None, description="Channels-last memory format for weights and images; default on CUDA, off on cpu."
    )
    compile: bool = Field(
        False,
        description="torch.compile the training step (forward and backward); results equal within "
        "tolerance, the first epoch pays the compilation.",
    )
    cuda_graphs: bool | None = Field(
        None,
        description="Replay each training step (forward, backward, SGD and the sparsity update) as one "
        "captured CUDA graph, so the card does not wait for Python to launch hundreds of small kernels; "
        "default on CUDA in fp32 and bf16 (not with fp16 or compile); the same arithmetic as without.",
    )
    input_size: Int | None = Field(
        None,
        ge=MIN_INPUT_SIZE,
        le=MAX_INPUT_SIZE,
        description=f"Side of the square images the network sees; default {INPUT_SIZE}, or "
        f"{IMAGEFOLDER_INPUT_SIZE} for imagefolder.",
    )
    mean: list[Float] | None = Field(
        None,
        min_length=3,
        max_length=3,
        description="Per-channel (RGB) normalisation mean of images in [0, 1] (imagefolder); default "
        "computed from the training folder.",
    )
    std: list[Annotated[Float, Field(gt=0)]] | None = Field(
        None,
        min_length=3,
        max_length=3,
        description="Per-channel (RGB) normalisation standard deviation (imagefolder); default computed "
        "from the training folder.",
    )
    train_subset: Int | None = Field(None, ge=1, description="Use only this many training images.")
    test_subset: Int | None = Field(None, ge=1, description="Use only this many test images.")

    @field_validator("depth")
    @classmethod
    def _check_depth(cls, depth: int | None, info: ValidationInfo) -> int | None:
        arch = info.data.get("arch")
        if depth is not None and arch is not None:
            check_depth(arch, depth)
        return depth

    @field_validator("width")
    @classmethod
    def _check_width(cls, width: float, info: ValidationInfo) -> float:
        arch = info.data.get("arch")
        if arch in TORCHVISION_ARCHS and width != 1.0:
            raise ValueError(fixed_structure_rule("width", arch))
        return width

    @field_validator("prune_stream")
    @classmethod
    def _check_prune_stream(cls, prune: bool, info: ValidationInfo) -> bool:
        arch = info.data.get("arch")
        if prune and arch is not None and arch not in STREAM_ARCHS:
            also = " (torchvision networks prune coupled stream channels always)" if arch != "vgg" else ""
            raise ValueError(
                f"prune_stream applies only to arch {' or '.join(STREAM_ARCHS)}, not {arch!r}{also}; "
                "leave it unset"
            )
        return prune

    @field_validator(*METHOD_SPECIFIC_FIELDS)
    @classmethod
    def _check_method_field(cls, value: float | None, info: ValidationInfo) -> float | None:
        method, arch = info.data.get("method"), info.data.get("arch")
        if value is None or method is None or info.field_name in METHOD_FIELDS[method]:
            return value
        if arch is not None and value == method_default(info.field_name, method, arch):
            return value  # the resolved default (λ = 0 for the baseline): a stored config re-validates
        takers = [m for m, fields in METHOD_FIELDS.items() if info.field_name in fields]
        neutral = " (or 0)" if method_default(info.field_name, method, arch or ARCHS[0]) == 0 else ""
        raise ValueError(
            f"{info.field_name} applies only to method {' or '.join(repr(m) for m in takers)}, "
            f"not {method!r}; leave it unset{neutral}"
        )

    @field_validator("penalty")
    @classmethod
    def _check_penalty(cls, penalty: str | None, info: ValidationInfo) -> str | None:
        if penalty is not None and info.data.get("method") == "ns" and penalty not in NS_PENALTIES:
            raise ValueError(
                f"penalty {penalty!r} does not apply to method 'ns': its subgradient is 0 wherever it "
                f"exists; use it with method 'proxns' (exact hard-thresholding), or for ns one of "
                f"{', '.join(NS_PENALTIES)}"
            )
        return penalty

    @field_validator("penalty_a")
    @classmethod
    def _check_penalty_a(cls, a: float | None, info: ValidationInfo) -> float | None:
        if a is None or "penalty" not in info.data:
            return a
        penalty = info.data.get("penalty") or "l1"
        if penalty not in PENALTY_A_RULE:
            raise ValueError(
                f"penalty_a applies only to penalty {', '.join(PENALTY_A_RULE)}, not {penalty!r}; leave it unset"
            )
        bound, rule = PENALTY_A_RULE[penalty]
        if not a > bound:
            raise ValueError(f"penalty_a {a} is not valid for penalty {penalty!r}: it needs {rule}")
        return a

    @field_validator("device")
    @classmethod
    def _check_device(cls, device: str) -> str:
        if not _DEVICE_RE.fullmatch(device):
            raise ValueError(f"device {device!r} is not valid: allowed auto, cpu, cuda, cuda:N")
        return device

    @field_validator("precision")
    @classmethod
    def _check_precision(cls, precision: str, info: ValidationInfo) -> str:
        if precision == "fp16" and info.data.get("device") == "cpu":
            raise ValueError(PRECISION_RULE)
        return precision

    @field_validator("cuda_graphs")
    @classmethod
    def _check_cuda_graphs(cls, graphs: bool | None, info: ValidationInfo) -> bool | None:
        if not graphs:
            return graphs
        if info.data.get("device") == "cpu":
            raise ValueError("cuda_graphs needs a CUDA device: use device cuda or auto, or leave it unset")
        if info.data.get("precision") == "fp16" or info.data.get("compile"):
            raise ValueError(
                "cuda_graphs does not combine with precision fp16 (its grad scaler) or compile; "
                "leave it unset or use fp32/bf16 without compile"
            )
        return graphs

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
        if self.depth is None and self.arch in DEFAULT_DEPTH:
            self.depth = DEFAULT_DEPTH[self.arch]
        if self.input_size is None:
            self.input_size = IMAGEFOLDER_INPUT_SIZE if self.dataset == "imagefolder" else INPUT_SIZE
        for name in METHOD_SPECIFIC_FIELDS:
            if getattr(self, name) is None:
                setattr(self, name, method_default(name, self.method, self.arch))
        if self.penalty_a is None and self.penalty in PENALTY_A_DEFAULT:
            self.penalty_a = PENALTY_A_DEFAULT[self.penalty]
        if self.lr_milestones is None:
            self.lr_milestones = default_milestones(self.epochs)
        if self.init_weights is not None and "lr" not in self.model_fields_set:
            self.lr = FINETUNE_LR  # a pretrained start: 0.1 would throw away what it learned
        return self


def config_defaults() -> dict[str, Any]:
    """Defaults a form needs: plain field defaults plus the per-arch/method published values."""
    plain = {name: f.default for name, f in TrainConfig.model_fields.items()}
    return {
        "fields": plain,
        "depth": DEFAULT_DEPTH,
        "lam": DEFAULT_LAM,
        "beta": DEFAULT_BETA,
        "prune_ratio": DEFAULT_PRUNE_RATIO,
    }


# --------------------------------------------------------------------------- the outputs

#: OpenAPI's marker for integers that may exceed 32 bits; the store maps it to a 64-bit column.
INT64 = {"format": "int64"}


class LayerChannels(BaseModel):
    """Channels of one prunable layer before and after slimming."""

    name: str = Field(description="Module path of the layer's BatchNorm in the full network.")
    total: int = Field(ge=0, description="Channels of the layer in the full network.")
    kept: int = Field(ge=0, description="Channels the slim network keeps.")


class Latency(BaseModel):
    """Latency of one network's inference form at one batch size: median and spread of ``repeats`` timings,
    taken alternately with the other network after warm-up."""

    network: Literal["full", "slim"] = Field(description="Which network was timed.")
    batch_size: int = Field(ge=1, description="Images per forward pass.")
    median_ms: float = Field(ge=0, description="Median of the timings (ms).")
    q1_ms: float = Field(ge=0, description="First quartile of the timings (ms).")
    q3_ms: float = Field(ge=0, description="Third quartile of the timings (ms).")
    min_ms: float = Field(ge=0, description="Fastest timing (ms).")
    repeats: int = Field(ge=1, description="Timings taken.")
    timer: Literal["cuda_events", "perf_counter"] = Field(
        description="CUDA events on a GPU (device time), the host's perf_counter on the CPU."
    )


class Result(BaseModel):
    """What a finished run measured: the full network against its slimmed form."""

    acc_full: float = Field(description="Test accuracy (fraction) of the full network after training.")
    acc_slim: float = Field(description="Test accuracy of the slim network, straight after pruning.")
    acc_finetuned: float | None = Field(
        None, description="Test accuracy of the slim network after fine-tuning; null without fine-tuning."
    )
    channels_total: int = Field(ge=0, description="Prunable channels of the full network.")
    channels_pruned: int = Field(ge=0, description="Channels the slim network removed.")
    pruned_fraction: float = Field(ge=0, le=1, description="channels_pruned / channels_total.")
    params_full: int = Field(ge=0, description="Parameters of the full network.", json_schema_extra=INT64)
    params_slim: int = Field(ge=0, description="Parameters of the slim network.", json_schema_extra=INT64)
    flops_full: int = Field(
        ge=0,
        description="Multiply-accumulates of one image through the full network.",
        json_schema_extra=INT64,
    )
    flops_slim: int = Field(
        ge=0,
        description="Multiply-accumulates of one image through the slim network.",
        json_schema_extra=INT64,
    )
    latency_full_ms: float = Field(
        description="Median latency (ms) of one image through the full network's inference form "
        "(see ``latency`` for the spread and batch 64)."
    )
    latency_slim_ms: float = Field(
        description="Median latency (ms) of one image through the slim network's inference form."
    )
    layers: list[LayerChannels] = Field(description="Per prunable layer: total and kept channels.")
    kept_forced: list[str] = Field(
        default_factory=list,
        description="Layers that lost every channel, where the strongest channel was kept anyway.",
    )
    num_classes: int | None = Field(
        None,
        ge=1,
        description="Classes of the data set the network was trained on (chance accuracy is 1 / num_classes).",
    )
    acc_masked: float | None = Field(
        None,
        description="Test accuracy of the masked network (γ = 0 on the pruned channels, nothing deleted): "
        "what the slim network must reproduce. acc_slim equals it where every fold is exact.",
    )
    slim_exact: bool | None = Field(
        None,
        description="Whether every deleted channel's constant was folded exactly into its consumers "
        "(always for vgg / resnet / densenet); false: see inexact_layers.",
    )
    inexact_layers: dict[str, str] = Field(
        default_factory=dict,
        description="Consumers that could not take an exact fold, and why; the slim network's BN "
        "statistics were then re-estimated on training batches (acc_masked − acc_slim is the gap left).",
    )
    device: str | None = Field(
        None, max_length=64, description="Device the run trained and was timed on (cpu, cuda:0, ...)."
    )
    device_name: str | None = Field(
        None, max_length=200, description="The card's name (NVIDIA H100 80GB HBM3, ...) or the CPU's model."
    )
    precision: str | None = Field(
        None, max_length=8, description="Precision the run trained in, ``auto`` resolved (fp32, bf16, fp16)."
    )
    channels_last: bool | None = Field(None, description="Whether the run trained channels-last.")
    latency: list[Latency] = Field(
        default_factory=list,
        description="Median and spread of the latency of both networks' inference forms at batch 1 and 64; "
        "latency_full_ms and latency_slim_ms are its batch-1 medians.",
    )


#: Edges of the fixed log-spaced |ξ| histogram recorded per BN layer and epoch: bin 0 holds the exact
#: zeros, bin 1 (0, 1e-6), then half-decade bins up to 10, and the last bin [10, ∞).
XI_HIST_EDGES: tuple[float, ...] = tuple(10 ** (e / 2) for e in range(-12, 3))
#: Most training batches the per-epoch "as delivered" accuracy re-estimates BN statistics on.
DELIVERED_BN_BATCHES = 20


class LayerSparsity(BaseModel):
    """One BN layer's sparse vector (ξ for proxns, γ otherwise) at the end of an epoch."""

    name: str = Field(description="Module path of the BN layer.")
    total: int = Field(ge=0, description="Channels of the layer.")
    zeros: int = Field(ge=0, description="Entries exactly 0.")
    hist: list[int] = Field(
        description="Counts of |ξ| per bin of XI_HIST_EDGES (served by GET /api/meta as xi_hist_edges): "
        "exact zeros, (0, 1e-6), half-decades up to 10, [10, ∞)."
    )


class EpochMetrics(BaseModel):
    """One finished epoch; fine-tune epochs continue the numbering. NaN (a diverged run) is null."""

    phase: Phase = Field(description="train, or finetune for the slim network's fine-tuning epochs.")
    epoch: int = Field(ge=1, description="Epoch number, 1-based, counted over training and fine-tuning.")
    epochs: int = Field(ge=1, description="Total epochs of the run (training + fine-tuning).")
    lr: float = Field(description="Learning rate the epoch used.")
    train_loss: float | None = Field(None, description="Mean training cross-entropy.")
    objective: float | None = Field(
        None, description="Training loss plus the sparsity penalty (λ‖ξ‖₁ for proxns, λ‖γ‖₁ for ns)."
    )
    test_loss: float | None = Field(None, description="Mean test cross-entropy.")
    test_acc: float | None = Field(
        None,
        description="Test accuracy (fraction) of the network being trained, with its BN running averages "
        "(which lag behind proxns's shrinking γ).",
    )
    test_acc_delivered: float | None = Field(
        None,
        description="Test accuracy of the network as it would be delivered now: pruned by the method's plan "
        "at this epoch, BN statistics re-estimated on at most DELIVERED_BN_BATCHES training batches "
        "(training epochs only; on epochs spaced so that it adds at most 10 % to the training time: every "
        "epoch unless an epoch takes only milliseconds; always the first and the last).",
    )
    zero_fraction: float | None = Field(
        None, description="Share of the sparse vector (ξ for proxns, γ otherwise) that is exactly 0."
    )
    seconds: float | None = Field(None, description="Wall time of the epoch, evaluation included.")
    layers: list[LayerSparsity] | None = Field(
        None,
        description="Per BN layer: zero count and |ξ| histogram of the sparse vector (training epochs only).",
    )


#: What the forms suggest when a data set is chosen (a user's own value is never replaced): a start
#: that trains in minutes where the paper's settings (VGG-19, 160 epochs) would take hours. ``lam``
#: per method, since NS and proxns need λ on different scales; depth, width and λ apply to ``arch``.
DATASET_SUGGESTIONS: dict[str, dict[str, Any]] = {
    "digits": {
        "arch": "vgg",
        "depth": 11,
        "width": 0.25,
        "epochs": 20,
        "batch_size": 64,
        "lam": {"proxns": 0.5, "ns": 0.02},
    },
    "synthetic": {"arch": "vgg", "depth": 11, "width": 0.125, "epochs": 10, "batch_size": 64},
}


#: A finished job whose final accuracy is within this share of the way from chance (1 / classes)
#: to perfect is flagged ``chance_accuracy``: the network learnt nothing (e.g. every layer forced to
#: one channel).
CHANCE_MARGIN = 0.1


def result_warnings(result: dict[str, Any] | None) -> list[dict[str, str]]:
    """What a reader of a succeeded job must not miss, as ``{code, message}``: ``chance_accuracy``
    (the slim network, fine-tuned where it was, is at chance level) and ``layers_forced`` (the method
    emptied layers that slimming kept one channel of)."""
    if not result:
        return []
    out: list[dict[str, str]] = []
    acc = result.get("acc_finetuned")
    if acc is None:
        acc = result.get("acc_slim")
    classes = result.get("num_classes")
    if acc is not None and classes:
        chance = 1.0 / classes
        if acc <= chance + CHANCE_MARGIN * (1.0 - chance):
            out.append(
                {
                    "code": "chance_accuracy",
                    "message": f"accuracy {100 * acc:.1f} % is at chance level ({100 * chance:.1f} % for "
                    f"{classes} classes): the slim network learnt nothing; try a smaller λ",
                }
            )
    forced = result.get("kept_forced") or []
    if forced:
        total = len(result.get("layers") or []) or len(forced)
        out.append(
            {
                "code": "layers_forced",
                "message": f"{len(forced)} of {total} layers lost every channel and kept one only",
            }
        )
    return out


def contract() -> dict[str, Any]:
    """The rules a client needs, as served by ``GET /api/meta``."""
    return {
        "archs": [
            {
                "name": arch,
                "family": "paper" if arch in PAPER_ARCHS else "torchvision",
                "depths": valid_depths(arch),
                "default_depth": DEFAULT_DEPTH.get(arch),
                "depth_rule": depth_rule(arch),
                "takes_depth": arch in PAPER_ARCHS,
                "takes_width": arch in PAPER_ARCHS,
                "takes_prune_stream": arch in STREAM_ARCHS,
                "defaults_from": ARCH_FAMILY[arch],
            }
            for arch in ARCHS
        ],
        "methods": list(METHODS),
        "precisions": list(PRECISIONS),
        "penalties": list(PENALTIES),
        "xi_hist_edges": list(XI_HIST_EDGES),
        "penalty_a": {
            p: {"default": PENALTY_A_DEFAULT[p], "rule": PENALTY_A_RULE[p][1]} for p in PENALTY_A_RULE
        },
        "ns_penalties": list(NS_PENALTIES),
        "precision_rule": PRECISION_RULE,
        "method_fields": {m: list(f) for m, f in METHOD_FIELDS.items()},
        "statuses": list(JOB_STATUSES),
        "finished_statuses": list(FINISHED_STATUSES),
        "artifact_formats": [
            {"format": f.format, "file": f.file, "media_type": f.media_type, "description": f.description}
            for f in ARTIFACT_FORMATS.values()
        ],
        "defaults": config_defaults(),
        "dataset_suggestions": DATASET_SUGGESTIONS,
        "schema": TrainConfig.model_json_schema(),
    }

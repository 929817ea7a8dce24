"""proxns_core: proximal network slimming, classic network slimming and true slimming of CNNs.

Importing the package is cheap: the contract (:mod:`proxns_core.spec`) is torch-free, and the
torch-backed names below load on first use, so that a client that only validates a config or
reads a result never imports torch.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from .spec import EpochMetrics, Result, TrainConfig, dataset_status

#: Torch-backed public names and the submodule that defines each.
_LAZY = {
    "fit": "train",
    "Callbacks": "train",
    "FitResult": "train",
    "TrainingStopped": "train",
    "evaluate": "train",
    "export_slim": "export",
    "load_slim": "export",
    "build_model": "models",
    "DatasetNotFoundError": "data",
    "DeviceUnavailableError": "train",
}

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from .data import DatasetNotFoundError
    from .export import export_slim, load_slim
    from .models import build_model
    from .train import Callbacks, FitResult, TrainingStopped, evaluate, fit


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "TrainConfig",
    "Result",
    "EpochMetrics",
    "dataset_status",
    "fit",
    "Callbacks",
    "FitResult",
    "TrainingStopped",
    "evaluate",
    "export_slim",
    "load_slim",
    "build_model",
    "DatasetNotFoundError",
    "DeviceUnavailableError",
]
assert set(__all__) == {"TrainConfig", "Result", "EpochMetrics", "dataset_status", *_LAZY}

"""proxns_core: proximal network slimming, classic network slimming and true slimming of CNNs."""

from .config import TrainConfig
from .data import DatasetNotFoundError, dataset_status
from .export import export_slim, load_slim
from .models import build_model
from .train import Callbacks, FitResult, TrainingStopped, evaluate, fit

__all__ = [
    "TrainConfig",
    "fit",
    "Callbacks",
    "FitResult",
    "TrainingStopped",
    "evaluate",
    "export_slim",
    "load_slim",
    "build_model",
    "dataset_status",
    "DatasetNotFoundError",
]

"""Suite-wide rules: ``@pytest.mark.cuda`` tests skip, with the reason, where no CUDA GPU is visible."""

from __future__ import annotations

import functools

import pytest


@functools.cache
def _cuda_devices() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    cuda_items = [item for item in items if item.get_closest_marker("cuda")]
    if cuda_items and _cuda_devices() == 0:
        skip = pytest.mark.skip(reason="needs a CUDA GPU (run benchmarks/gpu_check.sh on a GPU machine)")
        for item in cuda_items:
            item.add_marker(skip)

"""/api/meta: what a submission form needs (architectures, depths, data sets, methods, defaults)."""

from __future__ import annotations

import time

from fastapi import APIRouter, Depends
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse

from api.deps import get_settings
from proxns_core.config import ARCHS, METHODS, TrainConfig, config_defaults, depth_rule, valid_depths
from store.settings import Settings

router = APIRouter(tags=["meta"])

_DATASETS_TTL = 30.0
_datasets_cache: dict[str | None, tuple[float, list[dict]]] = {}


def dataset_statuses(data_root: str | None) -> list[dict]:
    """Whether this server can load each data set (cached briefly: it looks at the disk)."""
    cached = _datasets_cache.get(data_root)
    if cached and time.monotonic() - cached[0] < _DATASETS_TTL:
        return cached[1]
    from proxns_core.config import DATASETS
    from proxns_core.data import dataset_status

    out = []
    for name in DATASETS:
        available, reason = dataset_status(name, data_root)
        out.append({"name": name, "available": bool(available), "reason": reason})
    _datasets_cache[data_root] = (time.monotonic(), out)
    return out


@router.get("/api/meta", summary="Architectures, depths, data sets, methods, defaults and the config schema")
def meta(settings: Settings = Depends(get_settings)) -> JSONResponse:
    defaults = config_defaults()
    archs = [
        {
            "name": arch,
            "depths": valid_depths(arch),
            "default_depth": defaults["depth"][arch],
            "depth_rule": depth_rule(arch),
        }
        for arch in ARCHS
    ]
    return JSONResponse(
        jsonable_encoder(
            {
                "archs": archs,
                "datasets": dataset_statuses(settings.data_root),
                "methods": list(METHODS),
                "defaults": defaults,
                "schema": TrainConfig.model_json_schema(),
            }
        )
    )

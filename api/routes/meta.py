"""/api/meta: what a client needs to build and read jobs: the spec's rules, defaults and schema,
and which data sets this server can load."""

from __future__ import annotations

import time

from fastapi import APIRouter, Depends, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse

from api.deps import get_settings
from api.fleet import fleet_summary
from api.limits import limits
from proxns_core.cost import NUM_CLASSES
from proxns_core.spec import (
    DATASET_FILES,
    DATASETS,
    contract,
    dataset_status,
    imagefolder_classes,
    resolve_data_root,
)
from store.filter import OPERATORS, filter_fields
from store.settings import Settings

router = APIRouter(tags=["meta"])


class DatasetStatuses:
    """Whether this server can load each data set, cached briefly per app (it looks at the disk)."""

    def __init__(self, ttl: float = 30.0) -> None:
        self.ttl = ttl
        self._cache: dict[str | None, tuple[float, list[dict]]] = {}

    def get(self, data_root: str | None) -> list[dict]:
        """Each data set's availability; the reason names missing files relative to the data
        root, never a server path."""
        cached = self._cache.get(data_root)
        if cached and time.monotonic() - cached[0] < self.ttl:
            return cached[1]
        out = []
        for name in DATASETS:
            available, reason = dataset_status(name, data_root)
            if name in DATASET_FILES:
                missing = [f for f in DATASET_FILES[name] if f in reason]
                reason = "found" if available else f"missing {', '.join(missing)} under the data root"
            elif name == "imagefolder":  # where it looked, relative to the data root
                root = str(resolve_data_root(data_root))
                reason = "found" if available else reason.replace(root, "<data root>")
            classes = NUM_CLASSES.get(name)
            if name == "imagefolder" and available:
                classes = len(imagefolder_classes(resolve_data_root(data_root)))
            out.append({"name": name, "available": bool(available), "reason": reason, "num_classes": classes})
        self._cache[data_root] = (time.monotonic(), out)
        return out


@router.get(
    "/api/meta",
    summary="The config's rules and defaults, statuses, artifact formats, the data sets available and the fleet",
    description="archs (with valid depths), methods, method_fields (which method takes which "
    "method-specific field), statuses, finished_statuses, artifact_formats, defaults, the config's "
    "JSON schema, datasets with whether this server can load them (and their classes: null for an image folder "
    "this server cannot read), limits: this server's bounds "
    "on a config (PROXNS_MAX_* settings; a config above one is refused with 422 naming it), and fleet: "
    "the registered workers, which are live, and the devices and data sets the live ones offer (a "
    "config no live worker can run is refused with 422 naming the field); filter: the fields (name, "
    "type, source, and the allowed values of names such as method) and operators of the jobs filter "
    "language (GET /api/jobs?where=…).",
)
def meta(request: Request, settings: Settings = Depends(get_settings)) -> JSONResponse:
    body = {
        **contract(),
        "datasets": request.app.state.datasets.get(settings.data_root),
        "limits": limits(settings),
        "filter": {"fields": filter_fields(), "operators": list(OPERATORS)},
    }
    if getattr(request.app.state, "fleet", None) is not None:
        body["fleet"] = fleet_summary(request.app.state.fleet.get())
    return JSONResponse(jsonable_encoder(body))

"""Expand an experiment's base config and sweep lists into the configs of its jobs.

Rules:
- the job count asked for is the product of the lengths of the sweep's lists; more than
  ``max_jobs`` (setting ``PROXNS_MAX_SWEEP_JOBS``) is rejected before anything is expanded;
- a method-specific value (from base or sweep) only applies to the methods that take its field
  (the spec's ``METHOD_FIELDS``); elsewhere it is dropped and the job gets its method's default;
  likewise ``penalty_a`` applies only to the penalties that take one (tl1, mcp, scad);
- combinations that resolve to the same config are created once.
"""

from __future__ import annotations

import itertools
import json
import math
from typing import Any

from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from api.schemas import ExperimentCreate
from proxns_core.search import decide
from proxns_core.spec import METHOD_FIELDS, METHOD_SPECIFIC_FIELDS, PENALTY_A_RULE, TrainConfig

_DEFAULT_METHOD = TrainConfig.model_fields["method"].default


def applicable(cfg: dict[str, Any]) -> dict[str, Any]:
    """Drop the method-specific fields that the combination's method does not take."""
    takes = METHOD_FIELDS.get(cfg.get("method", _DEFAULT_METHOD), METHOD_SPECIFIC_FIELDS)
    kept = {k: v for k, v in cfg.items() if k not in METHOD_SPECIFIC_FIELDS or k in takes}
    if kept.get("penalty_a") is not None and (kept.get("penalty") or "l1") not in PENALTY_A_RULE:
        del kept["penalty_a"]  # a shape parameter applies only to the penalties that have one
    return kept


def expand(body: ExperimentCreate, max_jobs: int = 256) -> list[TrainConfig]:
    """The distinct, validated configs of an experiment; raises RequestValidationError (422)."""
    axes = body.sweep.model_dump(exclude_none=True)
    requested = math.prod(len(v) for v in axes.values())
    if requested > max_jobs:
        sizes = " x ".join(f"{len(v)} {k}" for k, v in axes.items())
        raise RequestValidationError(
            [
                {
                    "type": "value_error",
                    "loc": ("body", "sweep"),
                    "msg": f"sweep asks for {requested} jobs ({sizes}); at most {max_jobs} are allowed "
                    "(setting PROXNS_MAX_SWEEP_JOBS)",
                    "input": axes,
                }
            ]
        )

    configs: dict[str, TrainConfig] = {}
    errors: dict[tuple, dict[str, Any]] = {}
    for combo in itertools.product(*axes.values()):
        chosen = dict(zip(axes, combo, strict=True))
        cfg = applicable({**body.raw_base, **chosen})
        try:
            config = TrainConfig.model_validate(cfg)
        except ValidationError as exc:
            for err in exc.errors(include_url=False):
                field = err["loc"][0] if err["loc"] else None
                where = "sweep" if field in chosen else "base"
                loc = ("body", where, *err["loc"])
                msg = f"{err['msg']} (in the sweep combination {chosen})" if chosen else err["msg"]
                errors.setdefault(
                    (loc, msg), {"type": err["type"], "loc": loc, "msg": msg, "input": err["input"]}
                )
            continue
        configs.setdefault(json.dumps(config.model_dump(mode="json"), sort_keys=True), config)
    if errors:
        raise RequestValidationError(list(errors.values()))
    return list(configs.values())


def _refuse(loc: tuple, msg: str, value: Any) -> RequestValidationError:
    return RequestValidationError([{"type": "value_error", "loc": loc, "msg": msg, "input": value}])


def search_configs(body: ExperimentCreate, start: float) -> list[TrainConfig]:
    """The configs of a budget search's first round; raises RequestValidationError (422).

    A search varies λ of the base's method and nothing else: it needs method proxns (NS removes its
    ``prune_ratio`` share by construction, baseline removes nothing) and excludes ``sweep``.
    """
    assert body.search is not None
    method = body.base.method
    if method != "proxns":
        hint = "set prune_ratio instead" if method == "ns" else "baseline prunes nothing"
        raise _refuse(
            ("body", "search"),
            f"a budget search varies λ of method proxns; base.method is {method!r} ({hint})",
            body.search.model_dump(),
        )
    axes = body.sweep.model_dump(exclude_none=True)
    if axes:
        raise _refuse(
            ("body", "sweep"),
            f"search and sweep cannot be combined: the search chooses λ itself (got sweep axes "
            f"{', '.join(axes)}); submit one experiment per other value",
            axes,
        )
    configs = []
    for lam in decide(body.search, [], start).lams:
        try:
            configs.append(TrainConfig.model_validate({**body.raw_base, "lam": lam}))
        except ValidationError as exc:
            raise RequestValidationError(
                [
                    {
                        "type": e["type"],
                        "loc": ("body", "base", *e["loc"]),
                        "msg": e["msg"],
                        "input": e["input"],
                    }
                    for e in exc.errors(include_url=False)
                ]
            ) from None
    return configs

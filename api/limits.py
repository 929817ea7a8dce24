"""Limits on what one request may ask for, all from the settings (``PROXNS_MAX_*``, README "Limits
and bad input"):

- :class:`RequestLimits`, an ASGI middleware: bodies above ``max_body_bytes`` get 413 (from
  Content-Length, and while reading, for bodies sent without it); JSON bodies holding NaN or
  Infinity, NUL characters, lone surrogates, or nesting deeper than :data:`MAX_JSON_DEPTH` get 422
  naming where, before any route sees them;
- :func:`check_configs`: a valid config may still be too big for this server (depth, width,
  epochs, batch size, subsets, estimated cost, data_root outside the configured roots): 422
  naming the field, the bound and the setting that raises it;
- :func:`check_queue_room`: 429 when the service already holds ``max_queued_jobs`` queued jobs, or
  the user ``max_queued_jobs_per_user``.
"""

from __future__ import annotations

import email.message
import json
import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from fastapi import HTTPException
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import func, literal, select
from sqlalchemy.orm import Session
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import validation_response
from proxns_core.cost import num_classes, param_count, pixel_factor, train_images, training_cost
from proxns_core.spec import TrainConfig, imagefolder_problem, resolve_data_root
from store.models import Job
from store.settings import Settings

#: Deepest nesting of arrays and objects a JSON body may have (a config needs 3).
MAX_JSON_DEPTH = 32


def setting_name(field: str) -> str:
    return f"PROXNS_{field.upper()}"


# --------------------------------------------------------------------------- the body


def _is_json(content_type: str | None) -> bool:
    """Whether FastAPI parses a body of this type as JSON (the same test FastAPI applies)."""
    if not content_type:
        return True
    message = email.message.Message()
    message["content-type"] = content_type
    if message.get_content_maintype() != "application":
        return False
    subtype = message.get_content_subtype()
    return subtype == "json" or subtype.endswith("+json")


def _bad_string(text: str) -> str | None:
    if "\x00" in text:
        return "String should not contain NUL characters"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "String should be valid Unicode (it holds a lone surrogate)"
    return None


def json_body_errors(document: Any, limit: int = 20) -> list[dict[str, Any]]:
    """Where a parsed JSON body holds what no field accepts: NaN/Infinity, NUL, lone surrogates,
    too deep a nesting. Each error is located like FastAPI's (``["body", key, index, ...]``)."""
    errors: list[dict[str, Any]] = []
    stack: list[tuple[Any, tuple[Any, ...]]] = [(document, ("body",))]
    while stack and len(errors) < limit:
        value, loc = stack.pop()
        if len(loc) > MAX_JSON_DEPTH + 1:
            errors.append(
                {
                    "type": "json_too_deep",
                    "loc": loc[:2],
                    "msg": f"JSON nested deeper than {MAX_JSON_DEPTH} levels",
                }
            )
            break
        if isinstance(value, float) and not math.isfinite(value):
            errors.append(
                {
                    "type": "finite_number",
                    "loc": loc,
                    "msg": "Input should be a finite number (NaN and Infinity are not allowed)",
                    "input": str(value),
                }
            )
        elif isinstance(value, str):
            problem = _bad_string(value)
            if problem:
                errors.append({"type": "string_invalid", "loc": loc, "msg": problem, "input": value})
        elif isinstance(value, dict):
            for key, item in reversed(value.items()):
                problem = _bad_string(key)
                if problem:
                    errors.append({"type": "string_invalid", "loc": (*loc, key), "msg": f"Key: {problem}"})
                stack.append((item, (*loc, key)))
        elif isinstance(value, list):
            stack.extend((item, (*loc, i)) for i, item in reversed(list(enumerate(value))))
    return errors


#: Routes (POST) whose body is a file rather than JSON: the body is streamed to the route, which
#: bounds it by the setting named here (413 from Content-Length already here), not buffered.
UPLOAD_PATHS: dict[str, str] = {"/api/weights": "max_weights_bytes"}
#: The body type such a route takes (not one a cross-site form can send without a CORS preflight).
UPLOAD_CONTENT_TYPE = "application/octet-stream"


class RequestLimits:
    """ASGI middleware: body size (413) and JSON values no field accepts (422), before routing."""

    def __init__(self, app: ASGIApp, max_body_bytes: int, upload_bytes: dict[str, int] | None = None) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        #: Per upload path (:data:`UPLOAD_PATHS`), its bound.
        self.upload_bytes = upload_bytes or {}

    def _too_large(self) -> JSONResponse:
        return JSONResponse(
            {
                "detail": f"request body is larger than {self.max_body_bytes} bytes "
                f"(setting {setting_name('max_body_bytes')})"
            },
            status_code=413,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        headers = {k.lower(): v for k, v in scope.get("headers", [])}
        length = headers.get(b"content-length")
        upload = self.upload_bytes.get(scope.get("path", "")) if scope["method"] == "POST" else None
        if upload is not None:  # a file: the route streams it and bounds what it reads
            if length is not None and length.strip().isdigit() and int(length) > upload:
                setting = setting_name(UPLOAD_PATHS[scope["path"]])
                detail = f"request body is larger than {upload} bytes (setting {setting})"
                await JSONResponse({"detail": detail}, status_code=413)(scope, receive, send)
                return
            await self.app(scope, receive, send)
            return
        if length is not None and length.strip().isdigit() and int(length) > self.max_body_bytes:
            await self._too_large()(scope, receive, send)
            return

        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                await self._too_large()(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)

        content_type = headers.get(b"content-type")
        if body and _is_json(content_type.decode("latin-1") if content_type else None):
            errors = None
            try:
                document = json.loads(body)
            except json.JSONDecodeError:
                pass  # FastAPI answers 422 naming the position
            except (ValueError, RecursionError) as exc:  # bad UTF-8, a 5000-digit number, 10^5 brackets
                reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)[:200]
                errors = [
                    {"type": "json_invalid", "loc": ("body",), "msg": f"JSON body is invalid: {reason}"}
                ]
            else:
                errors = json_body_errors(document)
            if errors:
                await validation_response(errors)(scope, receive, send)
                return

        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


# --------------------------------------------------------------------------- the config


def _under(path: str, roots: Sequence[Path]) -> bool:
    try:
        resolved = Path(os.path.realpath(Path(path).expanduser()))
    except (OSError, ValueError, RuntimeError):
        return False
    return any(resolved.is_relative_to(root) for root in roots)


def config_errors(config: TrainConfig, settings: Settings, loc: tuple = ("body",)) -> list[dict[str, Any]]:
    """What in a valid ``config`` exceeds this server's limits, as validation errors at ``loc``."""
    errors: list[dict[str, Any]] = []

    def refuse(field: str, value: Any, bound: Any, setting: str, what: str = "at most") -> None:
        errors.append(
            {
                "type": "limit_exceeded",
                "loc": (*loc, field),
                "msg": f"{field} {value} is above this server's limit: {what} {bound} "
                f"(setting {setting_name(setting)})",
                "input": value,
            }
        )

    depth_setting = {"resnet": "max_depth_resnet", "densenet": "max_depth_densenet"}.get(config.arch)
    if depth_setting and config.depth is not None and config.depth > getattr(settings, depth_setting):
        refuse("depth", config.depth, f"{getattr(settings, depth_setting)} for {config.arch}", depth_setting)
    if config.width > settings.max_width:
        refuse("width", config.width, settings.max_width, "max_width")
    for field in ("epochs", "finetune_epochs"):
        if getattr(config, field) > settings.max_epochs:
            refuse(field, getattr(config, field), settings.max_epochs, "max_epochs")
    if config.input_size is not None and config.input_size > settings.max_input_size:
        refuse("input_size", config.input_size, settings.max_input_size, "max_input_size")
    if config.batch_size > settings.max_batch_size:
        refuse("batch_size", config.batch_size, settings.max_batch_size, "max_batch_size")
    for field in ("train_subset", "test_subset"):
        value, bound = getattr(config, field), getattr(settings, f"max_{field}")
        if value is not None and value > bound:
            refuse(field, value, bound, f"max_{field}")
    if config.data_root is not None and not _under(config.data_root, settings.allowed_data_roots()):
        errors.append(
            {
                "type": "limit_exceeded",
                "loc": (*loc, "data_root"),
                "msg": "data_root must lie inside one of this server's data folders "
                f"(setting {setting_name('data_roots')}); leave it unset for the default",
                "input": config.data_root,
            }
        )
    if not errors and config.dataset == "imagefolder":
        errors += imagefolder_errors(config, settings, loc)
    if not errors:  # the estimate walks the network: only once its size is known to be sane
        cost = training_cost(config)
        if cost > settings.max_cost:
            params = param_count(config.arch, config.depth, config.width, num_classes(config))
            epochs = config.epochs + config.finetune_epochs
            pixels = pixel_factor(config)
            size = f" x {pixels:.3g} ({config.input_size}² pixels over 32²)" if pixels != 1 else ""
            errors.append(
                {
                    "type": "limit_exceeded",
                    "loc": loc,
                    "msg": f"estimated cost {cost:.3g} (parameters {params:,} x {epochs} epochs x "
                    f"{train_images(config):,} training images{size}) is above this server's limit: at most "
                    f"{settings.max_cost:.3g} (setting {setting_name('max_cost')}); use fewer epochs, "
                    "a smaller width or depth, or a train_subset",
                }
            )
    return errors


def imagefolder_errors(
    config: TrainConfig, settings: Settings, loc: tuple = ("body",)
) -> list[dict[str, Any]]:
    """An image folder this host can see but that is not valid: 422 saying where it looked and what
    it found (a folder that is not here at all is left to the fleet check: workers may hold it)."""
    root = resolve_data_root(config.data_root or settings.data_root)
    try:
        here = root.expanduser().exists()
    except OSError:
        here = False
    problem = imagefolder_problem(root) if here else None
    if problem is None:
        return []
    field = "data_root" if config.data_root is not None else "dataset"
    return [
        {
            "type": "dataset_invalid",
            "loc": (*loc, field),
            "msg": f"data_root is not a valid image folder for dataset 'imagefolder': {problem}; it must "
            "hold train/ and val/, each with the same class sub-folders (at least 2) of images",
            "input": config.data_root if config.data_root is not None else config.dataset,
        }
    ]


def check_configs(configs: Iterable[TrainConfig], settings: Settings, loc: tuple = ("body",)) -> None:
    """Raise RequestValidationError (422) listing every limit the configs exceed (each once)."""
    found: dict[tuple, dict[str, Any]] = {}
    for config in configs:
        for err in config_errors(config, settings, loc):
            found.setdefault((err["loc"], err["msg"]), err)
    if found:
        raise RequestValidationError(list(found.values()))


def check_queue_room(db: Session, settings: Settings, new_jobs: int, owner_id: int | None = None) -> None:
    """429 when ``new_jobs`` more would take user ``owner_id`` past ``max_queued_jobs_per_user``
    queued jobs, or the service past ``max_queued_jobs``.

    Soft bounds: two requests racing can both pass.
    """
    # Both counts in one query: this runs on every submission.
    mine_count = func.count(Job.id).filter(Job.owner_id == owner_id) if owner_id is not None else literal(0)
    queued, mine = db.execute(select(func.count(Job.id), mine_count).where(Job.status == "queued")).one()
    if owner_id is not None and mine + new_jobs > settings.max_queued_jobs_per_user:
        raise HTTPException(
            429,
            f"you have {mine} jobs queued and this request adds {new_jobs}; this server queues at most "
            f"{settings.max_queued_jobs_per_user} per user (setting "
            f"{setting_name('max_queued_jobs_per_user')}); wait for some to start or cancel some",
        )
    if queued + new_jobs > settings.max_queued_jobs:
        raise HTTPException(
            429,
            f"{queued} jobs are queued and this request adds {new_jobs}; this server queues at most "
            f"{settings.max_queued_jobs} (setting {setting_name('max_queued_jobs')}); retry later",
        )


def limits(settings: Settings) -> dict[str, Any]:
    """The limits as served by GET /api/meta (no server paths)."""
    names = [
        "max_depth_resnet",
        "max_depth_densenet",
        "max_width",
        "max_epochs",
        "max_batch_size",
        "max_input_size",
        "max_train_subset",
        "max_test_subset",
        "max_cost",
        "max_sweep_jobs",
        "max_queued_jobs",
        "max_queued_jobs_per_user",
        "max_body_bytes",
        "max_weights_bytes",
    ]
    return {name: getattr(settings, name) for name in names}

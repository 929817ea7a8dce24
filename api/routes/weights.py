"""/api/weights: upload a state_dict to start jobs from (``init_weights: weights:ID``), list and
delete them.

An upload is the raw file as the body (``Content-Type: application/octet-stream``; the network it
belongs to in the query), streamed to the artifact store while its SHA-256 is computed, at most
``max_weights_bytes`` (413 naming the setting). It is then checked in a child process (the API
never imports torch): safetensors, or a ``torch.save`` file read with ``torch.load(weights_only=
True)`` (a pickled module or any other object is refused), a flat mapping name → tensor whose
names and shapes are those of the named network's ``state_dict()``; a file that does not fit gets
422 naming the first mismatching tensors.

A job (or experiment) whose ``init_weights`` names an upload is refused (422 at
``init_weights``) when the upload is not the user's, or was made for another network and does
not fit the config's (the first mismatching tensors named).

A torchvision network (``resnet18``, ...) is named by its arch alone: its upload has no depth, and
width 1 (the name fixes the structure).

Deleting an upload removes its file from the artifact store; it is refused (409 naming the jobs)
while a queued or running job starts from it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import anyio
from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from api.auth import can_see, require_user
from api.deps import get_db, get_settings
from api.errors import ErrorOut, error_responses
from api.limits import config_errors, setting_name
from api.schemas import MAX_ID, iso
from proxns_core.cost import num_classes
from proxns_core.spec import (
    DEFAULT_DEPTH,
    TORCHVISION_ARCHS,
    WEIGHTS_REF_PREFIX,
    Arch,
    Float,
    Int,
    Text,
    TrainConfig,
    check_depth,
    fixed_structure_rule,
    network_label,
)
from store.models import Weights
from store.settings import Settings
from store.users import Principal
from store.weights import WeightsInUse, add_weights, delete_weights, list_weights, parse_ref, weights_ref

router = APIRouter(prefix="/api/weights", tags=["weights"])

#: The upload route; the body-size middleware bounds its body by ``max_weights_bytes`` instead.
UPLOAD_PATH = "/api/weights"
#: Where uploads lie in the artifact store.
WEIGHTS_FOLDER = "weights"
#: Most classes an upload may name.
MAX_CLASSES = 100_000
CHECK_TIMEOUT = 300.0


class WeightsOut(BaseModel):
    """An uploaded state_dict."""

    id: int = Field(description="Upload id.")
    ref: str = Field(description="What a config's init_weights sets to start from it: weights:ID.")
    name: str = Field(description="Name given at upload.")
    arch: str = Field(description="Architecture the weights were checked against.")
    depth: int | None = Field(description="Depth of that network (null for a torchvision network).")
    width: float = Field(description="Width multiplier of that network (1 for a torchvision network).")
    num_classes: int = Field(description="Classes of its last layer.")
    format: str = Field(description="safetensors, or torch (a torch.save file).")
    bytes: int = Field(description="File size.", json_schema_extra={"format": "int64"})
    sha256: str = Field(description="Hex SHA-256 of the file as uploaded.")
    created_at: str = Field(description="When it was uploaded (ISO 8601, UTC).")
    note: str | None = Field(
        None,
        description="In the upload's answer only: what the check noted, e.g. a torchvision checkpoint whose "
        "classifier was trained on another number of classes (every other tensor loads; the classifier "
        "starts freshly initialised).",
    )


class WeightsList(BaseModel):
    items: list[WeightsOut]


def weights_dict(row: Weights) -> dict[str, Any]:
    return {
        "id": row.id,
        "ref": weights_ref(row.id),
        "name": row.name,
        "arch": row.arch,
        "depth": row.depth,
        "width": row.width,
        "num_classes": row.num_classes,
        "format": row.format,
        "bytes": row.bytes,
        "sha256": row.sha256,
        "created_at": iso(row.created_at),
    }


def _refuse(msg: str, loc: tuple = ("body",), kind: str = "value_error") -> RequestValidationError:
    return RequestValidationError([{"type": kind, "loc": loc, "msg": msg}])


def _check_command(path: Path, arch: str, depth: int | None, width: float, num_classes: int) -> list[str]:
    # A torchvision network has no depth (and width 1): --depth is left out.
    return [
        sys.executable,
        "-m",
        "proxns_core.weights",
        "check",
        str(path),
        f"--arch={arch}",
        *([] if depth is None else [f"--depth={depth}"]),
        f"--width={width!r}",
        f"--num-classes={num_classes}",
    ]


def _check_answer(returncode: int, stdout: bytes | str, stderr: bytes | str) -> dict[str, Any]:
    lines = (stdout.decode() if isinstance(stdout, bytes) else stdout).strip().splitlines()
    try:
        answer = json.loads(lines[-1]) if returncode == 0 and lines else None
    except json.JSONDecodeError:
        answer = None
    if not isinstance(answer, dict) or "ok" not in answer:
        tail = (stderr.decode(errors="replace") if isinstance(stderr, bytes) else stderr)[-300:]
        raise HTTPException(503, f"the weights check failed to run (exit {returncode}): {tail}")
    return answer


def check_weights_file(
    path: Path, arch: str, depth: int | None, width: float, num_classes: int
) -> dict[str, Any]:
    """Check a file in a child process (blocking; for threads): ``{"ok", "format"|"error"}``."""
    try:
        proc = subprocess.run(
            _check_command(path, arch, depth, width, num_classes),
            capture_output=True,
            timeout=CHECK_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise HTTPException(503, "the weights check took too long; retry later") from None
    return _check_answer(proc.returncode, proc.stdout, proc.stderr)


async def _check_async(
    path: Path, arch: str, depth: int | None, width: float, num_classes: int
) -> dict[str, Any]:
    proc = await asyncio.create_subprocess_exec(
        *_check_command(path, arch, depth, width, num_classes),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        stdout, stderr = await asyncio.wait_for(proc.communicate(), CHECK_TIMEOUT)
    except (TimeoutError, asyncio.CancelledError):
        proc.kill()
        await proc.wait()
        raise
    return _check_answer(proc.returncode, stdout, stderr)


def _looks_like_weights(head: bytes) -> bool:
    """Cheap test before a child process: safetensors (8-byte header length, then ``{``), a zip
    (``torch.save``'s format) or a pickle (its legacy format)."""
    return (len(head) >= 9 and head[8:9] == b"{") or head.startswith((b"PK\x03\x04", b"\x80"))


async def _receive_file(request: Request, target: Path, limit: int) -> tuple[int, str, bytes]:
    """Stream the body into ``target``: its size, hex SHA-256 and first bytes; 413 past ``limit``."""
    digest, size, head = hashlib.sha256(), 0, b""
    with open(target, "wb") as out:
        async for chunk in request.stream():
            if not chunk:
                continue
            size += len(chunk)
            if size > limit:
                raise HTTPException(
                    413,
                    f"weights file is larger than {limit} bytes (setting {setting_name('max_weights_bytes')})",
                )
            if len(head) < 16:
                head += chunk[: 16 - len(head)]
            digest.update(chunk)
            await anyio.to_thread.run_sync(out.write, chunk)
    return size, digest.hexdigest(), head


def _server_limits(arch: str, depth: int | None, width: float, settings: Settings) -> None:
    """The network must be one this server would train (its depth and width limits; a torchvision
    network's structure is fixed by its name)."""
    if arch in TORCHVISION_ARCHS:
        return
    config = TrainConfig(dataset="synthetic", arch=arch, depth=depth, width=width, epochs=1)
    errors = [e for e in config_errors(config, settings, ("query",)) if e["loc"][-1] in ("depth", "width")]
    if errors:
        raise RequestValidationError(errors)


@router.post(
    "",
    status_code=201,
    response_model=WeightsOut,
    summary="Upload starting weights (a state_dict) for a network",
    description="The body is the file itself (Content-Type: application/octet-stream): safetensors, "
    "or a torch.save(model.state_dict()) file, read with torch.load(weights_only=True). It must fit "
    "the network the query names (422 names the first mismatching tensors); at most "
    "PROXNS_MAX_WEIGHTS_BYTES bytes (413). A config starts from it with init_weights set to the "
    "answer's ref (weights:ID).",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
    responses={
        413: {"model": ErrorOut, "description": "Weights file larger than PROXNS_MAX_WEIGHTS_BYTES"},
        415: {"model": ErrorOut, "description": "Body is not application/octet-stream"},
        503: {"model": ErrorOut, "description": "The weights check could not run"},
    },
)
async def upload_weights(
    request: Request,
    arch: Arch = Query(description="Architecture the weights belong to."),
    depth: Int | None = Query(
        None,
        description="Its depth (vgg, resnet, densenet; default by arch as in the config); "
        "not for a torchvision network.",
    ),
    width: Float | None = Query(
        None,
        gt=0,
        le=4,
        description="Its width multiplier (vgg, resnet, densenet; default 1); not for a torchvision network.",
    ),
    num_classes: Int = Query(10, ge=1, le=MAX_CLASSES, description="Classes of its last layer."),
    name: Text | None = Query(None, min_length=1, max_length=200, description="A name to list it by."),
    settings: Settings = Depends(get_settings),
    user: Principal = Depends(require_user),
) -> WeightsOut:
    if arch in TORCHVISION_ARCHS:
        if depth is not None:
            raise _refuse(fixed_structure_rule("depth", arch), ("query", "depth"))
        if width not in (None, 1.0):
            raise _refuse(fixed_structure_rule("width", arch), ("query", "width"))
    else:
        depth = DEFAULT_DEPTH[arch] if depth is None else depth
        try:
            check_depth(arch, depth)
        except ValueError as exc:
            raise _refuse(str(exc), ("query", "depth")) from None
    width = 1.0 if width is None else width
    _server_limits(arch, depth, width, settings)

    folder = Path(settings.artifact_dir) / WEIGHTS_FOLDER
    await anyio.to_thread.run_sync(lambda: folder.mkdir(parents=True, exist_ok=True))
    incoming = folder / f".incoming-{uuid.uuid4().hex}"
    keep = False
    try:
        size, sha256, head = await _receive_file(request, incoming, settings.max_weights_bytes)
        if size == 0:
            raise _refuse("the body is empty: send the weights file (curl --data-binary @FILE)")
        if not _looks_like_weights(head):
            raise _refuse(
                "the body is neither safetensors nor a torch.save file: "
                "save one with torch.save(model.state_dict(), path) or safetensors.torch.save_file"
            )
        answer = await _check_async(incoming, arch, depth, width, num_classes)
        if not answer["ok"]:
            raise _refuse(str(answer.get("error")))
        fmt = answer["format"]
        final = folder / f"{uuid.uuid4().hex}.{'safetensors' if fmt == 'safetensors' else 'pt'}"
        await anyio.to_thread.run_sync(os.replace, incoming, final)
        fields = {
            "owner_id": user.id,
            "name": name or network_label(arch, depth, width),
            "arch": arch,
            "depth": depth,
            "width": width,
            "num_classes": num_classes,
            "format": fmt,
            "bytes": size,
            "sha256": sha256,
            "location": str(final.relative_to(Path(settings.artifact_dir))),
        }

        def save() -> dict[str, Any]:
            with request.app.state.sessionmaker() as db:
                return weights_dict(add_weights(db, **fields))

        try:
            row = await run_in_threadpool(save)
        except BaseException:
            final.unlink(missing_ok=True)
            raise
        keep = True
        return WeightsOut(**row, note=answer.get("note"))
    finally:
        if not keep:
            incoming.unlink(missing_ok=True)


@router.get(
    "", response_model=WeightsList, summary="List uploaded weights, newest first (yours; an admin's: all)"
)
def get_weights_list(db: Session = Depends(get_db), user: Principal = Depends(require_user)) -> WeightsList:
    rows = list_weights(db, None if user.is_admin else user.id)
    return WeightsList(items=[WeightsOut(**weights_dict(r)) for r in rows])


@router.get("/{weights_id}", response_model=WeightsOut, summary="One upload", responses=error_responses(404))
def get_weights(
    weights_id: int = PathParam(ge=1, le=MAX_ID, description="Upload id."),
    db: Session = Depends(get_db),
    user: Principal = Depends(require_user),
) -> WeightsOut:
    row = db.get(Weights, weights_id)
    if row is None or not can_see(row.owner_id, user):
        raise HTTPException(404, f"weights {weights_id} not found")
    return WeightsOut(**weights_dict(row))


@router.delete(
    "/{weights_id}",
    status_code=204,
    summary="Delete an upload and its file",
    description="Refused (409 naming the jobs) while a queued or running job starts from it; jobs that "
    "finished keep their init_weights reference.",
    responses=error_responses(404, 409),
)
def remove_weights(
    weights_id: int = PathParam(ge=1, le=MAX_ID, description="Upload id."),
    db: Session = Depends(get_db),
    settings: Settings = Depends(get_settings),
    user: Principal = Depends(require_user),
) -> Response:
    row = db.get(Weights, weights_id)
    if row is None or not can_see(row.owner_id, user):
        raise HTTPException(404, f"weights {weights_id} not found")
    db.rollback()  # end the read transaction before the locking delete
    try:
        deleted = delete_weights(db, weights_id)
    except WeightsInUse as exc:
        jobs = ", ".join(str(j) for j in exc.job_ids)
        raise HTTPException(
            409,
            f"weights {weights_id} ({weights_ref(weights_id)}) is the init_weights of queued or running "
            f"job(s) {jobs}; cancel them or wait for them to finish",
        ) from None
    if deleted is None:
        raise HTTPException(404, f"weights {weights_id} not found")
    (Path(settings.artifact_dir) / deleted.location).unlink(missing_ok=True)
    return Response(status_code=204)


def check_init_weights(
    configs: list[TrainConfig], db: Session, user: Principal, settings: Settings, loc: tuple = ("body",)
) -> None:
    """422 at ``init_weights`` for a config naming something other than one of the user's uploads,
    or an upload that does not fit the config's network (the first mismatching tensors named).

    Blocking (a query, and a child process when the config's network differs from the upload's):
    call it from a sync route.
    """
    checked: set[tuple] = set()
    for config in configs:
        ref = config.init_weights
        if ref is None:
            continue
        classes = num_classes(config)
        key = (ref, config.arch, config.depth, config.width, classes)
        if key in checked:
            continue
        checked.add(key)
        where = (*loc, "init_weights")
        weights_id = parse_ref(ref)
        if weights_id is None:
            raise _refuse(
                f"init_weights must name an upload as {WEIGHTS_REF_PREFIX}ID (POST /api/weights returns it; "
                "GET /api/weights lists yours); a file path is for proxns train only",
                where,
            )
        row = db.get(Weights, weights_id)
        if row is None or not can_see(row.owner_id, user):
            raise _refuse(
                f"init_weights {ref} not found among your uploads (GET /api/weights lists them)", where
            )
        if (row.arch, row.depth, row.width, row.num_classes) == (
            config.arch,
            config.depth,
            config.width,
            classes,
        ):
            continue
        # Uploaded for another network: it may still fit (a width that rounds alike); the check names
        # the first mismatching tensors when it does not.
        answer = check_weights_file(
            Path(settings.artifact_dir) / row.location, config.arch, config.depth, config.width, classes
        )
        if not answer["ok"]:
            raise _refuse(f"init_weights {ref}: {answer.get('error')}", where)

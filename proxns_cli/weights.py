"""``proxns weights upload|list|delete``: starting weights on a server (``POST/GET/DELETE /api/weights``).

Torch-free: the file is sent as it is; the server checks it against the network it names. A config
starts from an upload with ``init_weights: weights:ID``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from proxns_core.cost import NUM_CLASSES
from proxns_core.spec import ARCHS, PAPER_ARCHS, network_label

from .client import request, server_option, token_option
from .common import fail

#: The server checks an upload in a child process that loads torch: give it time.
UPLOAD_TIMEOUT = 330.0


def model_label(item: dict[str, Any]) -> str:
    """An upload's network, named as the API names it (``vgg-11 x0.25``, ``resnet18``)."""
    return network_label(item["arch"], item.get("depth"), item["width"])


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


@click.group("weights")
def weights() -> None:
    """Starting weights on the server: upload a state_dict, list and delete uploads."""


@weights.command("upload")
@click.argument("file")
@click.option("--arch", required=True, type=click.Choice(ARCHS), help="Network the weights belong to.")
@click.option(
    "--depth",
    type=int,
    help=f"Its depth ({', '.join(PAPER_ARCHS)} only; default by arch, as in a config).",
)
@click.option("--width", type=float, help=f"Its width multiplier ({', '.join(PAPER_ARCHS)} only; default 1).")
@click.option("--classes", type=click.IntRange(1), help="Classes of its last layer.")
@click.option(
    "--dataset",
    type=click.Choice(list(NUM_CLASSES)),
    help="Or: the data set whose classes its last layer has (imagefolder: give --classes).",
)
@click.option("--name", help="A name to list it by (default: the network's name).")
@server_option
@token_option
@click.option("--json", "as_json", is_flag=True, help="Print the upload as JSON.")
def upload(
    file: str,
    arch: str,
    depth: int | None,
    width: float | None,
    classes: int | None,
    dataset: str | None,
    name: str | None,
    server: str,
    token: str | None,
    as_json: bool,
) -> None:
    """Upload FILE (safetensors, or torch.save(model.state_dict())) as starting weights."""
    path = Path(file)
    if not path.exists():
        fail(f"{file}: no such file")
    if path.is_dir():
        fail(f"{file}: is a folder; give a state_dict file")
    if (classes is None) == (dataset is None):
        fail("give the classes of the last layer: --classes N or --dataset NAME (one of them)")
    params: dict[str, Any] = {
        "arch": arch,
        "num_classes": classes if classes is not None else NUM_CLASSES[dataset],
    }
    for key, value in (("depth", depth), ("width", width), ("name", name)):
        if value is not None:
            params[key] = value
    try:
        with path.open("rb") as body:
            made = request(
                server,
                "POST",
                "/api/weights",
                token,
                timeout=UPLOAD_TIMEOUT,
                params=params,
                content=body,
                headers={"Content-Type": "application/octet-stream"},
            )
    except OSError as exc:
        fail(f"{file}: cannot read it ({exc.strerror or exc})")
    if as_json:
        click.echo(json.dumps(made, indent=2))
        return
    click.echo(
        f"weights {made['id']} {made['name']!r}: {model_label(made)}, {made['num_classes']} classes, "
        f"{made['format']}, {_size(made['bytes'])}; start a job from it with init_weights: {made['ref']}"
    )
    if made.get("note"):
        click.echo(f"note: {made['note']}")


@weights.command("list")
@server_option
@token_option
@click.option("--json", "as_json", is_flag=True, help="Print the uploads as a JSON list.")
def list_(server: str, token: str | None, as_json: bool) -> None:
    """List your uploads (an admin's: everyone's), newest first."""
    items = request(server, "GET", "/api/weights", token)["items"]
    if as_json:
        click.echo(json.dumps(items, indent=2))
        return
    click.echo(f"{'id':>5}  {'ref':<12}  {'model':<18}  {'classes':>7}  {'format':<11}  {'size':>10}  name")
    for w in items:
        click.echo(
            f"{w['id']:>5}  {w['ref']:<12}  {model_label(w):<18}  {w['num_classes']:>7}  {w['format']:<11}  "
            f"{_size(w['bytes']):>10}  {w['name']}"
        )
    click.echo(f"{len(items)} upload(s)")


def _weights_id(value: str) -> int:
    """An upload's id, as ``5`` or as its reference ``weights:5`` (what list and upload print)."""
    text = value.removeprefix("weights:")
    if not (text.isascii() and text.isdigit()):
        fail(f"{value!r} is not an upload id: give ID or weights:ID (see proxns weights list)")
    return int(text)


@weights.command("delete")
@click.argument("weights_id")
@server_option
@token_option
def delete(weights_id: str, server: str, token: str | None) -> None:
    """Delete upload WEIGHTS_ID (5 or weights:5) and its file (refused while a queued or running job
    starts from it)."""
    number = _weights_id(weights_id)
    request(server, "DELETE", f"/api/weights/{number}", token)
    click.echo(f"weights {number} deleted")

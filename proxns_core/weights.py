"""Starting weights (``init_weights``): read a state_dict file safely and check it fits a network.

A file is either safetensors or what ``torch.save(model.state_dict(), path)`` writes, read with
``torch.load(weights_only=True)``: tensors, plain containers and numbers only, never arbitrary
objects (a pickled ``nn.Module`` or any other class is refused). It must be a flat mapping of
tensor names to tensors whose names and shapes are those of the network's own ``state_dict()``;
the error of a file that does not fit names the first mismatching tensors.

``python -m proxns_core.weights check FILE --arch vgg --depth 11 --width 0.25 --num-classes 10``
prints one JSON line (``{"ok": true, "format": ..., "tensors": n}`` or ``{"ok": false, "error":
...}``): the API, which never imports torch, checks uploads with it in a child process. A torchvision
network is named by ``--arch`` alone (no ``--depth``/``--width``); its checkpoint may differ from the
network in the final classifier only (trained on other classes): it then fits with a ``"note"``, and
loading leaves that classifier freshly initialised.
"""

from __future__ import annotations

import argparse
import json
import logging
import pickle
import sys
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from .models import build_model

log = logging.getLogger(__name__)
#: Mismatching tensors named in an error, per kind (shape, missing, unexpected).
MAX_NAMED = 3
#: Buffers a state_dict may leave out (BatchNorm's step counter; safetensors exports often drop it).
OPTIONAL_SUFFIXES = ("num_batches_tracked",)


class WeightsError(ValueError):
    """A starting-weights file that cannot be read, or does not fit the network."""


HOW_TO_SAVE = "save one with torch.save(model.state_dict(), path) or safetensors.torch.save_file"


def file_format(path: str | Path) -> str:
    """``safetensors`` (8-byte header length, then its JSON header) or ``torch`` (anything else,
    read with ``torch.load``), from the file's first bytes."""
    with open(path, "rb") as f:
        head = f.read(9)
    return "safetensors" if len(head) == 9 and head[8:9] == b"{" else "torch"


def load_state(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a state_dict file, on the CPU. ``WeightsError`` saying why for anything else:
    an unreadable file, a pickle holding more than tensors and plain containers, or no flat mapping
    of names to tensors."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"no such file: {path}")
    fmt = file_format(path)
    if fmt == "torch":
        with open(path, "rb") as f:
            head = f.read(4)
        if not head.startswith((b"PK\x03\x04", b"\x80")):  # torch.save writes a zip (legacy: a pickle)
            raise WeightsError(f"the file is neither valid safetensors nor a torch.save file; {HOW_TO_SAVE}")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as exc:
            lines = str(exc).strip().splitlines()
            reason = next((line for line in lines if "Unsupported global" in line), lines[0] if lines else "")
            reason = reason.split(" was not an allowed global")[0].replace("WeightsUnpickler error: ", "")
            raise WeightsError(
                "the file is not a plain state_dict: torch.load(weights_only=True) refused it "
                f"({reason.strip()[:300]}); a pickled nn.Module or other object is not accepted: "
                f"{HOW_TO_SAVE}"
            ) from None
        except Exception as exc:  # noqa: BLE001 - a truncated or corrupt file, whatever torch raises
            raise WeightsError(
                f"the file is neither valid safetensors nor a torch.save file (torch.load: {type(exc).__name__}: {str(exc)[:200]}); "
                f"{HOW_TO_SAVE}"
            ) from None
    else:
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            state = load_file(str(path), device="cpu")
        except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
            raise WeightsError(
                f"the file is not valid safetensors ({str(exc)[:200]}); {HOW_TO_SAVE}"
            ) from None
    if not isinstance(state, Mapping):
        raise WeightsError(
            f"the file holds a {type(state).__name__}, not a state_dict (a mapping name → tensor)"
        )
    for name, value in state.items():
        if not isinstance(name, str) or not isinstance(value, torch.Tensor):
            kind = type(value).__name__
            raise WeightsError(
                f"the file is not a flat state_dict: entry {str(name)[:100]!r} holds a {kind}, not a tensor "
                f"(a checkpoint wrapping the weights? {HOW_TO_SAVE})"
            )
    return dict(state)


def _shape(t: torch.Tensor) -> str:
    return "[" + ", ".join(map(str, t.shape)) + "]"


def state_mismatch(model: nn.Module, state: Mapping[str, torch.Tensor]) -> str | None:
    """What in ``state`` does not fit ``model``'s state_dict, naming the first mismatching tensors
    (in the network's order); None when it fits."""
    expected = model.state_dict()
    shapes = [
        f"{k}: file {_shape(state[k])}, network {_shape(t)}"
        for k, t in expected.items()
        if k in state and state[k].shape != t.shape
    ]
    missing = [k for k in expected if k not in state and not k.endswith(OPTIONAL_SUFFIXES)]
    unexpected = [k for k in state if k not in expected]
    if not (shapes or missing or unexpected):
        return None
    parts = []
    for label, items in (
        ("shapes differ", shapes),
        ("missing from the file", missing),
        ("not in the network", unexpected),
    ):
        if items:
            more = f" and {len(items) - MAX_NAMED} more" if len(items) > MAX_NAMED else ""
            parts.append(f"{label} ({len(items)}): {'; '.join(items[:MAX_NAMED])}{more}")
    return "; ".join(parts)


def check_state(model: nn.Module, state: Mapping[str, torch.Tensor], what: str = "the network") -> None:
    """``WeightsError`` naming the first mismatching tensors when ``state`` does not fit ``model``."""
    problem = state_mismatch(model, state)
    if problem:
        raise WeightsError(f"the weights do not fit {what}: {problem}")


def classifier_keys(model: nn.Module) -> tuple[str, list[str]]:
    """The final classifier (the network's last ``nn.Linear``) and its tensor names."""
    name = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)][-1]
    return name, [k for k in model.state_dict() if k.startswith(f"{name}.")]


def new_classifier_note(model: nn.Module, state: Mapping[str, torch.Tensor]) -> str | None:
    """For a torchvision network: when ``state`` fits ``model`` except for the final classifier's shapes
    (a checkpoint trained on another number of classes, e.g. ImageNet's 1000), what is left out;
    None otherwise (it fits, or something else differs)."""
    if hasattr(model, "prune_units") or state_mismatch(model, state) is None:  # a paper network: exact fit
        return None
    name, keys = classifier_keys(model)
    rest = {k: v for k, v in state.items() if k not in keys}
    if state_mismatch(_Without(model, keys), rest) is not None or not all(k in state for k in keys):
        return None
    weight = state[f"{name}.weight"]
    own = model.state_dict()[f"{name}.weight"]
    return (
        f"the file's classifier {name} ({weight.shape[0]} classes) does not fit this network's "
        f"({own.shape[0]} classes): every other tensor loads, {name} starts freshly initialised"
    )


class _Without:
    """``model`` seen without some state_dict keys (for :func:`state_mismatch`)."""

    def __init__(self, model: nn.Module, keys: list[str]) -> None:
        self.model, self.keys = model, set(keys)

    def state_dict(self) -> dict:
        return {k: v for k, v in self.model.state_dict().items() if k not in self.keys}


def describe(arch: str, depth: int | None, width: float, num_classes: int) -> str:
    if depth is None:  # a torchvision network: its name fixes depth and width
        return f"{arch} ({num_classes} classes)"
    return f"{arch}-{depth} (width {width:g}, {num_classes} classes)"


def load_init_weights(model: nn.Module, sparsity, path: str | Path, what: str = "the network") -> str | None:
    """Load the state_dict file ``path`` into ``model`` (after ``sparsity`` attached to it); proxns's
    ξ then start at the loaded γ, so the coupling does not drag a trained network's γ towards ξ's
    random start.

    A torchvision checkpoint whose *only* misfit is the final classifier (trained on another number
    of classes) loads everything else; the classifier stays freshly initialised, and the returned
    note (also logged as a warning) says so. Returns None when the file fit as a whole."""
    state = load_state(path)
    note = new_classifier_note(model, state)
    if note is not None:
        _, keys = classifier_keys(model)
        state = {k: v for k, v in state.items() if k not in keys}
        log.warning("init_weights %s: %s", path, note)
    else:
        check_state(model, state, what)
    model.load_state_dict(state, strict=False)  # only optional buffers (or the new classifier) missing
    xi = getattr(sparsity, "xi", None)
    if isinstance(xi, torch.Tensor):
        with torch.no_grad():
            xi.copy_(torch.cat([g.detach().reshape(-1) for g in sparsity.gammas]).to(xi.dtype))
    return note


def _shapes_model(arch: str, depth: int | None, width: float, num_classes: int) -> nn.Module:
    try:
        with torch.device("meta"):  # shapes only: no memory, no initialisation cost
            return build_model(arch, depth, num_classes, width=width)
    except (NotImplementedError, RuntimeError):  # a builder that computes widths from tensors (regnet)
        return build_model(arch, depth, num_classes, width=width)


def check_file(path: str | Path, arch: str, depth: int | None, width: float, num_classes: int) -> dict:
    """Whether the file is a state_dict of that network: ``{"ok", "format", "tensors"}`` (plus
    ``"note"`` when a torchvision checkpoint fits but for its classifier, see :func:`load_init_weights`)
    or ``{"ok": False, "error"}``. ``depth`` is None for a torchvision network."""
    try:
        state = load_state(path)
        model = _shapes_model(arch, depth, width, num_classes)
        note = new_classifier_note(model, state)
        if note is None:
            check_state(model, state, describe(arch, depth, width, num_classes))
    except WeightsError as exc:
        return {"ok": False, "error": str(exc)}
    out = {"ok": True, "format": file_format(path), "tensors": len(state)}
    if note is not None:
        out["note"] = note
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m proxns_core.weights")
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="check a state_dict file against a network; prints one JSON line")
    check.add_argument("file")
    check.add_argument("--arch", required=True)
    check.add_argument("--depth", type=int, default=None, help="omitted for a torchvision network")
    check.add_argument("--width", type=float, default=1.0)
    check.add_argument("--num-classes", type=int, required=True)
    args = parser.parse_args(argv)
    print(json.dumps(check_file(args.file, args.arch, args.depth, args.width, args.num_classes)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

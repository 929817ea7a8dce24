"""Export the slimmed network: safetensors + JSON, TorchScript and ONNX, each verified on reload.

The safetensors file holds the trainable network; the TorchScript file is its inference form
(BN folded into the convolutions, constant folds precomputed, frozen), for ``input_size`` inputs.
"""

from __future__ import annotations

import copy
import hashlib
import json
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .inference import freeze_for_inference
from .models import build_model
from .slim import attach_folds

FORMAT_VERSION = 1
FILES = {
    "safetensors": "slim.safetensors",
    "json": "slim.json",
    "torchscript": "slim.torchscript.pt",
    "onnx": "slim.onnx",
}
TOLERANCE = 1e-4


class ExportError(RuntimeError):
    """A reloaded file did not reproduce the in-memory network's outputs."""


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def export_slim(fit_result, out_dir: str | Path) -> list[dict]:
    """Write the four model files of a :class:`FitResult` to ``out_dir``; each reload is checked."""
    return export_model(
        fit_result.slim_model, {**fit_result.meta, "config": fit_result.config.model_dump()}, out_dir
    )


def export_model(model: nn.Module, meta: dict, out_dir: str | Path) -> list[dict]:
    """Export ``model`` (described by ``meta``: arch, depth, width, num_classes, cfg, input_size, ...)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model = copy.deepcopy(model).cpu().eval()
    size = int(meta.get("input_size", 32))
    x = torch.randn(4, 3, size, size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = model(x)

    _write_safetensors(model, meta, out)
    _check("safetensors", load_slim(out)(x), expected)

    freeze_for_inference(model, size).save(str(out / FILES["torchscript"]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        _check("torchscript", torch.jit.load(str(out / FILES["torchscript"]))(x), expected)

    write_onnx(model, x, out / FILES["onnx"])
    _check("onnx", torch.from_numpy(_run_onnx(out / FILES["onnx"], x.numpy())), expected)

    return [
        {
            "name": FILES[fmt],
            "format": fmt,
            "path": str(out / FILES[fmt]),
            "bytes": (out / FILES[fmt]).stat().st_size,
            "sha256": sha256_of(out / FILES[fmt]),
        }
        for fmt in ("safetensors", "json", "torchscript", "onnx")
    ]


def _write_safetensors(model: nn.Module, meta: dict, out: Path) -> None:
    from safetensors.torch import save_file

    state = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    save_file(state, str(out / FILES["safetensors"]), metadata={"format_version": str(FORMAT_VERSION)})
    doc = {"format_version": FORMAT_VERSION, "weights": FILES["safetensors"], **meta}
    (out / FILES["json"]).write_text(json.dumps(doc, indent=2, default=str))


def write_onnx(model: nn.Module, x: torch.Tensor, path: Path) -> None:
    """Export ``model`` to ONNX (opset 17, dynamic batch) with input "input" and output "logits"."""
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (x,),
            str(path),
            dynamo=False,
            opset_version=17,
            input_names=["input"],
            output_names=["logits"],
            dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
        )


def _run_onnx(path: Path, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"input": x})[0]


def _check(fmt: str, got: torch.Tensor, expected: torch.Tensor) -> None:
    err = float((got.detach() - expected).abs().max())
    scale = max(1.0, float(expected.abs().max()))
    if not err <= TOLERANCE * scale:
        raise ExportError(f"{fmt} export does not reproduce the network: max abs difference {err:.3g}")


def load_slim(path: str | Path, device: str | torch.device = "cpu") -> nn.Module:
    """Load a slimmed network from its ``slim.json`` (or the folder holding it) with ``proxns_core``."""
    from safetensors.torch import load_file

    path = Path(path)
    json_path = path / FILES["json"] if path.is_dir() else path
    meta = json.loads(json_path.read_text())
    model = build_model(
        meta["arch"], meta["depth"], meta["num_classes"], cfg=meta["cfg"], width=meta.get("width", 1.0)
    )
    state = load_file(str(json_path.parent / meta.get("weights", FILES["safetensors"])))
    attach_folds(model, state)
    model.load_state_dict(state)
    return model.to(device).eval()

"""Export the slimmed network: safetensors + JSON, torch.export (``.pt2``), TorchScript and ONNX,
each verified on reload.

The file names and formats are the contract's (:data:`proxns_core.spec.ARTIFACT_FORMATS`). The
safetensors file holds the trainable network; the ``.pt2`` and TorchScript files hold its inference
form (BN folded into the convolutions, constant folds precomputed), for ``input_size`` inputs and
any batch size. ``.pt2`` is the form for today's PyTorch (``torch.export.load(path).module()``);
TorchScript, deprecated upstream, stays for older runtimes.
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

from .inference import freeze_for_inference, fuse_for_inference, quiet_torchscript_deprecation
from .models import build_model
from .slim import attach_folds
from .spec import ARTIFACT_FORMATS, INPUT_SIZE, TORCHVISION_ARCHS

FORMAT_VERSION = 1
TOLERANCE = 1e-4


def _file(fmt: str) -> str:
    return ARTIFACT_FORMATS[fmt].file


class ExportError(RuntimeError):
    """A reloaded file did not reproduce the in-memory network's outputs."""


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def export_slim(fit_result, out_dir: str | Path) -> list[dict]:
    """Write the model files of a :class:`FitResult` to ``out_dir``; each reload is checked."""
    return export_model(
        fit_result.slim_model, {**fit_result.meta, "config": fit_result.config.model_dump()}, out_dir
    )


def export_model(model: nn.Module, meta: dict, out_dir: str | Path) -> list[dict]:
    """Export ``model`` (described by ``meta``: arch, depth, width, num_classes, cfg, input_size, ...;
    for a torchvision network ``pruned_roots`` instead of ``cfg``, see :func:`load_slim`)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    # Plain NCHW weights whatever layout the network trained in (channels-last on CUDA).
    model = copy.deepcopy(model).cpu().eval().to(memory_format=torch.contiguous_format)
    size = int(meta.get("input_size", INPUT_SIZE))
    x = torch.randn(4, 3, size, size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = model(x)

    _write_safetensors(model, meta, out)
    _check("safetensors", load_slim(out)(x), expected)

    write_pt2(model, x, out / _file("pt2"))
    program = torch.export.load(str(out / _file("pt2"))).module()
    with torch.no_grad():
        _check("pt2", program(x), expected)
        _check("pt2 (batch of 1)", program(x[:1]), expected[:1])

    with quiet_torchscript_deprecation():
        freeze_for_inference(model, size).save(str(out / _file("torchscript")))
        _check("torchscript", torch.jit.load(str(out / _file("torchscript")))(x), expected)

    write_onnx(model, x, out / _file("onnx"))
    _check("onnx", torch.from_numpy(_run_onnx(out / _file("onnx"), x.numpy())), expected)

    return [
        {
            "name": f.file,
            "format": fmt,
            "path": str(out / f.file),
            "bytes": (out / f.file).stat().st_size,
            "sha256": sha256_of(out / f.file),
        }
        for fmt, f in ARTIFACT_FORMATS.items()
    ]


def _write_safetensors(model: nn.Module, meta: dict, out: Path) -> None:
    from safetensors.torch import save_file

    state = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    save_file(state, str(out / _file("safetensors")), metadata={"format_version": str(FORMAT_VERSION)})
    doc = {"format_version": FORMAT_VERSION, "weights": _file("safetensors"), **meta}
    (out / _file("json")).write_text(json.dumps(doc, indent=2, default=str))


def write_pt2(model: nn.Module, x: torch.Tensor, path: Path) -> None:
    """Save the inference form of ``model`` (:func:`~proxns_core.inference.fuse_for_inference` for
    ``x``'s image size) as a ``torch.export`` program whose batch dimension is dynamic.

    It reloads with plain ``torch.export.load(path).module()``: no project code is needed.
    """
    fused = fuse_for_inference(model, x.shape[-1])
    batch = torch.export.Dim("batch", min=1)
    with torch.no_grad():
        program = torch.export.export(fused, (x,), dynamic_shapes=({0: batch},))
    torch.export.save(program, str(path))


class _FixedAdaptivePool(nn.Module):
    """``AdaptiveAvgPool2d`` for one input size as a matrix product (ONNX's exporter has no adaptive
    pooling whose output size does not divide the input's, e.g. VGG's 7×7 pool on a 32-pixel image's
    1×1 map); same outputs."""

    def __init__(self, in_hw: tuple[int, int], out_hw: tuple[int, int]) -> None:
        super().__init__()
        h, w = in_hw
        basis = torch.eye(h * w).reshape(h * w, 1, h, w)
        self.register_buffer(
            "matrix", torch.nn.functional.adaptive_avg_pool2d(basis, out_hw).reshape(h * w, -1)
        )
        self.out_hw = tuple(out_hw)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x.flatten(2) @ self.matrix).reshape(x.shape[0], x.shape[1], *self.out_hw)


def _onnx_ready(model: nn.Module, x: torch.Tensor) -> nn.Module:
    """``model``, or a copy whose adaptive average pools that ONNX cannot export at ``x``'s size are
    :class:`_FixedAdaptivePool`."""
    pools = {n: m for n, m in model.named_modules() if isinstance(m, nn.AdaptiveAvgPool2d)}
    if not pools:
        return model
    sizes: dict[str, tuple[int, int]] = {}
    hooks = [
        m.register_forward_pre_hook(lambda _m, inp, n=n: sizes.__setitem__(n, tuple(inp[0].shape[-2:])))
        for n, m in pools.items()
    ]
    try:
        with torch.no_grad():
            model(x[:1])
    finally:
        for h in hooks:
            h.remove()
    fixed = {}
    for n, m in pools.items():
        out = m.output_size if isinstance(m.output_size, tuple) else (m.output_size, m.output_size)
        in_hw = sizes.get(n)
        if in_hw is None or None in out:
            continue
        out = tuple(in_hw[i] if out[i] is None else int(out[i]) for i in range(2))
        if in_hw[0] % out[0] or in_hw[1] % out[1]:
            fixed[n] = _FixedAdaptivePool(in_hw, out)
    if not fixed:
        return model
    model = copy.deepcopy(model)
    for n, module in fixed.items():
        parent_name, _, child = n.rpartition(".")
        setattr(model.get_submodule(parent_name) if parent_name else model, child, module)
    return model


def write_onnx(model: nn.Module, x: torch.Tensor, path: Path) -> None:
    """Export ``model`` to ONNX (opset 17, dynamic batch) with input "input" and output "logits"."""
    model = _onnx_ready(model, x)
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
    json_path = path / _file("json") if path.is_dir() else path
    meta = json.loads(json_path.read_text())
    state = load_file(str(json_path.parent / meta.get("weights", _file("safetensors"))))
    if meta["arch"] in TORCHVISION_ARCHS:
        # A torchvision network: the full network, re-traced and pruned at the recorded root indices
        # (``pruned_roots``, see proxns_core.anynet.rebuild_slim), then the weights with their folds.
        from .anynet import rebuild_slim

        model = rebuild_slim(
            meta["arch"],
            meta["num_classes"],
            meta.get("pruned_roots", []),
            int(meta.get("input_size", INPUT_SIZE)),
            state,
        )
        return model.to(device).eval()
    model = build_model(
        meta["arch"], meta["depth"], meta["num_classes"], cfg=meta["cfg"], width=meta.get("width", 1.0)
    )
    attach_folds(model, state)
    model.load_state_dict(state)
    return model.to(device).eval()

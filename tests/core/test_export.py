"""Exported files reload with plain tools and reproduce the in-memory slim network."""

import json
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import onnxruntime as ort
import pytest
import torch

from proxns_core import TrainConfig, export_slim, fit, load_slim
from proxns_core.export import sha256_of
from proxns_core.inference import freeze_for_inference
from proxns_core.spec import ARTIFACT_FORMATS


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    out = tmp_path_factory.mktemp("export")
    config = TrainConfig(
        dataset="synthetic",
        arch="resnet",
        depth=11,
        width=0.25,
        method="proxns",
        lam=0.5,
        beta=10,
        epochs=2,
        batch_size=32,
        train_subset=128,
        test_subset=64,
        device="cpu",
    )
    result = fit(config)
    return result, export_slim(result, out), out


def test_export_writes_one_file_per_artifact_format_with_sizes_and_hashes(exported):
    _, artifacts, out = exported
    assert [(a["format"], a["name"]) for a in artifacts] == [
        (f.format, f.file) for f in ARTIFACT_FORMATS.values()
    ]
    assert [a["name"] for a in artifacts] == [
        "slim.safetensors",
        "slim.json",
        "slim.pt2",
        "slim.torchscript.pt",
        "slim.onnx",
    ]
    for a in artifacts:
        assert a["bytes"] == (out / a["name"]).stat().st_size > 0
        assert a["sha256"] == sha256_of(out / a["name"]) and len(a["sha256"]) == 64
    meta = json.loads((out / "slim.json").read_text())
    assert meta["arch"] == "resnet" and meta["cfg"] == exported[0].slim_model.cfg
    assert meta["config"]["lam"] == 0.5


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")
def test_each_exported_file_reproduces_the_slim_network(exported):
    result, _, out = exported
    slim = result.slim_model.cpu().eval()
    x = torch.randn(7, 3, 32, 32)  # another batch size than the one traced with
    with torch.no_grad():
        expected = slim(x)
        from_safetensors = load_slim(out)(x)
        from_torchscript = torch.jit.load(str(out / "slim.torchscript.pt"))(x)
        from_pt2 = torch.export.load(str(out / "slim.pt2")).module()(x)
    from_onnx = ort.InferenceSession(str(out / "slim.onnx")).run(None, {"input": x.numpy()})[0]
    assert (from_safetensors - expected).abs().max().item() < 1e-5
    assert (from_torchscript - expected).abs().max().item() < 1e-4
    assert (from_pt2 - expected).abs().max().item() < 1e-4
    assert np.abs(from_onnx - expected.numpy()).max() < 1e-4


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")
def test_torchscript_file_is_the_frozen_inference_form(exported):
    """BN fed by a conv is folded into it and no fold map is convolved at run time."""
    result, _, out = exported
    slim = result.slim_model
    script = torch.jit.load(str(out / "slim.torchscript.pt"))
    kinds = [n.kind() for n in script.graph.nodes()]
    convs = sum(isinstance(m, torch.nn.Conv2d) for m in slim.modules())
    bns = sum(isinstance(m, torch.nn.BatchNorm2d) for m in slim.modules())
    folded = sum(1 for u in slim.prune_units() if u["producer"] is not None)
    assert kinds.count("aten::_convolution") == convs
    assert kinds.count("aten::batch_norm") == bns - folded < bns
    assert not list(script.parameters())  # frozen: weights are constants


#: Run in a fresh interpreter: plain torch only, as a user without this project would.
PT2_CLIENT = textwrap.dedent(
    """
    import sys
    import torch

    model = torch.export.load(sys.argv[1]).module()
    inputs = torch.load(sys.argv[2])
    with torch.no_grad():
        outputs = [model(x) for x in inputs]
    assert "proxns_core" not in sys.modules, "loading slim.pt2 imported proxns_core"
    torch.save(outputs, sys.argv[3])
    """
)


def test_pt2_file_reloads_with_plain_torch_and_reproduces_any_batch_size(exported, tmp_path):
    """The export traced a batch of 4; the program takes other batch sizes, 1 included."""
    result, _, out = exported
    slim = result.slim_model.cpu().eval()
    inputs = [torch.randn(n, 3, 32, 32, generator=torch.Generator().manual_seed(n)) for n in (1, 7, 33)]
    torch.save(inputs, tmp_path / "inputs.pt")
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            PT2_CLIENT,
            str(out / "slim.pt2"),
            str(tmp_path / "inputs.pt"),
            str(tmp_path / "outputs.pt"),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    outputs = torch.load(tmp_path / "outputs.pt")
    with torch.no_grad():
        for x, got in zip(inputs, outputs, strict=True):
            expected = slim(x)
            assert got.shape == expected.shape
            assert (got - expected).abs().max().item() < 1e-4


def test_pt2_file_is_the_fused_inference_form(exported):
    """Like the TorchScript file: every BN fed by a conv is folded away and no fold map is computed."""
    result, _, out = exported
    slim = result.slim_model
    program = torch.export.load(str(out / "slim.pt2"))
    ops = [str(n.target) for n in program.graph.nodes if n.op == "call_function"]
    convs = sum(isinstance(m, torch.nn.Conv2d) for m in slim.modules())
    bns = sum(isinstance(m, torch.nn.BatchNorm2d) for m in slim.modules())
    folded = sum(1 for u in slim.prune_units() if u["producer"] is not None)
    assert sum("conv" in op for op in ops) == convs
    assert sum("batch_norm" in op for op in ops) == bns - folded < bns


def _torchscript_warnings(caught: list[warnings.WarningMessage]) -> list[str]:
    return [
        str(w.message) for w in caught if "torchscript" in str(w.message).lower() or "jit" in str(w.message)
    ]


def test_export_emits_no_torchscript_deprecation_warning(exported, tmp_path):
    """torch.jit.trace/freeze/load are deprecated upstream; exporting (and timing through the frozen
    form, as training does) must not pass that notice on to users."""
    result, _, _ = exported
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        export_slim(result, tmp_path)
        freeze_for_inference(result.slim_model.cpu(), 32)
    assert _torchscript_warnings(caught) == []
    assert not [w for w in caught if issubclass(w.category, torch.jit.TracerWarning)]


def test_onnx_exports_an_adaptive_pool_whose_output_does_not_divide_its_input(tmp_path):
    """torchvision's VGG pools to 7×7 whatever the map (1×1 for a 32-pixel image): ONNX's exporter has
    no such adaptive pool, so the export writes it as a fixed matrix for the input size."""
    from proxns_core.export import _run_onnx, write_onnx

    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3, stride=8, padding=1),
        torch.nn.AdaptiveAvgPool2d((7, 7)),
        torch.nn.Flatten(),
        torch.nn.Linear(4 * 49, 5),
    ).eval()
    x = torch.randn(2, 3, 24, 24)  # a 3×3 map pooled to 7×7
    write_onnx(model, x, tmp_path / "m.onnx")
    with torch.no_grad():
        expected = model(x).numpy()
    assert np.abs(_run_onnx(tmp_path / "m.onnx", x.numpy()) - expected).max() < 1e-5
    assert isinstance(model[1], torch.nn.AdaptiveAvgPool2d)  # the network itself is left as it was

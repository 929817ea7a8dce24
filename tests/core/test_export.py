"""Exported files reload with plain tools and reproduce the in-memory slim network."""

import json

import numpy as np
import onnxruntime as ort
import pytest
import torch

from proxns_core import TrainConfig, export_slim, fit, load_slim
from proxns_core.export import sha256_of


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


def test_export_writes_four_files_with_sizes_and_hashes(exported):
    _, artifacts, out = exported
    assert [a["name"] for a in artifacts] == [
        "slim.safetensors",
        "slim.json",
        "slim.torchscript.pt",
        "slim.onnx",
    ]
    for a in artifacts:
        assert a["bytes"] == (out / a["name"]).stat().st_size > 0
        assert a["sha256"] == sha256_of(out / a["name"]) and len(a["sha256"]) == 64
    meta = json.loads((out / "slim.json").read_text())
    assert meta["arch"] == "resnet" and meta["cfg"] == exported[0].slim_model.cfg
    assert meta["config"]["lam"] == 0.5


def test_each_exported_file_reproduces_the_slim_network(exported):
    result, _, out = exported
    slim = result.slim_model.cpu().eval()
    x = torch.randn(7, 3, 32, 32)  # another batch size than the one traced with
    with torch.no_grad():
        expected = slim(x)
        from_safetensors = load_slim(out)(x)
        from_torchscript = torch.jit.load(str(out / "slim.torchscript.pt"))(x)
    from_onnx = ort.InferenceSession(str(out / "slim.onnx")).run(None, {"input": x.numpy()})[0]
    assert (from_safetensors - expected).abs().max().item() < 1e-5
    assert (from_torchscript - expected).abs().max().item() < 1e-4
    assert np.abs(from_onnx - expected.numpy()).max() < 1e-4


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

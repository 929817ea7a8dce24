"""fit() on torchvision networks (issue 11, items 1-3 and 7): train, prune coupled groups, slim exactly,
measure, export the five files and reload them."""

from __future__ import annotations

import functools

import pytest
import torch
from torch import nn

import proxns_core.train as train_module
from proxns_core import TrainConfig, export_slim, fit, load_slim
from proxns_core.measure import count_params

TINY = dict(
    dataset="digits",
    epochs=1,
    batch_size=32,
    lr=0.1,
    train_subset=64,
    test_subset=32,
    device="cpu",
    seed=0,
)


@pytest.fixture(autouse=True)
def quick_latency(monkeypatch):
    """Latency is timed as in production, only once per network and at batch 1 (the test's budget)."""
    fast = functools.partial(
        train_module.measure_latencies, batch_sizes=(1,), repeats=1, min_repeats=1, warmup=1
    )
    monkeypatch.setattr(train_module, "measure_latencies", fast)


def _bns(model: nn.Module) -> dict[str, int]:
    return {n: m.num_features for n, m in model.named_modules() if isinstance(m, nn.BatchNorm2d)}


def _check_result(out) -> None:
    r = out.result
    full_bns, slim_bns = _bns(out.full_model), _bns(out.slim_model)
    # one entry per BN of the network, in module order; kept = the slim network's width there
    assert [(layer.name, layer.total) for layer in r.layers] == list(full_bns.items())
    assert {layer.name: layer.kept for layer in r.layers} == slim_bns
    # channels are counted over coupled groups (a stream channel once, however many BNs read it)
    assert r.channels_total == sum(g.size for g in out.plan.groups)
    assert r.channels_pruned == sum(len(d) for d in out.plan.delete) == out.plan.channels_pruned
    assert r.pruned_fraction == pytest.approx(r.channels_pruned / r.channels_total)
    state = out.slim_model.state_dict()
    assert r.params_slim == count_params(out.slim_model)
    assert r.params_slim == sum(state[n].numel() for n, _ in out.slim_model.named_parameters())
    assert r.params_full == count_params(out.full_model)
    if r.channels_pruned:
        assert r.params_slim < r.params_full and r.flops_slim < r.flops_full
    assert r.latency_full_ms > 0 and r.latency_slim_ms > 0
    if r.slim_exact:
        assert not r.inexact_layers
        assert r.acc_slim == r.acc_masked
    else:
        assert r.inexact_layers


def _check_reload(out, tmp_path) -> None:
    files = export_slim(out, tmp_path)  # each of the files is reloaded and checked inside
    assert {f["format"] for f in files} == {"safetensors", "json", "pt2", "torchscript", "onnx"}
    loaded = load_slim(tmp_path)
    x = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert (loaded(x) - out.slim_model.cpu().eval()(x)).abs().max().item() < 1e-4


@pytest.mark.parametrize(("arch", "finetune"), [("resnet18", 1), ("mobilenet_v2", 0)])
def test_proxns_prunes_coupled_groups_and_slims_exactly(arch, finetune, tmp_path):
    # β = 1 leaves ξ loose from γ: with λ = 10 it reaches 0 within the two steps of this run
    out = fit(TrainConfig(**TINY, arch=arch, method="proxns", lam=10, beta=1, finetune_epochs=finetune))
    r = out.result
    assert r.channels_pruned > 0 and r.slim_exact is True
    if finetune:  # a slim network with border-exact folds (ConstantFold) fine-tunes
        assert any(getattr(m, "fold", None) is not None for m in out.slim_model.modules())
        assert r.acc_finetuned is not None and out.history[-1].phase == "finetune"
    assert out.meta["depth"] is None and out.meta["cfg"] is None and out.meta["pruned_roots"]
    _check_result(out)
    _check_reload(out, tmp_path)


def test_ns_on_a_squeeze_excitation_net_rounds_finetunes_and_reports_the_gap(tmp_path):
    config = TrainConfig(
        **TINY,
        arch="mobilenet_v3_small",
        method="ns",
        lam=1e-4,
        prune_ratio=0.5,
        channel_multiple=8,
        finetune_epochs=1,
    )
    out = fit(config)
    r = out.result
    assert r.pruned_fraction == pytest.approx(0.5, abs=0.15)
    for g, dele in zip(out.plan.groups, out.plan.delete):
        kept = g.size - len(dele)
        assert kept % 8 == 0 or kept == g.size
    # squeeze-excitation scales the deleted channels: not provably constant, so reported
    assert r.slim_exact is False
    assert all("scaled by" in why for why in r.inexact_layers.values())
    assert r.acc_finetuned is not None and [m.phase for m in out.history] == ["train", "finetune"]
    _check_result(out)
    _check_reload(out, tmp_path)

"""Issue 12: every penalty on ξ trains (proximal NS) and delivers a slim network equal to its masked one;
NS applies a nonconvex penalty's subgradient; the per-epoch objective is loss + P(ξ)."""

import functools

import pytest
import torch

from proxns_core import TrainConfig, fit, penalties
from proxns_core import train as train_module
from proxns_core.sparsity import sparsity_bns
from proxns_core.spec import CHECKPOINT_FILE

SMALL = dict(
    dataset="digits",
    arch="vgg",
    depth=11,
    width=0.125,
    epochs=2,
    batch_size=32,
    lr=0.1,
    train_subset=256,
    test_subset=120,
    device="cpu",
    seed=0,
)

#: (penalty, λ, β): chosen so that 16 steps make some ξ exactly 0 (ℓ0: its hard threshold
#: √(2λ/(α+β)) = √(15/60) = 0.5 sits inside ξ's initial range [0.47, 0.53]).
PENALTY_TABLE = [
    ("l1", 8.0, 100.0),
    ("l0", 7.5, 50.0),
    ("l1/2", 8.0, 100.0),
    ("tl1", 8.0, 100.0),
    ("l1-l2", 8.0, 100.0),
    ("mcp", 8.0, 100.0),
    ("scad", 8.0, 100.0),
]


@pytest.fixture(autouse=True)
def quick_latency(monkeypatch):
    """Latency is not what these tests check: one timing per network instead of ~10 s of them."""
    real = train_module.measure_latencies
    monkeypatch.setattr(
        train_module,
        "measure_latencies",
        functools.partial(real, repeats=1, warmup=0, min_repeats=1, max_seconds=0.01),
    )


@pytest.mark.parametrize(("penalty", "lam", "beta"), PENALTY_TABLE, ids=[p for p, _, _ in PENALTY_TABLE])
def test_each_penalty_trains_digits_to_a_slim_network_equal_to_its_masked_one(penalty, lam, beta, tmp_path):
    config = TrainConfig(**SMALL, method="proxns", penalty=penalty, lam=lam, beta=beta)
    out = fit(config, checkpoint_dir=str(tmp_path))
    r = out.result
    assert r.channels_pruned > 0, "λ must make some ξ exactly 0"
    assert r.slim_exact
    assert r.acc_slim == r.acc_masked
    # the objective of the last epoch is its loss plus P of the final ξ (l1-l2: per BN layer)
    xi = torch.load(tmp_path / CHECKPOINT_FILE, weights_only=True)["sparsity"]["xi"]
    sizes = [layer.total for layer in out.history[-1].layers]
    p = float(penalties.value(penalty, xi, lam, config.penalty_a, sizes))
    last = out.history[-1]
    assert last.objective == pytest.approx(last.train_loss + p, rel=1e-6, abs=1e-6)
    assert last.layers is not None and sum(layer.zeros for layer in last.layers) == int((xi == 0).sum())


def test_ns_applies_a_nonconvex_penalty_as_a_subgradient():
    cfg = dict(SMALL, epochs=1, method="ns", lam=0.05, prune_ratio=0.3)
    l1 = fit(TrainConfig(**cfg, penalty="l1")).full_model
    mcp = fit(TrainConfig(**cfg, penalty="mcp", penalty_a=20.0)).full_model
    g1 = torch.cat([bn.weight.detach() for _, bn in sparsity_bns(l1)])
    g2 = torch.cat([bn.weight.detach() for _, bn in sparsity_bns(mcp)])
    # MCP's subgradient sign(γ)·max(λ − |γ|/a, 0) is below l1's λ·sign(γ) where γ ≠ 0: less shrinkage
    assert not torch.equal(g1, g2)
    assert float(g2.abs().sum()) > float(g1.abs().sum())

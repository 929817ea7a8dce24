"""Issue 12: per training epoch, the accuracy of the network as it would be delivered then and the
per-BN-layer zero counts and |ξ| histograms; neither may change the training run."""

import functools

import numpy as np
import pytest
import torch

from proxns_core import TrainConfig, fit
from proxns_core import train as train_module
from proxns_core.spec import CHECKPOINT_FILE, XI_HIST_EDGES

RUN = dict(
    dataset="digits",
    arch="vgg",
    depth=11,
    width=0.125,
    epochs=3,
    batch_size=32,
    lr=0.1,
    train_subset=256,
    test_subset=120,
    device="cpu",
    seed=1,
    method="proxns",
    lam=6.0,
    beta=100,
)


@pytest.fixture(autouse=True)
def quick_latency(monkeypatch):
    real = train_module.measure_latencies
    monkeypatch.setattr(
        train_module,
        "measure_latencies",
        functools.partial(real, repeats=1, warmup=0, min_repeats=1, max_seconds=0.01),
    )


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The same proxns run (with one fine-tune epoch) with the per-epoch delivered accuracy on and off."""
    config = TrainConfig(**RUN, finetune_epochs=1)
    out = {}
    for on in (True, False):
        ckpt = tmp_path_factory.mktemp(f"on{on}")
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(train_module, "_RECORD_DELIVERED", "every" if on else False)
            mp.setattr(
                train_module,
                "measure_latencies",
                functools.partial(
                    train_module.measure_latencies, repeats=1, warmup=0, min_repeats=1, max_seconds=0.01
                ),
            )
            out[on] = (fit(config, checkpoint_dir=str(ckpt)), ckpt, torch.get_rng_state())
    return out


def test_delivered_accuracy_is_recorded_for_training_epochs_only(runs):
    fr = runs[True][0]
    assert [m.phase for m in fr.history] == ["train"] * 3 + ["finetune"]
    assert all(0 <= m.test_acc_delivered <= 1 for m in fr.history[:3])
    assert fr.history[3].test_acc_delivered is None and fr.history[3].layers is None
    # the last training epoch delivers exactly what fit delivers (same plan, fit's 200-batch BN estimate)
    assert fr.history[2].test_acc_delivered == fr.result.acc_masked == fr.result.acc_slim
    assert fr.result.channels_pruned > 0


def test_delivered_accuracy_does_not_change_training(runs):
    (on, _, rng_on), (off, _, rng_off) = runs[True], runs[False]
    assert torch.equal(rng_on, rng_off), "the delivered accuracy drew from the global RNG"
    assert all(m.test_acc_delivered is None for m in off.history)
    for a, b in zip(on.full_model.state_dict().values(), off.full_model.state_dict().values()):
        assert torch.equal(a, b)
    for a, b in zip(on.slim_model.state_dict().values(), off.slim_model.state_dict().values()):
        assert torch.equal(a, b)
    strip = {"seconds", "test_acc_delivered"}
    assert [m.model_dump(exclude=strip) for m in on.history] == [
        m.model_dump(exclude=strip) for m in off.history
    ]
    # fit computes the delivered network itself when the per-epoch record is off: the same result
    assert on.result.model_dump(exclude={"latency", "latency_full_ms", "latency_slim_ms"}) == (
        off.result.model_dump(exclude={"latency", "latency_full_ms", "latency_slim_ms"})
    )


def test_layer_zero_counts_and_histograms_match_numpy(runs):
    fr, ckpt, _ = runs[True]
    xi = torch.load(ckpt / CHECKPOINT_FILE, weights_only=True)["sparsity"]["xi"].double().numpy()
    layers = fr.history[2].layers  # the last training epoch: the final ξ
    assert [layer.name for layer in layers] == [layer.name for layer in fr.result.layers]
    assert sum(layer.total for layer in layers) == xi.size
    assert sum(layer.zeros for layer in layers) == int((xi == 0).sum())
    assert fr.history[2].zero_fraction == pytest.approx((xi == 0).mean())
    offset = 0
    for layer in layers:
        v = np.abs(xi[offset : offset + layer.total])
        offset += layer.total
        ref = np.where(v == 0, 0, np.digitize(v, XI_HIST_EDGES) + 1)  # digitize: e[i-1] <= v < e[i]
        assert layer.hist == np.bincount(ref, minlength=len(XI_HIST_EDGES) + 2).tolist()
        assert len(layer.hist) == len(XI_HIST_EDGES) + 2
        assert sum(layer.hist) == layer.total and layer.hist[0] == layer.zeros == int((v == 0).sum())


def test_histogram_bins_at_the_edges():
    """Exact zeros, (0, 1e-6), [1e-6, 10^-5.5), ..., [10, ∞); ξ is float32, so an edge itself may round
    to either side (float32(1e-6) < 1e-6): the bins are those of its float64 value, as NumPy's."""
    from proxns_core.sparsity import ProximalNS

    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 1), torch.nn.BatchNorm2d(8))
    method = ProximalNS(lam=0.1, beta=1.0)
    method.attach(model)
    e = XI_HIST_EDGES
    method.xi.copy_(torch.tensor([0.0, 1e-9, 2e-6, -3e-6, 0.2, -e[-1] * 2, 1e3, -0.5]))
    (layer,) = method.layer_sparsity()
    bins = np.where(
        np.abs(method.xi.double().numpy()) == 0, 0, np.digitize(np.abs(method.xi.double().numpy()), e) + 1
    )
    assert layer.hist == np.bincount(bins, minlength=len(e) + 2).tolist()
    assert layer.hist[0] == 1 and layer.hist[1] == 1 and layer.hist[2] == 2 and layer.hist[-1] == 2


def test_the_delivered_accuracy_keeps_within_its_share_of_the_training_time():
    from proxns_core.train import DELIVERED_SHARE, delivered_due

    assert DELIVERED_SHARE == 0.10
    assert delivered_due(0.0, None, 0.0)  # the first epoch measures what it costs
    # a measurement at 5 % of an epoch: every epoch
    spent, base, done = 0.0, 0.0, []
    for epoch in range(20):
        base += 1.0
        if delivered_due(spent, 0.05 if done else None, base):
            spent += 0.05
            done.append(epoch)
    assert done == list(range(20))
    # one at 130 % of an epoch (digits on a GPU): spaced so that the total stays under 10 %
    spent, base, done = 0.0, 0.0, []
    for epoch in range(160):
        base += 1.0
        if delivered_due(spent, 1.3 if done else None, base):
            spent += 1.3
            done.append(epoch)
    assert done[0] == 0 and 10 <= len(done) <= 13
    assert spent - 1.3 <= 0.10 * base  # all but the first measurement fit the budget
    gaps = {b - a for a, b in zip(done[1:], done[2:])}
    assert gaps == {13} or gaps <= {12, 13, 14}


def test_a_run_by_default_records_the_delivered_accuracy_at_least_first_and_last(monkeypatch):
    config = TrainConfig(**{**RUN, "epochs": 4})
    monkeypatch.setattr(train_module, "delivered_due", lambda spent, cost, base: cost is None)
    fr = fit(config)
    got = [m.test_acc_delivered is not None for m in fr.history]
    assert got == [True, False, False, True]
    assert fr.history[-1].test_acc_delivered == fr.result.acc_masked

"""The GPU path (issue 10), on a CUDA card: skipped elsewhere, run by benchmarks/gpu_check.sh.

- the training loop never synchronises the host with the card (``set_sync_debug_mode("error")``);
- fp16 with a grad scaler keeps ξ's exact zeros; ``auto`` resolves to bf16 and channels-last;
- latency is timed with CUDA events, equal networks measure equal, a slimmed one faster.
"""

import pytest
import torch

from proxns_core import TrainConfig, fit
from proxns_core.inference import freeze_for_inference
from proxns_core.measure import measure_latencies
from proxns_core.models import build_model
from proxns_core.slim import apply_mask, bn_layers, plan_from_zero_mask, slim_model
from proxns_core.train import Callbacks, _Trainer

pytestmark = pytest.mark.cuda

SMALL = dict(
    dataset="synthetic",
    arch="vgg",
    depth=11,
    width=0.25,
    epochs=3,
    batch_size=64,
    lr=0.1,
    train_subset=1024,
    test_subset=256,
    device="cuda",
    seed=1,
)


class Steps(Callbacks):
    def __init__(self) -> None:
        self.steps = 0

    def on_step(self, step, total):
        self.steps = step


@pytest.mark.parametrize(
    "settings",
    [
        dict(method="proxns", precision="bf16"),
        dict(method="proxns", precision="bf16", cuda_graphs=False),
        dict(method="proxns", precision="fp16"),
        dict(method="ns", precision="fp16", lam=1e-4, prune_ratio=0.5),
        dict(method="proxns", precision="fp32", channels_last=False),
        dict(method="baseline", precision="bf16"),
    ],
    ids=lambda s: "-".join(str(v) for v in s.values()),
)
def test_training_loop_never_synchronises_with_the_card(settings):
    cb = Steps()
    t = _Trainer(TrainConfig(**SMALL, **settings), cb, None)
    t.run_epoch(t.model, t.optimizer, t.sparsity)  # warm-up: cuDNN plans, lazy state
    torch.cuda.synchronize()
    before = cb.steps
    torch.cuda.set_sync_debug_mode("error")
    try:
        total, count = t.run_steps(t.model, t.optimizer, t.sparsity)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert cb.steps - before == t.steps_per_epoch == 16
    assert count == 1024 and torch.isfinite(total).item()


def test_fp16_with_a_grad_scaler_keeps_exact_zeros_and_auto_resolves_to_bf16_channels_last():
    out = fit(TrainConfig(**{**SMALL, "method": "proxns", "lam": 2.0, "precision": "fp16", "epochs": 4}))
    r = out.result
    assert r.precision == "fp16" and r.device == "cuda:0"
    assert r.device_name == torch.cuda.get_device_name(0)
    assert r.pruned_fraction > 0
    # every exactly-zero ξ is pruned, except one kept per layer that lost all (kept_forced)
    zeros = round(out.history[-1].zero_fraction * r.channels_total)
    assert zeros == r.channels_pruned + len(r.kept_forced)
    auto = fit(TrainConfig(**{**SMALL, "device": "auto", "epochs": 1}))
    assert auto.result.precision == ("bf16" if torch.cuda.is_bf16_supported() else "fp32")
    assert auto.result.channels_last is True and auto.result.device == "cuda:0"


def test_latency_is_timed_with_cuda_events_and_equal_networks_measure_equal():
    out = fit(TrainConfig(**{**SMALL, "method": "baseline", "epochs": 1}))
    by = {(m.network, m.batch_size): m for m in out.result.latency}
    for b in (1, 64):
        full, slim = by["full", b], by["slim", b]
        assert full.timer == slim.timer == "cuda_events"
        assert full.q1_ms <= slim.q3_ms and slim.q1_ms <= full.q3_ms, (full, slim)


def test_cuda_graph_steps_compute_what_plain_steps_compute():
    """The captured step replays the same kernels: same ξ zero set, weights equal to rounding."""
    config = dict(SMALL, method="proxns", lam=0.5, precision="fp32", channels_last=False)
    torch.backends.cudnn.deterministic = True  # the same algorithms, without atomics, in both runs
    runs = {}
    for graphs in (False, True):
        t = _Trainer(TrainConfig(**config, cuda_graphs=graphs), Callbacks(), None)
        for _ in range(3):  # warm-up, capture, replays; a milestone-like lr change captures anew
            t.run_epoch(t.model, t.optimizer, t.sparsity)
            t.optimizer.param_groups[0]["lr"] *= 0.5
        runs[graphs] = t
    eager, graphed = runs[False], runs[True]
    assert eager.cuda_graphs is False and graphed.cuda_graphs is True
    g = next(iter(graphed._graphs.values()))
    assert g.graph is not None and not g.failed and g.lr == pytest.approx(0.1 * 0.5**2)
    assert torch.equal(eager.sparsity.xi == 0, graphed.sparsity.xi == 0)
    assert torch.allclose(eager.sparsity.xi, graphed.sparsity.xi, atol=1e-4)
    for a, b in zip(eager.model.parameters(), graphed.model.parameters()):
        assert torch.allclose(a, b, atol=1e-4, rtol=1e-3)
    bn = [m for m in graphed.model.modules() if isinstance(m, torch.nn.BatchNorm2d)][0]
    assert int(bn.num_batches_tracked) == 3 * 16  # every step, replayed or not, updated BN
    torch.backends.cudnn.deterministic = False


def test_a_slimmed_vgg19_is_faster_on_the_card_at_batch_512():
    """At CIFAR's 32×32 a batch of 64 is launch-bound on an H100 (the full network's kernels finish as
    fast as they are launched): the FLOPs cut shows where the card computes, at batch 512."""
    full = build_model("vgg", 19, 10).cuda().eval()
    gen = torch.Generator().manual_seed(0)
    # remove 70 % of every layer's channels
    masks = [torch.rand(bn.num_features, generator=gen) < 0.7 for bn in bn_layers(full)]
    plan = plan_from_zero_mask(full, masks)
    slim = slim_model(apply_mask(full, plan), plan).cuda().eval()
    nets = {"full": freeze_for_inference(full, 32), "slim": freeze_for_inference(slim, 32)}
    by = {(m.network, m.batch_size): m for m in measure_latencies(nets, batch_sizes=(512,), device="cuda")}
    assert by["full", 512].timer == "cuda_events"
    assert by["slim", 512].q3_ms < by["full", 512].q1_ms

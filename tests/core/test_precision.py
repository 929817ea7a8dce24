"""Precision, memory layout and compilation of the training step (issue 10), on the CPU.

The CUDA side (fp16 with a grad scaler, no host syncs, CUDA-event timing) is in test_gpu.py.
"""

import pytest
import torch

from proxns_core import DeviceUnavailableError, TrainConfig, fit
from proxns_core.models import build_model
from proxns_core.sparsity import ProximalNS
from proxns_core.train import Callbacks, _Trainer, resolve_precision
from tests.core.test_fit import TINY as FIT_TINY

TINY = {**FIT_TINY, "epochs": 3}


def test_auto_precision_and_layout_resolve_to_fp32_contiguous_on_the_cpu():
    out = fit(TrainConfig(**{**TINY, "method": "baseline", "epochs": 1}))
    assert out.result.precision == "fp32"
    assert out.result.channels_last is False
    assert out.result.device == "cpu"
    from proxns_core.measure import cpu_name

    assert out.result.device_name == cpu_name() and len(cpu_name()) > 0
    assert resolve_precision("auto", torch.device("cpu")) == "fp32"
    assert resolve_precision("bf16", torch.device("cpu")) == "bf16"


def test_fp16_is_refused_on_the_cpu_with_the_rule():
    with pytest.raises(ValueError, match="precision 'fp16' needs a CUDA device"):
        TrainConfig(**{**TINY, "precision": "fp16"})
    # device auto resolves to the CPU here: refused when the run starts, naming what to use instead
    config = TrainConfig(**{**TINY, "device": "auto", "precision": "fp16"})
    if not torch.cuda.is_available():
        with pytest.raises(DeviceUnavailableError, match="use precision fp32 or bf16"):
            fit(config)


@pytest.mark.parametrize(
    "fields, rule",
    [
        ({"cuda_graphs": True}, "cuda_graphs needs a CUDA device"),
        (
            {"cuda_graphs": True, "device": "cuda", "precision": "fp16"},
            "does not combine with precision fp16",
        ),
        ({"cuda_graphs": True, "device": "auto", "compile": True}, "or compile"),
        ({"precision": "fp8"}, "'auto', 'fp32', 'bf16' or 'fp16'"),
    ],
)
def test_invalid_gpu_settings_are_refused_naming_the_field_and_rule(fields, rule):
    from pydantic import ValidationError

    with pytest.raises(ValidationError) as err:
        TrainConfig(**{**TINY, **fields})
    (e,) = err.value.errors()
    assert e["loc"] == (("cuda_graphs",) if "cuda_graphs" in fields else ("precision",))
    assert rule in e["msg"]


def test_cuda_graphs_stay_off_on_the_cpu_by_default():
    from proxns_core.train import _Trainer as T

    assert T(TrainConfig(**TINY), Callbacks(), None).cuda_graphs is False


def test_channels_last_trains_channels_last_weights_and_records_it():
    t = _Trainer(TrainConfig(**TINY, channels_last=True), Callbacks(), None)
    conv = next(m for m in t.model.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert not conv.weight.is_contiguous()
    t.run_epoch(t.model, t.optimizer, t.sparsity)
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)  # the optimizer kept the layout


def test_a_network_trained_channels_last_exports_plain_weights(tmp_path):
    from proxns_core import load_slim
    from proxns_core.export import export_slim

    out = fit(TrainConfig(**{**TINY, "channels_last": True, "epochs": 1, "method": "baseline"}))
    assert out.result.channels_last is True
    files = {f["format"]: f for f in export_slim(out, tmp_path)}
    assert set(files) == {"safetensors", "json", "pt2", "torchscript", "onnx"}
    assert load_slim(tmp_path) is not None
    # the exported program holds plain NCHW weights, although the network trained channels-last
    program = torch.export.load(str(tmp_path / "slim.pt2")).module()
    convs = [p for n, p in program.named_parameters() if p.dim() == 4]
    assert convs and all(p.is_contiguous() for p in convs)
    assert next(m for m in out.slim_model.modules() if isinstance(m, torch.nn.Conv2d)).weight.is_contiguous(
        memory_format=torch.channels_last
    )


def test_prefilled_momentum_makes_a_skipped_first_step_harmless_and_a_real_one_plain_sgd():
    """Fused SGD creates missing momentum buffers with empty_like and returns at once on an fp16
    overflow: a skipped first step would leave garbage behind. Zeros give the first-step rule buf = g."""
    from proxns_core.train import prefill_momentum

    torch.manual_seed(0)
    models = [build_model("vgg", 11, 10, width=0.125) for _ in range(2)]
    models[1].load_state_dict(models[0].state_dict())
    opts = [torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4) for m in models]
    prefill_momentum(opts[1])
    assert all(torch.count_nonzero(s["momentum_buffer"]) == 0 for s in opts[1].state.values())
    assert len(opts[1].state) == len(list(models[1].parameters()))
    x, y = torch.randn(8, 3, 32, 32), torch.randint(0, 10, (8,))
    for _ in range(2):
        for m, opt in zip(models, opts):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(m(x), y).backward()
            opt.step()
    for a, b in zip(models[0].parameters(), models[1].parameters()):
        assert torch.allclose(a, b, atol=1e-6)


def test_a_skipped_fp16_step_moves_neither_gamma_nor_xi():
    model = build_model("vgg", 11, 10, width=0.125)
    prox = ProximalNS(lam=0.5, beta=100.0)
    prox.attach(model, torch.Generator().manual_seed(0))
    gammas = lambda: torch.cat([g.detach().reshape(-1) for g in prox.gammas]).clone()  # noqa: E731
    gamma0, xi0 = gammas(), prox.xi.clone()
    prox.after_step(0.1, skipped=torch.tensor(True))
    assert torch.equal(gammas(), gamma0) and torch.equal(prox.xi, xi0)
    prox.after_step(0.1, skipped=torch.tensor(False))  # an unskipped step is the plain PALM step
    alpha, beta = 10.0, 100.0
    ref_gamma = (alpha * gamma0 + beta * xi0) / (alpha + beta)
    assert torch.allclose(gammas(), ref_gamma)
    assert not torch.equal(prox.xi, xi0)


@pytest.mark.slow
def test_compile_on_and_off_give_the_same_xi_zero_set():
    config = dict(TINY, method="proxns", lam=7.0, beta=100.0, width=0.25)  # ~64 % of ξ zero
    plain = _Trainer(TrainConfig(**config), Callbacks(), None)
    compiled = _Trainer(TrainConfig(**config, compile=True), Callbacks(), None)
    for t in (plain, compiled):
        for _ in range(3):
            t.run_epoch(t.model, t.optimizer, t.sparsity)
            t.scheduler.step()
    zeros_plain, zeros_compiled = plain.sparsity.xi == 0, compiled.sparsity.xi == 0
    assert 0.1 < zeros_plain.float().mean() < 1.0  # a set worth comparing: some, not all, zero
    assert torch.equal(zeros_plain, zeros_compiled)
    assert torch.allclose(plain.sparsity.xi, compiled.sparsity.xi, atol=1e-4)
    assert compiled._compiled  # the compiled module really ran


def test_full_and_slim_latencies_overlap_when_nothing_is_pruned():
    """The issue's report: an unpruned network measured 127.5 vs 55.6 ms. Now both are timed alternately
    after warm-up at batch 1 and 64, and equal networks measure equal within the quartiles."""
    out = fit(TrainConfig(**{**TINY, "method": "baseline", "epochs": 1}))
    r = out.result
    assert r.channels_pruned == 0
    by = {(m.network, m.batch_size): m for m in r.latency}
    assert set(by) == {("full", 1), ("slim", 1), ("full", 64), ("slim", 64)}
    for b in (1, 64):
        full, slim = by["full", b], by["slim", b]
        assert full.timer == slim.timer == "perf_counter"
        assert full.repeats >= 7 and full.repeats == slim.repeats
        assert 0 < full.min_ms <= full.q1_ms <= full.median_ms <= full.q3_ms
        assert full.q1_ms <= slim.q3_ms and slim.q1_ms <= full.q3_ms, (full, slim)
    assert r.latency_full_ms == by["full", 1].median_ms and r.latency_slim_ms == by["slim", 1].median_ms

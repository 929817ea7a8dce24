"""Does slimming pay? Forward latency of full vs slimmed VGG-19 and ResNet-164 with about half the
channels removed, at batch 1 and 64, against the FLOPs reduction, in eager PyTorch and in ONNX Runtime.
Full and slim runs alternate, so drifts in machine load hit both alike. Target: speedup ≥ 0.8 × FLOPs
reduction.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from proxns_core.export import write_onnx
from proxns_core.measure import count_flops, count_params
from proxns_core.models import build_model
from proxns_core.slim import plan_from_zero_mask, round_plan, slim_model


def half_pruned(arch: str, depth: int, device: torch.device, share: float = 0.5, multiple: int = 1):
    torch.manual_seed(0)
    model = build_model(arch, depth, 10).to(device).eval()
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.bias.normal_(0, 0.1, generator=g)  # non-zero constants, so folding is exercised
    zero = [torch.rand(u["bn"].num_features, generator=g) < share for u in model.prune_units()]
    plan = round_plan(model, plan_from_zero_mask(model, zero), multiple)
    return model, slim_model(model, plan).to(device).eval(), plan


def torch_runner(model: torch.nn.Module, batch: int, device: torch.device) -> Callable[[], None]:
    x = torch.randn(batch, 3, 32, 32, device=device)

    def run() -> None:
        with torch.inference_mode():
            model(x)
        if device.type == "cuda":
            torch.cuda.synchronize()

    return run


def onnx_runner(model: torch.nn.Module, batch: int) -> Callable[[], None]:
    """The model exported to ONNX and run by ONNX Runtime (which fuses conv, BN and ReLU)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.onnx"
        write_onnx(model.cpu().eval(), torch.randn(2, 3, 32, 32), path)
        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    feed = {"input": np.random.default_rng(0).standard_normal((batch, 3, 32, 32), dtype=np.float32)}
    return lambda: session.run(None, feed)


def paired_medians(run_a, run_b, repeats: int, warmup: int = 3) -> tuple[float, float]:
    for _ in range(warmup):
        run_a()
        run_b()
    a, b = [], []
    for _ in range(repeats):
        for run, times in ((run_a, a), (run_b, b)):
            t0 = time.perf_counter()
            run()
            times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(a), statistics.median(b)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--no-onnx", action="store_true", help="skip the ONNX Runtime rows (CPU only)")
    parser.add_argument("--multiples", default="1,8", help="channel_multiple values to compare")
    args = parser.parse_args()
    device = torch.device(args.device)
    print(f"device {device}; latency = median of alternating eval forwards ({args.repeats} at batch 1)")
    print(
        f"{'network':<11} {'mult':>4} {'runtime':<8} {'batch':>5} {'pruned':>7} {'params':>15} {'FLOPs x':>8} "
        f"{'full ms':>9} {'slim ms':>9} {'speedup':>8} {'speedup/FLOPs':>14}"
    )
    runtimes = ["torch"] + ([] if args.no_onnx or device.type != "cpu" else ["onnxrt"])
    multiples = [int(m) for m in args.multiples.split(",")]
    for arch, depth, multiple in [(a, d, m) for a, d in (("vgg", 19), ("resnet", 164)) for m in multiples]:
        full, slim, plan = half_pruned(arch, depth, device, multiple=multiple)
        flops_ratio = count_flops(full) / count_flops(slim)
        for runtime, batch in [(r, b) for r in runtimes for b in (1, 64)]:
            reps = args.repeats if batch == 1 else max(5, args.repeats // 4)
            if runtime == "torch":
                runs = torch_runner(full, batch, device), torch_runner(slim, batch, device)
            else:
                runs = onnx_runner(full, batch), onnx_runner(slim, batch)
            t_full, t_slim = paired_medians(*runs, reps)
            speedup = t_full / t_slim
            print(
                f"{arch + '-' + str(depth):<11} {multiple:>4} {runtime:<8} {batch:>5} "
                f"{plan.channels_pruned / plan.channels_total:>7.1%} "
                f"{count_params(full):>7.2e}→{count_params(slim):.1e} {flops_ratio:>7.2f}x {t_full:>9.2f} "
                f"{t_slim:>9.2f} {speedup:>7.2f}x {speedup / flops_ratio:>14.2f}"
            )
    print("target: speedup/FLOPs >= 0.8")


if __name__ == "__main__":
    main()

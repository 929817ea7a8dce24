"""Does slimming pay? Forward latency of full vs slimmed VGG-19 and ResNet-164 with about half the
channels removed, at batch 1 and 64, against the FLOPs reduction. Target: speedup ≥ 0.8 × FLOPs cut.

Runtimes, each applied alike to the full and the slim network:
  eager      the ``nn.Module`` as trained (BN layers, constant folds computed on the fly);
  frozen     ``freeze_for_inference``: BN folded into convs, fold maps precomputed, TorchScript-frozen;
  frozen-cl  the same in channels-last memory format;
  onnxrt     the inference form exported to ONNX, in ONNX Runtime (CPU only);
  compiled   opt-in: the inference form through torch.compile (inductor, freezing; about a minute
             of compiling per network and batch on 2 cores).
Full and slim runs alternate, so drifts in machine load hit both alike. ``--breakdown`` splits eager
time into convolutions (the FLOPs counted) and everything else, from the PyTorch profiler.
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
from proxns_core.inference import freeze_for_inference, fuse_for_inference
from proxns_core.measure import count_flops, count_params
from proxns_core.models import build_model
from proxns_core.slim import plan_from_zero_mask, round_plan, slim_model

TARGET = 0.8


def half_pruned(arch: str, depth: int, device: torch.device, share: float = 0.5, multiple: int = 1):
    """The network with random non-zero BN biases, and its slim copy with about ``share`` of its channels
    removed at random; with ``multiple`` > 1 widths round up, so more are drawn until ``share`` is reached."""
    torch.manual_seed(0)
    model = build_model(arch, depth, 10).to(device).eval()
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.bias.normal_(0, 0.1, generator=g)  # non-zero constants, so folding is exercised
    draws = [torch.rand(u["bn"].num_features, generator=g) for u in model.prune_units()]
    for p in np.arange(share, 0.95, 0.01):
        plan = round_plan(model, plan_from_zero_mask(model, [d < p for d in draws]), multiple)
        if plan.channels_pruned / plan.channels_total >= share - 0.01:
            break
    return model, slim_model(model, plan).to(device).eval(), plan


def torch_runner(model: Callable, batch: int, device: torch.device, channels_last: bool = False):
    x = torch.randn(batch, 3, 32, 32, device=device)
    if channels_last:
        x = x.to(memory_format=torch.channels_last)

    def run() -> None:
        with torch.inference_mode():
            model(x)
        if device.type == "cuda":
            torch.cuda.synchronize()

    return run


def onnx_runner(model: torch.nn.Module, batch: int) -> Callable[[], None]:
    """The inference form exported to ONNX and run by ONNX Runtime (which fuses conv, bias and ReLU)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.onnx"
        write_onnx(fuse_for_inference(model.cpu(), 32), torch.randn(2, 3, 32, 32), path)
        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    feed = {"input": np.random.default_rng(0).standard_normal((batch, 3, 32, 32), dtype=np.float32)}
    return lambda: session.run(None, feed)


def runner(runtime: str, model: torch.nn.Module, batch: int, device: torch.device) -> Callable[[], None]:
    if runtime == "eager":
        return torch_runner(model, batch, device)
    if runtime in ("frozen", "frozen-cl"):
        cl = runtime == "frozen-cl"
        return torch_runner(freeze_for_inference(model, 32, batch, channels_last=cl), batch, device, cl)
    if runtime == "compiled":
        import torch._inductor.config as inductor_config

        inductor_config.freezing = True  # fold weights as constants, as the frozen runtime does
        compiled = torch.compile(fuse_for_inference(model, 32), dynamic=False)
        return torch_runner(compiled, batch, device)
    return onnx_runner(model, batch)


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


def conv_and_other_ms(model: torch.nn.Module, batch: int, repeats: int = 3):
    """Eager CPU forward time per call split into convolutions and all other ops (profiler self time)."""
    from torch.profiler import ProfilerActivity, profile

    run = torch_runner(model, batch, torch.device("cpu"))
    run()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(repeats):
            run()
    conv = other = 0.0
    for event in prof.key_averages():
        if "convolution" in event.key or "conv2d" in event.key:
            conv += event.self_cpu_time_total
        elif event.key.startswith("aten::"):
            other += event.self_cpu_time_total
    return conv / repeats / 1000, other / repeats / 1000


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--repeats", type=int, default=40, help="alternating pairs at batch 1 (a quarter at 64)"
    )
    parser.add_argument("--runtimes", default="eager,frozen,frozen-cl,onnxrt")
    parser.add_argument("--multiples", default="1,16", help="channel_multiple values to compare")
    parser.add_argument("--archs", default="vgg-19,resnet-164")
    parser.add_argument(
        "--breakdown", action="store_true", help="also split eager CPU time: convs vs the rest"
    )
    args = parser.parse_args()
    device = torch.device(args.device)
    runtimes = [r for r in args.runtimes.split(",") if not (r == "onnxrt" and device.type != "cpu")]
    networks = [(a.split("-")[0], int(a.split("-")[1])) for a in args.archs.split(",")]
    multiples = [int(m) for m in args.multiples.split(",")]
    print(f"device {device}, {torch.get_num_threads()} threads; median of alternating full/slim forwards")
    print(
        f"{'network':<11} {'mult':>4} {'runtime':<9} {'batch':>5} {'pruned':>7} {'params':>15} {'FLOPs x':>8} "
        f"{'full ms':>9} {'slim ms':>9} {'speedup':>8} {'speedup/FLOPs':>14}"
    )
    best: dict[tuple[str, int], tuple[float, str]] = {}
    for arch, depth, multiple in [(a, d, m) for a, d in networks for m in multiples]:
        full, slim, plan = half_pruned(arch, depth, device, multiple=multiple)
        flops_ratio = count_flops(full) / count_flops(slim)
        name = f"{arch}-{depth}"
        for runtime, batch in [(r, b) for r in runtimes for b in (1, 64)]:
            reps = args.repeats if batch == 1 else max(5, args.repeats // 4)
            t_full, t_slim = paired_medians(
                runner(runtime, full, batch, device), runner(runtime, slim, batch, device), reps
            )
            speedup = t_full / t_slim
            ratio = speedup / flops_ratio
            if ratio > best.get((name, batch), (-1.0, ""))[0]:
                best[(name, batch)] = (ratio, f"{runtime}, mult {multiple}")
            print(
                f"{name:<11} {multiple:>4} {runtime:<9} {batch:>5} "
                f"{plan.channels_pruned / plan.channels_total:>7.1%} "
                f"{count_params(full):>7.2e}→{count_params(slim):.1e} {flops_ratio:>7.2f}x {t_full:>9.2f} "
                f"{t_slim:>9.2f} {speedup:>7.2f}x {ratio:>14.2f}",
                flush=True,
            )
        if args.breakdown and device.type == "cpu":  # on a GPU the kernels, not the aten ops, hold the time
            (cf, of), (cs, os_) = (conv_and_other_ms(m, 64) for m in (full, slim))
            print(
                f"  eager batch 64, {name} mult {multiple}: convolutions {cf:.1f} → {cs:.1f} ms "
                f"({cf / cs:.2f}x, {cf / cs / flops_ratio:.2f} of the FLOPs cut); "
                f"other ops {of:.1f} → {os_:.1f} ms ({of / os_:.2f}x)",
                flush=True,
            )
    print(f"best speedup/FLOPs per network and batch (target ≥ {TARGET}):")
    for (name, batch), (ratio, how) in best.items():
        print(f"  {name:<11} batch {batch:>2}: {ratio:.2f} ({how}) {'met' if ratio >= TARGET else 'NOT met'}")


if __name__ == "__main__":
    main()

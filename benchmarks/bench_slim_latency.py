"""Does slimming pay? Forward latency of full vs slimmed VGG-19 and ResNet-164 with about half the
channels removed, at batch 1 and 64, against the FLOPs reduction. Target: speedup ≥ 0.8 × FLOPs reduction.
"""

from __future__ import annotations

import argparse

import torch

from proxns_core.measure import count_flops, count_params, measure_latency_ms
from proxns_core.models import build_model
from proxns_core.slim import plan_from_zero_mask, slim_model


def half_pruned(arch: str, depth: int, device: torch.device, share: float = 0.5):
    torch.manual_seed(0)
    model = build_model(arch, depth, 10).to(device).eval()
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.bias.normal_(0, 0.1, generator=g)  # non-zero constants, so folding is exercised
    zero = [torch.rand(u["bn"].num_features, generator=g) < share for u in model.prune_units()]
    plan = plan_from_zero_mask(model, zero)
    return model, slim_model(model, plan).to(device).eval(), plan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    device = torch.device(args.device)
    print(f"device {device}; latency = median of {args.repeats} eval forwards")
    header = (
        f"{'network':<11} {'batch':>5} {'pruned':>7} {'params':>13} {'FLOPs x':>8} {'full ms':>9} "
        f"{'slim ms':>9} {'speedup':>8} {'speedup/FLOPs':>14}"
    )
    print(header)
    for arch, depth in (("vgg", 19), ("resnet", 164)):
        full, slim, plan = half_pruned(arch, depth, device)
        flops_ratio = count_flops(full) / count_flops(slim)
        for batch in (1, 64):
            reps = args.repeats if batch == 1 else max(5, args.repeats // 3)
            t_full = measure_latency_ms(full, batch, repeats=reps, device=device)
            t_slim = measure_latency_ms(slim, batch, repeats=reps, device=device)
            speedup = t_full / t_slim
            print(
                f"{arch + '-' + str(depth):<11} {batch:>5} {plan.channels_pruned / plan.channels_total:>7.1%} "
                f"{count_params(full):>6.2e}→{count_params(slim):.1e} {flops_ratio:>7.2f}x {t_full:>9.2f} "
                f"{t_slim:>9.2f} {speedup:>7.2f}x {speedup / flops_ratio:>14.2f}"
            )
    print("target: speedup/FLOPs >= 0.8")


if __name__ == "__main__":
    main()

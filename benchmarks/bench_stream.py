"""Does ``prune_stream`` help ResNet-164 reach speedup ≥ 0.8 × FLOPs cut on the CPU?

The network of ``bench_slim_latency.half_pruned`` (random BN biases, about half the BN channels pruned
at random), except that in the BNs reading the last stage's residual stream (``layer3.stream``: its
blocks' bn1 and the final BN) a share ``--stream-share`` of the stream channels is pruned in *all*
of them — as if training had zeroed ξ of those stream channels everywhere — while each such BN still
prunes about the same share as the others. (Independent random masks would almost never prune a
channel in all 18 readers.) Those channels also get γ = 0, so rounding to ``mult`` re-keeps other
channels first, as it would after training. The same BN plan is then slimmed without and with
``prune_stream`` (:func:`proxns_core.stream.extend_plan`), and both are timed against the full
network in the frozen TorchScript form (``freeze_for_inference``), full and slim alternating; an
``on vs off`` row times the two slim networks against each other (its ms columns are off and on), the
figure least disturbed by a loaded machine.
Only layer3's stream can lose channels: the stem's and the first two stages' streams are read raw by
the next stage's downsample conv.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import bench_slim_latency  # noqa: E402
from benchmarks.bench_slim_latency import TARGET, half_pruned, paired_medians, runner  # noqa: E402
from proxns_core.measure import count_flops  # noqa: E402
from proxns_core.slim import plan_from_zero_mask, round_plan, slim_model  # noqa: E402
from proxns_core.stream import extend_plan, stream_pruned  # noqa: E402


def coupled_plans(multiple: int, stream_share: float, share: float = 0.5):
    """The full ResNet-164 and, for one BN plan with ``stream_share`` of layer3's stream pruned in all
    its readers, the plan without and with the stream channels."""
    full, _slim, base = half_pruned("resnet", 164, torch.device("cpu"), share=share, multiple=multiple)
    g = torch.Generator().manual_seed(1)
    zero = {n: ~m for n, m in base.masks.items()}
    units = {u["name"]: u for u in full.prune_units()}
    stream = next(s for s in full.stream_units() if s["name"] == "layer3.stream")
    chosen = torch.rand(stream["width"], generator=g) < stream_share
    with torch.no_grad():
        for name, selection, _prefix in stream["readers"]:
            coupled = chosen[selection.indices]
            p = float(zero[name].float().mean())
            # keep the reader's pruned share about p: its other zeros survive with probability t
            t = max(0.0, p - stream_share) / max(p * (1 - stream_share), 1e-9)
            zero[name] = coupled | (zero[name] & (torch.rand(coupled.numel(), generator=g) < t))
            units[name]["bn"].weight[coupled] = 0.0  # ξ = 0 leaves γ = 0: rounding re-keeps others first
    plan = round_plan(full, plan_from_zero_mask(full, [zero[n] for n in units]), multiple)
    return full, plan, extend_plan(full, plan, multiple)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--repeats", type=int, default=40, help="alternating pairs at batch 1 (a quarter at 64)"
    )
    parser.add_argument("--multiples", default="1,16")
    parser.add_argument(
        "--stream-shares", default="0.3,0.5", help="shares of layer3's stream pruned in all readers"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="mult 16, stream share 0.5, 12 repeats (about 3 min on 2 idle cores)",
    )
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's)")
    parser.add_argument(
        "--cpu-time",
        action="store_true",
        help="time process CPU time, not wall time (with --threads 1: less disturbed by other load)",
    )
    args = parser.parse_args()
    if args.quick:
        args.repeats, args.multiples, args.stream_shares = 12, "16", "0.5"
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.cpu_time:  # paired_medians reads time.perf_counter of its own module
        bench_slim_latency.time = SimpleNamespace(perf_counter=time.process_time)
    device = torch.device("cpu")
    print(
        f"ResNet-164, CPU, {torch.get_num_threads()} threads, frozen TorchScript, "
        f"{'CPU' if args.cpu_time else 'wall'} time; median of alternating full/slim"
    )
    print(
        f"{'mult':>4} {'stream':>6} {'prune_stream':<12} {'batch':>5} {'pruned':>7} {'BN pruned':>9} "
        f"{'stream del':>10} {'FLOPs x':>8} {'full ms':>8} {'slim ms':>8} {'speedup':>8} {'speedup/FLOPs':>13}"
    )
    for multiple in [int(m) for m in args.multiples.split(",")]:
        for q in [float(s) for s in args.stream_shares.split(",")]:
            full, plan, ext = coupled_plans(multiple, q)
            bn_share = plan.channels_pruned / plan.channels_total
            slims = {"off": slim_model(full, plan).eval(), "on": slim_model(full, ext).eval()}
            for batch in (1, 64):
                reps = args.repeats if batch == 1 else max(5, args.repeats // 4)
                run_full = runner("frozen", full, batch, device)
                runs = {mode: runner("frozen", slims[mode], batch, device) for mode in slims}
                for mode, p in (("off", plan), ("on", ext)):
                    flops = count_flops(full) / count_flops(slims[mode])
                    t_full, t_slim = paired_medians(run_full, runs[mode], reps)
                    speedup = t_full / t_slim
                    print(
                        f"{multiple:>4} {q:>6.0%} {mode:<12} {batch:>5} {p.channels_pruned / p.channels_total:>7.1%} "
                        f"{bn_share:>9.1%} {stream_pruned(p):>10} {flops:>7.2f}x {t_full:>8.2f} {t_slim:>8.2f} "
                        f"{speedup:>7.2f}x {speedup / flops:>13.2f}",
                        flush=True,
                    )
                # the two slim networks against each other: what prune_stream adds, robust to load drifts
                t_off, t_on = paired_medians(runs["off"], runs["on"], reps)
                flops = count_flops(slims["off"]) / count_flops(slims["on"])
                print(
                    f"{multiple:>4} {q:>6.0%} {'on vs off':<12} {batch:>5} {'':>7} {'':>9} {'':>10} {flops:>7.2f}x "
                    f"{t_off:>8.2f} {t_on:>8.2f} {t_off / t_on:>7.2f}x {t_off / t_on / flops:>13.2f}",
                    flush=True,
                )
    print(f"target: speedup/FLOPs ≥ {TARGET}")


if __name__ == "__main__":
    main()

"""The paper's claim on real data: proximal NS trains into a sparse structure that slims without
fine-tuning, while classic NS at the same pruned share needs its fine-tuning step.

scikit-learn's digits (1437 train / 360 test, 32×32), VGG-11 at width 0.25, 20 epochs, batch 64, lr 0.1.
A λ sweep for proxns (β = 100); for each, NS (λ = 0.02) pruned to the same share, before and after
10 epochs of fine-tuning. Prints a Markdown table (the README's).

``--claim`` runs only the claim itself (proxns λ = 0.5, β = 100, tests/core/test_fit.py's setting) and
exits 1 unless ≥ 60 % of the channels are pruned and the slim network keeps ≥ 95 % accuracy;
``--device``/``--precision`` put it on a GPU (benchmarks/gpu_check.sh: ``--device cuda --precision bf16``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from proxns_core import TrainConfig, fit

COMMON = dict(dataset="digits", arch="vgg", depth=11, width=0.25, epochs=20, batch_size=64, lr=0.1)


def pct(v):
    return "—" if v is None else f"{100 * v:.1f} %"


def row(label: str, r: dict) -> str:
    return (
        f"| {label} | {pct(r['pruned_fraction'])} | {pct(r['acc_full'])} | {pct(r['acc_slim'])} | "
        f"{pct(r['acc_finetuned'])} | {r['params_slim']:,} | {r['flops_slim'] / 1e6:.2f} M |"
    )


#: The claim (issue 2): proxns at λ = 0.5 prunes ≥ 60 % of the channels, the slim network keeps ≥ 95 %.
CLAIM_LAM, CLAIM_PRUNED, CLAIM_ACC = 0.5, 0.60, 0.95


def claim(common: dict, json_path: str | None) -> int:
    t0 = time.perf_counter()
    out = fit(TrainConfig(**common, method="proxns", lam=CLAIM_LAM, beta=100))
    r = out.result.model_dump()
    ok = r["pruned_fraction"] >= CLAIM_PRUNED and r["acc_slim"] >= CLAIM_ACC
    zeros_exact = abs(out.history[-1].zero_fraction - r["pruned_fraction"]) < 1e-9
    seconds = time.perf_counter() - t0
    print(
        f"digits claim on {r['device']} ({r.get('device_name') or '?'}), precision {r.get('precision') or 'fp32'}: "
        f"{pct(r['pruned_fraction'])} of channels pruned (ξ = 0; target ≥ {pct(CLAIM_PRUNED)}), slim accuracy "
        f"{pct(r['acc_slim'])} (target ≥ {pct(CLAIM_ACC)}), unpruned {pct(r['acc_full'])}, "
        f"ξ zero share of the last epoch {'equals' if zeros_exact else 'DIFFERS from'} the pruned share; "
        f"{seconds:.1f} s — {'PASS' if ok and zeros_exact else 'FAIL'}",
        flush=True,
    )
    if json_path:
        with open(json_path, "w") as f:
            json.dump(
                {"config": out.config.model_dump(), "result": r, "seconds": seconds, "pass": ok}, f, indent=2
            )
    return 0 if ok and zeros_exact else 1


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lams", default="0.1,0.25,0.5,1.0")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", default="auto", help="auto, fp32, bf16 or fp16 (CUDA only)")
    parser.add_argument(
        "--claim", action="store_true", help="only the claim: proxns λ=0.5; exit 1 unless it holds"
    )
    parser.add_argument("--finetune-epochs", type=int, default=10)
    parser.add_argument("--json", help="also write the raw results here")
    args = parser.parse_args()
    lams = [float(v) for v in args.lams.split(",")]
    common = {**COMMON, "seed": args.seed, "device": args.device, "precision": args.precision}
    if args.claim:
        sys.exit(claim(common, args.json))
    t0 = time.perf_counter()
    results = []
    base = fit(TrainConfig(**common, method="baseline")).result.model_dump()
    results.append({"method": "baseline", "result": base})
    lines = [
        "| run | channels pruned | accuracy, unpruned | slimmed, no fine-tuning | slimmed + fine-tuned | "
        "params (slim) | FLOPs (slim) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        row("baseline", base),
    ]
    print(lines[-1], flush=True)
    for lam in lams:
        prox = fit(TrainConfig(**common, method="proxns", lam=lam, beta=100)).result.model_dump()
        share = prox["pruned_fraction"]
        ns = fit(
            TrainConfig(
                **common,
                method="ns",
                lam=0.02,
                prune_ratio=max(share, 1e-3),
                finetune_epochs=args.finetune_epochs,
            )
        ).result.model_dump()
        results += [
            {"method": "proxns", "lam": lam, "result": prox},
            {"method": "ns", "lam": 0.02, "result": ns},
        ]
        lines += [
            row(f"proxns λ={lam:g}, β=100 (ξ = 0)", prox),
            row(f"NS λ=0.02, prune {100 * share:.1f} %", ns),
        ]
        print("\n".join(lines[-2:]), flush=True)
    print(
        f"\nVGG-11 ×0.25 on digits, 20 epochs, seed {args.seed}, device {base['device']} "
        f"({base.get('device_name') or '?'}), precision {base.get('precision') or 'fp32'}, "
        f"{time.perf_counter() - t0:.0f} s in all\n"
    )
    print("\n".join(lines))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()

"""Proximal NS on torchvision networks (issue 11): what slimming a trained ResNet-18 / MobileNetV2 buys.

Each network (torchvision, 10 classes, 32×32) is trained briefly with proximal NS on scikit-learn's
digits (``proxns_core.data``: 1437 train / 360 test, upsampled to 32×32 RGB), so that its ξ zeros are
the ones training makes, not random ones. Its BN statistics are then re-estimated on the training set
(``recalibrate_bn``) and ``zero_masks = {bn: ξ == 0}`` goes through ``plan_groups``: a coupled channel
is deleted exactly when ξ is 0 in every BN of its group. On the digits test set:

  full       the trained network;
  masked     ``apply_mask_any``: γ = 0 on the deleted channels (what proxns promises the slim net equals);
  slim       ``slim_any(fold=True)``: the channels deleted, their constants folded into the consumers;
  tp-drop    ``slim_any(fold=False)``: the same channels deleted the way Torch-Pruning's BN-scale
             slimming does, the deleted channels' constant outputs act(BN bias) dropped.

Logit gaps are max |slim − masked| over the test set, absolute and relative to max |masked logit|.
Latency (CPU, default threads) of full vs slim, each with every conv→BN pair folded (through a
torch.fx trace; constant-fold maps become buffers) and frozen by TorchScript, at batch 1 and 64,
full and slim alternating, medians (``measure_latencies``). tp-drop has exactly slim's shapes (only
biases differ), so its latency is slim's and is not timed separately.
speedup = t_full / t_slim; ratio = speedup ÷ (FLOPs_full / FLOPs_slim) (1.0: time falls as FLOPs do).

``--quick`` trains fewer epochs and times fewer rounds; ``--nets`` picks the networks.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import json
import platform
import sys
import time
import warnings
from pathlib import Path

import torch
import torch.fx
from torch import nn

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(REPO))

from proxns_core.anynet import apply_mask_any, build_torchvision, coupled_groups, plan_groups, slim_any  # noqa: E402
from proxns_core.data import load_dataset, test_batches, train_batches  # noqa: E402
from proxns_core.inference import (  # noqa: E402
    _fold_bn_into_conv,
    _freeze_bias_maps,
    quiet_torchscript_deprecation,
)
from proxns_core.measure import count_flops, count_params, cpu_name, measure_latencies  # noqa: E402
from proxns_core.sparsity import ProximalNS  # noqa: E402
from proxns_core.train import recalibrate_bn  # noqa: E402

NETS = ("resnet18", "mobilenet_v2")
INPUT_SIZE = 32
EXACT_RTOL = 1e-4
RESULTS = REPO / "benchmarks" / "results"

#: Per network: λ, β, lr, epochs (full run; lr ÷ 10 after epochs 8 and 12). ξ starts near 0.5 (γ at
#: torchvision's 1.0) and, with β = 100 ≫ α = 1/lr, γ follows ξ down by about λ/(α+β) per step until
#: the loss resists: the zeros come in a burst, at about epoch 8 for ResNet-18 at λ = 0.35 and epoch
#: 11 for MobileNetV2 at λ = 0.3, and keep creeping up after it. These end with about 77 % (ResNet-18)
#: and 65 % (MobileNetV2) of the coupled channels at ξ = 0 in all their BNs, masked accuracy ≥ 93 %,
#: in ~1–2.5 CPU minutes each. λ = 0.5 prunes 90 % of ResNet-18, 0.25 nothing of MobileNetV2 in 16 epochs;
#: β = 20 at λ = 0.5 prunes 95 % of both.
SETTINGS = {
    "resnet18": dict(lam=0.35, beta=100.0, lr=0.1, epochs=16),
    "mobilenet_v2": dict(lam=0.3, beta=100.0, lr=0.1, epochs=16),
}
QUICK_EPOCHS = 3


class AnyProximalNS(ProximalNS):
    """The project's PALM update (``ProximalNS.after_step``) bound to every ``nn.BatchNorm2d`` of a network.

    ``ProximalNS.attach`` binds every BN of a torchvision network where the project's ``sparsity_bns``
    exists; an older one finds its BN layers through ``model.prune_units()``, which only the paper's
    networks have: then the same binding is made here (same BN order and names, same ξ start).
    """

    def attach(self, model: nn.Module, generator: torch.Generator | None = None) -> None:
        try:
            super().attach(model, generator)
            if getattr(self, "bn_names", None):
                return
        except AttributeError:  # no model.prune_units()
            pass
        self.bn_names = [n for n, m in model.named_modules() if isinstance(m, nn.BatchNorm2d)]
        modules = dict(model.named_modules())
        self.gammas = [modules[n].weight for n in self.bn_names]
        n = sum(g.numel() for g in self.gammas)
        xi = torch.rand(n, generator=generator) * 0.06 + 0.47  # uniform in [0.47, 0.53], as ProximalNS
        self.xi = xi.to(device=self.gammas[0].device, dtype=self.gammas[0].dtype)
        self._sizes = [g.numel() for g in self.gammas]

    def zero_masks(self) -> dict[str, torch.Tensor]:
        return {n: z.cpu() for n, z in zip(self.bn_names, (self.xi == 0).split(self._sizes))}


def train_proxns(model, data, epochs, lr, lam, beta, batch_size=64, seed=0, log=print):
    """SGD (momentum 0.9, weight decay 1e-4, lr ÷ 10 after 50 % and 75 % of the epochs) with the PALM
    γ/ξ step after every optimizer step; returns the sparsity object (its ξ)."""
    gen = torch.Generator().manual_seed(seed)
    prox = AnyProximalNS(lam, beta)
    prox.attach(model, gen)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=1e-4)
    milestones = {max(1, round(epochs * 0.5)), max(1, round(epochs * 0.75))} - {epochs}
    model.train()
    for epoch in range(epochs):
        if epoch in milestones:
            for group in opt.param_groups:
                group["lr"] /= 10
        step_lr = opt.param_groups[0]["lr"]
        loss_sum, n = 0.0, 0
        for x, y in train_batches(data, batch_size, gen):
            loss = nn.functional.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            prox.after_step(step_lr)
            loss_sum += float(loss.detach()) * len(y)
            n += len(y)
        log(
            f"    epoch {epoch + 1}/{epochs} lr {step_lr:g} loss {loss_sum / n:.3f} ξ=0 {prox.zero_fraction():.1%}"
        )
    model.eval()
    return prox


@torch.no_grad()
def test_logits(model: nn.Module, data) -> tuple[torch.Tensor, float]:
    """Logits of the whole test set (eval mode) and the accuracy."""
    model.eval()
    out = torch.cat([model(x) for x, _ in test_batches(data)])
    return out, float((out.argmax(1) == data.y_test).float().mean())


class _ConvLeafTracer(torch.fx.Tracer):
    """fx tracer that keeps every Conv2d subclass (``FoldableConv2d`` with its fold) a leaf."""

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return isinstance(m, nn.Conv2d) or super().is_leaf_module(m, qualname)


@torch.no_grad()
def fuse_any(model: nn.Module, input_size: int = INPUT_SIZE) -> tuple[nn.Module, int]:
    """An eval copy of any network with every BN that reads one conv's sole output folded into that conv
    (constant-fold kernels scaled alike) and constant-fold maps turned into buffers; also returns the
    number of BN layers left unfolded.

    ``torch.jit.freeze`` folds conv→BN itself, but not conv→add(map)→BN, the form a slim conv with a
    border-exact constant fold has: without this step the slim network alone would keep BN passes.
    """
    fused = copy.deepcopy(model).eval()
    modules = dict(fused.named_modules())
    graph = _ConvLeafTracer().trace(fused)
    for node in graph.nodes:
        if node.op != "call_module" or not isinstance(modules[node.target], nn.BatchNorm2d):
            continue
        src = node.args[0]
        if not (
            isinstance(src, torch.fx.Node)
            and src.op == "call_module"
            and isinstance(modules[src.target], nn.Conv2d)
            and len(src.users) == 1
        ):
            continue
        _fold_bn_into_conv(modules[src.target], modules[node.target])
        parent, _, name = node.target.rpartition(".")
        setattr(fused.get_submodule(parent) if parent else fused, name, nn.Identity())
    _freeze_bias_maps(fused, input_size)
    left = sum(isinstance(m, nn.BatchNorm2d) for m in fused.modules())
    return fused, left


@torch.no_grad()
def frozen(model: nn.Module, batch_size: int, input_size: int = INPUT_SIZE) -> torch.jit.ScriptModule:
    fused, _ = fuse_any(model, input_size)
    x = torch.randn(batch_size, 3, input_size, input_size)
    with quiet_torchscript_deprecation(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        return torch.jit.freeze(torch.jit.trace(fused, x))


def _gap(a: torch.Tensor, b: torch.Tensor) -> tuple[float, float]:
    gap = float((a - b).abs().max())
    return gap, gap / max(float(b.abs().max()), 1e-12)


def run_net(name: str, data, args, log=print) -> dict:
    s = dict(SETTINGS[name])
    for key in ("lam", "beta", "lr", "epochs"):
        if getattr(args, key) is not None:
            s[key] = getattr(args, key)
    if args.quick and args.epochs is None:
        s["epochs"] = QUICK_EPOCHS
    torch.manual_seed(args.seed)
    model = build_torchvision(name, 10)
    log(f"{name}: training {s['epochs']} epochs, proxns λ={s['lam']:g} β={s['beta']:g} lr={s['lr']:g}")
    t0 = time.perf_counter()
    prox = train_proxns(
        model, data, s["epochs"], s["lr"], s["lam"], s["beta"], args.batch_size, args.seed, log
    )
    train_s = time.perf_counter() - t0
    recalibrate_bn(model, data, args.batch_size)
    model.eval()

    groups = coupled_groups(model, INPUT_SIZE)
    plan = plan_groups(model, groups, prox.zero_masks())
    t0 = time.perf_counter()
    slim, report = slim_any(model, plan, INPUT_SIZE, fold=True)
    drop, report_drop = slim_any(model, plan, INPUT_SIZE, fold=False)
    slim_s = time.perf_counter() - t0
    masked = apply_mask_any(model, plan).eval()

    logits = {}
    acc = {}
    for key, net in (("full", model), ("masked", masked), ("slim", slim), ("tp-drop", drop)):
        logits[key], acc[key] = test_logits(net, data)
    gap_slim, rel_slim = _gap(logits["slim"], logits["masked"])
    gap_drop, rel_drop = _gap(logits["tp-drop"], logits["masked"])
    gap_full, rel_full = _gap(logits["full"], logits["masked"])

    flops_full, flops_slim = count_flops(model, INPUT_SIZE), count_flops(slim, INPUT_SIZE)
    flops_drop = count_flops(drop, INPUT_SIZE)
    params_full, params_slim = count_params(model), count_params(slim)
    _, bn_left_full = fuse_any(model, INPUT_SIZE)
    _, bn_left_slim = fuse_any(slim, INPUT_SIZE)

    latency = {}
    for batch in args.batches:
        nets = {"full": frozen(model, batch), "slim": frozen(slim, batch)}
        with torch.inference_mode():  # the frozen forms compute what the modules do
            x = torch.randn(batch, 3, INPUT_SIZE, INPUT_SIZE)
            frozen_gap = float((nets["slim"](x) - slim(x)).abs().max())
        rows = measure_latencies(
            nets,
            (batch,),
            INPUT_SIZE,
            "cpu",
            repeats=args.rounds,
            warmup=3,
            min_repeats=min(7, args.rounds),
            max_seconds=args.max_seconds,
        )
        t = {r.network: r for r in rows}
        speedup = t["full"].median_ms / t["slim"].median_ms
        latency[batch] = dict(
            full_ms=t["full"].median_ms,
            slim_ms=t["slim"].median_ms,
            full_iqr=(t["full"].q1_ms, t["full"].q3_ms),
            slim_iqr=(t["slim"].q1_ms, t["slim"].q3_ms),
            rounds=t["full"].repeats,
            speedup=speedup,
            ratio=speedup / (flops_full / flops_slim),
            frozen_vs_module_gap=frozen_gap,
        )
        log(
            f"    batch {batch}: full {t['full'].median_ms:.2f} ms, slim {t['slim'].median_ms:.2f} ms, "
            f"speedup {speedup:.2f}x ({t['full'].repeats} rounds)"
        )

    bn_total = sum(len(z) for z in prox.zero_masks().values())
    return dict(
        net=name,
        settings=s,
        train_seconds=train_s,
        slim_seconds=slim_s,
        xi_zero_share=float(sum(int(z.sum()) for z in prox.zero_masks().values())) / bn_total,
        groups=len(groups),
        channels_total=plan.channels_total,
        channels_pruned=plan.channels_pruned,
        pruned_share=plan.channels_pruned / plan.channels_total,
        kept_forced=plan.kept_forced,
        acc=acc,
        gap_full_vs_masked=gap_full,
        gap_full_vs_masked_rel=rel_full,
        gap_slim=gap_slim,
        gap_slim_rel=rel_slim,
        gap_drop=gap_drop,
        gap_drop_rel=rel_drop,
        report_all_exact=report.all_exact,
        report_exact=len(report.exact),
        report_inexact=report.inexact,
        report_gap_slim=report.max_logit_gap,
        report_gap_drop=report_drop.max_logit_gap,
        flops_full=flops_full,
        flops_slim=flops_slim,
        flops_drop=flops_drop,
        flops_cut=1 - flops_slim / flops_full,
        params_full=params_full,
        params_slim=params_slim,
        params_cut=1 - params_slim / params_full,
        bn_unfolded=(bn_left_full, bn_left_slim),
        latency=latency,
    )


def _pct(v: float) -> str:
    return f"{100 * v:.1f} %"


def markdown(rows: list[dict], header: str) -> str:
    lines = [header, ""]
    lines += [
        "| network | variant | pruned | acc | gap vs masked (abs / rel) | FLOPs cut | params cut |"
        + "".join(f" speedup b{b} (full→slim ms) | ratio b{b} |" for b in rows[0]["latency"]),
        "| --- | --- | --- | --- | --- | --- | --- |" + " --- | --- |" * len(rows[0]["latency"]),
    ]
    for r in rows:
        lat = r["latency"]
        timed = "".join(
            f" {v['speedup']:.2f}× ({v['full_ms']:.2f}→{v['slim_ms']:.2f}) | {v['ratio']:.2f} |"
            for v in lat.values()
        )
        same = "".join(" = slim (same shapes) | = slim |" for _ in lat)
        none = "".join(" — | — |" for _ in lat)
        exact = "exact" if r["report_all_exact"] else f"{len(r['report_inexact'])} inexact consumers"
        lines += [
            f"| {r['net']} | full | — | {_pct(r['acc']['full'])} | "
            f"{r['gap_full_vs_masked']:.3g} / {r['gap_full_vs_masked_rel']:.2g} | — | — |{none}",
            f"| {r['net']} | masked (γ = 0) | {_pct(r['pruned_share'])} | {_pct(r['acc']['masked'])} | 0 | — | — |{none}",
            f"| {r['net']} | slim, folded (ours; {exact}) | {_pct(r['pruned_share'])} | {_pct(r['acc']['slim'])} | "
            f"{r['gap_slim']:.2g} / {r['gap_slim_rel']:.2g} | {_pct(r['flops_cut'])} | {_pct(r['params_cut'])} |{timed}",
            f"| {r['net']} | slim, bias dropped (Torch-Pruning) | {_pct(r['pruned_share'])} | "
            f"{_pct(r['acc']['tp-drop'])} | {r['gap_drop']:.3g} / {r['gap_drop_rel']:.2g} | "
            f"{_pct(1 - r['flops_drop'] / r['flops_full'])} | {_pct(r['params_cut'])} |{same}",
        ]
    lines.append("")
    for r in rows:
        s = r["settings"]
        lines.append(
            f"- {r['net']}: {s['epochs']} epochs proxns λ={s['lam']:g} β={s['beta']:g} lr={s['lr']:g} in "
            f"{r['train_seconds']:.0f} s; ξ = 0 on {_pct(r['xi_zero_share'])} of all BN channels; "
            f"{r['channels_pruned']}/{r['channels_total']} coupled channels in {r['groups']} groups deleted"
            f"{' (groups kept from emptying: ' + ', '.join(r['kept_forced']) + ')' if r['kept_forced'] else ''}; "
            f"FLOPs {r['flops_full'] / 1e6:.2f} M → {r['flops_slim'] / 1e6:.2f} M, "
            f"params {r['params_full'] / 1e6:.2f} M → {r['params_slim'] / 1e6:.2f} M; slim_any's own check on "
            f"random inputs: folded {r['report_gap_slim']:.2g}, dropped {r['report_gap_drop']:.3g}; "
            + "; ".join(
                f"batch {b}: {v['rounds']} rounds, IQR full {v['full_iqr'][0]:.2f}–{v['full_iqr'][1]:.2f}, "
                f"slim {v['slim_iqr'][0]:.2f}–{v['slim_iqr'][1]:.2f} ms"
                for b, v in r["latency"].items()
            )
        )
        if r["report_inexact"]:
            lines.append(f"  inexact consumers: {r['report_inexact']}")
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--nets", default=",".join(NETS), help=f"comma-separated, of {', '.join(NETS)}")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_EPOCHS} epochs, fewer latency rounds")
    parser.add_argument("--epochs", type=int, help="override the per-network epochs")
    parser.add_argument("--lam", type=float, help="override λ")
    parser.add_argument("--beta", type=float, help="override β")
    parser.add_argument("--lr", type=float, help="override lr")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--train-subset", type=int, help="train on this many digits (tests)")
    parser.add_argument("--batches", default="1,64", help="latency batch sizes")
    parser.add_argument(
        "--rounds", type=int, help="alternating latency rounds per batch (default 60, quick 10)"
    )
    parser.add_argument("--max-seconds", type=float, help="time budget per batch size (default 15, quick 3)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--out", help="write the Markdown table here (default benchmarks/results/anynet-cpu-DATE.md)"
    )
    parser.add_argument("--no-out", action="store_true", help="write no Markdown file")
    parser.add_argument("--json", help="write the raw rows as JSON here")
    args = parser.parse_args(argv)
    args.nets = [n for n in args.nets.split(",") if n]
    unknown = set(args.nets) - set(NETS)
    if unknown:
        parser.error(f"unknown nets {sorted(unknown)}: allowed {', '.join(NETS)}")
    args.batches = [int(b) for b in args.batches.split(",")]
    if args.rounds is None:
        args.rounds = 10 if args.quick else 60
    if args.max_seconds is None:
        args.max_seconds = 3.0 if args.quick else 15.0
    return args


def main(argv: list[str] | None = None) -> list[dict]:
    args = parse_args(argv)
    t_start = time.perf_counter()
    data = load_dataset("digits", train_subset=args.train_subset)
    header = (
        f"## proxns on torchvision networks, CPU: {cpu_name()}\n\n"
        f"{dt.date.today().isoformat()}; torch {torch.__version__}, Python {platform.python_version()}, "
        f"{torch.get_num_threads()} threads; digits ({len(data.y_train)} train / {len(data.y_test)} test, "
        f"32×32 RGB), batch {args.batch_size}, SGD momentum 0.9, wd 1e-4; "
        f"{'--quick; ' if args.quick else ''}latency: conv→BN folded, TorchScript-frozen, full/slim "
        f"alternating, median of up to {args.rounds} rounds (≤ {args.max_seconds:g} s per batch size). "
        "Gaps: max |logit − masked logit| on the test set, absolute / relative to max |masked logit|. "
        "ratio = speedup ÷ (FLOPs_full / FLOPs_slim). The bias-dropping variant has the folded one's "
        "shapes, so its latency is the same and is not timed."
    )
    rows = [run_net(name, data, args) for name in args.nets]
    table = markdown(rows, header)
    table += f"\nTotal run time {time.perf_counter() - t_start:.0f} s.\n"
    print()
    print(table)
    if not args.no_out:
        out = Path(args.out) if args.out else RESULTS / f"anynet-cpu-{dt.date.today().isoformat()}.md"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(table, encoding="utf-8")
        print(f"written to {out}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2, default=str), encoding="utf-8")
    return rows


if __name__ == "__main__":
    main()

"""The GPU path, measured: CIFAR-shaped training epochs in our loop against an authors'-style loop,
the cost of the proximal step against plain SGD, and what slimming buys in latency on the card.

Data: synthetic images of CIFAR-10's size (50,000 training images 3×32×32, 10 classes), batch 64,
method proxns with the paper's λ/β for each network (VGG-19 λ 0.0045 β 100; ResNet-164 λ 0.002 β 0.25),
SGD lr 0.1, momentum 0.9, weight decay 1e-4, pad-4 random crop + horizontal flip in both loops.

  ours      ``proxns_core.train._Trainer.run_epoch``: data on the device, batched augmentation there,
            the fused ξ update, in the settings fp32, bf16 (autocast), bf16 + channels-last, and
            bf16 + channels-last + torch.compile.
  authors'  the loop of the authors' public code (kbui1993/Official-Proximal-Network-Slimming, main.py):
            a DataLoader over images in host memory with per-sample PIL transforms (Pad 4, RandomCrop 32,
            RandomHorizontalFlip, ToTensor, Normalize), pin_memory, batches copied to the GPU each step,
            fp32, and after each optimizer step the γ/ξ update per BatchNorm layer with ξ kept on the host
            (ξ copied to the GPU and γ back to the host for every layer at every step). The authors use
            one loader worker; we give it ``--workers`` (4), which can only flatter it. Their epoch also
            re-runs the whole training set forward to log the training loss; we do not count that.

Each setting times a fixed number of steps (``--steps``, in ``--blocks`` blocks) after a warm-up (which
includes compilation for the compile setting), with a device synchronisation only around each timed
block, and reports seconds per full epoch extrapolated from the median block: step time × 782 steps
(50,000 / 64). Compile settings run in a child process under a time limit, so a slow compilation
cannot eat the budget; ``--budget`` bounds the whole run and skips what would not fit (said so in the
table).

Slim latency: a VGG-19 and a ResNet-164 with trained-looking γ (smaller in later layers) and non-zero
BN biases; ``--prune`` (60 %) of the channels removed by a global |γ| threshold, widths rounded up to
a multiple of ``--multiple`` (8, the tensor cores' granularity); full and slim inference forms
(``freeze_for_inference``: BN folded, TorchScript-frozen) timed alternately at batch 1 and 64, with CUDA
events on a GPU, median and quartiles.

``--tiny`` shrinks everything (width 1/16, 512 images, a few steps) so the CPU smoke test runs it.
Prints a progress line per part as it finishes and the markdown table last.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere, installed or not

from proxns_core import train as train_mod  # noqa: E402
from proxns_core.data import CIFAR_MEAN, CIFAR_STD  # noqa: E402
from proxns_core.inference import freeze_for_inference  # noqa: E402
from proxns_core.measure import count_flops, measure_latencies  # noqa: E402
from proxns_core.models import build_model  # noqa: E402
from proxns_core.slim import apply_mask, plan_by_threshold, round_plan, slim_model  # noqa: E402
from proxns_core.spec import DEFAULT_BETA, DEFAULT_LAM, Latency, TrainConfig  # noqa: E402
from proxns_core.train import Callbacks, _Trainer, resolve_device  # noqa: E402

CIFAR_TRAIN = 50_000
BATCH = 64
#: arch -> name in labels; depths come from ``--depths`` (19 and 164, the paper's)
ARCHS = {"vgg": "VGG", "resnet": "ResNet"}
DEPTHS = {"vgg": 19, "resnet": 164}
TINY_DEPTHS = {"vgg": 11, "resnet": 20}
#: setting name -> (precision, channels_last, compile, cuda_graphs)
SETTINGS: dict[str, tuple[str, bool, bool, bool]] = {
    "fp32": ("fp32", False, False, False),
    "bf16": ("bf16", False, False, False),
    "bf16-cl": ("bf16", True, False, False),
    "fp32-graphs": ("fp32", False, False, True),
    "bf16-cl-graphs": ("bf16", True, False, True),
    "bf16-cl-compile": ("bf16", True, True, False),
}
SETTING_TEXT = {
    "fp32": "fp32",
    "bf16": "bf16",
    "bf16-cl": "bf16 + channels-last",
    "fp32-graphs": "fp32 + CUDA graphs",
    "bf16-cl-graphs": "bf16 + channels-last + CUDA graphs (the default on CUDA)",
    "bf16-cl-compile": "bf16 + channels-last + compile",
}
#: Targets printed beside the figures (issue 10).
TARGET_VGG_EPOCH_S = 3.0
TARGET_VS_AUTHORS = 5.0
TARGET_STEP_RATIO = 1.03
#: Rough compile-time guesses (s, on the GPU machine) used to skip what cannot fit the budget; the
#: child's own time limit is the real guard.
COMPILE_GUESS_S = {"vgg": 60.0, "resnet": 180.0}
#: Why a network's compile setting is off by default (measured with --tiny on 2 CPU cores: VGG-19 66 s,
#: ResNet-164 193 s to compile forward + backward).
COMPILE_WHY = {
    "resnet": " (its graph compiles ~3× longer than VGG-19's: minutes; --compile-archs all runs it)"
}

T0 = time.perf_counter()


def log(msg: str) -> None:
    print(f"[{time.perf_counter() - T0:6.1f} s] {msg}", flush=True)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"CPU: {line.split(':', 1)[1].strip()} ({os.cpu_count()} cores)"
    except OSError:
        pass
    return "CPU"


# --------------------------------------------------------------------------- data


class _DataCache:
    """The synthetic set generated once per process; each trainer gets its own TensorData of the same
    CPU tensors (``_Trainer`` moves its copy to the device)."""

    def __init__(self) -> None:
        self.cache: dict[tuple, Any] = {}
        self.original = train_mod.load_dataset

    def __call__(self, name, data_root=None, download=False, train_subset=None, test_subset=None, **options):
        key = (name, data_root, train_subset, test_subset, *sorted((k, str(v)) for k, v in options.items()))
        if key not in self.cache:
            self.cache[key] = self.original(name, data_root, download, train_subset, test_subset, **options)
        return dataclasses.replace(self.cache[key])


DATA_CACHE = _DataCache()
# The bench builds a dozen trainers over one synthetic set: generate it once (a bench-local patch).
train_mod.load_dataset = DATA_CACHE


def block_stats(block_s: list[float], steps: int) -> dict[str, float]:
    per_step = sorted(b / steps * 1000 for b in block_s)
    return {
        "step_ms": statistics.median(per_step),
        "step_ms_min": per_step[0],
        "step_ms_max": per_step[-1],
        "blocks": len(per_step),
        "steps_per_block": steps,
    }


# --------------------------------------------------------------------------- our loop


def make_trainer(arch: str, setting: str, method: str, args, device: torch.device) -> _Trainer:
    precision, channels_last, compile_, graphs = SETTINGS[setting]
    config = TrainConfig(
        dataset="synthetic",
        train_subset=args.train_images,
        test_subset=256,
        arch=arch,
        depth=args.depths[arch],
        width=args.width,
        method=method,
        epochs=160,
        batch_size=BATCH,
        lr=0.1,
        device=str(device),
        precision=precision,
        channels_last=channels_last,
        compile=compile_,
        cuda_graphs=graphs,
        seed=0,
    )
    t = _Trainer(config, Callbacks(), None)
    t.data.augment, t.data.flip = True, True  # CIFAR's pad-4 crop + flip, as the authors' loop does
    t.bench_full = (t.data.x_train, t.data.y_train)
    return t


def run_steps(t: _Trainer, steps: int, device: torch.device) -> float:
    """Run exactly ``steps`` optimizer steps of ``run_epoch`` (the data cut to ``steps`` batches, views of
    the full set on the device); returns the seconds, synchronised before and after."""
    x, y = t.bench_full
    n = min(steps * BATCH, len(y))
    t.data.x_train, t.data.y_train = x[:n], y[:n]
    before = t.step
    sync(device)
    t0 = time.perf_counter()
    loss = t.run_epoch(t.model, t.optimizer, t.sparsity)
    sync(device)
    elapsed = time.perf_counter() - t0
    t.data.x_train, t.data.y_train = x, y
    if t.step - before != -(-n // BATCH):
        raise RuntimeError(f"run_epoch ran {t.step - before} steps, expected {-(-n // BATCH)}")
    if not math.isfinite(loss):
        raise RuntimeError(f"loss is {loss}")
    return elapsed


def compiled_graphs() -> int:
    """Graphs torch.compile has compiled in this process so far (0 when it never ran)."""
    if "torch._dynamo" not in sys.modules:
        return 0
    from torch._dynamo.utils import counters

    return int(counters["stats"]["unique_graphs"])


def measure_ours(arch: str, setting: str, args, device: torch.device) -> dict:
    t_build = time.perf_counter()
    t = make_trainer(arch, setting, "proxns", args, device)
    build_s = time.perf_counter() - t_build
    warm_s = run_steps(t, args.warmup, device)
    graphs_warm = compiled_graphs()
    blocks = [run_steps(t, args.steps_per_block, device) for _ in range(args.blocks)]
    graphs = compiled_graphs()
    out = {
        "arch": arch,
        "loop": "ours",
        "setting": setting,
        "build_s": build_s,
        "warmup_s": warm_s,
        "warmup_steps": args.warmup,
        **block_stats(blocks, args.steps_per_block),
        "zero_fraction": t.sparsity.zero_fraction(),
        "precision": getattr(t, "precision", None),
        "channels_last": getattr(t, "channels_last", None),
        "compiled_graphs": graphs,
        "recompiled_while_timed": graphs - graphs_warm,
    }
    out["epoch_s"] = out["step_ms"] / 1000 * args.epoch_steps
    del t
    free(device)
    return out


def measure_step_ratio(arch: str, setting: str, args, device: torch.device) -> dict:
    """proxns step ÷ baseline step in one setting: blocks of the two trainers alternate."""
    trainers = {m: make_trainer(arch, setting, m, args, device) for m in ("proxns", "baseline")}
    for t in trainers.values():
        run_steps(t, args.warmup, device)
    times: dict[str, list[float]] = {"proxns": [], "baseline": []}
    for i in range(args.ratio_blocks):
        order = ("proxns", "baseline") if i % 2 == 0 else ("baseline", "proxns")
        for m in order:
            times[m].append(run_steps(trainers[m], args.steps_per_block, device))
    stats = {m: block_stats(v, args.steps_per_block) for m, v in times.items()}
    pairs = sorted(p / b for p, b in zip(times["proxns"], times["baseline"]))
    del trainers
    free(device)
    return {
        "arch": arch,
        "setting": setting,
        "proxns_step_ms": stats["proxns"]["step_ms"],
        "baseline_step_ms": stats["baseline"]["step_ms"],
        "ratio": stats["proxns"]["step_ms"] / stats["baseline"]["step_ms"],
        "ratio_pairs_min": pairs[0],
        "ratio_pairs_max": pairs[-1],
        "blocks": args.ratio_blocks,
        "steps_per_block": args.steps_per_block,
    }


# --------------------------------------------------------------------------- the authors'-style loop


class HostImages(torch.utils.data.Dataset):
    """CIFAR-10 as torchvision serves it: uint8 HWC images in host memory, one PIL transform per sample."""

    def __init__(self, images_hwc, labels, transform) -> None:
        self.images, self.labels, self.transform = images_hwc, labels, transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        from PIL import Image

        return self.transform(Image.fromarray(self.images[i])), int(self.labels[i])


def authors_loader(args, device: torch.device):
    from torchvision import transforms

    data = DATA_CACHE(name="synthetic", train_subset=args.train_images, test_subset=256)
    images = (data.x_train * 255).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()
    transform = transforms.Compose(
        [
            transforms.Pad(4),
            transforms.RandomCrop(32),
            transforms.RandomHorizontalFlip(),
            transforms.ToTensor(),
            transforms.Normalize(CIFAR_MEAN, CIFAR_STD),
        ]
    )
    return torch.utils.data.DataLoader(
        HostImages(images, data.y_train.numpy(), transform),
        batch_size=BATCH,
        shuffle=True,
        num_workers=args.workers,
        pin_memory=device.type == "cuda",
    )


def measure_authors(arch: str, args, device: torch.device, flags: dict) -> dict:
    lam, beta, lr = DEFAULT_LAM["proxns"][arch], DEFAULT_BETA[arch], 0.1
    saved = backend_flags()
    set_backend_flags(flags)  # the defaults the process started with, whatever our loop set since
    torch.manual_seed(0)
    model = build_model(arch, args.depths[arch], 10, width=args.width).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=1e-4)
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    # ξ on the host, as the authors keep model.scaling_factor_copy
    xis = [torch.empty(bn.num_features).uniform_(0.47, 0.53) for bn in bns]
    alpha = 1.0 / lr
    shrink = nn.Softshrink(lam / (alpha + beta))

    def update_scaling_factor() -> None:  # the authors' update_scaling_factor, layer by layer
        for j, m in enumerate(bns):
            n = xis[j]
            m.weight.data.mul_(alpha)
            m.weight.data.add_(beta * n.to(device))
            m.weight.data.div_(alpha + beta)
            xis[j] = shrink((alpha * n + beta * m.weight.data.cpu()) / (alpha + beta))

    loader = authors_loader(args, device)
    it = iter(loader)
    model.train()

    def steps(k: int) -> float:
        nonlocal it
        sync(device)
        t0 = time.perf_counter()
        for _ in range(k):
            try:
                data, target = next(it)
            except StopIteration:
                it = iter(loader)
                data, target = next(it)
            data, target = data.to(device), target.to(device)
            optimizer.zero_grad()
            output = model(data)
            loss = F.cross_entropy(output, target)
            loss.backward()
            optimizer.step()
            update_scaling_factor()
        sync(device)
        return time.perf_counter() - t0

    warm_s = steps(args.warmup)
    blocks = [steps(args.steps_per_block) for _ in range(args.blocks)]
    zero = float(sum(int((x == 0).sum()) for x in xis)) / sum(x.numel() for x in xis)
    set_backend_flags(saved)
    out = {
        "arch": arch,
        "loop": "authors",
        "setting": "fp32",
        "workers": args.workers,
        "warmup_s": warm_s,
        "warmup_steps": args.warmup,
        **block_stats(blocks, args.steps_per_block),
        "zero_fraction": zero,
    }
    out["epoch_s"] = out["step_ms"] / 1000 * args.epoch_steps
    return out


def backend_flags() -> dict:
    return {
        "cudnn_benchmark": torch.backends.cudnn.benchmark,
        "cudnn_tf32": torch.backends.cudnn.allow_tf32,
        "matmul_tf32": torch.backends.cuda.matmul.allow_tf32,
    }


def set_backend_flags(flags: dict) -> None:
    torch.backends.cudnn.benchmark = flags["cudnn_benchmark"]
    torch.backends.cudnn.allow_tf32 = flags["cudnn_tf32"]
    torch.backends.cuda.matmul.allow_tf32 = flags["matmul_tf32"]


def free(device: torch.device) -> None:
    import gc

    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


# --------------------------------------------------------------------------- slim latency


@torch.no_grad()
def pruned_pair(arch: str, args, device: torch.device):
    """A network with trained-looking γ (|γ| smaller deeper in the network, as sparse training leaves
    it) and non-zero BN biases, and its slim copy with ``args.prune`` of the channels removed by |γ|."""
    torch.manual_seed(0)
    model = build_model(arch, args.depths[arch], 10, width=args.width).to(device).eval()
    g = torch.Generator().manual_seed(0)
    units = model.prune_units()
    for k, unit in enumerate(units):
        bn = unit["bn"]
        scale = 1.0 - 0.7 * k / max(1, len(units) - 1)
        bn.weight.copy_((torch.randn(bn.num_features, generator=g).abs() * scale).to(device))
        bn.bias.copy_((0.1 * torch.randn(bn.num_features, generator=g)).to(device))
    plan = round_plan(model, plan_by_threshold(model, args.prune), args.multiple)
    slim = slim_model(apply_mask(model, plan), plan).to(device).eval()
    return model, slim, plan


def latencies(full, slim, batch_sizes, device, repeats, warmup, max_seconds) -> list[Latency]:
    """The core's timer: full and slim alternating after warm-up, CUDA events on a GPU."""
    return list(
        measure_latencies(
            {"full": full, "slim": slim},
            batch_sizes=batch_sizes,
            device=device,
            repeats=repeats,
            warmup=warmup,
            max_seconds=max_seconds,
        )
    )


def measure_latency(arch: str, args, device: torch.device) -> list[dict]:
    full, slim, plan = pruned_pair(arch, args, device)
    flops_full, flops_slim = count_flops(full), count_flops(slim)
    rows = []
    for form in args.latency_forms:
        cl = form == "frozen-cl"
        f_full = freeze_for_inference(full, 32, channels_last=cl)
        f_slim = freeze_for_inference(slim, 32, channels_last=cl)
        if cl:  # the frozen graph keeps the layout its inputs arrive in
            f_full, f_slim = _ChannelsLast(f_full), _ChannelsLast(f_slim)
        lats = latencies(
            f_full, f_slim, tuple(args.latency_batches), device, args.repeats, 5, args.latency_seconds
        )
        by = {(lat.network, lat.batch_size): lat for lat in lats}
        for b in args.latency_batches:
            lf, ls = by[("full", b)], by[("slim", b)]
            speedup = lf.median_ms / ls.median_ms
            cut = flops_full / flops_slim
            rows.append(
                {
                    "arch": arch,
                    "form": form,
                    "batch": b,
                    "pruned": plan.channels_pruned / plan.channels_total,
                    "multiple": args.multiple,
                    "flops_full": flops_full,
                    "flops_slim": flops_slim,
                    "flops_cut": cut,
                    "full": lf.model_dump(),
                    "slim": ls.model_dump(),
                    "speedup": speedup,
                    "speedup_per_flops_cut": speedup / cut,
                }
            )
        del f_full, f_slim
    free(device)
    return rows


class _ChannelsLast(nn.Module):
    def __init__(self, net) -> None:
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(x.contiguous(memory_format=torch.channels_last))


# --------------------------------------------------------------------------- the table


def fmt_s(v: float | None) -> str:
    return "—" if v is None else (f"{v:.2f}" if v < 100 else f"{v:.0f}")


def render(report: dict) -> str:
    env = report["env"]
    labels = env["labels"]
    epoch_rows = report["epochs"]
    lines = [
        f"## GPU check: {env['device_name']}",
        "",
        f"torch {env['torch']}, CUDA {env['cuda']}, Python {env['python']}; device {env['device']}; "
        f"{env['train_images']:,} synthetic {'32×32 images' if not env['tiny'] else 'images (--tiny)'}, "
        f"batch {BATCH}, width {env['width']:g}; proxns with the paper's λ/β. Epoch seconds are "
        f"**extrapolated**: median step time of {env['blocks']} blocks × {env['steps_per_block']} steps "
        f"(after {env['warmup']} warm-up steps; the warm-up column includes compilation) × "
        f"{env['epoch_steps']} steps per epoch.",
        "",
        "| network | loop | setting | step ms (median, min–max) | epoch s (extrapolated) | × authors' loop "
        "| warm-up s | target |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for arch in env["archs"]:
        label = labels[arch]
        authors = next((r for r in epoch_rows if r["arch"] == arch and r["loop"] == "authors"), None)
        rows = [r for r in epoch_rows if r["arch"] == arch]
        ours = [r for r in rows if r["loop"] == "ours" and "epoch_s" in r]
        best = min(ours, key=lambda r: r["epoch_s"]) if ours else None
        for r in rows:
            if r["loop"] == "authors":
                loop, setting = f"authors' style ({r.get('workers', '?')} workers)", "fp32, ξ on host"
            else:
                loop, setting = "ours", SETTING_TEXT[r["setting"]]
                want_precision, want_cl, _, _ = SETTINGS[r["setting"]]
                ran = (r.get("precision"), r.get("channels_last"))
                if "epoch_s" in r and ran != (None, None) and ran != (want_precision, want_cl):
                    setting += f" (ran as {ran[0]}, channels-last {ran[1]})"
                if r.get("recompiled_while_timed"):
                    setting += f" ({r['recompiled_while_timed']} recompilations while timed)"
            if "epoch_s" not in r:
                lines.append(
                    f"| {label} | {loop} | {setting} | {r.get('skipped', 'not run')} | — | — | — | |"
                )
                continue
            vs = authors["epoch_s"] / r["epoch_s"] if authors and r["loop"] == "ours" else None
            target = ""
            if r is best:
                parts = []
                if arch == "vgg":
                    ok = r["epoch_s"] <= TARGET_VGG_EPOCH_S
                    parts.append(f"best: ≤ {TARGET_VGG_EPOCH_S:g} s {'met' if ok else 'NOT met'}")
                else:
                    parts.append("best")
                if vs is not None:
                    parts.append(
                        f"≥ {TARGET_VS_AUTHORS:g}× {'met' if vs >= TARGET_VS_AUTHORS else 'NOT met'}"
                    )
                target = "; ".join(parts)
            lines.append(
                f"| {label} | {loop} | {setting} | {r['step_ms']:.2f} ({r['step_ms_min']:.2f}–"
                f"{r['step_ms_max']:.2f}) | {fmt_s(r['epoch_s'])} | {'—' if vs is None else f'{vs:.2f}×'} "
                f"| {fmt_s(r.get('warmup_s'))} | {target} |"
            )
    if report["ratios"]:
        lines += [
            "",
            f"Cost of the proximal step: proxns step ÷ baseline (plain SGD) step in our loop, blocks "
            f"alternating (target ≤ {TARGET_STEP_RATIO}).",
            "",
            "| network | setting | proxns step ms | baseline step ms | ratio (block pairs min–max) | target |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for r in report["ratios"]:
            if "ratio" not in r:
                lines.append(f"| {labels[r['arch']]} | {SETTING_TEXT[r['setting']]} | {r['skipped']} | | | |")
                continue
            ok = r["ratio"] <= TARGET_STEP_RATIO
            lines.append(
                f"| {labels[r['arch']]} | {SETTING_TEXT[r['setting']]} | {r['proxns_step_ms']:.3f} | "
                f"{r['baseline_step_ms']:.3f} | {r['ratio']:.3f} ({r['ratio_pairs_min']:.3f}–"
                f"{r['ratio_pairs_max']:.3f}) | ≤ {TARGET_STEP_RATIO} {'met' if ok else 'NOT met'} |"
            )
    if report["latency"]:
        first = report["latency"][0]
        timer = first["full"]["timer"]
        lines += [
            "",
            f"Slim latency: {100 * first['pruned']:.0f} % of channels pruned by a global |γ| threshold "
            f"(trained-looking γ), widths rounded to multiples of {first['multiple']}; inference forms "
            f"(BN folded, TorchScript-frozen, fp32), full and slim alternating, {timer} "
            f"(proxns_core.measure.measure_latencies); median [q1–q3] ms.",
            "",
            "| network | form | batch | full ms | slim ms | speedup | FLOPs cut | speedup ÷ FLOPs cut |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for r in report["latency"]:
            f, s = r["full"], r["slim"]
            lines.append(
                f"| {labels[r['arch']]} | {r['form']} | {r['batch']} | {f['median_ms']:.3f} "
                f"[{f['q1_ms']:.3f}–{f['q3_ms']:.3f}] | {s['median_ms']:.3f} [{s['q1_ms']:.3f}–"
                f"{s['q3_ms']:.3f}] | {r['speedup']:.2f}× | {r['flops_cut']:.2f}× "
                f"| {r['speedup_per_flops_cut']:.2f} |"
            )
    if report["notes"]:
        lines += [""] + [f"- {n}" for n in report["notes"]]
    lines.append("")
    lines.append(f"Bench wall time {report['wall_s']:.0f} s.")
    return "\n".join(lines)


# --------------------------------------------------------------------------- main


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--archs", default="vgg,resnet", help="comma list of vgg, resnet")
    p.add_argument(
        "--depths",
        dest="depths_text",
        default=None,
        help="e.g. vgg=19,resnet=164 (the default; tiny: 11 and 20)",
    )
    p.add_argument("--settings", default=",".join(SETTINGS), help="comma list of " + ", ".join(SETTINGS))
    p.add_argument(
        "--compile-archs",
        default="vgg",
        help="archs whose compile setting runs (default vgg: compiling ResNet-164 takes minutes); 'all'",
    )
    p.add_argument("--no-authors", action="store_true", help="skip the authors'-style loop")
    p.add_argument("--no-ratio", action="store_true", help="skip the proxns/baseline step ratio")
    p.add_argument("--no-latency", action="store_true", help="skip the slim latency")
    p.add_argument("--steps", type=int, default=None, help="timed steps per setting (default 60; tiny 4)")
    p.add_argument(
        "--blocks", type=int, default=None, help="timed blocks the steps are split into (3; tiny 2)"
    )
    p.add_argument("--warmup", type=int, default=None, help="warm-up steps (default 8; tiny 1)")
    p.add_argument("--ratio-blocks", type=int, default=None, help="alternating blocks per method (default 6)")
    p.add_argument("--workers", type=int, default=None, help="authors' loader workers (default 4; tiny 1)")
    p.add_argument("--device", default="auto")
    p.add_argument(
        "--width", type=float, default=None, help="channel width multiplier (default 1; tiny 1/16)"
    )
    p.add_argument("--prune", type=float, default=0.6, help="share of channels the slim networks lose")
    p.add_argument("--multiple", type=int, default=8, help="round kept channels to this multiple")
    p.add_argument("--latency-forms", default="frozen,frozen-cl", help="comma list of frozen, frozen-cl")
    p.add_argument("--latency-batches", default="1,64,512")
    p.add_argument("--repeats", type=int, default=None, help="latency pairs at batch 1 (default 60; tiny 4)")
    p.add_argument("--budget", type=float, default=None, help="seconds for the whole bench (default none)")
    p.add_argument("--compile-limit", type=float, default=150.0, help="most seconds one compile child runs")
    p.add_argument("--tiny", action="store_true", help="tiny widths, 512 images, few steps: a CPU smoke test")
    p.add_argument("--out", help="write the markdown table here (rewritten after every part)")
    p.add_argument("--json", help="write the raw figures here (rewritten after every part)")
    p.add_argument("--child", help=argparse.SUPPRESS)  # ARCH:SETTING, one setting in a child process
    args = p.parse_args(argv)
    tiny = args.tiny
    args.steps = args.steps or (2 if tiny else 60)
    args.blocks = max(1, min(args.blocks or (2 if tiny else 3), args.steps))
    args.steps_per_block = max(1, args.steps // args.blocks)
    args.warmup = args.warmup if args.warmup is not None else (1 if tiny else 8)
    args.ratio_blocks = args.ratio_blocks or (2 if tiny else 6)
    args.workers = args.workers if args.workers is not None else (1 if tiny else 4)
    args.width = args.width or (1 / 16 if tiny else 1.0)
    args.repeats = args.repeats or (4 if tiny else 60)
    args.train_images = 512 if tiny else CIFAR_TRAIN
    if tiny:  # tiny widths cannot round to 8 without keeping every channel; one form, small batches
        args.multiple = 1 if args.multiple == 8 else args.multiple
        if args.latency_forms == "frozen,frozen-cl":
            args.latency_forms = "frozen"
        if args.latency_batches == "1,64,512":
            args.latency_batches = "1,8"
    args.latency_seconds = 0.5 if tiny else 5.0
    args.epoch_steps = -(-CIFAR_TRAIN // BATCH)
    args.archs = [a for a in args.archs.split(",") if a]
    args.settings = [s for s in args.settings.split(",") if s]
    args.compile_archs = list(ARCHS) if args.compile_archs == "all" else args.compile_archs.split(",")
    args.latency_forms = [f for f in args.latency_forms.split(",") if f]
    args.latency_batches = [int(b) for b in args.latency_batches.split(",")]
    for a in args.archs:
        if a not in ARCHS:
            p.error(f"unknown arch {a!r}: allowed {', '.join(ARCHS)}")
    args.depths = dict(TINY_DEPTHS if tiny else DEPTHS)
    for item in (args.depths_text or "").split(","):
        if item:
            arch, _, depth = item.partition("=")
            if arch not in ARCHS or not depth.isdigit():
                p.error(f"--depths wants arch=depth items, got {item!r}")
            args.depths[arch] = int(depth)
    args.labels = {a: f"{ARCHS[a]}-{d}" for a, d in args.depths.items()}
    for s in args.settings:
        if s not in SETTINGS:
            p.error(f"unknown setting {s!r}: allowed {', '.join(SETTINGS)}")
    return args, argv


def passthrough(argv: list[str]) -> list[str]:
    """The command line minus what the parent alone handles (outputs, budget, child)."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        if a in ("--out", "--json", "--budget", "--child"):
            skip = True
            continue
        if a.startswith(("--out=", "--json=", "--budget=", "--child=")):
            continue
        out.append(a)
    return out


def run_child(arch: str, setting: str, argv: list[str], limit: float) -> dict:
    """One (compile) setting in a child process, killed with its process group after ``limit`` s."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "child.json"
        cmd = [sys.executable, "-u", __file__, *passthrough(argv), "--child", f"{arch}:{setting}"]
        cmd += ["--json", str(path)]
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, start_new_session=True)
        try:
            rc = proc.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait()
            return {
                "arch": arch,
                "loop": "ours",
                "setting": setting,
                "skipped": f"killed after {limit:.0f} s",
            }
        if rc != 0 or not path.exists():
            return {"arch": arch, "loop": "ours", "setting": setting, "skipped": f"child failed (exit {rc})"}
        row = json.loads(path.read_text())
        row["child_wall_s"] = time.perf_counter() - t0
        return row


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args, _ = parse_args(argv)
    device = resolve_device(args.device)
    torch.manual_seed(0)
    if args.child:
        arch, setting = args.child.split(":")
        row = measure_ours(arch, setting, args, device)
        log(
            f"{args.labels[arch]} ours {setting}: {row['step_ms']:.2f} ms/step, warm-up {row['warmup_s']:.1f} s"
        )
        Path(args.json).write_text(json.dumps(row))
        return 0

    flags0 = backend_flags()
    deadline = T0 + args.budget if args.budget else math.inf
    report: dict[str, Any] = {
        "env": {
            "device": str(device),
            "device_name": device_name(device),
            "torch": torch.__version__,
            "cuda": torch.version.cuda,
            "python": sys.version.split()[0],
            "archs": args.archs,
            "labels": args.labels,
            "settings": args.settings,
            "width": args.width,
            "tiny": args.tiny,
            "train_images": args.train_images,
            "blocks": args.blocks,
            "steps_per_block": args.steps_per_block,
            "warmup": args.warmup,
            "epoch_steps": args.epoch_steps,
            "backend_flags_at_start": flags0,
        },
        "epochs": [],
        "ratios": [],
        "latency": [],
        "notes": [],
        "wall_s": 0.0,
    }
    log(f"{report['env']['device_name']}, torch {torch.__version__}, CUDA {torch.version.cuda}")

    def save() -> None:
        report["wall_s"] = time.perf_counter() - T0
        if args.json:
            Path(args.json).write_text(json.dumps(report, indent=1))
        if args.out:
            Path(args.out).write_text(render(report) + "\n")

    def left() -> float:
        return deadline - time.perf_counter()

    def part(label: str, fn, *a):
        """Run one part; a failure is recorded and the bench goes on."""
        t0 = time.perf_counter()
        try:
            return fn(*a)
        except Exception as e:  # noqa: BLE001 - one broken part must not lose the others
            report["notes"].append(f"{label} failed: {type(e).__name__}: {str(e).splitlines()[0][:200]}")
            log(f"{label} FAILED after {time.perf_counter() - t0:.1f} s: {type(e).__name__}: {e}")
            free(device)
            return None

    eager = [s for s in args.settings if not SETTINGS[s][2]]
    compiled = [s for s in args.settings if SETTINGS[s][2]]
    slots: dict[tuple[str, str, str], dict] = {}
    for arch in args.archs:  # the table's order, filled as parts finish
        if not args.no_authors:
            slots[(arch, "authors", "fp32")] = {"arch": arch, "loop": "authors", "setting": "fp32"}
        for s in args.settings:
            slots[(arch, "ours", s)] = {"arch": arch, "loop": "ours", "setting": s, "skipped": "not run"}
    report["epochs"] = list(slots.values())

    def put(row: dict) -> None:
        key = (row["arch"], row["loop"], row["setting"])
        slots[key] = row
        report["epochs"] = list(slots.values())
        save()

    # Cheap, sure parts first; the compilations, whose time is least known, last.
    for arch in args.archs:
        label = args.labels[arch]
        if not args.no_authors:
            row = part(f"{label} authors' loop", measure_authors, arch, args, device, flags0)
            free(device)
            if row:
                put(row)
                log(f"{label} authors' loop: {row['step_ms']:.2f} ms/step → {row['epoch_s']:.1f} s/epoch")
        for s in eager:
            if left() < 20:
                put({**slots[(arch, "ours", s)], "skipped": "skipped: budget"})
                continue
            row = part(f"{label} ours {s}", measure_ours, arch, s, args, device)
            if row:
                put(row)
                log(f"{label} ours {s}: {row['step_ms']:.2f} ms/step → {row['epoch_s']:.2f} s/epoch")
        if not args.no_ratio and eager:
            done = [slots[(arch, "ours", s)] for s in eager if "epoch_s" in slots[(arch, "ours", s)]]
            best = min(done, key=lambda r: r["epoch_s"])["setting"] if done else eager[-1]
            if left() < 25:
                report["ratios"].append({"arch": arch, "setting": best, "skipped": "skipped: budget"})
            else:
                r = part(f"{label} step ratio", measure_step_ratio, arch, best, args, device)
                if r:
                    report["ratios"].append(r)
                    log(
                        f"{label} proxns/baseline step ({best}): {r['proxns_step_ms']:.3f} / "
                        f"{r['baseline_step_ms']:.3f} ms = {r['ratio']:.3f}"
                    )
            save()
    if not args.no_latency:
        for arch in args.archs:
            if left() < 20:
                report["notes"].append(f"slim latency of {args.labels[arch]} skipped: budget")
                continue
            rows = part(f"{args.labels[arch]} slim latency", measure_latency, arch, args, device)
            for r in rows or []:
                report["latency"].append(r)
                log(
                    f"{args.labels[arch]} {r['form']} batch {r['batch']}: full {r['full']['median_ms']:.3f} ms, "
                    f"slim {r['slim']['median_ms']:.3f} ms, speedup {r['speedup']:.2f}× for a FLOPs cut of "
                    f"{r['flops_cut']:.2f}× ({r['speedup_per_flops_cut']:.2f})"
                )
            save()
    for arch in args.archs:
        for s in compiled:
            key = (arch, "ours", s)
            if arch not in args.compile_archs:
                put({**slots[key], "skipped": f"skipped: not in --compile-archs{COMPILE_WHY.get(arch, '')}"})
                continue
            limit = min(args.compile_limit, left() - 5)
            guess = COMPILE_GUESS_S[arch] * (0.2 if args.tiny else 1.0)
            if limit < guess:
                put(
                    {
                        **slots[key],
                        "skipped": f"skipped: budget ({limit:.0f} s left, compile needs ~{guess:.0f})",
                    }
                )
                continue
            log(f"{args.labels[arch]} ours {s}: compiling in a child process (limit {limit:.0f} s)")
            row = run_child(arch, s, argv, limit)
            put(row)
            if "epoch_s" in row:
                log(
                    f"{args.labels[arch]} ours {s}: {row['step_ms']:.2f} ms/step → {row['epoch_s']:.2f} s/epoch "
                    f"(warm-up incl. compile {row['warmup_s']:.1f} s)"
                )
            else:
                log(f"{args.labels[arch]} ours {s}: {row['skipped']}")
    report["notes"].append(
        f"backend flags at start {flags0}; the authors' loop runs with these, our loop with whatever it sets"
    )
    save()
    print()
    print(render(report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

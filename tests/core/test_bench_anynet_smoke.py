"""benchmarks/bench_anynet.py at its smallest (issue 11): ResNet-18 trained a few steps with proximal NS
on a digits subset, slimmed both ways, timed a few rounds. The numbers must hold, not just the run:
the folded slim network equals the masked one wherever slim_any says it is exact, Torch-Pruning's
bias-dropping slimming of the same channels does not, and the table carries both."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXACT_RTOL = 1e-4


def _bench():
    spec = importlib.util.spec_from_file_location("bench_anynet", REPO / "benchmarks" / "bench_anynet.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_bench_anynet_tiny_resnet18(tmp_path, capsys):
    out, raw = tmp_path / "anynet.md", tmp_path / "anynet.json"
    bench = _bench()
    # A large λ and a small β so that ξ (pulled up by torchvision's γ = 1 start) reaches 0 within the
    # few steps a 128-image subset gives.
    rows = bench.main(
        [
            "--quick", "--nets", "resnet18", "--train-subset", "128", "--batch-size", "32",
            "--epochs", "3", "--lam", "6", "--beta", "10",
            "--batches", "1", "--rounds", "3", "--max-seconds", "0.5",
            "--out", str(out), "--json", str(raw),
        ]
    )  # fmt: skip
    assert len(rows) == 1
    r = rows[0]
    assert r["net"] == "resnet18" and r["groups"] == 12 and r["channels_total"] == 2880

    # Training made real ξ zeros, and whole coupled channels went with them.
    assert 0 < r["channels_pruned"] < r["channels_total"]
    assert 0 < r["pruned_share"] <= r["xi_zero_share"] + 1e-9 or r["kept_forced"]
    assert r["flops_slim"] < r["flops_full"] and r["params_slim"] < r["params_full"]
    assert math.isclose(r["flops_cut"], 1 - r["flops_slim"] / r["flops_full"])

    # Folded slimming equals the masked network where the report says exact (all of ResNet-18)...
    assert r["report_all_exact"], r["report_inexact"]
    assert r["gap_slim_rel"] <= EXACT_RTOL and r["report_gap_slim"] <= EXACT_RTOL * 100
    # ...dropping the deleted channels' constants (Torch-Pruning alone) does not.
    assert r["gap_drop"] > 100 * max(r["gap_slim"], 1e-7)
    assert r["gap_drop_rel"] > EXACT_RTOL
    assert r["acc"]["slim"] == r["acc"]["masked"]

    # Latency: both timed, the frozen slim net computes what the module does, ratio as defined.
    lat = r["latency"]["1"] if "1" in r["latency"] else r["latency"][1]
    assert lat["full_ms"] > 0 and lat["slim_ms"] > 0
    assert math.isclose(lat["speedup"], lat["full_ms"] / lat["slim_ms"])
    assert math.isclose(lat["ratio"], lat["speedup"] * r["flops_slim"] / r["flops_full"])
    assert lat["frozen_vs_module_gap"] <= 1e-3
    assert r["bn_unfolded"] == (0, 0)  # every BN folded into its conv, in the full and the slim network

    # The table: a header naming the CPU, four rows for the network, both gaps printed.
    text = out.read_text(encoding="utf-8")
    assert text.startswith("## proxns on torchvision networks, CPU: ")
    table = [line for line in text.splitlines() if line.startswith("| resnet18 |")]
    assert [line.split("|")[2].strip().split(" (")[0].split(",")[0] for line in table] == [
        "full", "masked", "slim", "slim",
    ]  # fmt: skip
    assert "bias dropped" in table[3] and "= slim (same shapes)" in table[3]
    assert f"{r['gap_drop']:.3g}" in table[3]
    assert text in capsys.readouterr().out
    assert json.loads(raw.read_text())[0]["channels_pruned"] == r["channels_pruned"]

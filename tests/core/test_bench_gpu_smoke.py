"""The prepared GPU check on the CPU (issue 10, item 6): ``bench_gpu_epoch.py --tiny`` runs every part
end to end (both loops, the step ratio, slim latency) and prints its table; ``gpu_check.sh`` refuses a
machine without CUDA with one line and exit status 2."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "benchmarks" / "bench_gpu_epoch.py"
SCRIPT = REPO / "benchmarks" / "gpu_check.sh"
NUMBER = re.compile(r"^\d+(\.\d+)?")


def cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def number(text: str) -> float:
    match = NUMBER.match(text)
    assert match, f"not a number: {text!r}"
    return float(match.group())


def positive(text: str) -> float:
    value = number(text)
    assert value > 0, text
    return value


@pytest.mark.slow
def test_bench_tiny_runs_both_loops_and_prints_the_table(tmp_path):
    out, raw = tmp_path / "bench.md", tmp_path / "bench.json"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run(
        [
            sys.executable,
            str(BENCH),
            "--tiny",
            "--device",
            "cpu",
            "--settings",
            "fp32,bf16-cl,bf16-cl-compile",
            "--compile-archs",
            "none",  # compiling takes minutes on a CPU; the skipped row must still show
            "--out",
            str(out),
            "--json",
            str(raw),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    # progress lines as parts finish, then the table last, the same as the --out file
    assert "authors' loop" in proc.stdout.split("## GPU check")[0]
    table = proc.stdout[proc.stdout.index("## GPU check") :].strip()
    assert table == out.read_text().strip()
    lines = table.splitlines()

    for net in ("VGG-11", "ResNet-20"):
        rows = [cells(line) for line in lines if line.startswith(f"| {net} | ")]
        epochs = {(r[1], r[2]): r for r in rows if len(r) == 8}
        authors = next(r for (loop, _), r in epochs.items() if loop.startswith("authors' style"))
        positive(authors[3]), positive(authors[4])  # step ms, epoch s
        for setting in ("fp32", "bf16 + channels-last"):
            r = epochs[("ours", setting)]
            positive(r[3]), positive(r[4]), number(r[5])  # step ms, epoch s, × authors'
        compiled = epochs[("ours", "bf16 + channels-last + compile")]
        assert compiled[3].startswith("skipped"), compiled
        ratio = next(r for r in rows if len(r) == 6)  # proxns ÷ baseline step
        positive(ratio[2]), positive(ratio[3]), number(ratio[4])  # proxns ms, baseline ms, ratio
        latency = [r for r in rows if len(r) == 8 and r[1] == "frozen"]
        assert [r[2] for r in latency] == ["1", "8"]
        for r in latency:
            positive(r[3]), positive(r[4]), number(r[5]), positive(r[6]), number(r[7])  # ms, ms, ×, cut, ÷

    report = json.loads(raw.read_text())
    assert report["env"]["device"] == "cpu" and report["env"]["torch"]
    ran = [r for r in report["epochs"] if "epoch_s" in r]
    assert len(ran) == 6 and all(r["epoch_s"] > 0 and r["step_ms"] > 0 for r in ran), report["notes"]
    assert {r["loop"] for r in ran} == {"ours", "authors"}
    assert all(r["full"]["timer"] == "perf_counter" for r in report["latency"])
    assert not [n for n in report["notes"] if "failed" in n], report["notes"]


def test_gpu_check_script_parses_and_refuses_a_machine_without_cuda(tmp_path):
    assert subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True).returncode == 0
    out = tmp_path / "out"
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "PYTHON": sys.executable, "OUT": str(out)}
    proc = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr == ""
    assert len(proc.stdout.splitlines()) == 1 and "needs a CUDA GPU" in proc.stdout
    assert not out.exists()  # nothing installed or written

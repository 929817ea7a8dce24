"""`proxns train --target-pruned / --target-flops` (issue 12, item 3): a λ search offline, one run after
another; every run under --out/search/lam-<λ>/, the best copied to --out, search.json with every point
and the reason; exit 0 when met, 3 when not; bad combinations exit 2 with one line."""

import json
import os
import subprocess
import sys

import pytest

TINY = [
    "--dataset",
    "synthetic",
    "--arch",
    "vgg",
    "--depth",
    "11",
    "--width",
    "0.125",
    "--epochs",
    "1",
    "--batch-size",
    "32",
    "--train-subset",
    "64",
    "--test-subset",
    "32",
    "--device",
    "cpu",
    "--quiet",
]


def _proxns(*args):
    return subprocess.run(
        [sys.executable, "-m", "proxns_cli", *args],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "OMP_NUM_THREADS": "1"},  # tiny runs: more threads only contend
    )


def test_a_budget_search_leaves_the_best_run_in_out_and_every_run_under_search(tmp_path):
    out = tmp_path / "run"
    proc = _proxns("train", *TINY, "--target-pruned", "0.5", "--max-jobs", "2", "--out", str(out))
    summary = json.loads((out / "search.json").read_text())
    assert proc.returncode == (0 if summary["status"] == "met" else 3), proc.stderr
    assert summary["search"]["target"] == "pruned_fraction" and summary["search"]["value"] == 0.5
    assert summary["search"]["max_jobs"] == 2 and len(summary["points"]) == 2
    assert summary["reason"] and summary["status"] in ("met", "closest")
    runs = sorted(p.name for p in (out / "search").iterdir())
    assert runs == sorted(f"lam-{p['lam']:.6g}" for p in summary["points"])
    for run in runs:
        for name in ("config.json", "metrics.jsonl", "result.json", "slim.safetensors", "slim.json"):
            assert (out / "search" / run / name).stat().st_size > 0, (run, name)
    best = summary["best"]
    assert (out / "result.json").read_text() == (out / "search" / best["folder"] / "result.json").read_text()
    assert json.loads((out / "config.json").read_text())["lam"] == best["lam"]
    assert (out / "slim.safetensors").stat().st_size > 0
    for p in summary["points"]:
        assert f"λ {p['lam']:.4g} → {100 * p['value']:.1f} % pruned" in proc.stdout
    assert proc.stdout.strip().splitlines()[-1].startswith(summary["status"] + ": ")
    # Again into the same folder: refused without --overwrite.
    again = _proxns("train", *TINY, "--target-pruned", "0.5", "--max-jobs", "1", "--out", str(out))
    assert again.returncode == 2 and "--overwrite" in again.stderr


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--target-pruned", "0.8", "--lam", "0.1"], "leave out --lam"),
        (["--target-pruned", "0.8", "--method", "ns"], "set --prune-ratio instead"),
        (["--target-flops", "0.8", "--method", "baseline"], "method proxns"),
        (["--target-pruned", "0.8", "--target-flops", "0.5"], "give one of them"),
        (["--target-pruned", "1.5"], "--target-pruned"),
        (["--target-flops", "0.5", "--tolerance", "0"], "--tolerance"),
        (["--max-jobs", "3"], "--target-pruned or --target-flops"),
    ],
)
def test_bad_budget_flags_exit_2_with_one_line(tmp_path, args, words):
    proc = _proxns("train", *TINY, *args, "--out", str(tmp_path / "run"))
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0], proc.stderr
    assert not (tmp_path / "run").exists()

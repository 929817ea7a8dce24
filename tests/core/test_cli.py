"""`proxns train`: writes its files, prints a summary, rejects bad input with exit code 2."""

import json
import subprocess
import sys

ARGS = [
    "--dataset",
    "synthetic",
    "--arch",
    "vgg",
    "--depth",
    "11",
    "--width",
    "0.125",
    "--epochs",
    "2",
    "--batch-size",
    "32",
    "--train-subset",
    "96",
    "--test-subset",
    "32",
    "--lam",
    "0.2",
    "--device",
    "cpu",
]


def _proxns(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "proxns_cli", *args], capture_output=True, text=True, cwd=cwd, timeout=300
    )


def test_train_writes_config_metrics_result_and_model_files(tmp_path):
    out = tmp_path / "run"
    proc = _proxns("train", *ARGS, "--out", str(out), "--quiet")
    assert proc.returncode == 0, proc.stderr
    for name in (
        "config.json",
        "metrics.jsonl",
        "result.json",
        "slim.safetensors",
        "slim.json",
        "slim.pt2",
        "slim.torchscript.pt",
        "slim.onnx",
    ):
        assert (out / name).stat().st_size > 0, name
    assert json.loads((out / "config.json").read_text())["lam"] == 0.2
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2]
    result = json.loads((out / "result.json").read_text())
    assert result["channels_total"] > 0 and "pruned" in proc.stdout and "parameters" in proc.stdout


def test_train_reads_a_yaml_config_and_flags_override_it(tmp_path):
    cfg = tmp_path / "job.yaml"
    cfg.write_text(
        "dataset: synthetic\narch: vgg\ndepth: 11\nwidth: 0.125\nepochs: 1\nbatch_size: 32\n"
        "train_subset: 64\ntest_subset: 32\ndevice: cpu\nmethod: ns\nlam: 0.001\n"
    )
    proc = _proxns(
        "train", "--config", str(cfg), "--prune-ratio", "0.25", "--out", str(tmp_path / "r"), "--quiet"
    )
    assert proc.returncode == 0, proc.stderr
    saved = json.loads((tmp_path / "r" / "config.json").read_text())
    assert saved["method"] == "ns" and saved["prune_ratio"] == 0.25


def test_bad_values_exit_2_with_a_one_line_reason_naming_the_flag(tmp_path):
    proc = _proxns("train", "--lam", "-1", "--out", str(tmp_path / "x"))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert (
        len(lines) == 1 and lines[0].startswith("error: --lam:") and "greater than or equal to 0" in lines[0]
    )
    proc = _proxns("train", "--arch", "resnet", "--depth", "100")
    assert proc.returncode == 2 and "--depth" in proc.stderr and "9n+2" in proc.stderr


def test_missing_dataset_exits_2_saying_where_it_looked(tmp_path):
    proc = _proxns(
        "train", "--dataset", "cifar10", "--data-root", str(tmp_path), "--out", str(tmp_path / "o")
    )
    assert proc.returncode == 2 and str(tmp_path) in proc.stderr and "cifar-10-batches-py" in proc.stderr

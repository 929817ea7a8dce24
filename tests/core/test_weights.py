"""Starting weights (``init_weights``): reading a state_dict file safely, the mismatch error naming
the first tensors, the fine-tuning lr default, ξ starting at the loaded γ, and
``proxns train --init-weights FILE``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from proxns_core.models import build_model
from proxns_core.sparsity import make_sparsity
from proxns_core.spec import FINETUNE_LR, TrainConfig
from proxns_core.weights import WeightsError, check_file, load_init_weights, load_state

NET = {"arch": "vgg", "depth": 11, "width": 0.25}


class Custom:
    """Not a tensor: weights_only loading must refuse it."""


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A VGG-11 x0.25 trained on digits for 4 epochs (its state_dict, torch.save)."""
    from proxns_core.train import fit

    fitted = fit(TrainConfig(**NET, dataset="digits", method="baseline", epochs=4, device="cpu", seed=1))
    assert fitted.history[-1].test_acc > 0.9
    path = tmp_path_factory.mktemp("weights") / "trained.pt"
    torch.save(fitted.full_model.state_dict(), path)
    return path


def test_state_dicts_in_either_format_fit_their_network(tmp_path: Path) -> None:
    state = build_model("vgg", 11, 10, width=0.25).state_dict()
    torch.save(state, tmp_path / "w.pt")
    # Exports often drop BN's step counters: still a fit.
    save_file(
        {k: v for k, v in state.items() if "num_batches_tracked" not in k}, str(tmp_path / "w.safetensors")
    )
    assert check_file(tmp_path / "w.pt", "vgg", 11, 0.25, 10) == {
        "ok": True,
        "format": "torch",
        "tensors": len(state),
    }
    assert check_file(tmp_path / "w.safetensors", "vgg", 11, 0.25, 10)["format"] == "safetensors"
    assert set(load_state(tmp_path / "w.pt")) == set(state)


def test_a_mismatch_names_the_first_mismatching_tensors(tmp_path: Path) -> None:
    torch.save(build_model("vgg", 11, 10, width=0.5).state_dict(), tmp_path / "wide.pt")
    error = check_file(tmp_path / "wide.pt", "vgg", 11, 0.25, 10)["error"]
    assert error.startswith("the weights do not fit vgg-11 (width 0.25, 10 classes): shapes differ (")
    assert "features.0.weight: file [32, 3, 3, 3], network [16, 3, 3, 3]; features.1.weight" in error
    classes = check_file(tmp_path / "wide.pt", "vgg", 11, 0.5, 100)["error"]
    assert "classifier.weight: file [10, 256], network [100, 256]" in classes, classes
    other = check_file(tmp_path / "wide.pt", "resnet", 20, 0.5, 10)["error"]
    assert "missing from the file" in other and "not in the network" in other


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (lambda: build_model("vgg", 11, 10, width=0.25), "not a plain state_dict"),  # a whole nn.Module
        (lambda: {"w": Custom()}, "not a plain state_dict"),
        (lambda: {"state_dict": {"w": torch.zeros(1)}}, "not a flat state_dict: entry 'state_dict'"),
        (lambda: [torch.zeros(1)], "not a state_dict"),
    ],
)
def test_anything_but_a_flat_mapping_of_tensors_is_refused(tmp_path: Path, content, words: str) -> None:
    torch.save(content(), tmp_path / "bad.pt")
    with pytest.raises(WeightsError, match=words):
        load_state(tmp_path / "bad.pt")
    (tmp_path / "junk").write_bytes(b"not weights at all, just text")
    with pytest.raises(WeightsError, match="neither valid safetensors nor a torch.save file"):
        load_state(tmp_path / "junk")


def test_a_pretrained_start_defaults_to_a_finetuning_lr() -> None:
    assert TrainConfig().lr == 0.1
    config = TrainConfig(init_weights="w.pt")
    assert config.lr == FINETUNE_LR == 0.01
    assert TrainConfig(init_weights="w.pt", lr=0.1).lr == 0.1  # given explicitly: kept
    assert TrainConfig.model_validate(config.model_dump()) == config  # a stored config re-validates alike


def test_proxns_xi_starts_at_the_loaded_gammas(trained: Path) -> None:
    model = build_model("vgg", 11, 10, width=0.25)
    sparsity = make_sparsity(TrainConfig(**NET, dataset="digits", method="proxns"))
    sparsity.attach(model, torch.Generator().manual_seed(0))
    load_init_weights(model, sparsity, trained)
    state = torch.load(trained, weights_only=True)
    assert torch.equal(model.features[1].weight, state["features.1.weight"])
    assert torch.equal(sparsity.xi, torch.cat([g.detach().reshape(-1) for g in sparsity.gammas]))


def _proxns(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "proxns_cli", *args], capture_output=True, text=True, timeout=300
    )


def test_cli_train_starts_from_a_local_weights_file(trained: Path, tmp_path: Path) -> None:
    flags = ["--dataset", "digits", "--arch", "vgg", "--depth", "11", "--width", "0.25", "--epochs", "1"]
    flags += ["--lr", "0.0001", "--device", "cpu", "--quiet"]
    proc = _proxns("train", *flags, "--init-weights", str(trained), "--out", str(tmp_path / "run"))
    assert proc.returncode == 0, proc.stderr
    first = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[0])
    assert first["test_acc"] > 0.9, first
    assert json.loads((tmp_path / "run" / "config.json").read_text())["init_weights"] == str(trained)

    proc = _proxns(
        "train", *flags, "--width", "0.5", "--init-weights", str(trained), "--out", str(tmp_path / "bad")
    )
    assert proc.returncode == 2, proc.stderr
    assert f"--init-weights {trained}: the weights do not fit vgg-11 (width 0.5" in proc.stderr
    assert "features.0.weight: file [16, 3, 3, 3], network [32, 3, 3, 3]" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_torchvision_checkpoint_of_other_classes_loads_all_but_its_classifier(tmp_path: Path) -> None:
    """An ImageNet-style resnet18 (1000 classes) into a 10-class resnet18: the classifier stays fresh."""
    from proxns_core.weights import describe

    torch.manual_seed(0)
    imagenet = build_model("resnet18", None, 1000).state_dict()
    save_file(imagenet, str(tmp_path / "in1k.safetensors"))
    checked = check_file(tmp_path / "in1k.safetensors", "resnet18", None, 1.0, 10)
    assert checked["ok"] is True and "fc (1000 classes)" in checked["note"], checked
    model = build_model("resnet18", None, 10)
    fresh = model.fc.weight.detach().clone()
    sparsity = make_sparsity(TrainConfig(dataset="digits", arch="resnet18", method="proxns"))
    sparsity.attach(model, torch.Generator().manual_seed(0))
    note = load_init_weights(
        model, sparsity, tmp_path / "in1k.safetensors", describe("resnet18", None, 1, 10)
    )
    assert note is not None and "freshly initialised" in note
    assert torch.equal(model.fc.weight, fresh) and model.fc.weight.shape == (10, 512)
    assert torch.equal(model.layer4[1].bn2.weight, imagenet["layer4.1.bn2.weight"])
    assert torch.equal(sparsity.xi, torch.cat([g.detach().reshape(-1) for g in sparsity.gammas]))
    # the same file for 1000 classes fits as a whole
    assert "note" not in check_file(tmp_path / "in1k.safetensors", "resnet18", None, 1.0, 1000)

    # anything else that differs is still an error naming the first mismatching tensors
    broken = dict(imagenet, **{"conv1.weight": torch.zeros(32, 3, 7, 7)})
    save_file(broken, str(tmp_path / "broken.safetensors"))
    error = check_file(tmp_path / "broken.safetensors", "resnet18", None, 1.0, 10)["error"]
    assert error.startswith("the weights do not fit resnet18 (10 classes): shapes differ (")
    assert "conv1.weight: file [32, 3, 7, 7], network [64, 3, 7, 7]" in error
    with pytest.raises(WeightsError, match="conv1.weight"):
        load_init_weights(build_model("resnet18", None, 10), sparsity, tmp_path / "broken.safetensors")


def test_weights_check_command_takes_no_depth_for_a_torchvision_network(tmp_path: Path) -> None:
    save_file(build_model("mobilenet_v2", None, 10).state_dict(), str(tmp_path / "m.safetensors"))
    proc = subprocess.run(
        [sys.executable, "-m", "proxns_core.weights", "check", str(tmp_path / "m.safetensors")]
        + ["--arch", "mobilenet_v2", "--num-classes", "10"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1])["ok"] is True

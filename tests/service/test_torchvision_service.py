"""torchvision networks through the service (issue 11): a ResNet-18 state_dict uploaded through the API
starts a job whose first-epoch accuracy shows the weights were loaded (well above a random start on the
same data); a mismatched file is refused with the tensor named (one that differs only in its classifier's
classes is taken, with a note); a pickle that is not a plain state_dict is refused; a torchvision upload
takes no depth. Real Postgres + Redis + a worker process."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from proxns_testkit import Stack

pytestmark = pytest.mark.integration

UPLOAD = {"arch": "resnet18", "num_classes": 10}
#: One epoch on a few images: its test accuracy is what the starting weights give.
ONE_EPOCH = {
    "dataset": "digits",
    "arch": "resnet18",
    "method": "proxns",
    "epochs": 1,
    "batch_size": 64,
    "train_subset": 192,
    "test_subset": 180,
    "precise_bn": False,
    "device": "cpu",
}
OCTET = {"Content-Type": "application/octet-stream"}
#: Epochs of the in-test training of the ResNet-18 whose weights are uploaded (Adam, one-cycle: about
#: 0.95 test accuracy after 2).
PRETRAIN_EPOCHS = 2


def train_resnet18() -> tuple[torch.nn.Module, float]:
    """torchvision's ResNet-18 (10 classes) trained on digits at 32×32, the data loaded, normalised and
    batched as jobs do (``proxns_core.data``); the model and its test accuracy."""
    import torch.nn.functional as F

    from proxns_core.anynet import build_torchvision
    from proxns_core.data import load_dataset, test_batches, train_batches

    torch.manual_seed(0)
    data = load_dataset("digits")
    model = build_torchvision("resnet18", 10)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    steps = PRETRAIN_EPOCHS * -(-len(data.y_train) // 64)
    schedule = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps)
    generator = torch.Generator().manual_seed(0)
    for _ in range(PRETRAIN_EPOCHS):
        model.train()
        for x, y in train_batches(data, 64, generator):
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(x), y).backward()
            opt.step()
            schedule.step()
    model.eval()
    with torch.no_grad():
        correct = sum(int((model(x).argmax(1) == y).sum()) for x, y in test_batches(data))
    return model, correct / len(data.y_test)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The trained ResNet-18's state_dict, the same with one convolution of another shape, one of a
    ResNet-18 with 100 classes, and the whole module."""
    from proxns_core.anynet import build_torchvision

    folder = tmp_path_factory.mktemp("resnet18")
    started = time.monotonic()
    model, acc = train_resnet18()
    print(f"pretrained ResNet-18 on digits: test accuracy {acc:.3f} in {time.monotonic() - started:.0f} s")
    assert acc > 0.9  # it learned: a start from it must show
    paths = {name: folder / name for name in ("trained.pt", "narrow.pt", "hundred.pt", "module.pt")}
    torch.save(model.state_dict(), paths["trained.pt"])
    torch.save({**model.state_dict(), "layer1.0.conv1.weight": torch.zeros(32, 64, 3, 3)}, paths["narrow.pt"])
    torch.save(build_torchvision("resnet18", 100).state_dict(), paths["hundred.pt"])
    torch.save(model, paths["module.pt"])
    return paths


def upload(stack: Stack, path: Path, **params) -> object:
    return stack.client.post(
        "/api/weights", params={**UPLOAD, **params}, content=path.read_bytes(), headers=OCTET, timeout=300
    )


def first_epoch_acc(stack: Stack, job_id: int) -> float:
    done = stack.wait_status(job_id, {"succeeded", "failed", "cancelled"}, timeout=600)
    assert done["status"] == "succeeded", done["error"]
    assert {"acc_masked", "slim_exact", "inexact_layers"} <= set(done["result"])
    metrics = stack.client.get(f"/api/jobs/{job_id}/metrics").json()["items"]
    return metrics[0]["test_acc"]


@pytest.mark.slow
def test_a_resnet18_upload_starts_a_job_that_is_accurate_from_its_first_epoch(
    pg_stack: Stack, files: dict[str, Path]
) -> None:
    response = upload(pg_stack, files["trained.pt"])
    assert response.status_code == 201, response.text
    weights = response.json()
    assert (weights["arch"], weights["depth"], weights["width"], weights["num_classes"]) == (
        "resnet18",
        None,
        1.0,
        10,
    )
    assert weights["name"] == "resnet18" and weights["format"] == "torch"

    with_weights = pg_stack.client.post("/api/jobs", json={**ONE_EPOCH, "init_weights": weights["ref"]})
    assert with_weights.status_code == 201, with_weights.text
    assert with_weights.json()["config"]["depth"] is None
    without = pg_stack.client.post("/api/jobs", json=ONE_EPOCH)
    assert without.status_code == 201, without.text
    acc_with = first_epoch_acc(pg_stack, with_weights.json()["id"])
    acc_without = first_epoch_acc(pg_stack, without.json()["id"])
    print(
        f"ResNet-18 first-epoch test accuracy: from the uploaded weights {acc_with:.3f}, "
        f"random start {acc_without:.3f}"
    )
    # Measured on 2 CPU cores: 0.978 from the weights, 0.106 from a random start.
    assert acc_with >= 0.9
    assert acc_with >= acc_without + 0.5

    # The command line names the network without a depth.
    script = Path(sys.executable).parent / "proxns"
    token = pg_stack.client.headers["Authorization"].removeprefix("Bearer ")
    listing = subprocess.run(
        [str(script), "jobs", "--server", pg_stack.url],
        capture_output=True,
        text=True,
        env={**os.environ, "PROXNS_TOKEN": token},
        timeout=60,
    )
    assert listing.returncode == 0, listing.stderr
    row = listing.stdout.splitlines()[1].split()
    assert row[3] == "resnet18" and "null" not in listing.stdout and "None" not in listing.stdout


def test_a_mismatched_file_and_a_pickle_that_is_not_a_state_dict_are_refused(
    pg_stack: Stack, files: dict[str, Path]
) -> None:
    narrow = upload(pg_stack, files["narrow.pt"])
    assert narrow.status_code == 422, narrow.text
    msg = narrow.json()["detail"][0]["msg"]
    assert (
        "layer1.0.conv1.weight: file [32, 64, 3, 3], network [64, 64, 3, 3]" in msg and "resnet18" in msg
    ), msg

    # Only the classifier differs (a checkpoint of another number of classes): taken, with a note.
    hundred = upload(pg_stack, files["hundred.pt"])
    assert hundred.status_code == 201, hundred.text
    assert "fc" in hundred.json()["note"] and "100 classes" in hundred.json()["note"], hundred.text

    module = upload(pg_stack, files["module.pt"])
    assert module.status_code == 422, module.text
    msg = module.json()["detail"][0]["msg"]
    assert "not a plain state_dict" in msg and "weights_only=True" in msg, msg


def test_a_torchvision_upload_takes_no_depth_or_width(pg_stack: Stack, files: dict[str, Path]) -> None:
    for params, field in (({"depth": 18}, "depth"), ({"width": 0.5}, "width")):
        response = upload(pg_stack, files["trained.pt"], **params)
        assert response.status_code == 422, response.text
        detail = response.json()["detail"][0]
        assert detail["loc"] == ["query", field] and "torchvision" in detail["msg"], detail

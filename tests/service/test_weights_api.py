"""Starting weights through the service (issue 11, item 6): upload a state_dict (POST /api/weights),
list it, start a job from it (init_weights), and every refusal: a file that does not fit the
network (the first mismatching tensor named), a pickle that is not a plain state_dict, a body above
PROXNS_MAX_WEIGHTS_BYTES, another user's upload. Real Postgres + Redis + a worker process."""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx
import pytest
import torch

from proxns_testkit import Stack, api_client, authorize

pytestmark = pytest.mark.integration

#: The network of the tests: VGG-11 at a quarter width, on the bundled digits.
NET = {"arch": "vgg", "depth": 11, "width": 0.25}
UPLOAD = {**NET, "num_classes": 10}
#: One epoch with a tiny lr: its test accuracy is what the starting weights give.
ONE_EPOCH = {**NET, "dataset": "digits", "method": "proxns", "epochs": 1, "lr": 1e-4, "device": "cpu"}
OCTET = {"Content-Type": "application/octet-stream"}


class NotWeights:
    """A custom object: torch.load(weights_only=True) must refuse to unpickle it."""

    def __init__(self) -> None:
        self.weight = torch.zeros(3)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A VGG-11 x0.25 trained on digits for 4 epochs (its state_dict as torch.save and safetensors
    files), one of another width, and pickles that are not plain state_dicts."""
    from safetensors.torch import save_file

    from proxns_core.models import build_model
    from proxns_core.spec import TrainConfig
    from proxns_core.train import fit

    folder = tmp_path_factory.mktemp("weights")
    fitted = fit(TrainConfig(**NET, dataset="digits", method="baseline", epochs=4, device="cpu", seed=1))
    assert fitted.history[-1].test_acc > 0.9  # it learned: a start from it must show
    state = fitted.full_model.state_dict()
    paths = {
        name: folder / name
        for name in ("trained.pt", "trained.safetensors", "wide.pt", "module.pt", "object.pt")
    }
    torch.save(state, paths["trained.pt"])
    save_file({k: v.contiguous() for k, v in state.items()}, str(paths["trained.safetensors"]))
    torch.save(build_model("vgg", 11, 10, width=0.5).state_dict(), paths["wide.pt"])
    torch.save(fitted.full_model, paths["module.pt"])  # a whole nn.Module
    torch.save({"features.0.weight": NotWeights()}, paths["object.pt"])
    return paths


def upload(client: httpx.Client, path: Path, **params) -> httpx.Response:
    return client.post("/api/weights", params={**UPLOAD, **params}, content=path.read_bytes(), headers=OCTET)


def first_epoch_acc(stack: Stack, job_id: int) -> float:
    done = stack.wait_status(job_id, {"succeeded", "failed", "cancelled"}, timeout=300)
    assert done["status"] == "succeeded", done["error"]
    metrics = stack.client.get(f"/api/jobs/{job_id}/metrics").json()["items"]
    return metrics[0]["test_acc"]


def test_a_job_started_from_uploaded_weights_is_accurate_from_its_first_epoch(
    pg_stack: Stack, files: dict[str, Path]
) -> None:
    body = files["trained.pt"].read_bytes()
    response = upload(pg_stack.client, files["trained.pt"], name="digits vgg-11")
    assert response.status_code == 201, response.text
    weights = response.json()
    assert weights["ref"] == f"weights:{weights['id']}"
    assert weights["sha256"] == hashlib.sha256(body).hexdigest() and weights["bytes"] == len(body)
    assert (weights["format"], weights["name"], weights["arch"], weights["depth"]) == (
        "torch",
        "digits vgg-11",
        "vgg",
        11,
    )
    assert (weights["width"], weights["num_classes"]) == (0.25, 10)
    listed = pg_stack.client.get("/api/weights").json()["items"]
    assert weights in listed
    assert pg_stack.client.get(f"/api/weights/{weights['id']}").json() == weights

    with_weights = pg_stack.client.post("/api/jobs", json={**ONE_EPOCH, "init_weights": weights["ref"]})
    assert with_weights.status_code == 201, with_weights.text
    assert with_weights.json()["config"]["init_weights"] == weights["ref"]
    without = pg_stack.client.post("/api/jobs", json=ONE_EPOCH)
    assert without.status_code == 201, without.text
    acc_with = first_epoch_acc(pg_stack, with_weights.json()["id"])
    acc_without = first_epoch_acc(pg_stack, without.json()["id"])
    print(
        f"first-epoch test accuracy: from the uploaded weights {acc_with:.3f}, random start {acc_without:.3f}"
    )
    assert acc_with > 0.9
    assert acc_without < 0.5
    assert acc_with - acc_without > 0.4


def test_safetensors_uploads_and_the_finetuning_lr_default(pg_stack: Stack, files: dict[str, Path]) -> None:
    response = upload(pg_stack.client, files["trained.safetensors"])
    assert response.status_code == 201, response.text
    assert response.json()["format"] == "safetensors"
    assert response.json()["name"] == "vgg-11 x0.25"
    # Without lr, a job that starts from weights gets the fine-tuning default (0.01), not 0.1.
    without_lr = {k: v for k, v in ONE_EPOCH.items() if k != "lr"}
    job = pg_stack.client.post(
        "/api/jobs", json={**without_lr, "epochs": 300, "init_weights": response.json()["ref"]}
    )
    assert job.status_code == 201, job.text
    assert job.json()["config"]["lr"] == 0.01
    pg_stack.client.post(f"/api/jobs/{job.json()['id']}/cancel")


@pytest.mark.slow
def test_a_file_that_does_not_fit_the_network_is_refused_naming_the_first_tensor(
    pg_stack: Stack, files: dict[str, Path]
) -> None:
    # At upload: the file is checked against the network the upload names.
    wide = upload(pg_stack.client, files["wide.pt"])
    assert wide.status_code == 422, wide.text
    msg = wide.json()["detail"][0]["msg"]
    assert "features.0.weight: file [32, 3, 3, 3], network [16, 3, 3, 3]" in msg and "vgg-11" in msg, msg
    deeper = upload(pg_stack.client, files["trained.pt"], depth=13)
    assert deeper.status_code == 422 and "features." in deeper.json()["detail"][0]["msg"], deeper.text

    # At submission: a config for another network than the upload's names the first mismatch.
    ref = upload(pg_stack.client, files["trained.pt"]).json()["ref"]
    job = pg_stack.client.post("/api/jobs", json={**ONE_EPOCH, "width": 0.5, "init_weights": ref})
    assert job.status_code == 422, job.text
    detail = job.json()["detail"][0]
    assert detail["loc"] == ["body", "init_weights"]
    assert "features.0.weight: file [16, 3, 3, 3], network [32, 3, 3, 3]" in detail["msg"], detail["msg"]
    exp = pg_stack.client.post(
        "/api/experiments", json={"name": "x", "base": {**ONE_EPOCH, "depth": 13, "init_weights": ref}}
    )
    assert exp.status_code == 422 and exp.json()["detail"][0]["loc"] == ["body", "base", "init_weights"], (
        exp.text
    )


def test_pickles_that_are_not_plain_state_dicts_and_junk_are_refused(
    pg_stack: Stack, files: dict[str, Path]
) -> None:
    for name in ("module.pt", "object.pt"):
        response = upload(pg_stack.client, files[name])
        assert response.status_code == 422, response.text
        msg = response.json()["detail"][0]["msg"]
        assert "not a plain state_dict" in msg and "weights_only=True" in msg, msg
    for body, words in ((b"", "empty"), (b"hello, not weights at all", "neither safetensors")):
        response = pg_stack.client.post("/api/weights", params=UPLOAD, content=body, headers=OCTET)
        assert response.status_code == 422 and words in response.json()["detail"][0]["msg"], response.text
    as_json = pg_stack.client.post("/api/weights", params=UPLOAD, json={"a": 1})
    assert as_json.status_code == 415, as_json.text
    assert (
        pg_stack.client.post(
            "/api/weights", params={**UPLOAD, "depth": 12}, content=b"x", headers=OCTET
        ).status_code
        == 422
    )


def test_another_users_weights_are_not_found(pg_stack: Stack, files: dict[str, Path]) -> None:
    alice, bob = (
        httpx.Client(base_url=pg_stack.url, timeout=30),
        httpx.Client(base_url=pg_stack.url, timeout=30),
    )
    authorize(alice, pg_stack.database_url, "alice", admin=False)
    authorize(bob, pg_stack.database_url, "bob", admin=False)
    with alice, bob:
        mine = upload(alice, files["trained.pt"]).json()
        assert bob.get(f"/api/weights/{mine['id']}").status_code == 404
        assert mine["id"] not in [w["id"] for w in bob.get("/api/weights").json()["items"]]
        assert [w["id"] for w in alice.get("/api/weights").json()["items"]] == [mine["id"]]
        assert mine["id"] in [
            w["id"] for w in pg_stack.client.get("/api/weights").json()["items"]
        ]  # admin: all
        job = bob.post("/api/jobs", json={**ONE_EPOCH, "init_weights": mine["ref"]})
        assert job.status_code == 422 and "not found" in job.json()["detail"][0]["msg"], job.text
        for ref in ("/etc/passwd", "weights:0", "weights:99999999"):
            job = alice.post("/api/jobs", json={**ONE_EPOCH, "init_weights": ref})
            assert job.status_code == 422 and job.json()["detail"][0]["loc"] == ["body", "init_weights"], (
                job.text
            )


def test_a_file_above_the_limit_gets_413_naming_the_setting(make_postgres_db, tmp_path: Path) -> None:
    from store.migrate import upgrade
    from store.settings import Settings

    database_url = make_postgres_db()
    upgrade(database_url)
    settings = Settings(
        database_url=database_url,
        broker_url="filesystem://",
        broker_dir=str(tmp_path / "broker"),
        artifact_dir=str(tmp_path / "artifacts"),
        frontend_dir=str(tmp_path / "none"),
        max_weights_bytes=4096,
    )
    with api_client(settings) as client:
        for content in (
            b"\x80" * 5000,
            iter([b"\x80" * 3000, b"\x80" * 3000]),
        ):  # with and without Content-Length
            response = client.post("/api/weights", params=UPLOAD, content=content, headers=OCTET)
            assert response.status_code == 413, response.text
            assert "PROXNS_MAX_WEIGHTS_BYTES" in response.json()["detail"]
        assert not list((tmp_path / "artifacts" / "weights").glob("*"))  # nothing left behind
        # JSON bodies keep their own, smaller bound.
        assert (
            client.post(
                "/api/jobs",
                content=b"{" + b" " * 2_000_000 + b"}",
                headers={"Content-Type": "application/json"},
            ).status_code
            == 413
        )

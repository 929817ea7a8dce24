"""Uploads from the command line and their deletion (issue 11): ``proxns weights upload|list|delete``
against the real API (Postgres + Redis + a worker), and ``DELETE /api/weights/{id}``: the file leaves the
artifact store, a queued or running job that starts from the upload blocks it (409 naming the job),
another user's upload is not found."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import torch

from proxns_testkit import Stack, authorize

pytestmark = pytest.mark.integration

NET = {"arch": "vgg", "depth": 11, "width": 0.25}
#: A job long enough to be queued or running while the tests try to delete its weights.
LONG = {**NET, "dataset": "digits", "method": "proxns", "epochs": 200, "device": "cpu"}
OCTET = {"Content-Type": "application/octet-stream"}


@pytest.fixture(scope="module")
def state_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from proxns_core.models import build_model

    path = tmp_path_factory.mktemp("weights") / "vgg11.pt"
    torch.manual_seed(0)
    torch.save(build_model("vgg", 11, 10, width=0.25).state_dict(), path)
    return path


def proxns(stack: Stack, *args: str) -> subprocess.CompletedProcess:
    script = Path(sys.executable).parent / "proxns"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "proxns_cli"]
    token = stack.client.headers["Authorization"].removeprefix("Bearer ")
    env = {**os.environ, "PROXNS_SERVER": stack.url, "PROXNS_TOKEN": token}
    return subprocess.run([*command, *args], capture_output=True, text=True, env=env, timeout=300)


def stored_files(stack: Stack) -> set[str]:
    folder = stack.artifact_dir / "weights"
    return {p.name for p in folder.iterdir()} if folder.is_dir() else set()


def test_the_cli_uploads_lists_and_deletes_weights(pg_stack: Stack, state_file: Path) -> None:
    made = proxns(
        pg_stack,
        "weights",
        "upload",
        str(state_file),
        "--arch",
        "vgg",
        "--depth",
        "11",
        "--width",
        "0.25",
        "--dataset",
        "digits",
        "--name",
        "random vgg",
        "--json",
    )
    assert made.returncode == 0, made.stderr
    upload = json.loads(made.stdout)
    assert (upload["arch"], upload["depth"], upload["width"], upload["num_classes"]) == ("vgg", 11, 0.25, 10)
    assert upload["name"] == "random vgg" and upload["format"] == "torch"
    assert len(stored_files(pg_stack)) == 1

    plain = proxns(pg_stack, "weights", "upload", str(state_file), "--arch", "vgg", "--depth", "11")
    assert plain.returncode == 2 and plain.stderr.count("\n") == 1, plain.stderr
    assert "--classes N or --dataset NAME" in plain.stderr
    second = proxns(
        pg_stack,
        "weights",
        "upload",
        str(state_file),
        "--arch=vgg",
        "--depth=11",
        "--width=0.25",
        "--classes=10",
    )
    assert second.returncode == 0, second.stderr
    assert "vgg-11 x0.25, 10 classes, torch" in second.stdout and "init_weights: weights:" in second.stdout

    listed = proxns(pg_stack, "weights", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    items = json.loads(listed.stdout)
    assert [w["id"] for w in items][:2] == [upload["id"] + 1, upload["id"]]
    table = proxns(pg_stack, "weights", "list")
    assert table.returncode == 0 and "random vgg" in table.stdout and "vgg-11 x0.25" in table.stdout

    gone = proxns(pg_stack, "weights", "delete", str(upload["id"]))
    assert gone.returncode == 0 and f"weights {upload['id']} deleted" in gone.stdout, gone.stderr
    assert pg_stack.client.get(f"/api/weights/{upload['id']}").status_code == 404
    assert len(stored_files(pg_stack)) == 1  # the other upload's file stays
    again = proxns(pg_stack, "weights", "delete", str(upload["id"]))
    assert again.returncode == 2 and again.stderr.count("\n") == 1, again.stderr
    assert f"HTTP 404: weights {upload['id']} not found" in again.stderr

    wrong = proxns(pg_stack, "weights", "upload", str(state_file), "--arch=vgg", "--depth=13", "--classes=10")
    assert wrong.returncode == 2 and wrong.stderr.count("\n") == 1, wrong.stderr
    assert "HTTP 422" in wrong.stderr and "features." in wrong.stderr
    missing = proxns(pg_stack, "weights", "upload", "no-such.pt", "--arch=vgg", "--classes=10")
    assert missing.returncode == 2 and "no-such.pt: no such file" in missing.stderr


def test_weights_a_queued_or_running_job_starts_from_cannot_be_deleted(
    pg_stack: Stack, state_file: Path
) -> None:
    client = pg_stack.client
    earlier = stored_files(pg_stack)
    made = client.post(
        "/api/weights", params={**NET, "num_classes": 10}, content=state_file.read_bytes(), headers=OCTET
    )
    assert made.status_code == 201, made.text
    upload = made.json()
    before = stored_files(pg_stack)
    assert len(before - earlier) == 1
    job = client.post("/api/jobs", json={**LONG, "init_weights": upload["ref"]})
    assert job.status_code == 201, job.text
    job_id = job.json()["id"]

    refused = client.delete(f"/api/weights/{upload['id']}")
    assert refused.status_code == 409, refused.text
    assert f"job(s) {job_id}" in refused.json()["detail"], refused.text
    assert client.get(f"/api/weights/{upload['id']}").status_code == 200
    assert stored_files(pg_stack) == before
    cli = proxns(pg_stack, "weights", "delete", str(upload["id"]))
    assert cli.returncode == 2 and "HTTP 409" in cli.stderr and str(job_id) in cli.stderr, cli.stderr

    client.post(f"/api/jobs/{job_id}/cancel")
    pg_stack.wait_status(job_id, {"cancelled", "failed", "succeeded"}, timeout=120)
    deleted = client.delete(f"/api/weights/{upload['id']}")
    assert deleted.status_code == 204, deleted.text
    assert client.get(f"/api/weights/{upload['id']}").status_code == 404
    assert stored_files(pg_stack) == earlier  # its file left the artifact store
    # The finished job keeps its reference; a new job naming the upload is refused.
    assert client.get(f"/api/jobs/{job_id}").json()["config"]["init_weights"] == upload["ref"]
    again = client.post("/api/jobs", json={**LONG, "init_weights": upload["ref"]})
    assert again.status_code == 422 and "not found" in again.json()["detail"][0]["msg"], again.text


def test_another_users_upload_cannot_be_deleted(pg_stack: Stack, state_file: Path) -> None:
    alice, bob = (
        httpx.Client(base_url=pg_stack.url, timeout=60),
        httpx.Client(base_url=pg_stack.url, timeout=60),
    )
    authorize(alice, pg_stack.database_url, "alice-d", admin=False)
    authorize(bob, pg_stack.database_url, "bob-d", admin=False)
    with alice, bob:
        mine = alice.post(
            "/api/weights", params={**NET, "num_classes": 10}, content=state_file.read_bytes(), headers=OCTET
        ).json()
        assert bob.delete(f"/api/weights/{mine['id']}").status_code == 404
        assert alice.get(f"/api/weights/{mine['id']}").status_code == 200
        assert bob.delete("/api/weights/99999999").status_code == 404
        assert alice.delete(f"/api/weights/{mine['id']}").status_code == 204

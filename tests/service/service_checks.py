"""The end-to-end checks one tiny job must pass, whichever database and broker run underneath."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from pathlib import Path

import httpx
import torch
from jsonschema import Draft202012Validator

from proxns_core.spec import ARTIFACT_FORMATS
from store.models import RESULT_FIELDS

EXPECTED_FILES = {f.file: f.format for f in ARTIFACT_FORMATS.values()}


def check_matches_openapi(client: httpx.Client, template: str, path: str) -> dict:
    """GET ``path`` and validate the body against the 200 schema OpenAPI publishes for ``template``."""
    doc = client.get("/openapi.json").json()
    schema = doc["paths"][template]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    body = client.get(path).json()
    validator = Draft202012Validator({**schema, "components": doc["components"]})
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(body)]
    assert not errors, errors
    return body


def check_succeeded_job(client: httpx.Client, job: dict, config: dict, download_dir: Path) -> None:
    """Metrics per epoch, every result field consistent, artifacts intact, TorchScript classifies."""
    job_id = job["id"]
    assert job["status"] == "succeeded", job["error"]
    assert job["error"] is None
    assert job["attempts"] == 1
    assert job["device"] == "cpu"
    assert job["worker_host"]
    assert job["progress"] == 1.0
    assert job["epochs_done"] == config["epochs"]
    created, started, finished = (
        datetime.fromisoformat(job[k]) for k in ("created_at", "started_at", "finished_at")
    )
    assert created.utcoffset().total_seconds() == 0
    assert created <= started <= finished

    metrics = client.get(f"/api/jobs/{job_id}/metrics").json()["items"]
    assert [m["epoch"] for m in metrics] == list(range(1, config["epochs"] + 1))
    for m in metrics:
        assert m["phase"] == "train"
        assert m["epochs"] == config["epochs"]
        assert 0.0 <= m["test_acc"] <= 1.0
        assert 0.0 <= m["zero_fraction"] <= 1.0
        assert m["train_loss"] > 0 and m["seconds"] > 0

    # The finished job and its metrics are exactly what OpenAPI says (every result field typed).
    check_matches_openapi(client, "/api/jobs/{job_id}", f"/api/jobs/{job_id}")
    check_matches_openapi(client, "/api/jobs/{job_id}/metrics", f"/api/jobs/{job_id}/metrics")
    check_matches_openapi(client, "/api/jobs/{job_id}/artifacts", f"/api/jobs/{job_id}/artifacts")
    result = job["result"]
    assert set(RESULT_FIELDS) == set(result)
    assert all(result[k] is not None for k in RESULT_FIELDS if k != "acc_finetuned")
    assert result["acc_finetuned"] is None  # no fine-tuning asked for
    assert 0 <= result["channels_pruned"] < result["channels_total"]
    assert result["pruned_fraction"] == result["channels_pruned"] / result["channels_total"]
    assert sum(layer["total"] for layer in result["layers"]) == result["channels_total"]
    assert sum(layer["total"] - layer["kept"] for layer in result["layers"]) == result["channels_pruned"]
    assert 0 < result["params_slim"] <= result["params_full"]
    assert 0 < result["flops_slim"] <= result["flops_full"]
    assert result["latency_full_ms"] > 0 and result["latency_slim_ms"] > 0
    # The last epoch's test accuracy is the full network's accuracy.
    assert abs(metrics[-1]["test_acc"] - result["acc_full"]) < 1e-9

    artifacts = client.get(f"/api/jobs/{job_id}/artifacts").json()["items"]
    assert {a["name"]: a["format"] for a in artifacts} == EXPECTED_FILES
    for a in artifacts:
        assert a["url"] == f"/api/jobs/{job_id}/artifacts/{a['name']}"
        response = client.get(a["url"])
        assert response.status_code == 200
        assert hashlib.sha256(response.content).hexdigest() == a["sha256"]
        assert int(response.headers["content-length"]) == len(response.content) == a["bytes"]
        assert f'filename="{a["name"]}"' in response.headers["content-disposition"]
        expected_type = "application/json" if a["format"] == "json" else None
        if expected_type:
            assert response.headers["content-type"].startswith(expected_type)
        (download_dir / a["name"]).write_bytes(response.content)

    check_torchscript_classifies(download_dir, config, result["acc_slim"])


def check_torchscript_classifies(folder: Path, config: dict, acc_slim: float) -> None:
    """Plain ``torch.jit.load`` (no project code) reproduces the service's slim accuracy on the test set."""
    from proxns_core.data import load_dataset, normalize

    meta = json.loads((folder / "slim.json").read_text())
    model = torch.jit.load(str(folder / "slim.torchscript.pt"))
    model.eval()
    data = load_dataset(
        config["dataset"], train_subset=config.get("train_subset"), test_subset=config["test_subset"]
    )
    with torch.no_grad():
        logits = model(normalize(data.x_test, meta["mean"], meta["std"]))
    assert logits.shape == (config["test_subset"], meta["num_classes"])
    assert torch.isfinite(logits).all()
    accuracy = float((logits.argmax(1) == data.y_test).float().mean())
    # Same weights, same inputs: at most one borderline image may flip between batchings.
    assert abs(accuracy - acc_slim) <= 1 / config["test_subset"] + 1e-9

"""``dataset: imagefolder`` through the service (issue 11, item 5): a generated image folder trains as a
job on a real worker (Postgres, Redis, the API over HTTP); a broken folder is refused with 422 saying
where it looked and what it found, before any worker sees it; with no worker registered a folder the
API cannot see is accepted and waits."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from test_fleet import stack

from proxns_testkit import (
    TINY_JOB,
    postgres_database,
    running_stack,
)
from proxns_testkit.services import Stack
from tests.core.test_imagefolder import make_image_folder

__all__ = ["stack"]  # test_fleet's fixture, used below

JOB = {
    **TINY_JOB,
    "dataset": "imagefolder",
    "arch": "resnet",
    "depth": 11,
    "width": 0.25,
    "epochs": 1,
    "batch_size": 16,
    "device": "cpu",
}
for _field in ("train_subset", "test_subset"):
    JOB.pop(_field, None)


def _broken(root: Path) -> Path:
    (root / "train" / "only").mkdir(parents=True)
    (root / "val" / "only").mkdir(parents=True)
    return root


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("imagefolder_data")
    make_image_folder(root / "colours")
    _broken(root / "broken")
    return root


@pytest.fixture(scope="module")
def live(postgres_admin_url: str, redis_url: str, data: Path, tmp_path_factory) -> Iterator[Stack]:
    """The API over HTTP and one real worker, both with ``data`` as their data folder."""
    tmp = tmp_path_factory.mktemp("imagefolder_stack")
    with (
        postgres_database(postgres_admin_url) as database_url,
        running_stack(database_url, redis_url, tmp, data_root=str(data)) as stack,
    ):
        yield stack


def test_an_image_folder_job_trains_on_a_real_worker_at_its_input_size(live: Stack, data: Path) -> None:
    body = {**JOB, "data_root": str(data / "colours"), "input_size": 24}
    created = live.client.post("/api/jobs", json=body)
    assert created.status_code == 201, created.text
    job = created.json()
    assert job["config"]["input_size"] == 24 and job["config"]["dataset"] == "imagefolder"
    done = live.wait_status(job["id"], {"succeeded", "failed", "cancelled"}, timeout=300)
    assert done["status"] == "succeeded", done["error"]
    assert done["result"]["flops_full"] > 0
    meta = live.client.get(f"/api/jobs/{job['id']}/artifacts/slim.json").json()
    assert meta["input_size"] == 24 and meta["classes"] == ["blue", "green", "red"]


def test_a_broken_folder_is_refused_with_422_saying_where_it_looked(live: Stack, data: Path) -> None:
    broken = data / "broken"
    response = live.client.post("/api/jobs", json={**JOB, "data_root": str(broken), "input_size": 24})
    assert response.status_code == 422, response.text
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", "data_root"]
    assert f"looked in {broken / 'train'}: found 1 class folder" in error["msg"]
    # A sweep is refused the same way, at its base; an input_size above the server's bound too.
    response = live.client.post(
        "/api/experiments",
        json={"name": "s", "base": {**JOB, "data_root": str(broken)}, "sweep": {"lam": [0.01, 0.02]}},
    )
    assert response.status_code == 422 and response.json()["detail"][0]["loc"] == [
        "body",
        "base",
        "data_root",
    ]
    response = live.client.post(
        "/api/jobs", json={**JOB, "data_root": str(data / "colours"), "input_size": 600}
    )
    assert response.status_code == 422 and "PROXNS_MAX_INPUT_SIZE" in response.text
    datasets = {d["name"]: d for d in live.client.get("/api/meta").json()["datasets"]}
    # the default data folder holds colours/ and broken/, not train/ and val/: said without a server path
    assert not datasets["imagefolder"]["available"]
    assert str(data) not in datasets["imagefolder"]["reason"]


def test_without_a_worker_a_folder_the_api_cannot_see_waits(stack, tmp_path: Path) -> None:
    client, _no_workers = stack  # test_fleet's API on Postgres and Redis, data folder tmp_path/data
    data_root = tmp_path / "data"
    elsewhere = client.post("/api/jobs", json={**JOB, "data_root": str(data_root / "on-the-gpu-hosts")})
    assert elsewhere.status_code == 201, elsewhere.text
    assert elsewhere.json()["waiting_reason"].startswith("no worker is registered yet")
    _broken(data_root / "here")
    broken = client.post("/api/jobs", json={**JOB, "data_root": str(data_root / "here")})
    assert broken.status_code == 422 and "found 1 class folder" in broken.text

"""The contract is defined once: OpenAPI publishes the spec's outputs, every rule comes from one
table, each app keeps its own caches, and the light rooms never import torch."""

from __future__ import annotations

import itertools
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from api.schemas import ExperimentCreate
from api.sweep import expand
from proxns_core.spec import (
    ARCHS,
    ARTIFACT_FORMATS,
    FINISHED_STATUSES,
    JOB_STATUSES,
    METHOD_FIELDS,
    METHOD_SPECIFIC_FIELDS,
    METHODS,
    PAPER_ARCHS,
    TORCHVISION_ARCHS,
    EpochMetrics,
    Result,
    TrainConfig,
    method_default,
    valid_depths,
)
from proxns_testkit import REPO, TINY_JOB, api_client, embedded_settings

#: A non-default value for each method-specific field, valid where the field applies.
SAMPLE = {"lam": 0.3, "beta": 7.0, "prune_ratio": 0.35, "penalty": "mcp", "penalty_a": 2.5}
#: What a sample needs beside it to be valid (a shape parameter needs a penalty that has one).
COMPANION = {"penalty_a": {"penalty": "scad"}}
#: The tiny job without its method-specific values.
PLAIN_JOB = {k: v for k, v in TINY_JOB.items() if k not in METHOD_SPECIFIC_FIELDS}


@pytest.fixture
def api(tmp_path: Path) -> TestClient:
    with api_client(embedded_settings(tmp_path)) as client:
        yield client


def openapi_property_types(schema: dict) -> dict[str, set[str]]:
    """JSON types each property of an OpenAPI component may take (``anyOf`` branches merged)."""
    out = {}
    for name, prop in schema["properties"].items():
        branches = prop.get("anyOf", [prop])
        out[name] = {b.get("type") or ("object" if "$ref" in b else None) for b in branches}
    return out


def test_openapi_publishes_every_result_and_metric_field_with_type_and_description(api: TestClient) -> None:
    doc = api.get("/openapi.json").json()
    schemas = doc["components"]["schemas"]
    job_out = next(v for k, v in schemas.items() if k.startswith("JobOut"))
    result_ref = next(b["$ref"] for b in job_out["properties"]["result"]["anyOf"] if "$ref" in b)
    result = schemas[result_ref.rsplit("/", 1)[1]]
    types = openapi_property_types(result)
    expected = {
        "acc_full": {"number"},
        "acc_slim": {"number"},
        "acc_finetuned": {"number", "null"},
        "channels_total": {"integer"},
        "channels_pruned": {"integer"},
        "pruned_fraction": {"number"},
        "params_full": {"integer"},
        "params_slim": {"integer"},
        "flops_full": {"integer"},
        "flops_slim": {"integer"},
        "latency_full_ms": {"number"},
        "latency_slim_ms": {"number"},
        "layers": {"array"},
        "kept_forced": {"array"},
        "num_classes": {"integer", "null"},
        "acc_masked": {"number", "null"},
        "slim_exact": {"boolean", "null"},
        "inexact_layers": {"object"},
        "device": {"string", "null"},
        "device_name": {"string", "null"},
        "precision": {"string", "null"},
        "channels_last": {"boolean", "null"},
        "latency": {"array"},
    }
    assert types == expected
    assert all(result["properties"][k].get("description") for k in expected)
    assert result["properties"]["flops_full"]["format"] == "int64"
    layer = schemas[result["properties"]["layers"]["items"]["$ref"].rsplit("/", 1)[1]]
    assert openapi_property_types(layer) == {"name": {"string"}, "total": {"integer"}, "kept": {"integer"}}

    metrics_out = next(v for k, v in schemas.items() if k.startswith("MetricsOut"))
    metric = schemas[metrics_out["properties"]["items"]["items"]["$ref"].rsplit("/", 1)[1]]
    assert openapi_property_types(metric) == {
        "phase": {"string"},
        "epoch": {"integer"},
        "epochs": {"integer"},
        "lr": {"number"},
        "train_loss": {"number", "null"},
        "objective": {"number", "null"},
        "test_loss": {"number", "null"},
        "test_acc": {"number", "null"},
        "test_acc_delivered": {"number", "null"},
        "zero_fraction": {"number", "null"},
        "seconds": {"number", "null"},
        "layers": {"array", "null"},
    }
    assert metric["properties"]["phase"]["enum"] == ["train", "finetune"]
    sparsity = schemas[metric["properties"]["layers"]["anyOf"][0]["items"]["$ref"].rsplit("/", 1)[1]]
    assert openapi_property_types(sparsity) == {
        "name": {"string"},
        "total": {"integer"},
        "zeros": {"integer"},
        "hist": {"array"},
    }
    assert set(Result.model_fields) == set(expected) and set(EpochMetrics.model_fields) == set(
        metric["properties"]
    )


def test_store_columns_are_the_spec_fields() -> None:
    from store.models import Metric
    from store.models import Result as ResultRow

    assert set(ResultRow.__table__.columns.keys()) == {"job_id", *Result.model_fields}
    assert set(Metric.__table__.columns.keys()) == {"id", "job_id", *EpochMetrics.model_fields}
    assert ResultRow.__table__.c.acc_finetuned.nullable and not ResultRow.__table__.c.acc_slim.nullable
    assert str(ResultRow.__table__.c.flops_full.type) == "BIGINT"
    assert str(ResultRow.__table__.c.channels_total.type) == "INTEGER"


def test_two_apps_on_two_databases_each_list_only_their_own_jobs(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with (
        api_client(embedded_settings(tmp_path / "a")) as a,
        api_client(embedded_settings(tmp_path / "b")) as b,
    ):
        # Both lists rendered once and cached while empty, then each app gets its own jobs.
        assert a.get("/api/jobs").json()["total"] == 0 and b.get("/api/jobs").json()["total"] == 0
        a_ids = [a.post("/api/jobs", json={**TINY_JOB, "seed": s}).json()["id"] for s in (1, 2)]
        b_ids = [b.post("/api/jobs", json={**TINY_JOB, "seed": 9}).json()["id"]]
        for _ in range(2):  # second round: from each app's page cache
            a_page, b_page = a.get("/api/jobs").json(), b.get("/api/jobs").json()
            assert sorted(j["id"] for j in a_page["items"]) == a_ids and a_page["total"] == 2
            assert [j["id"] for j in b_page["items"]] == b_ids and b_page["total"] == 1
            assert [j["config"]["seed"] for j in b_page["items"]] == [9]
        assert a.app.state.job_pages is not b.app.state.job_pages
        assert a.app.state.datasets is not b.app.state.datasets
        assert a.app.state.fleet is not b.app.state.fleet


def test_each_app_reads_the_fleet_of_its_own_database(tmp_path: Path) -> None:
    """A worker registered in one store is live for that app only: its app refuses cuda (the worker
    has none) while the other app, with no worker, accepts it as waiting."""
    from store import make_engine, make_sessionmaker
    from store.fleet import register_worker

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    sa, sb = embedded_settings(tmp_path / "a"), embedded_settings(tmp_path / "b")
    engine = make_engine(sa.database_url)
    with make_sessionmaker(engine)() as s:
        cpu = {"type": "cpu", "index": None, "name": "cpu", "memory_bytes": 1, "bf16": True}
        register_worker(s, "w1", name="proxns@a", hostname="a", pid=1, devices=[cpu], datasets=[])
    engine.dispose()
    with api_client(sa) as a, api_client(sb) as b:
        refused = a.post("/api/jobs", json={**TINY_JOB, "device": "cuda"})
        assert refused.status_code == 422 and refused.json()["detail"][0]["loc"] == ["body", "device"]
        waiting = b.post("/api/jobs", json={**TINY_JOB, "device": "cuda"})
        assert waiting.status_code == 201 and waiting.json()["waiting_reason"].startswith(
            "no worker is registered"
        )
        assert a.get("/api/meta").json()["fleet"]["live_workers"] == 1
        assert b.get("/api/meta").json()["fleet"]["live_workers"] == 0


def test_openapi_publishes_the_waiting_reason_and_meta_describes_the_fleet(api: TestClient) -> None:
    doc = api.get("/openapi.json").json()
    job_out = next(v for k, v in doc["components"]["schemas"].items() if k.startswith("JobOut"))
    assert openapi_property_types(job_out)["waiting_reason"] == {"string", "null"}
    assert "no worker registered" in job_out["properties"]["waiting_reason"]["description"]
    assert "fleet" in doc["paths"]["/api/meta"]["get"]["description"]
    fleet = api.get("/api/meta").json()["fleet"]
    assert set(fleet) == {
        "live_workers",
        "registered_workers",
        "live_grace_seconds",
        "waiting_reason",
        "device_types",
        "devices",
        "max_cuda_devices",
        "datasets",
        "workers",
    }
    assert fleet["live_workers"] == 0 and fleet["workers"] == [] and fleet["live_grace_seconds"] == 20.0


def accepts(method: str, field: str, value: float, arch: str = "vgg") -> bool:
    companion = COMPANION.get(field, {}) if method != "baseline" else {}
    try:
        TrainConfig(method=method, arch=arch, **companion, **{field: value})
    except ValidationError as err:
        assert [e["loc"] for e in err.errors()] == [(field,)]
        return False
    return True


def test_one_method_fields_table_drives_validators_sweep_expander_and_meta(api: TestClient) -> None:
    meta = api.get("/api/meta").json()
    assert meta["method_fields"] == {m: list(f) for m, f in METHOD_FIELDS.items()}
    assert meta["methods"] == list(METHODS)
    assert set(METHOD_SPECIFIC_FIELDS) == {f for fields in METHOD_FIELDS.values() for f in fields}

    for method, field in itertools.product(METHODS, METHOD_SPECIFIC_FIELDS):
        takes = field in METHOD_FIELDS[method]
        # The validators: a non-default value is accepted exactly where the table says so.
        assert accepts(method, field, SAMPLE[field]) == takes, (method, field)
        # The form's hiding rule is served as this table; the sweep expander applies a value to a
        # job exactly where the table says so, and gives the other methods their default.
        base = {**PLAIN_JOB, **COMPANION.get(field, {})}
        own = {**PLAIN_JOB, **(COMPANION.get(field, {}) if method != "baseline" else {}), "method": method}
        body = ExperimentCreate.model_validate({"name": "t", "base": own, "sweep": {field: [SAMPLE[field]]}})
        (config,) = expand(body)
        expected = SAMPLE[field] if takes else method_default(field, method, config.arch)
        assert getattr(config, field) == expected, (method, field)
        # And over the API, with the method swept: one job per method, each with what it takes.
        created = api.post(
            "/api/experiments",
            json={"name": "t", "base": base, "sweep": {"method": list(METHODS), field: [SAMPLE[field]]}},
        )
        assert created.status_code == 201, created.text
        got = {j["config"]["method"]: j["config"][field] for j in created.json()["jobs"]}
        assert got == {
            m: SAMPLE[field] if field in METHOD_FIELDS[m] else method_default(field, m, TINY_JOB["arch"])
            for m in METHODS
        }


def test_meta_serves_statuses_formats_and_depths_from_the_spec(api: TestClient) -> None:
    from proxns_core.models import MODELS

    meta = api.get("/api/meta").json()
    assert meta["statuses"] == list(JOB_STATUSES)
    assert meta["finished_statuses"] == list(FINISHED_STATUSES)
    assert [f["file"] for f in meta["artifact_formats"]] == [f.file for f in ARTIFACT_FORMATS.values()]
    assert {a["name"]: a["depths"] for a in meta["archs"]} == {a: valid_depths(a) for a in ARCHS}
    # A torchvision network is named by its arch alone: no depth, no width, defaults of its family.
    archs = {a["name"]: a for a in meta["archs"]}
    for arch in TORCHVISION_ARCHS:
        assert archs[arch]["family"] == "torchvision" and archs[arch]["default_depth"] is None
        assert not archs[arch]["takes_depth"] and not archs[arch]["takes_width"], arch
    assert [a for a in ARCHS if archs[a]["takes_prune_stream"]] == ["resnet", "densenet"]
    # The model classes accept the published depths and refuse others (checked on the small ones).
    for arch in PAPER_ARCHS:
        depths = valid_depths(arch, limit=40)
        for depth in depths[:2]:
            MODELS[arch](depth=depth, num_classes=10, width=0.125)
        with pytest.raises(ValueError, match="not valid"):
            MODELS[arch](depth=depths[0] + 1, num_classes=10, width=0.125)


TORCH_FREE_CLIENT = textwrap.dedent(
    """
    import sys, threading, time
    import uvicorn
    import proxns_core
    from proxns_core import EpochMetrics, Result, TrainConfig, dataset_status
    import store.queries
    from api.main import create_app
    from store.migrate import upgrade
    from store.settings import Settings

    folder, port = sys.argv[1], int(sys.argv[2])
    settings = Settings(
        database_url=f"sqlite:///{folder}/proxns.db", broker_url="filesystem://",
        broker_dir=f"{folder}/broker", artifact_dir=f"{folder}/artifacts",
    )
    upgrade(settings.database_url)
    import os
    from proxns_testkit import create_token
    os.environ["PROXNS_TOKEN"] = create_token(settings.database_url)
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="error"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    from proxns_cli import main

    url = f"http://127.0.0.1:{port}"
    for argv in (["submit", sys.argv[3]], ["jobs"], ["show", "1", "--metrics"]):
        try:
            main([*argv, "--server", url], standalone_mode=False)
        except SystemExit as exit:
            assert not exit.code, (argv, exit.code)
    server.should_exit = True
    print("torch loaded:", "torch" in sys.modules, "proxns_core.train loaded:", "proxns_core.train" in sys.modules)
    """
)


def test_api_and_http_client_commands_run_without_importing_torch(tmp_path: Path) -> None:
    from proxns_testkit import free_port

    config = tmp_path / "job.yaml"
    config.write_text("dataset: synthetic\narch: vgg\ndepth: 11\nepochs: 2\n")
    proc = subprocess.run(
        [sys.executable, "-c", TORCH_FREE_CLIENT, str(tmp_path), str(free_port()), str(config)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr
    assert "job 1 queued" in proc.stdout
    assert "1 of 1 jobs" in proc.stdout  # `proxns jobs` listed it
    assert "torch loaded: False proxns_core.train loaded: False" in proc.stdout


def test_meta_serves_the_forms_dataset_suggestions_from_the_spec(api) -> None:
    """The forms' per-dataset start comes from the server (the dashboard holds no table of its own):
    each suggestion is a valid config for its data set, λ on each method's scale."""
    from proxns_core.spec import DATASET_SUGGESTIONS, TrainConfig

    served = api.get("/api/meta").json()["dataset_suggestions"]
    assert served == DATASET_SUGGESTIONS
    assert served["digits"]["lam"] == {"proxns": 0.5, "ns": 0.02}
    for dataset, table in served.items():
        fields = {k: v for k, v in table.items() if k != "lam"}
        for method, lam in table.get("lam", {"proxns": None}).items():
            extra = {"lam": lam} if lam is not None else {}
            config = TrainConfig.model_validate({"dataset": dataset, "method": method, **fields, **extra})
            assert (config.epochs, config.depth) == (table["epochs"], table["depth"])

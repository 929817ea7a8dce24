"""docker-compose.yml and the Dockerfile cannot run here; check that they only name real things."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import click
import pytest
import yaml

from proxns_cli import main
from store.settings import Settings

REPO = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]


def command_args(command: str | list[str]) -> list[str]:
    return shlex.split(command) if isinstance(command, str) else list(command)


def check_proxns_command(args: list[str]) -> None:
    """``proxns SUB --opt ...`` parses with the real click command (unknown options raise)."""
    assert args[0] == "proxns", args
    ctx = click.Context(main)
    sub = main.get_command(ctx, args[1])
    assert sub is not None, f"proxns has no subcommand {args[1]!r}"
    sub.make_context(args[1], args[2:], parent=ctx)


def test_compose_has_the_four_services_each_with_a_health_check() -> None:
    assert {"postgres", "redis", "api", "worker"} <= set(SERVICES)
    for name, service in SERVICES.items():
        assert "healthcheck" in service, f"{name} has no health check"


@pytest.mark.parametrize("name", ["api", "worker"])
def test_compose_commands_are_real_proxns_subcommands(name: str) -> None:
    check_proxns_command(command_args(SERVICES[name]["command"]))


def test_compose_proxns_variables_are_real_settings() -> None:
    fields = {f"PROXNS_{f.upper()}" for f in Settings.model_fields}
    seen = set()
    for name, service in SERVICES.items():
        env = service.get("environment") or {}
        keys = env.keys() if isinstance(env, dict) else [e.split("=", 1)[0] for e in env]
        for key in keys:
            if key.startswith("PROXNS_"):
                assert key in fields, f"{name}: {key} is not a setting (known: {sorted(fields)})"
                seen.add(key)
    assert {"PROXNS_DATABASE_URL", "PROXNS_BROKER_URL", "PROXNS_ARTIFACT_DIR"} <= seen


def test_compose_api_and_worker_share_database_broker_and_artifact_store() -> None:
    api, worker = SERVICES["api"], SERVICES["worker"]
    assert api["environment"] == worker["environment"]
    artifact_dir = api["environment"]["PROXNS_ARTIFACT_DIR"]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in api["volumes"]}
    assert artifact_dir in mounts and mounts == {v.split(":")[1]: v.split(":")[0] for v in worker["volumes"]}
    assert mounts[artifact_dir] in COMPOSE["volumes"]
    assert api["environment"]["PROXNS_DATABASE_URL"].startswith("postgresql+psycopg://")
    assert api["environment"]["PROXNS_BROKER_URL"].startswith("redis://:")
    assert api["environment"]["PROXNS_BROKER_URL"].endswith("@redis:6379/0")


def test_compose_worker_reserves_an_nvidia_gpu() -> None:
    devices = SERVICES["worker"]["deploy"]["resources"]["reservations"]["devices"]
    assert any(d["driver"] == "nvidia" and "gpu" in d["capabilities"] for d in devices)
    assert "--gpus" in command_args(SERVICES["worker"]["command"])


def test_dockerfile_default_command_is_proxns_serve() -> None:
    lines = (REPO / "Dockerfile").read_text().splitlines()
    cmd = [line for line in lines if line.startswith("CMD ")]
    assert len(cmd) == 1
    args = json.loads(cmd[0][4:])
    assert args[:2] == ["proxns", "serve"]
    check_proxns_command(args)


def test_compose_has_no_default_passwords_and_publishes_the_api_on_localhost() -> None:
    text = (REPO / "docker-compose.yml").read_text()
    assert "proxns:proxns@" not in text and "POSTGRES_PASSWORD: proxns" not in text
    env = SERVICES["api"]["environment"]
    # Both secrets come from the environment, and compose stops when they are unset (":?").
    assert "${PROXNS_DB_PASSWORD:?" in env["PROXNS_DATABASE_URL"]
    assert "${PROXNS_REDIS_PASSWORD:?" in env["PROXNS_BROKER_URL"]
    assert SERVICES["postgres"]["environment"]["POSTGRES_PASSWORD"].startswith("${PROXNS_DB_PASSWORD:?")
    assert any(a.startswith("${PROXNS_REDIS_PASSWORD:?") for a in SERVICES["redis"]["command"])
    (published,) = SERVICES["api"]["ports"]
    assert published == "${PROXNS_BIND:-127.0.0.1}:8000:8000"
    example = (REPO / ".env.example").read_text()
    assert "PROXNS_DB_PASSWORD=\n" in example and "PROXNS_REDIS_PASSWORD=\n" in example

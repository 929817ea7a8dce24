"""Shared by the service benchmarks: a throw-away Postgres database, API and worker processes."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg

# One copy of the process helpers, shared with the service tests.
from tests.service.service_helpers import (
    REPO,
    TINY_JOB,
    forget_redis_queue,
    free_port,
    service_env,
    stop_process,
)

__all__ = ["TINY_JOB", "free_port", "service_env"]

PG_ADMIN_URL = os.environ.get("PROXNS_BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("PROXNS_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh, migrated Postgres database (SQLAlchemy URL), dropped afterwards."""
    from store.migrate import upgrade

    name = f"proxns_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1) + f"/{name}"
    try:
        upgrade(url)
        yield url
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def api_process(env: dict[str, str], workers: int, log: Path) -> Iterator[str]:
    """uvicorn serving ``api.main:create_app`` with ``workers`` processes; yields its base URL."""
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "api.main:create_app",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    proc = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=log.open("w"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc)
        # Every uvicorn worker imports the app lazily; give them all a moment to be ready.
        time.sleep(2.0)
        yield url
    finally:
        stop_process(proc)


@contextlib.contextmanager
def worker_process(env: dict[str, str], log: Path) -> Iterator[subprocess.Popen]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "worker", "--loglevel", "warning"],
        env=env,
        cwd=REPO,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    try:
        yield proc
    finally:
        stop_process(proc)


def wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"API process exited with {proc.returncode}")
        try:
            if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"API at {url} not healthy after {timeout} s")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


def drop_redis_queue(queue: str) -> None:
    """Delete the benchmark's own queue and kombu's bindings for it (the name is unique to this run)."""
    forget_redis_queue(REDIS_URL, queue)

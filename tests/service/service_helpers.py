"""Helpers of the service tests: the tiny job, process start/stop, polling. Fixtures are in conftest.

Postgres and Redis are expected at 127.0.0.1 (override with PROXNS_TEST_PG_ADMIN_URL and
PROXNS_TEST_REDIS_URL). When they are unreachable the tests that need them are skipped — or fail
loudly when the environment variable CI is set, so that CI cannot pass by skipping.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
PG_ADMIN_URL = os.environ.get("PROXNS_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("PROXNS_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")

#: The smallest job that exercises the whole pipeline (train, slim, measure, export).
TINY_JOB: dict[str, Any] = {
    "dataset": "digits",
    "arch": "vgg",
    "depth": 11,
    "width": 0.125,
    "method": "proxns",
    "lam": 0.05,
    "epochs": 2,
    "batch_size": 64,
    "train_subset": 256,
    "test_subset": 128,
    "device": "cpu",
}


def unavailable(what: str, why: Exception | str) -> None:
    """Skip, or fail when CI is set: a CI run must not go green by skipping the integration tests."""
    message = f"{what} is not reachable ({why})"
    if os.environ.get("CI"):
        pytest.fail(f"{message}; CI is set, so the integration tests must run", pytrace=False)
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(
    predicate: Callable[[], Any], timeout: float, interval: float = 0.1, what: str = "condition"
) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def service_env(**settings: str) -> dict[str, str]:
    """The environment of a service process: no inherited PROXNS_* except those given."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROXNS_")}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.update({f"PROXNS_{k.upper()}": v for k, v in settings.items()})
    return env


def stop_process(proc: subprocess.Popen, timeout: float = 30) -> int:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


@dataclass
class Stack:
    """A running API and worker over one database and broker."""

    url: str
    database_url: str
    artifact_dir: Path
    log_dir: Path
    client: httpx.Client

    def job(self, job_id: int) -> dict:
        return self.client.get(f"/api/jobs/{job_id}").json()

    def wait_status(self, job_id: int, statuses: set[str], timeout: float) -> dict:
        def done() -> dict | None:
            job = self.job(job_id)
            return job if job["status"] in statuses else None

        try:
            return wait_for(done, timeout, 0.2, f"job {job_id} to reach {statuses}")
        except AssertionError:
            print((self.log_dir / "worker.log").read_text()[-5000:])
            raise


def start_api(env: dict[str, str], port: int, log: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "uvicorn", "--factory", "api.main:create_app", "--port", str(port)]
    return subprocess.Popen(
        cmd + ["--log-level", "warning"], env=env, cwd=REPO, stdout=log.open("w"), stderr=subprocess.STDOUT
    )


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "worker", "--loglevel", "info"]
    return subprocess.Popen(cmd, env=env, cwd=REPO, stdout=log.open("w"), stderr=subprocess.STDOUT)


def healthy(client: httpx.Client) -> bool:
    try:
        return client.get("/healthz").status_code == 200
    except httpx.HTTPError:
        return False


def descendants(pid: int) -> set[int]:
    """Process ids below ``pid`` (from /proc)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] == "Z")


def forget_redis_queue(redis_url: str, queue: str) -> None:
    """Delete every key kombu made for a test's uniquely named queue (messages, bindings)."""
    import redis

    client = redis.Redis.from_url(redis_url)
    for key in client.scan_iter(match=f"*{queue}*"):
        client.delete(key)

"""Service processes (API, worker) for tests and benchmarks: environment, start, wait, stop."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

#: The repository root: the working directory and first PYTHONPATH entry of every service process.
REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
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
    """SIGTERM, then SIGKILL after ``timeout`` seconds; returns the exit status."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def start_api(
    env: dict[str, str],
    port: int,
    log: Path,
    *,
    workers: int | None = None,
    access_log: bool = True,
) -> subprocess.Popen:
    """uvicorn serving ``api.main:create_app`` on 127.0.0.1:``port``, output to ``log``."""
    cmd = [sys.executable, "-m", "uvicorn", "--factory", "api.main:create_app", "--port", str(port)]
    if workers is not None:
        cmd += ["--workers", str(workers)]
    cmd += ["--log-level", "warning"]
    if not access_log:
        cmd.append("--no-access-log")
    return subprocess.Popen(cmd, env=env, cwd=REPO, stdout=log.open("w"), stderr=subprocess.STDOUT)


#: A prefix for :func:`start_worker` that runs the worker as process 1 of a fresh PID namespace (as
#: a container does: every such worker has the same PID). Needs root (or a user namespace). The
#: returned process is ``unshare``, which ignores SIGTERM: signal :func:`inner_pid` instead.
PID_NAMESPACE = ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child"]


def start_worker(
    env: dict[str, str], log: Path, loglevel: str = "info", wrap: list[str] | None = None
) -> subprocess.Popen:
    """A Celery worker (``python -m proxns_cli worker``), output to ``log``; ``wrap`` is a command
    prefix that runs it (e.g. :data:`PID_NAMESPACE`)."""
    cmd = [*(wrap or []), sys.executable, "-m", "proxns_cli", "worker", "--loglevel", loglevel]
    return subprocess.Popen(cmd, env=env, cwd=REPO, stdout=log.open("w"), stderr=subprocess.STDOUT)


def inner_pid(proc: subprocess.Popen, timeout: float = 10) -> int:
    """The process id (in this namespace) of the command a wrapper such as ``unshare --fork`` runs."""

    def child() -> int | None:
        kids = [pid for pid in descendants(proc.pid) if _parent(pid) == proc.pid]
        return kids[0] if kids else None

    return wait_for(child, timeout, 0.05, f"the child of process {proc.pid}")


def _parent(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def healthy(client: httpx.Client) -> bool:
    """Whether the API behind ``client`` answers /healthz with 200."""
    try:
        return client.get("/healthz").status_code == 200
    except httpx.HTTPError:
        return False


def wait_healthy(url: str, proc: subprocess.Popen | None = None, timeout: float = 90) -> None:
    """Wait until ``url``/healthz answers 200; fail at once if ``proc`` (the server) exits."""

    def ready() -> bool:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the server process exited with {proc.returncode} before {url} was healthy")
        with httpx.Client(base_url=url, timeout=2) as client:
            return healthy(client)

    wait_for(ready, timeout, 0.2, f"{url}/healthz")


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
    """Whether ``pid`` exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] == "Z")

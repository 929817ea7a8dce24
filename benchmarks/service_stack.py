"""Shared by the service benchmarks: a throw-away Postgres database, API and worker processes.

The process helpers themselves live in ``proxns_testkit`` (one copy for the tests and the benchmarks);
this module only adds what is particular to benchmarking.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import proxns_testkit
from proxns_testkit import (
    forget_redis_queue,
    free_port,
    start_api,
    start_worker,
    stop_process,
    wait_healthy,
)

PG_ADMIN_URL = os.environ.get("PROXNS_BENCH_PG_ADMIN_URL", proxns_testkit.PG_ADMIN_URL)
REDIS_URL = os.environ.get("PROXNS_BENCH_REDIS_URL", proxns_testkit.REDIS_URL)


def postgres_database() -> contextlib.AbstractContextManager[str]:
    """A fresh, migrated Postgres database (SQLAlchemy URL), dropped afterwards."""
    return proxns_testkit.postgres_database(PG_ADMIN_URL, prefix="proxns_bench")


@contextlib.contextmanager
def api_process(env: dict[str, str], workers: int, log: Path) -> Iterator[str]:
    """uvicorn serving ``api.main:create_app`` with ``workers`` processes; yields its base URL."""
    port = free_port()
    proc = start_api(env, port, log, workers=workers, access_log=False)
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
    proc = start_worker(env, log, loglevel="warning")
    try:
        yield proc
    finally:
        stop_process(proc)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


def drop_redis_queue(queue: str) -> None:
    """Delete the benchmark's own queue and kombu's bindings for it (the name is unique to this run)."""
    forget_redis_queue(REDIS_URL, queue)

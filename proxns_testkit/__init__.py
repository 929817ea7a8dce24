"""Helpers shared by the tests and the benchmarks: service processes, polling, Postgres and Redis.

One importable copy (``from proxns_testkit import ...``) so that neither side imports the other.
Nothing here imports torch (nor the science code) at import time: the benchmarks that measure
import times and the tests of a light client must be able to load it without paying for torch.

Postgres and Redis are expected at 127.0.0.1 (override with PROXNS_TEST_PG_ADMIN_URL and
PROXNS_TEST_REDIS_URL).
"""

from proxns_testkit.processes import (
    PID_NAMESPACE,
    REPO,
    alive,
    descendants,
    free_port,
    healthy,
    inner_pid,
    service_env,
    start_api,
    start_worker,
    stop_process,
    wait_for,
    wait_healthy,
)
from proxns_testkit.services import (
    PG_ADMIN_URL,
    REDIS_URL,
    TINY_JOB,
    Stack,
    api_client,
    authorize,
    create_token,
    embedded_settings,
    forget_redis_queue,
    postgres_database,
    running_stack,
    unavailable,
)

__all__ = [
    "PG_ADMIN_URL",
    "PID_NAMESPACE",
    "REDIS_URL",
    "REPO",
    "TINY_JOB",
    "Stack",
    "alive",
    "api_client",
    "authorize",
    "create_token",
    "descendants",
    "embedded_settings",
    "forget_redis_queue",
    "free_port",
    "healthy",
    "inner_pid",
    "postgres_database",
    "running_stack",
    "service_env",
    "start_api",
    "start_worker",
    "stop_process",
    "unavailable",
    "wait_for",
    "wait_healthy",
]

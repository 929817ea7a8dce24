"""Fixtures for the service tests: real Postgres, Redis, worker and API processes, never mocks.

Postgres and Redis are expected at 127.0.0.1 (override with PROXNS_TEST_PG_ADMIN_URL and
PROXNS_TEST_REDIS_URL). When they are unreachable the tests that need them are skipped — or fail
loudly when the environment variable CI is set, so that CI cannot pass by skipping.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator

import pytest

from proxns_testkit import (
    PG_ADMIN_URL,
    REDIS_URL,
    Stack,
    forget_redis_queue,
    postgres_database,
    running_stack,
    unavailable,
)


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    import psycopg

    try:
        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:  # noqa: BLE001
        unavailable(f"PostgreSQL at {PG_ADMIN_URL}", exc)
    return PG_ADMIN_URL


@pytest.fixture
def make_postgres_db(postgres_admin_url: str) -> Iterator[Callable[[], str]]:
    """A factory of empty, uniquely named Postgres databases, dropped at the end of the test."""
    with contextlib.ExitStack() as databases:
        yield lambda: databases.enter_context(postgres_database(postgres_admin_url, migrate=False))


@pytest.fixture(scope="session")
def redis_url() -> str:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3).ping()
    except Exception as exc:  # noqa: BLE001
        unavailable(f"Redis at {REDIS_URL}", exc)
    return REDIS_URL


@pytest.fixture
def redis_queue(redis_url: str) -> Iterator[str]:
    """A queue name of this test's own on the shared Redis; its keys are deleted afterwards."""
    queue = f"proxns-test-{uuid.uuid4().hex[:8]}"
    yield queue
    forget_redis_queue(redis_url, queue)


@pytest.fixture(scope="module")
def pg_stack(
    postgres_admin_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """Postgres (a fresh database) + Redis + one real Celery worker process + the API over HTTP;
    the client sends an admin's token."""
    tmp = tmp_path_factory.mktemp("pg_stack")
    with (
        postgres_database(postgres_admin_url) as database_url,
        running_stack(database_url, redis_url, tmp) as stack,
    ):
        yield stack

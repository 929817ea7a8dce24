"""Fixtures for the service tests: real Postgres, Redis, worker and API processes, never mocks.

Postgres and Redis are expected at 127.0.0.1 (override with PROXNS_TEST_PG_ADMIN_URL and
PROXNS_TEST_REDIS_URL). When they are unreachable the tests that need them are skipped — or fail
loudly when the environment variable CI is set, so that CI cannot pass by skipping.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import httpx
import pytest

from proxns_testkit import (
    PG_ADMIN_URL,
    REDIS_URL,
    Stack,
    authorize,
    forget_redis_queue,
    free_port,
    healthy,
    service_env,
    start_api,
    start_worker,
    stop_process,
    unavailable,
    wait_for,
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
    import psycopg

    created: list[str] = []

    def make() -> str:
        name = f"proxns_test_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(postgres_admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        created.append(name)
        base = postgres_admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
        return f"{base}/{name}"

    yield make
    with psycopg.connect(postgres_admin_url, autocommit=True) as conn:
        for name in created:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


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
    import psycopg

    from store.migrate import upgrade

    tmp = tmp_path_factory.mktemp("pg_stack")
    name = f"proxns_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = postgres_admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    database_url = f"{base}/{name}"
    upgrade(database_url)
    queue = f"proxns-test-{uuid.uuid4().hex[:8]}"  # isolates this run from any other on the same Redis
    env = service_env(
        database_url=database_url,
        broker_url=redis_url,
        queue=queue,
        artifact_dir=str(tmp / "artifacts"),
    )
    port = free_port()
    api = start_api(env, port, tmp / "api.log")
    worker = start_worker(env, tmp / "worker.log")
    url = f"http://127.0.0.1:{port}"
    client = httpx.Client(base_url=url, timeout=30)
    authorize(client, database_url)  # an admin's token, made straight in the database
    try:
        wait_for(lambda: healthy(client), 60, 0.2, "the API to answer /healthz")
        yield Stack(url, database_url, tmp / "artifacts", tmp, client)
    finally:
        client.close()
        stop_process(api)
        stop_process(worker)
        forget_redis_queue(redis_url, queue)
        with psycopg.connect(postgres_admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

"""Postgres, Redis and a running stack: the tiny job, throw-away databases, queue cleanup."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from proxns_testkit.processes import (
    free_port,
    healthy,
    service_env,
    start_api,
    start_worker,
    stop_process,
    wait_for,
)

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
    import pytest

    message = f"{what} is not reachable ({why})"
    if os.environ.get("CI"):
        pytest.fail(f"{message}; CI is set, so the integration tests must run", pytrace=False)
    pytest.skip(message)


@contextlib.contextmanager
def postgres_database(
    admin_url: str = PG_ADMIN_URL, prefix: str = "proxns_test", migrate: bool = True
) -> Iterator[str]:
    """A fresh Postgres database (SQLAlchemy URL), migrated unless told not to, dropped afterwards."""
    import psycopg

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1) + f"/{name}"
    try:
        if migrate:
            from store.migrate import upgrade

            upgrade(url)
        yield url
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def running_stack(database_url: str, redis_url: str, folder: Path, **settings: str) -> Iterator[Stack]:
    """The API over HTTP and one real Celery worker on ``database_url`` (migrated) and a queue of their
    own on ``redis_url``, with ``settings`` (``PROXNS_*``) besides; the client sends an admin's token.
    Both processes are stopped and the queue forgotten afterwards."""
    queue = f"proxns-test-{uuid.uuid4().hex[:8]}"  # isolates this stack from any other on the same Redis
    env = service_env(
        database_url=database_url,
        broker_url=redis_url,
        queue=queue,
        artifact_dir=str(folder / "artifacts"),
        **settings,
    )
    port = free_port()
    api = start_api(env, port, folder / "api.log")
    worker = start_worker(env, folder / "worker.log")
    url = f"http://127.0.0.1:{port}"
    client = httpx.Client(base_url=url, timeout=30)
    authorize(client, database_url)  # an admin's token, made straight in the database
    try:
        wait_for(lambda: healthy(client), 60, 0.2, "the API to answer /healthz")
        yield Stack(url, database_url, folder / "artifacts", folder, client)
    finally:
        client.close()
        stop_process(api)
        stop_process(worker)
        forget_redis_queue(redis_url, queue)


def forget_redis_queue(redis_url: str, queue: str) -> None:
    """Delete every key kombu made for a test's uniquely named queue (messages, bindings)."""
    import redis

    client = redis.Redis.from_url(redis_url)
    for key in client.scan_iter(match=f"*{queue}*"):
        client.delete(key)


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


def create_token(database_url: str, name: str = "tester", admin: bool = True) -> str:
    """A new API token of user ``name`` (created, an admin unless told otherwise, if it does not
    exist yet), written straight into the migrated database at ``database_url``."""
    from store.db import make_engine, make_sessionmaker
    from store.users import UserError, create_user, get_user, issue_token

    engine = make_engine(database_url)
    try:
        with make_sessionmaker(engine)() as session:
            try:
                user = create_user(session, name, is_admin=admin)
            except UserError:
                user = get_user(session, name)
            return issue_token(session, user, label="tests")[1]
    finally:
        engine.dispose()


def authorize(client: httpx.Client, database_url: str, name: str = "tester", admin: bool = True) -> str:
    """Make ``client`` send a new token of user ``name`` (see :func:`create_token`); returns it."""
    token = create_token(database_url, name, admin)
    client.headers["Authorization"] = f"Bearer {token}"
    return token


def api_client(app_or_settings: Any, name: str = "tester", admin: bool = True) -> Any:
    """An in-process ``TestClient`` (not yet entered) of an app, or of ``create_app(settings)``,
    sending ``Host: localhost`` and a token of user ``name`` (an admin unless told otherwise)."""
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    if isinstance(app_or_settings, FastAPI):
        app = app_or_settings
    else:
        from api.main import create_app

        app = create_app(app_or_settings)
    token = create_token(app.state.settings.database_url, name, admin)
    return TestClient(app, base_url="http://localhost", headers={"Authorization": f"Bearer {token}"})


def embedded_settings(folder: Path, frontend: bool = False) -> Any:
    """Settings of a migrated SQLite store and a filesystem queue under ``folder`` (the embedded
    default, isolated per test); without ``frontend`` no dashboard is mounted at /."""
    from store.migrate import upgrade
    from store.settings import Settings

    settings = Settings(
        database_url=f"sqlite:///{folder / 'proxns.db'}",
        broker_url="filesystem://",
        broker_dir=str(folder / "broker"),
        artifact_dir=str(folder / "artifacts"),
        frontend_dir=None if frontend else str(folder / "no-frontend"),
    )
    upgrade(settings.database_url)
    return settings

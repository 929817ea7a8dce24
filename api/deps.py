"""Dependencies injected into the routes: a database session per request, the queue, the settings."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import Request
from sqlalchemy.orm import Session

from api.queue import JobQueue
from store.settings import Settings


def get_db(request: Request) -> Iterator[Session]:
    with request.app.state.sessionmaker() as session:
        yield session


def get_queue(request: Request) -> JobQueue:
    return request.app.state.queue


def get_settings(request: Request) -> Settings:
    return request.app.state.settings

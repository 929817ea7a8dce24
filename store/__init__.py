"""The store: ORM tables, engines and sessions, and the job transitions both API and worker need."""

from store.db import make_engine, make_sessionmaker, ping
from store.idempotency import IdempotencyKey
from store.models import (
    METRIC_FIELDS,
    RESULT_FIELDS,
    ApiToken,
    Artifact,
    Base,
    Experiment,
    Job,
    Metric,
    Result,
    User,
)
from store.settings import Settings, get_settings

__all__ = [
    "METRIC_FIELDS",
    "RESULT_FIELDS",
    "ApiToken",
    "Artifact",
    "Base",
    "Experiment",
    "IdempotencyKey",
    "Job",
    "Metric",
    "Result",
    "Settings",
    "User",
    "get_settings",
    "make_engine",
    "make_sessionmaker",
    "ping",
]

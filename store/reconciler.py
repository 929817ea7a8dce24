"""The reconciler: nothing committed is lost, whatever the broker or a worker did.

A loop, run as a thread in the API process and in every worker process, that every few seconds
(a) publishes pending outbox rows (with a publish timeout) and marks them delivered;
(b) gives a new outbox row to every ``queued`` job with no live message in the broker (the Redis
    queue lists and kombu's ``unacked`` hash, or the filesystem queue's message files);
(c) takes back ``running`` jobs whose heartbeat is older than ``heartbeat_timeout``: back to
    ``queued`` (the next worker resumes the checkpoint) or, after ``max_attempts`` failed tries,
    ``failed`` with the reason.

The store stays free of Celery: publishing is a callable handed in by the API or the worker. Reading
the broker's pending messages needs only ``redis`` (or the file system) and the message format.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from store.queries import (
    mark_delivered,
    mark_failed_publish,
    pending_outbox,
    redeliver_lost_messages,
    take_back_lost_jobs,
)
from store.search import advance_all
from store.settings import RUN_JOB_TASK, Settings

log = logging.getLogger("proxns.reconciler")

#: kombu's Redis transport: the hash of delivered-but-unacknowledged messages, the separator and
#: steps of its per-priority queue lists (kombu/transport/redis.py).
REDIS_UNACKED_KEY = "unacked"
REDIS_PRIORITY_SEP = "\x06\x16"
REDIS_PRIORITY_STEPS = (0, 3, 6, 9)

Publish = Callable[[int], None]


def _job_id_of(payload: dict, queue: str) -> int | None:
    """The job id a Celery message for ``proxns.run_job`` carries (None for any other message)."""
    headers = payload.get("headers") or {}
    if headers.get("task") != RUN_JOB_TASK:
        return None
    info = (payload.get("properties") or {}).get("delivery_info") or {}
    if info.get("routing_key") not in (None, queue):
        return None
    body = payload.get("body")
    if (payload.get("properties") or {}).get("body_encoding") == "base64":
        body = base64.b64decode(body)
    args = json.loads(body)[0] if body else []
    return int(args[0]) if args else None


def redis_live_job_ids(redis_url: str, queue: str, timeout: float = 3.0) -> set[int]:
    """Job ids with a message waiting in the Redis queue or delivered to a worker and not yet acked."""
    import redis

    client = redis.Redis.from_url(redis_url, socket_timeout=timeout, socket_connect_timeout=timeout)
    try:
        ids: set[int] = set()
        keys = [queue] + [f"{queue}{REDIS_PRIORITY_SEP}{p}" for p in REDIS_PRIORITY_STEPS if p]
        for key in keys:
            for raw in client.lrange(key, 0, -1):
                job_id = _job_id_of(json.loads(raw), queue)
                if job_id is not None:
                    ids.add(job_id)
        for raw in client.hvals(REDIS_UNACKED_KEY):
            payload, _exchange, routing_key = json.loads(raw)
            if routing_key == queue:
                job_id = _job_id_of(payload, queue)
                if job_id is not None:
                    ids.add(job_id)
        return ids
    finally:
        client.close()


def filesystem_live_job_ids(settings: Settings) -> set[int]:
    """Job ids with a message file waiting in the filesystem queue (a taken message is gone at once)."""
    folder = Path(settings.broker_transport_options()["data_folder_in"])
    ids: set[int] = set()
    for path in folder.glob(f"*.{settings.queue}.msg"):
        try:
            job_id = _job_id_of(json.loads(path.read_bytes()), settings.queue)
        except (OSError, ValueError):
            continue  # taken by a worker while we listed it, or half written
        if job_id is not None:
            ids.add(job_id)
    return ids


def live_job_ids(settings: Settings) -> set[int] | None:
    """Job ids with a live message in the broker; None when the broker cannot be read."""
    try:
        if settings.uses_filesystem_broker:
            return filesystem_live_job_ids(settings)
        if settings.broker_url.startswith(("redis://", "rediss://")):
            return redis_live_job_ids(settings.broker_url, settings.queue, settings.publish_timeout)
    except Exception as exc:  # noqa: BLE001 - an unreadable broker only means "try again later"
        log.warning("cannot read the broker's pending messages: %s", exc)
    return None


def dispatch_outbox(sessions: sessionmaker[Session], publish: Publish, retry_in: float = 5.0) -> int:
    """Publish every due outbox row and mark it delivered; returns how many were published.

    Stops at the first failed publish (the broker is down: the rest would fail the same way).
    """
    sent = 0
    with sessions() as s:
        for outbox_id, job_id in pending_outbox(s):
            try:
                publish(job_id)
            except Exception as exc:  # noqa: BLE001 - any failure means "not delivered yet"
                mark_failed_publish(s, outbox_id, f"{type(exc).__name__}: {exc}", timedelta(seconds=retry_in))
                s.commit()
                log.warning("job %s not delivered yet (%s); retrying in %.0f s", job_id, exc, retry_in)
                break
            mark_delivered(s, [outbox_id])
            sent += 1
        s.commit()
    return sent


def reconcile_once(
    sessions: sessionmaker[Session], settings: Settings, publish: Publish
) -> dict[str, list[int]]:
    """One pass of (c), (b) and (a); returns what it changed."""
    with sessions() as s:
        requeued, ended = take_back_lost_jobs(
            s, timedelta(seconds=settings.heartbeat_timeout), settings.max_attempts
        )
    for job_id in requeued:
        log.warning(
            "job %s lost its worker (no heartbeat): queued again, resumes from its checkpoint", job_id
        )
    for job_id in ended:
        log.warning("job %s lost its worker and ended (tries used up or cancel requested)", job_id)
    with sessions() as s:
        redelivered = redeliver_lost_messages(
            s, lambda: live_job_ids(settings), timedelta(seconds=settings.redeliver_grace)
        )
    if redelivered:
        log.warning("queued jobs %s had no message in the broker: delivering them again", redelivered)
    try:
        with sessions() as s:
            searched = advance_all(s)  # a search whose round ended while no worker advanced it
        if searched:
            log.info("budget searches: created jobs %s", searched)
    finally:
        dispatch_outbox(sessions, publish)  # whatever the searches did, the outbox goes out
    return {"requeued": requeued, "ended": ended, "redelivered": redelivered, "searched": searched}


class Reconciler:
    """:func:`reconcile_once` every ``settings.reconcile_every`` seconds in a daemon thread."""

    def __init__(self, sessions: sessionmaker[Session], settings: Settings, publish: Publish) -> None:
        self.sessions, self.settings, self.publish = sessions, settings, publish
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="proxns-reconciler", daemon=True)

    def start(self) -> Reconciler:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.settings.reconcile_every):
            try:
                reconcile_once(self.sessions, self.settings, self.publish)
            except Exception as exc:  # noqa: BLE001 - the database may be away: try again next round
                log.warning("reconciler pass failed: %s: %s", type(exc).__name__, exc)

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)


__all__ = [
    "Reconciler",
    "dispatch_outbox",
    "live_job_ids",
    "reconcile_once",
]

"""Live job changes for ``GET /api/events``: one watcher per app, any number of subscribers.

Each API process runs one :class:`EventHub`. While anyone is subscribed, its watcher reads the
jobs' change counter (``store.queries.jobs_version``, one tiny query shared with the job list's
:class:`~api.routes.jobs.VersionReader`) every ``poll_seconds``; when the counter moved (or every
``full_read_seconds`` anyway, in case a writer died between its commit and the bump) it reads, in a
worker thread, the jobs whose ``updated_at`` lies within the window since its last read (less
``SLACK``, for clock skew between hosts and commit delays), the new metric rows of those jobs and of
the running ones, and which watched jobs vanished. It then fans the events out to the subscribers
whose filter matches and who may see the job. No broker is needed: every API process reads the
shared database, so a change written by any worker or API process reaches every stream.

A subscriber's queue is bounded: the watcher never waits for a client. A client too slow to take
``queue_size`` events gets one final ``dropped`` event and its stream ends (the client reconnects
and reloads); a client that stopped reading altogether is cut by the response's send timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
from sqlalchemy import and_, func, or_, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker
from sse_starlette.event import ServerSentEvent

from api.auth import can_see
from api.routes.jobs import read_version
from api.schemas import job_dict, metric_dict
from store.models import Job, Metric, Result
from store.users import Principal

log = logging.getLogger(__name__)

#: How far before its last look the watcher reads again: writers stamp ``updated_at`` with their own
#: clock when the statement runs, so a host whose clock lags, or a transaction that commits later
#: than it wrote, still lands in the next read as long as it is within this margin.
# Longer than a writer may wait for the database (SQLite's busy_timeout, Postgres's statement
# timeout: 30 s): ``updated_at`` is stamped before the write waits, so its commit can be that late.
SLACK = timedelta(seconds=35)
#: Line separator of the stream (one byte: the client accepts CRLF and CR as well).
SEP = "\n"
#: A job event's signature ignores these: a heartbeat changes ``updated_at`` only, not the job.
UNSIGNED_FIELDS = ("updated_at",)
#: At most this many ids in one ``IN (...)`` (SQLite allows 32766 bound values; Postgres more).
CHUNK = 500
#: Job ids one subscriber may follow by id.
MAX_JOB_IDS = 100


def encode(event: str, data: Any, retry: int | None = None) -> bytes:
    """One SSE message: ``event:``, the JSON ``data:`` (one line) and ``retry:`` when given."""
    payload = json.dumps(data, separators=(",", ":"), allow_nan=False, default=str)
    return ServerSentEvent(payload, event=event, retry=retry, sep=SEP).encode()


def as_utc(moment: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes (stored as UTC); Postgres aware ones."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def chunks(ids: Iterable[int]) -> Iterable[list[int]]:
    items = sorted(ids)
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


@dataclass(eq=False)
class Subscriber:
    """One open stream: its user, its filter (job ids, an experiment, or every job the user sees)
    and its bounded queue of encoded events. ``None`` in the queue ends the stream."""

    user: Principal
    job_ids: frozenset[int] | None = None
    experiment_id: int | None = None
    queue_size: int = 2000
    queue: asyncio.Queue[bytes | None] = field(init=False)
    dropped: bool = False

    def __post_init__(self) -> None:
        self.queue = asyncio.Queue(self.queue_size)

    def wants(self, job_id: int, experiment_id: int | None, owner_id: int | None) -> bool:
        if not can_see(owner_id, self.user):
            return False
        if self.job_ids is not None:
            return job_id in self.job_ids
        if self.experiment_id is not None:
            return experiment_id == self.experiment_id
        return True

    def watches(self, gone: Gone) -> bool:
        """Whether a vanished job concerns this stream: one it follows by id or by experiment (checked
        visible when the stream opened), or, unfiltered, one whose owner it may see."""
        if self.job_ids is not None:
            return gone.job_id in self.job_ids
        if self.experiment_id is not None:
            return gone.experiment_id == self.experiment_id
        return gone.owner_known and can_see(gone.owner_id, self.user)

    def offer(self, message: bytes) -> bool:
        """Queue ``message`` without waiting; a full queue drops this subscriber (False)."""
        if self.dropped:
            return False
        try:
            self.queue.put_nowait(message)
        except asyncio.QueueFull:
            self.drop(f"the client fell {self.queue_size} events behind; reconnect and reload")
            return False
        return True

    def drop(self, reason: str) -> None:
        """Empty the queue and end the stream with one ``dropped`` event (room is made for it)."""
        self.dropped = True
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queue.put_nowait(encode("dropped", {"reason": reason}))
        self.queue.put_nowait(None)


@dataclass
class JobChange:
    """What one read found about one job: its new JSON (None: unchanged) and new epoch rows."""

    job_id: int
    experiment_id: int | None
    owner_id: int | None
    job: bytes | None = None
    epochs: list[bytes] = field(default_factory=list)


@dataclass(frozen=True)
class Gone:
    """A job that vanished; its owner is known when the watcher kept every job's (for unfiltered
    streams)."""

    job_id: int
    experiment_id: int | None = None
    owner_id: int | None = None
    owner_known: bool = False


@dataclass
class Changes:
    jobs: list[JobChange] = field(default_factory=list)
    #: Followed jobs that no longer exist.
    deleted: list[Gone] = field(default_factory=list)


@dataclass
class WatchState:
    """What the watcher remembers between reads; touched only by its (one) reading thread."""

    started: datetime | None = None
    #: Reads take jobs with ``updated_at >= since - SLACK``.
    since: datetime | None = None
    #: job id → (signature of its JSON, its updated_at): a job is sent only when the signature changes.
    seen: dict[int, tuple[int, datetime | None]] = field(default_factory=dict)
    #: job id → the last epoch sent.
    epochs: dict[int, int] = field(default_factory=dict)
    #: Running jobs → (owner id, experiment id): their metric rows are read on every look, so
    #: an epoch written without touching the job row still arrives.
    running: dict[int, tuple[int | None, int | None]] = field(default_factory=dict)
    #: experiment id → the ids of its jobs (to notice those that vanish).
    members: dict[int, set[int]] = field(default_factory=dict)
    #: Watched ids already announced as deleted.
    gone: set[int] = field(default_factory=set)
    #: Every job → (owner id, experiment id), kept while an unfiltered stream is open (to tell it
    #: of deletions; None otherwise).
    everyone: dict[int, tuple[int | None, int | None]] | None = None


def start_state(db: Session, state: WatchState) -> None:
    """The first look: what exists now is not news. The running jobs' epochs so far are known."""
    now = datetime.now(UTC)
    state.started = state.since = now
    rows = db.execute(select(Job.id, Job.owner_id, Job.experiment_id).where(Job.status == "running")).all()
    state.running = {r.id: (r.owner_id, r.experiment_id) for r in rows}
    for ids in chunks(state.running):
        query = (
            select(Metric.job_id, func.max(Metric.epoch))
            .where(Metric.job_id.in_(ids))
            .group_by(Metric.job_id)
        )
        state.epochs.update({job_id: epoch for job_id, epoch in db.execute(query)})


def signature(job: dict[str, Any]) -> int:
    return hash(
        json.dumps({k: v for k, v in job.items() if k not in UNSIGNED_FIELDS}, sort_keys=True, default=str)
    )


def read_changes(
    sessions: sessionmaker[Session],
    state: WatchState,
    watched_ids: set[int],
    experiments: dict[int, set[int]],
    everyone: bool = False,
) -> Changes:
    """One look at the database (runs in a worker thread): changed jobs, new epochs, vanished jobs.

    ``watched_ids`` are the ids streams follow by id; ``experiments`` maps each experiment a stream
    follows to job ids known to belong to it (from the stream's opening); ``everyone``: an
    unfiltered stream is open (it learns of any deletion of a job its user may see).
    """
    # The look works on a copy that replaces the state only once every query succeeded: a read that
    # fails half-way (a database hiccup) must not mark changes or epochs as sent that never were.
    final, state = state, copy.deepcopy(state)
    with sessions() as db:
        if state.started is None:
            start_state(db, state)
        began = datetime.now(UTC)
        changes: dict[int, JobChange] = {}
        newest = _read_jobs(db, state, changes)
        _read_epochs(db, state, changes)
        if not everyone:
            state.everyone = None
        elif state.everyone is None:
            state.everyone = _all_jobs(db)
        else:
            state.everyone.update({c.job_id: (c.owner_id, c.experiment_id) for c in changes.values()})
        deleted = {g.job_id: g for g in _read_deleted(db, state, watched_ids, experiments)}
        deleted.update({g.job_id: g for g in _read_all_deleted(db, state)})
        # The next window starts at the newest stamp seen, or at this read when that is earlier
        # (a host whose clock runs ahead must not push the window past other hosts' writes).
        state.since = min(began, newest) if newest else began
        _forget_old(state)
    final.__dict__.update(state.__dict__)
    jobs = [c for c in changes.values() if c.job is not None or c.epochs]
    return Changes(jobs=jobs, deleted=[deleted[j] for j in sorted(deleted)])


def _all_jobs(db: Session) -> dict[int, tuple[int | None, int | None]]:
    rows = db.execute(select(Job.id, Job.owner_id, Job.experiment_id))
    return {r.id: (r.owner_id, r.experiment_id) for r in rows}


def _read_all_deleted(db: Session, state: WatchState) -> list[Gone]:
    """Jobs gone since the last look, for unfiltered streams: a count per look, and a scan of the
    ids only when it differs from the jobs known (deletions are rare)."""
    if state.everyone is None or db.scalar(select(func.count(Job.id))) == len(state.everyone):
        return []
    now = _all_jobs(db)
    gone = [Gone(j, exp, owner, True) for j, (owner, exp) in state.everyone.items() if j not in now]
    state.everyone = now
    for g in gone:
        state.seen.pop(g.job_id, None)
        state.epochs.pop(g.job_id, None)
        state.running.pop(g.job_id, None)
    return gone


def _read_jobs(db: Session, state: WatchState, changes: dict[int, JobChange]) -> datetime | None:
    """Jobs changed in the window whose JSON differs from what was last sent; returns the newest stamp."""
    assert state.since is not None
    rows = db.execute(
        select(Job, Result)
        .outerjoin(Result, Result.job_id == Job.id)
        .where(Job.updated_at >= state.since - SLACK)
    ).all()
    newest = None
    for row in rows:
        job = row.Job
        stamp = as_utc(job.updated_at)
        newest = stamp if newest is None or (stamp and stamp > newest) else newest
        if job.id not in state.epochs:
            state.epochs[job.id] = _baseline(db, state, job)
        if job.status == "running":
            state.running[job.id] = (job.owner_id, job.experiment_id)
        else:
            state.running.pop(job.id, None)
        data = job_dict(job, row.Result)
        sig = signature(data)
        change = changes[job.id] = JobChange(job.id, job.experiment_id, job.owner_id)
        state.gone.discard(job.id)
        if state.seen.get(job.id, (None,))[0] != sig:
            change.job = encode("job", data)
        state.seen[job.id] = (sig, stamp)
    return newest


def _baseline(db: Session, state: WatchState, job: Job) -> int:
    """The last epoch of a job the watcher first meets: none for one running now or at the last
    look, or made since the watcher started (all its epochs are news: one running at the start
    with epochs already is not met here, :func:`start_state` noted them); the current last one for
    any other (an old finished job being tagged is not sent its whole history)."""
    created = as_utc(job.created_at)
    assert state.started is not None
    if job.status == "running" or job.id in state.running:
        return 0
    if created is not None and created >= state.started - SLACK:
        return 0
    return db.scalar(select(func.max(Metric.epoch)).where(Metric.job_id == job.id)) or 0


def _read_epochs(db: Session, state: WatchState, changes: dict[int, JobChange]) -> None:
    """New metric rows of the changed and the running jobs (epoch beyond the last one sent)."""
    candidates = set(changes) | set(state.running)
    if not candidates:
        return
    last: dict[int, int] = {}
    for ids in chunks(candidates):
        query = (
            select(Metric.job_id, func.max(Metric.epoch))
            .where(Metric.job_id.in_(ids))
            .group_by(Metric.job_id)
        )
        last.update({job_id: epoch for job_id, epoch in db.execute(query)})
    behind: dict[int, list[int]] = {}  # the last epoch sent → jobs with rows beyond it
    for job_id in candidates:
        known = state.epochs.setdefault(job_id, 0)
        newest = last.get(job_id, 0)
        if newest < known:  # rows beyond the checkpoint of a resumed job went away: resend from there
            state.epochs[job_id] = newest
        elif newest > known:
            behind.setdefault(known, []).append(job_id)
    if not behind:
        return
    terms = [and_(Metric.job_id.in_(ids), Metric.epoch > known) for known, ids in behind.items()]
    rows = db.execute(select(Metric).where(or_(*terms)).order_by(Metric.job_id, Metric.epoch)).scalars()
    for metric in rows:
        change = changes.get(metric.job_id)
        if change is None:
            owner_id, experiment_id = state.running[metric.job_id]
            change = changes[metric.job_id] = JobChange(metric.job_id, experiment_id, owner_id)
        change.epochs.append(encode("epoch", {"job_id": metric.job_id, **metric_dict(metric)}))
        state.epochs[metric.job_id] = max(state.epochs[metric.job_id], metric.epoch)


def _read_deleted(
    db: Session, state: WatchState, watched_ids: set[int], experiments: dict[int, set[int]]
) -> list[Gone]:
    """Watched jobs (by id, or as members of a watched experiment) that no longer exist; each is
    reported once."""
    state.members = {e: state.members.get(e, set()) | known for e, known in experiments.items()}
    if not watched_ids and not state.members:
        return []
    present: dict[int, int | None] = {}
    for ids in chunks(watched_ids):
        present.update(db.execute(select(Job.id, Job.experiment_id).where(Job.id.in_(ids))).tuples().all())
    for ids in chunks(state.members):
        query = select(Job.id, Job.experiment_id).where(Job.experiment_id.in_(ids))
        present.update(db.execute(query).tuples().all())
    deleted: dict[int, int | None] = {}
    for exp_id, members in state.members.items():
        now = {j for j, e in present.items() if e == exp_id}
        deleted.update(dict.fromkeys(members - now, exp_id))
        state.members[exp_id] = now
    for job_id in watched_ids - set(present) - state.gone:
        deleted.setdefault(job_id, None)
    state.gone = (state.gone | set(deleted)) & watched_ids  # a watched id stays announced
    for job_id in deleted:
        state.seen.pop(job_id, None)
        state.epochs.pop(job_id, None)
        state.running.pop(job_id, None)
    known = state.everyone or {}
    return [
        Gone(j, exp, known[j][0], True) if j in known else Gone(j, exp) for j, exp in sorted(deleted.items())
    ]


def _forget_old(state: WatchState) -> None:
    """Drop what the watcher keeps of jobs outside the window that are not running (bounded memory;
    such a job met again is simply sent again)."""
    assert state.since is not None
    horizon = state.since - 2 * SLACK
    stale = [j for j, (_, stamp) in state.seen.items() if stamp is None or stamp < horizon]
    for job_id in stale:
        if job_id not in state.running:
            del state.seen[job_id]
            state.epochs.pop(job_id, None)


class EventHub:
    """The app's watcher and its subscribers (``app.state.events``).

    The watcher runs only while someone listens (it stops ``idle_seconds`` after the last stream
    ends, forgetting what it knew); its reads run in a thread of their own, never on the event loop.
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        version_engine: Engine,
        *,
        poll_seconds: float = 0.5,
        full_read_seconds: float = 10.0,
        idle_seconds: float = 30.0,
        queue_size: int = 2000,
        ping_seconds: float = 15.0,
        send_timeout: float = 30.0,
        reauth_seconds: float = 60.0,
    ) -> None:
        self.sessions = sessions
        # Autocommit: one round trip per read of the change counter (no BEGIN, no ROLLBACK).
        self.version_engine = version_engine.execution_options(isolation_level="AUTOCOMMIT")
        #: The change counter at the watcher's last look (``hello`` carries it).
        self.version = 0
        self.poll_seconds = poll_seconds
        self.full_read_seconds = full_read_seconds
        self.idle_seconds = idle_seconds
        self.queue_size = queue_size
        self.ping_seconds = ping_seconds
        self.send_timeout = send_timeout
        #: How often an open stream checks its token again (a revoked one ends the stream).
        self.reauth_seconds = reauth_seconds
        self.subscribers: set[Subscriber] = set()
        self._experiments: dict[int, set[int]] = {}
        self._task: asyncio.Task | None = None
        self._ready = asyncio.Event()
        self._limiter = anyio.CapacityLimiter(1)  # one read at a time, not the routes' thread pool
        self.reads = 0  # looks at the database since start (tests, diagnostics)

    @property
    def subscriber_count(self) -> int:
        return len(self.subscribers)

    def subscribe(
        self,
        user: Principal,
        job_ids: Iterable[int] | None = None,
        experiment_id: int | None = None,
        members: Iterable[int] = (),
    ) -> Subscriber:
        """Register a stream (its filter already checked visible) and make sure the watcher runs;
        ``members`` are the experiment's job ids at the time it was checked."""
        sub = Subscriber(
            user,
            frozenset(job_ids) if job_ids is not None else None,
            experiment_id,
            queue_size=self.queue_size,
        )
        if experiment_id is not None:
            self._experiments.setdefault(experiment_id, set()).update(members)
        self.subscribers.add(sub)
        loop = asyncio.get_running_loop()
        if self._task is None or self._task.done() or self._task.get_loop() is not loop:
            # (another loop's watcher: an app served by test clients, each with a loop of its own)
            self._ready = asyncio.Event()
            self._task = asyncio.ensure_future(self._watch())
        return sub

    def subscription(
        self,
        user: Principal,
        job_ids: Iterable[int] | None = None,
        experiment_id: int | None = None,
        members: Iterable[int] = (),
    ) -> Callable[[], Subscriber]:
        """:meth:`subscribe` later (when the stream starts)."""
        return lambda: self.subscribe(user, job_ids, experiment_id, members)

    def unsubscribe(self, sub: Subscriber) -> None:
        self.subscribers.discard(sub)

    async def close(self) -> None:
        """Stop the watcher (app shutdown) and end every stream."""
        for sub in list(self.subscribers):
            if not sub.dropped:
                sub.drop("the server is shutting down")
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            if task.get_loop() is asyncio.get_running_loop():
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _watch(self) -> None:
        state = WatchState()
        version: int | None = None
        last_read = 0.0
        idle_since: float | None = None
        while True:
            now = time.monotonic()
            if not self.subscribers:
                idle_since = idle_since or now
                if now - idle_since >= self.idle_seconds:
                    return
            else:
                idle_since = None
            try:
                current = await anyio.to_thread.run_sync(
                    read_version, self.version_engine, limiter=self._limiter
                )
                due = current != version or now - last_read >= self.full_read_seconds
                if self.subscribers and due:
                    watched = set().union(*(s.job_ids for s in self.subscribers if s.job_ids is not None))
                    experiments = self._watched_experiments()
                    everyone = any(s.job_ids is None and s.experiment_id is None for s in self.subscribers)
                    changes = await anyio.to_thread.run_sync(
                        read_changes,
                        self.sessions,
                        state,
                        watched,
                        experiments,
                        everyone,
                        limiter=self._limiter,
                    )
                    version, last_read = current, now
                    self.version = current
                    self.reads += 1
                    if self._ready.is_set():
                        self._fan_out(changes)
                    else:  # the first look only learns what is there (streams say hello after it)
                        self._ready.set()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - a database hiccup: log it, keep watching
                log.exception("the event watcher's read failed; retrying")
                await asyncio.sleep(max(1.0, self.poll_seconds))
            await asyncio.sleep(self.poll_seconds)

    async def ready(self) -> None:
        """Wait for the watcher's first look. A stream says ``hello`` only after it: a client that
        loads what it shows after ``hello`` then misses no change (any later one is news to the
        watcher, and the stream is registered to receive it)."""
        await self._ready.wait()

    def _watched_experiments(self) -> dict[int, set[int]]:
        wanted = {s.experiment_id for s in self.subscribers if s.experiment_id is not None}
        self._experiments = {e: ids for e, ids in self._experiments.items() if e in wanted}
        handed, self._experiments = self._experiments, {e: set() for e in wanted}
        return {e: handed.get(e, set()) for e in wanted}

    def _fan_out(self, changes: Changes) -> None:
        for sub in list(self.subscribers):
            if sub.dropped:
                continue
            for change in changes.jobs:
                if not sub.wants(change.job_id, change.experiment_id, change.owner_id):
                    continue
                messages = [*change.epochs, *([change.job] if change.job is not None else [])]
                if not all(sub.offer(m) for m in messages):
                    break
            else:
                for gone in changes.deleted:
                    if sub.watches(gone) and not sub.offer(encode("deleted", {"job_id": gone.job_id})):
                        break

"""GET /api/events (issue 13, item 7): job changes and new epochs as server-sent events.

Against real uvicorn servers on SQLite and on Postgres (a fresh database per test): the writes are
the store's own (``store.queries``, as a worker makes them) and the events are read over HTTP. The
tests that need the app's subscriber count run uvicorn in a thread of the test (same sockets, same
ASGI stack) so that they can read ``app.state.events``.
"""

from __future__ import annotations

import contextlib
import json
import queue
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session, sessionmaker

from api.events import Changes, EventHub, JobChange, Subscriber, encode
from proxns_core.spec import EpochMetrics, TrainConfig
from proxns_core.spec import Result as ResultSpec
from proxns_testkit import (
    create_token,
    free_port,
    postgres_database,
    service_env,
    start_api,
    stop_process,
    wait_for,
    wait_healthy,
)
from proxns_testkit.seed import result_for, seed_jobs
from store import queries
from store.db import make_engine, make_sessionmaker
from store.migrate import upgrade
from store.models import Job
from store.users import Principal, get_user, list_tokens, revoke_token

CONFIG = {
    "dataset": "digits",
    "arch": "vgg",
    "depth": 11,
    "width": 0.125,
    "method": "proxns",
    "lam": 0.1,
    "epochs": 4,
}
#: Seconds to wait for an event: the watcher looks every 0.5 s.
WAIT = 10.0


# --------------------------------------------------------------------------- fixtures and helpers


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.integration)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, migrated store: a SQLite file, or a Postgres database (skipped when Postgres is
    unreachable, failed when CI is set)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'proxns.db'}"
        upgrade(url)
        yield url
    else:
        with postgres_database(request.getfixturevalue("postgres_admin_url")) as url:
            yield url


@pytest.fixture
def sessions(database_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(database_url)
    yield make_sessionmaker(engine)
    engine.dispose()


@contextlib.contextmanager
def api_process(database_url: str, folder: Path) -> Iterator[str]:
    """One uvicorn process serving the API on ``database_url``; yields its base URL."""
    folder.mkdir(parents=True, exist_ok=True)
    env = service_env(
        database_url=database_url,
        broker_url="filesystem://",
        broker_dir=str(folder / "broker"),
        artifact_dir=str(folder / "artifacts"),
        token_cache_seconds="600",
    )
    port = free_port()
    proc = start_api(env, port, folder / "api.log")
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc)
        yield url
    finally:
        stop_process(proc)


@contextlib.contextmanager
def served(app: Any) -> Iterator[str]:
    """uvicorn serving ``app`` from a thread of this process (its state stays readable here)."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, 30, 0.05, "uvicorn to start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


class EventStream:
    """An SSE client in a thread: every event as (name, JSON data), every comment counted."""

    def __init__(self, url: str, token: str, **params: Any) -> None:
        self.events: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.seen: list[tuple[str, Any]] = []
        self.comments: list[str] = []
        self.raw: list[str] = []
        self.status: int | None = None
        self.body = b""
        self.headers: httpx.Headers | None = None
        self.response: httpx.Response | None = None
        self.opened = threading.Event()
        self.closed = threading.Event()
        self.client = httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=httpx.Timeout(10, read=None)
        )
        self.thread = threading.Thread(target=self._read, args=(params,), daemon=True)
        self.thread.start()
        assert self.opened.wait(WAIT), "the stream did not open"

    def _read(self, params: dict[str, Any]) -> None:
        try:
            with self.client.stream("GET", "/api/events", params=params) as response:
                self.response = response
                self.status, self.headers = response.status_code, response.headers
                if response.status_code != 200:
                    self.body = response.read()
                    return
                self.opened.set()
                name, data = "message", []
                for line in response.iter_lines():
                    self.raw.append(line)
                    if line == "":
                        if data:
                            self.events.put((name, json.loads("\n".join(data))))
                        name, data = "message", []
                    elif line.startswith(":"):
                        self.comments.append(line)
                    elif line.startswith("event:"):
                        name = line[6:].strip()
                    elif line.startswith("data:"):
                        data.append(line[5:].removeprefix(" "))
        except httpx.HTTPError:
            pass  # closed by the test
        finally:
            self.opened.set()
            self.closed.set()

    def next(self, name: str, where: Callable[[Any], bool] = lambda _: True, timeout: float = WAIT) -> Any:
        """The next event called ``name`` whose data satisfies ``where`` (others are kept in ``seen``)."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                event = self.events.get(timeout=left)
            except queue.Empty:
                break
            self.seen.append(event)
            if event[0] == name and where(event[1]):
                return event[1]
        raise AssertionError(f"no {name!r} event within {timeout} s; got {[(n, d) for n, d in self.seen]}")

    def drain(self, seconds: float) -> list[tuple[str, Any]]:
        """Every event that arrives within ``seconds``."""
        time.sleep(seconds)
        got = []
        while not self.events.empty():
            got.append(self.events.get())
        self.seen += got
        return got

    def close(self) -> None:
        """Hang up (closing the connection under the reading thread ends its read at once)."""
        if self.response is not None:
            sock = self.response.extensions["network_stream"].get_extra_info("socket")
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self.client.close()
        self.closed.wait(WAIT)


def epoch(n: int, acc: float, total: int = 4) -> EpochMetrics:
    return EpochMetrics(
        phase="train",
        epoch=n,
        epochs=total,
        lr=0.1,
        train_loss=1.0 / n,
        objective=1.1 / n,
        test_loss=1.2 / n,
        test_acc=acc,
        zero_fraction=0.1 * n,
        seconds=0.5,
    )


def user_id(database_url: str, name: str) -> int:
    engine = make_engine(database_url)
    try:
        with Session(engine) as db:
            return get_user(db, name).id
    finally:
        engine.dispose()


def running_jobs(database_url: str, owner: int, count: int, experiment: str | None = None) -> list[int]:
    items = [{"config": {**CONFIG, "seed": i}, "status": "running", "metrics": False} for i in range(count)]
    return seed_jobs(database_url, items, experiment=experiment, owner_id=owner)[1]


@pytest.fixture
def people(database_url: str) -> dict[str, Any]:
    """Tokens and ids of alice and bob (plain users) and an admin."""
    tokens = {
        name: create_token(database_url, name, admin=name == "root") for name in ("alice", "bob", "root")
    }
    return {"token": tokens, "id": {name: user_id(database_url, name) for name in tokens}}


# --------------------------------------------------------------------------- the stream over HTTP


def test_job_and_epoch_events_of_followed_jobs_only(
    database_url: str, sessions: sessionmaker[Session], people: dict, tmp_path: Path
) -> None:
    job_a, job_b = running_jobs(database_url, people["id"]["alice"], 2)
    with api_process(database_url, tmp_path / "api") as url:
        stream = EventStream(url, people["token"]["alice"], job_id=job_a)
        try:
            assert stream.status == 200
            assert stream.headers["content-type"].startswith("text/event-stream")
            hello = stream.next("hello")
            assert isinstance(hello["version"], int) and hello["version"] >= 1
            assert "retry: 3000" in stream.raw, stream.raw[:5]

            with sessions() as db:
                queries.report_progress(db, job_b, 0.5, 30.0, epochs_done=2)  # not followed
                queries.write_metrics(db, job_a, [epoch(1, 0.42)], progress=0.25, eta_seconds=30.0)
            got = stream.next("epoch")
            assert (got["job_id"], got["epoch"], got["test_acc"], got["phase"]) == (job_a, 1, 0.42, "train")
            job = stream.next("job")
            assert (job["id"], job["epochs_done"], job["progress"], job["status"]) == (
                job_a,
                1,
                0.25,
                "running",
            )

            with sessions() as db:  # an epoch written without touching the job row still arrives
                queries.upsert_metric(db, job_a, epoch(2, 0.55))
            got = stream.next("epoch")
            assert (got["job_id"], got["epoch"], got["test_acc"]) == (job_a, 2, 0.55)

            with sessions() as db:  # a heartbeat changes updated_at only: no job event for it
                queries.heartbeat(db, job_a)
                time.sleep(1.2)
                queries.report_progress(db, job_a, 0.75, 10.0)
            job = stream.next("job")
            assert (job["progress"], job["eta_seconds"]) == (0.75, 10.0), (
                "a job event came for a bare heartbeat"
            )

            headers = {"Authorization": f"Bearer {people['token']['alice']}"}
            response = httpx.patch(
                f"{url}/api/jobs/{job_a}", json={"tags": ["live"], "note": "watched"}, headers=headers
            )
            assert response.status_code == 200, response.text
            job = stream.next("job")
            assert (job["tags"], job["note"], job["progress"]) == (["live"], "watched", 0.75)

            config = TrainConfig.model_validate(CONFIG)
            result = ResultSpec.model_validate(result_for(config, 0.93, 0.4))
            with sessions() as db:
                assert queries.save_result(db, job_a, result, []) == "succeeded"
            job = stream.next("job")
            assert (job["status"], job["progress"], job["result"]["acc_slim"]) == ("succeeded", 1.0, 0.93)
            assert job["result"]["pruned_fraction"] == pytest.approx(0.4, abs=0.01)

            later = stream.drain(1.5)
            every = stream.seen
            assert [n for n, _ in every] == ["hello", "epoch", "job", "epoch", "job", "job", "job"], every
            assert all(d.get("job_id", d.get("id")) == job_a for n, d in every if n != "hello"), later
        finally:
            stream.close()


def test_a_stream_of_all_jobs_carries_only_the_users_own_changes_and_deletions(
    database_url: str, sessions: sessionmaker[Session], people: dict, tmp_path: Path
) -> None:
    (mine,) = running_jobs(database_url, people["id"]["alice"], 1)
    (theirs,) = running_jobs(database_url, people["id"]["bob"], 1)
    with api_process(database_url, tmp_path / "api") as url:
        alice = EventStream(url, people["token"]["alice"])
        admin = EventStream(url, people["token"]["root"])
        try:
            alice.next("hello"), admin.next("hello")
            with sessions() as db:
                queries.write_metrics(db, theirs, [epoch(1, 0.3)], progress=0.25, eta_seconds=9.0)
                queries.write_metrics(db, mine, [epoch(1, 0.6)], progress=0.25, eta_seconds=9.0)
            assert alice.next("epoch")["job_id"] == mine
            assert alice.next("job")["id"] == mine
            seen_by_admin = {admin.next("epoch")["job_id"], admin.next("epoch")["job_id"]}
            assert seen_by_admin == {mine, theirs}
            for token, job in ((people["token"]["bob"], theirs), (people["token"]["alice"], mine)):
                response = httpx.delete(f"{url}/api/jobs/{job}", headers={"Authorization": f"Bearer {token}"})
                assert response.status_code == 204, response.text
            assert alice.next("deleted") == {"job_id": mine}
            assert {admin.next("deleted")["job_id"], admin.next("deleted")["job_id"]} == {mine, theirs}
            alice.drain(1.5)
            assert theirs not in {d.get("job_id", d.get("id")) for _, d in alice.seen}, alice.seen
        finally:
            alice.close()
            admin.close()


def test_unknown_or_foreign_ids_are_404_before_the_stream(
    database_url: str, people: dict, tmp_path: Path
) -> None:
    (bobs,) = running_jobs(database_url, people["id"]["bob"], 1)
    exp_id, _ = seed_jobs(
        database_url, [{"config": CONFIG, "acc": 0.9, "pruned": 0.3}], "bob's", people["id"]["bob"]
    )
    (alices,) = running_jobs(database_url, people["id"]["alice"], 1)
    with api_process(database_url, tmp_path / "api") as url:
        headers = {"Authorization": f"Bearer {people['token']['alice']}"}
        with httpx.Client(base_url=url, headers=headers, timeout=10) as client:

            def get(**params: Any) -> httpx.Response:
                return client.get("/api/events", params=params)

            for params, detail in [
                ({"job_id": [alices, bobs]}, f"job {bobs} not found"),
                ({"job_id": 999_999}, "job 999999 not found"),
                ({"experiment_id": exp_id}, f"experiment {exp_id} not found"),
            ]:
                response = get(**params)
                assert (response.status_code, response.json()["detail"]) == (404, detail), params
            response = get(job_id=list(range(1, 102)))
            assert response.status_code == 422
            (error,) = response.json()["detail"]
            assert error["loc"] == ["query", "job_id"] and "at most 100" in error["msg"]
            response = get(job_id=alices, experiment_id=exp_id)
            assert response.status_code == 422 and response.json()["detail"][0]["loc"] == [
                "query",
                "experiment_id",
            ]
            assert get(job_id=0).status_code == 422
            assert get(job_id="x").json()["detail"][0]["loc"] == ["query", "job_id", 0]
            no_token = httpx.get(f"{url}/api/events", timeout=10)
            assert no_token.status_code == 401 and no_token.headers["www-authenticate"] == "Bearer"
        admin = EventStream(url, people["token"]["root"], job_id=bobs)  # an admin may follow anyone's
        try:
            assert admin.status == 200 and admin.next("hello")
        finally:
            admin.close()


def test_an_experiment_stream_and_deleted_jobs(
    database_url: str, sessions: sessionmaker[Session], people: dict, tmp_path: Path
) -> None:
    owner = people["id"]["alice"]
    items = [{"config": {**CONFIG, "seed": i}, "status": "running", "metrics": False} for i in range(2)]
    exp_id, (first, second) = seed_jobs(database_url, items, "sweep", owner)
    (outside,) = running_jobs(database_url, owner, 1)
    with api_process(database_url, tmp_path / "api") as url:
        by_experiment = EventStream(url, people["token"]["alice"], experiment_id=exp_id)
        by_id = EventStream(url, people["token"]["alice"], job_id=[second, outside])
        try:
            by_experiment.next("hello"), by_id.next("hello")
            with sessions() as db:
                queries.write_metrics(db, outside, [epoch(1, 0.2)], progress=0.25, eta_seconds=9.0)
                queries.write_metrics(db, first, [epoch(1, 0.7)], progress=0.25, eta_seconds=9.0)
            assert by_experiment.next("epoch")["job_id"] == first
            headers = {"Authorization": f"Bearer {people['token']['alice']}"}
            response = httpx.delete(f"{url}/api/jobs/{second}", headers=headers, timeout=30)
            assert response.status_code == 204, response.text
            assert by_experiment.next("deleted") == {"job_id": second}
            assert by_id.next("deleted") == {"job_id": second}
            by_experiment.drain(1.5)
            ids = [d.get("job_id", d.get("id")) for n, d in by_experiment.seen if n != "hello"]
            assert outside not in ids and ids.count(second) == 1, by_experiment.seen
            assert [n for n, _ in by_experiment.seen].count("deleted") == 1
        finally:
            by_experiment.close()
            by_id.close()


def test_two_api_processes_on_one_database_both_deliver(
    database_url: str, sessions: sessionmaker[Session], people: dict, tmp_path: Path
) -> None:
    (job_id,) = running_jobs(database_url, people["id"]["alice"], 1)
    with (
        api_process(database_url, tmp_path / "one") as one,
        api_process(database_url, tmp_path / "two") as two,
    ):
        streams = [EventStream(url, people["token"]["alice"], job_id=job_id) for url in (one, two)]
        try:
            for stream in streams:
                stream.next("hello")
            with sessions() as db:
                queries.write_metrics(db, job_id, [epoch(1, 0.61)], progress=0.25, eta_seconds=9.0)
            for stream in streams:
                got = stream.next("epoch")
                assert (got["job_id"], got["epoch"], got["test_acc"]) == (job_id, 1, 0.61)
                assert stream.next("job")["epochs_done"] == 1
        finally:
            for stream in streams:
                stream.close()


# --------------------------------------------------------------------------- the app's own state


@pytest.fixture
def app_and_token(database_url: str, tmp_path: Path) -> Iterator[tuple[Any, str]]:
    from api.main import create_app
    from store.settings import Settings

    settings = Settings(
        database_url=database_url,
        broker_url="filesystem://",
        broker_dir=str(tmp_path / "broker"),
        artifact_dir=str(tmp_path / "artifacts"),
        frontend_dir=str(tmp_path / "no-frontend"),
    )
    yield create_app(settings), create_token(database_url, "carol")


def test_a_client_that_leaves_is_unregistered(app_and_token: tuple[Any, str]) -> None:
    app, token = app_and_token
    hub: EventHub = app.state.events
    hub.idle_seconds = 1.0
    hub.ping_seconds = 0.3
    with served(app) as url:
        streams = [EventStream(url, token) for _ in range(3)]
        for stream in streams:
            stream.next("hello")
        assert hub.subscriber_count == 3
        wait_for(lambda: all(s.comments for s in streams), WAIT, 0.05, "a ping comment on every stream")
        assert all(c.startswith(": ping") for s in streams for c in s.comments)
        for stream in streams:
            stream.close()
        wait_for(lambda: hub.subscriber_count == 0, WAIT, 0.05, "the subscribers to go")
        wait_for(lambda: hub._task is not None and hub._task.done(), WAIT, 0.05, "the idle watcher to stop")
        again = EventStream(url, token)  # a new stream starts it again
        try:
            again.next("hello")
            assert hub.subscriber_count == 1 and not hub._task.done()
        finally:
            again.close()


def test_a_slow_subscriber_is_dropped_and_never_blocks_the_others() -> None:
    user = Principal(id=1, name="alice", is_admin=False, token_id=1)
    hub = EventHub(sessionmaker(), create_engine("sqlite://"))
    slow, fast = Subscriber(user, queue_size=3), Subscriber(user, queue_size=100)
    hub.subscribers |= {slow, fast}
    change = JobChange(7, None, 1, job=encode("job", {"id": 7}))
    change.epochs = [encode("epoch", {"job_id": 7, "epoch": n}) for n in range(1, 6)]
    hub._fan_out(Changes(jobs=[change]))
    assert fast.queue.qsize() == 6
    assert slow.dropped
    final = [slow.queue.get_nowait() for _ in range(slow.queue.qsize())]
    assert len(final) == 2 and final[1] is None
    assert final[0].startswith(b"event: dropped\ndata: ") and b"3 events behind" in final[0]
    hub._fan_out(Changes(jobs=[change]))  # dropped: nothing more is queued for it
    assert slow.queue.qsize() == 0 and fast.queue.qsize() == 12


# --------------------------------------------------------------------------- what the watcher relies on


def test_every_job_write_moves_updated_at(database_url: str, sessions: sessionmaker[Session]) -> None:
    """The watcher reads jobs by ``updated_at``: each write path of ``store.queries`` must move it
    (SQLAlchemy's ``onupdate`` on Core ``update()``), on SQLite and on Postgres."""
    ids = running_jobs(database_url, None, 3)

    def stamp(job_id: int) -> Any:
        with sessions() as db:
            return db.scalar(select(Job.updated_at).where(Job.id == job_id))

    config = TrainConfig.model_validate(CONFIG)
    result = ResultSpec.model_validate(result_for(config, 0.9, 0.3))
    writes: list[tuple[str, int, Callable[[Session], Any]]] = [
        ("report_progress", ids[0], lambda db: queries.report_progress(db, ids[0], 0.3, 5.0)),
        (
            "write_metrics",
            ids[0],
            lambda db: queries.write_metrics(db, ids[0], [epoch(1, 0.5)], progress=0.4),
        ),
        ("heartbeat", ids[0], lambda db: queries.heartbeat(db, ids[0], 0.5, 4.0)),
        ("request_cancel", ids[1], lambda db: queries.request_cancel(db, ids[1])),
        ("finish_job", ids[1], lambda db: queries.finish_job(db, ids[1], "cancelled")),
        ("requeue_job", ids[2], lambda db: queries.requeue_job(db, ids[2])),
        ("claim_job", ids[2], lambda db: queries.claim_job(db, ids[2], "host", "cpu")),
        ("save_result", ids[2], lambda db: queries.save_result(db, ids[2], result, [])),
        ("save_result", ids[0], lambda db: queries.save_result(db, ids[0], result, [])),
    ]
    for name, job_id, write in writes:
        before = stamp(job_id)
        time.sleep(0.01)
        with sessions() as db:
            write(db)
        after = stamp(job_id)
        assert after is not None and after > before, f"{name} left updated_at at {before}"
    # upsert_metric writes a metric row only: the job's row (and updated_at) stays as it is. The
    # watcher reads the metric rows of running jobs on every look for that reason.
    (running,) = running_jobs(database_url, None, 1)
    before = stamp(running)
    with sessions() as db:
        queries.upsert_metric(db, running, epoch(1, 0.5))
    assert stamp(running) == before


def test_a_revoked_token_ends_the_stream(
    app_and_token: tuple[Any, str], sessions: sessionmaker[Session]
) -> None:
    app, token = app_and_token
    app.state.events.reauth_seconds = 0.5
    app.state.tokens.ttl = 0.5  # the app's token cache: a revocation is seen within this
    with served(app) as url:
        stream = EventStream(url, token)
        try:
            stream.next("hello")
            assert stream.drain(1.5) == [], "a valid token keeps the stream open"
            with sessions() as db:
                revoke_token(db, list_tokens(db, "carol")[0].id)
            dropped = stream.next("dropped")
            assert "revoked" in dropped["reason"]
            assert stream.closed.wait(WAIT), "the stream ended"
            wait_for(lambda: app.state.events.subscriber_count == 0, WAIT, 0.05, "the subscriber to go")
        finally:
            stream.close()


def test_a_stopping_server_ends_its_streams_with_a_last_event(
    database_url: str, people: dict, tmp_path: Path
) -> None:
    """SIGTERM: each open stream gets ``dropped`` and a complete response, and the server is down in
    seconds (not after uvicorn's graceful timeout)."""
    server = api_process(database_url, tmp_path / "api")
    url = server.__enter__()
    stream = EventStream(url, people["token"]["alice"])
    try:
        stream.next("hello")
        started = time.monotonic()
        server.__exit__(None, None, None)
        assert time.monotonic() - started < 10
        assert stream.next("dropped")["reason"] == "the server is shutting down; reconnect"
        assert stream.closed.wait(WAIT)
        assert (
            "ASGI callable returned without completing response"
            not in (tmp_path / "api" / "api.log").read_text()
        )
    finally:
        stream.close()

"""Faults injected for real (issue 9): nothing is lost, training is crash-safe.

Real Postgres, Redis (a private ``redis-server`` where the test stops it) and worker processes; the
reconciler runs with short timings so that each fault heals in seconds.
"""

from __future__ import annotations

import errno
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from sqlalchemy import select

from proxns_core.spec import TrainConfig
from proxns_testkit import (
    PG_ADMIN_URL,
    TINY_JOB,
    authorize,
    free_port,
    service_env,
    start_api,
    start_worker,
    stop_process,
    wait_for,
    wait_healthy,
)
from store import Job, Metric, Result, Settings, make_engine, make_sessionmaker
from store.migrate import upgrade
from store.models import Outbox
from store.queries import (
    claim_job,
    create_jobs,
    finish_job,
    mark_delivered,
    pending_outbox,
    request_cancel,
    save_result,
)

pytestmark = pytest.mark.integration

#: One epoch on a small synthetic set.
QUICK = {**TINY_JOB, "dataset": "synthetic", "epochs": 1, "train_subset": 128, "test_subset": 64}
#: Fast reconciler timings for the tests (the defaults are minutes-safe, not seconds).
FAST = {
    "heartbeat_every": "0.5",
    "heartbeat_timeout": "4",
    "reconcile_every": "0.5",
    "redeliver_grace": "3",
    "publish_timeout": "1",
}


def env_for(database_url: str, broker_url: str, queue: str, artifacts: Path, **extra: str) -> dict[str, str]:
    return service_env(
        database_url=database_url,
        broker_url=broker_url,
        queue=queue,
        artifact_dir=str(artifacts),
        **{**FAST, **extra},
    )


@pytest.fixture
def db(make_postgres_db) -> Iterator[tuple[str, object]]:
    url = make_postgres_db()
    upgrade(url)
    engine = make_engine(url)
    yield url, make_sessionmaker(engine)
    engine.dispose()


def kill_connections(database: str) -> int:
    """``pg_terminate_backend`` every connection to ``database``; returns how many were killed."""
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        return conn.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (database,),
        ).fetchone()[0]


def job_row(sessions, job_id: int) -> Job:
    with sessions() as s:
        return s.get(Job, job_id)


def epochs_of(sessions, job_id: int) -> list[int]:
    with sessions() as s:
        return sorted(s.execute(select(Metric.epoch).where(Metric.job_id == job_id)).scalars())


def wait_job(sessions, job_id: int, statuses: set[str], timeout: float, log: Path | None = None) -> Job:
    try:
        return wait_for(
            lambda: (j := job_row(sessions, job_id)).status in statuses and j,
            timeout,
            0.2,
            f"job {job_id} to reach {statuses}",
        )
    except AssertionError:
        if log is not None and log.exists():
            print(log.read_text()[-6000:])
        raise


def submit(sessions, config: dict) -> int:
    """A job created as the API creates it (job and outbox row in one transaction)."""
    with sessions() as s:
        (job,) = create_jobs(s, [TrainConfig(**config)])
        return job.id


# --- the fault matrix ---------------------------------------------------------------------------------


def test_worker_sigkill_at_epoch_2_of_4_resumes_from_the_checkpoint(
    db, redis_url: str, redis_queue: str, tmp_path: Path
) -> None:
    url, sessions = db
    env = env_for(url, redis_url, redis_queue, tmp_path / "artifacts")
    job_id = submit(sessions, {**QUICK, "epochs": 4, "train_subset": 1024})
    first = start_worker(env, tmp_path / "worker1.log")
    try:
        wait_for(lambda: job_row(sessions, job_id).epochs_done >= 2, 120, 0.05, "epoch 2 on the first worker")
        first.send_signal(signal.SIGKILL)  # as an out-of-memory kill or a power loss: no word to anyone
        first.wait(timeout=10)
    finally:
        stop_process(first)
    killed_at = job_row(sessions, job_id).epochs_done
    assert job_row(sessions, job_id).status == "running"

    second = start_worker(env, tmp_path / "worker2.log")
    try:
        done = wait_job(sessions, job_id, {"succeeded", "failed", "cancelled"}, 120, tmp_path / "worker2.log")
    finally:
        stop_process(second)
    assert done.status == "succeeded", done.error
    assert done.attempts == 2 and done.handbacks == 0
    assert epochs_of(sessions, job_id) == [1, 2, 3, 4]  # none lost, none twice
    assert killed_at < 4 and done.epochs_done == 4
    log = (tmp_path / "worker2.log").read_text()
    assert f"job {job_id} lost its worker" in log and f"job {job_id} running (attempt 2)" in log
    # Checkpoints are removed after success (keep_checkpoints is off by default).
    assert not (tmp_path / "artifacts" / str(job_id) / "checkpoint").exists()


def test_a_job_whose_worker_keeps_dying_fails_after_max_attempts(
    db, redis_url: str, redis_queue: str, tmp_path: Path
) -> None:
    url, sessions = db
    env = env_for(url, redis_url, redis_queue, tmp_path / "artifacts", max_attempts="1")
    job_id = submit(sessions, {**QUICK, "epochs": 1000})
    first = start_worker(env, tmp_path / "worker1.log")
    try:
        wait_for(lambda: job_row(sessions, job_id).epochs_done >= 1, 120, 0.1, "an epoch")
        first.kill()
        first.wait(timeout=10)
    finally:
        stop_process(first)
    second = start_worker(env, tmp_path / "worker2.log")
    try:
        done = wait_job(sessions, job_id, {"failed", "queued", "succeeded"}, 60, tmp_path / "worker2.log")
    finally:
        stop_process(second)
    assert done.status == "failed" and done.attempts == 1
    assert done.error.startswith("worker lost: no heartbeat for 4 s, 1 of 1 tries used")


def test_cancel_during_export_ends_cancelled_and_a_failed_job_is_never_overwritten(db) -> None:
    from proxns_core.spec import Result as ResultSpec

    _url, sessions = db
    result = ResultSpec(
        acc_full=0.5,
        acc_slim=0.5,
        acc_finetuned=None,
        channels_total=10,
        channels_pruned=5,
        pruned_fraction=0.5,
        params_full=100,
        params_slim=50,
        flops_full=1000,
        flops_slim=500,
        latency_full_ms=1.0,
        latency_slim_ms=0.5,
        layers=[],
        kept_forced=[],
        device="cpu",
    )
    cancelled, failed, fine = (submit(sessions, QUICK) for _ in range(3))
    with sessions() as s:
        for j in (cancelled, failed, fine):
            assert claim_job(s, j, "here:1", "cpu")
        assert request_cancel(s, cancelled) == "running"  # asked while the worker exports
        finish_job(s, failed, "failed", error="boom")
        assert save_result(s, cancelled, result, []) == "cancelled"
        assert save_result(s, failed, result, []) == "failed"
        assert save_result(s, fine, result, []) == "succeeded"
        assert not claim_job(s, cancelled, "here:2", "cpu")
    assert job_row(sessions, cancelled).status == "cancelled"
    assert job_row(sessions, failed).status == "failed" and job_row(sessions, failed).error == "boom"
    with sessions() as s:
        assert {r for r in s.execute(select(Result.job_id)).scalars()} == {fine}


def test_cancel_during_export_in_the_worker_ends_cancelled(
    db, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import worker.runner as runner

    url, sessions = db
    settings = Settings(database_url=url, artifact_dir=str(tmp_path / "artifacts"), heartbeat_every=0.2)
    job_id = submit(sessions, QUICK)
    real_export = runner.export_slim

    def export_while_cancelled(fitted, out):  # noqa: ANN001
        with sessions() as s:
            request_cancel(s, job_id)
        return real_export(fitted, out)

    monkeypatch.setattr(runner, "export_slim", export_while_cancelled)
    assert runner.run_job(job_id, settings, sessions) == "cancelled"
    done = job_row(sessions, job_id)
    assert done.status == "cancelled" and done.finished_at is not None
    assert epochs_of(sessions, job_id) == [1]


@pytest.mark.parametrize("where", ["checkpoint", "export"])
def test_a_full_artifact_store_fails_the_job_cleans_up_and_the_worker_runs_the_next(
    db, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    import proxns_core.train as train
    import worker.runner as runner

    url, sessions = db
    artifacts = tmp_path / "artifacts"
    settings = Settings(database_url=url, artifact_dir=str(artifacts), heartbeat_every=0.2)
    full, next_one = submit(sessions, {**QUICK, "epochs": 2}), submit(sessions, QUICK)
    real_save, real_export = train.torch.save, runner.export_slim

    def save_on_full_disk(obj, f, *args, **kwargs):  # noqa: ANN001
        Path(f).write_bytes(b"partial")  # a half-written file, as a full disk leaves it
        raise OSError(errno.ENOSPC, "No space left on device", str(f))

    def export_on_full_disk(fitted, out):  # noqa: ANN001
        (Path(out) / "slim.onnx").write_bytes(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    if where == "checkpoint":
        monkeypatch.setattr(train.torch, "save", save_on_full_disk)
    else:
        monkeypatch.setattr(runner, "export_slim", export_on_full_disk)
    assert runner.run_job(full, settings, sessions) == "failed"
    failed = job_row(sessions, full)
    assert failed.status == "failed" and failed.error.startswith("artifact store full")
    assert not (artifacts / str(full)).exists()  # its partial files are gone

    monkeypatch.setattr(train.torch, "save", real_save)
    monkeypatch.setattr(runner, "export_slim", real_export)
    assert runner.run_job(next_one, settings, sessions) == "succeeded"  # same process, next job


def test_postgres_connections_killed_while_the_worker_idles_and_a_lost_message(
    db, redis_url: str, redis_queue: str, tmp_path: Path
) -> None:
    from api.queue import JobQueue
    from api.submission import publish_now

    url, sessions = db
    name = url.rsplit("/", 1)[1]
    env = env_for(url, redis_url, redis_queue, tmp_path / "artifacts")
    queue = JobQueue(Settings(database_url=url, broker_url=redis_url, queue=redis_queue))
    worker = start_worker(env, tmp_path / "worker.log")
    log = tmp_path / "worker.log"
    try:
        first = submit(sessions, QUICK)
        with sessions() as s:
            assert publish_now(s, queue, [s.get(Job, first)]) == [first]
        assert wait_job(sessions, first, {"succeeded", "failed"}, 120, log).status == "succeeded"
        time.sleep(1.0)  # the worker is idle, its pooled connections open
        assert kill_connections(name) >= 1
        second = submit(sessions, QUICK)
        with sessions() as s:
            assert publish_now(s, queue, [s.get(Job, second)]) == [second]
        assert wait_job(sessions, second, {"succeeded", "failed"}, 120, log).status == "succeeded"

        # A message lost after its outbox row was marked delivered (as a Redis restart without
        # persistence loses it): the reconciler finds no live message and delivers the job again.
        lost = submit(sessions, QUICK)
        with sessions() as s:
            rows = s.execute(select(Outbox.id).where(Outbox.job_id == lost)).scalars()
            mark_delivered(s, list(rows))  # marked delivered, never published
            s.commit()
        done = wait_job(sessions, lost, {"succeeded", "failed"}, 120, log)
        assert done.status == "succeeded" and done.attempts == 1
        assert "had no message in the broker" in log.read_text()
    finally:
        stop_process(worker)
        queue.close()


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[tuple[str, callable]]:
    """A redis-server of this test's own (no persistence), and a function that (re)starts it."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    port = free_port()
    procs: list[subprocess.Popen] = []

    def start() -> subprocess.Popen:
        proc = subprocess.Popen(
            [binary, "--port", str(port), "--save", "", "--appendonly", "no", "--daemonize", "no"],
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        procs.append(proc)
        import redis

        wait_for(lambda: _pings(redis.Redis(port=port, socket_timeout=1)), 10, 0.1, "the private Redis")
        return proc

    yield f"redis://127.0.0.1:{port}/0", start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _pings(client) -> bool:  # noqa: ANN001
    try:
        return bool(client.ping())
    except Exception:  # noqa: BLE001
        return False


def test_broker_down_during_submission_answers_201_and_delivers_once_it_is_back(
    db, private_redis, tmp_path: Path
) -> None:
    url, sessions = db
    broker_url, start_redis = private_redis
    redis_proc = start_redis()
    env = env_for(url, broker_url, "proxns-faults", tmp_path / "artifacts")
    port = free_port()
    api = start_api(env, port, tmp_path / "api.log")
    worker = None
    try:
        wait_healthy(f"http://127.0.0.1:{port}", api)
        redis_proc.kill()
        redis_proc.wait()
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            authorize(client, url)
            t0 = time.monotonic()
            responses = [client.post("/api/jobs", json=QUICK) for _ in range(3)]
            took = time.monotonic() - t0
            assert [r.status_code for r in responses] == [201] * 3, responses[0].text
            assert took < 10  # each waits at most the publish timeout, never hangs
            ids = [r.json()["id"] for r in responses]
            assert all(client.get(f"/api/jobs/{j}").json()["status"] == "queued" for j in ids)
            assert client.get("/healthz").status_code == 503  # still answers, says the broker is down
        with sessions() as s:
            pending = s.execute(select(Outbox.job_id).where(Outbox.delivered_at.is_(None))).scalars()
            assert sorted(pending) == ids  # nothing lost: every job waits in the outbox

        start_redis()  # back, empty: nothing of the earlier messages survived
        worker = start_worker(env, tmp_path / "worker.log")
        for job_id in ids:
            done = wait_job(
                sessions, job_id, {"succeeded", "failed", "cancelled"}, 120, tmp_path / "worker.log"
            )
            assert done.status == "succeeded", done.error
            assert epochs_of(sessions, job_id) == [1]
    finally:
        if worker is not None:
            stop_process(worker)
        stop_process(api)


def test_liveness_is_the_heartbeat_not_the_pid(db, tmp_path: Path) -> None:
    """A job 'running' on a live process id (a reused PID, or the same PID in another container) is
    taken back once its heartbeat is stale; a fresh heartbeat keeps it; a cancel-requested one ends."""
    import os
    import socket
    from datetime import timedelta

    from sqlalchemy import update

    from store.models import utcnow
    from store.reconciler import reconcile_once

    url, sessions = db
    settings = Settings(
        database_url=url,
        broker_dir=str(tmp_path / "broker"),
        heartbeat_timeout=4,
        redeliver_grace=3,
        max_attempts=3,
    )
    stale, fresh, cancelled = (submit(sessions, QUICK) for _ in range(3))
    with sessions() as s:
        for j in (stale, fresh, cancelled):
            assert claim_job(s, j, f"{socket.gethostname()}:{os.getpid()}", "cpu")  # a live PID
        old = utcnow() - timedelta(seconds=30)
        s.execute(update(Job).where(Job.id.in_([stale, cancelled])).values(heartbeat_at=old))
        s.execute(update(Job).where(Job.id == cancelled).values(cancel_requested=True))
        s.execute(update(Outbox).values(available_at=utcnow()))
        s.commit()
    published: list[int] = []
    changed = reconcile_once(sessions, settings, published.append)
    assert changed["requeued"] == [stale] and changed["ended"] == [cancelled]
    assert job_row(sessions, stale).status == "queued" and job_row(sessions, fresh).status == "running"
    assert job_row(sessions, cancelled).status == "cancelled"
    assert stale in published  # its new outbox row went out in the same pass
    with sessions() as s:
        assert pending_outbox(s) == []


class TcpProxy:
    """A TCP proxy the test controls: ``down()`` cuts every connection and refuses new ones."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        import socket
        import threading

        self.upstream = upstream
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.is_down = False
        self.flowing = threading.Event()  # cleared by hang(): bytes are held, not forwarded
        self.flowing.set()
        self.conns: list = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        import socket
        import threading

        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.is_down:
                client.close()
                continue
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            with self.lock:
                self.conns += [client, server]
            for a, b, from_server in ((client, server, False), (server, client, True)):
                threading.Thread(target=self._pump, args=(a, b, from_server), daemon=True).start()

    def _hold(self, from_server: bool) -> None:
        """Called before each chunk is forwarded; a subclass may delay it."""

    def _pump(self, src, dst, from_server: bool) -> None:  # noqa: ANN001
        try:
            while data := src.recv(65536):
                self.flowing.wait()
                self._hold(from_server)
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.close()
            except OSError:
                pass

    def down(self) -> None:
        import socket

        self.is_down = True
        with self.lock:
            for s in self.conns:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            self.conns = []

    def up(self) -> None:
        self.is_down = False

    def hang(self) -> None:
        """Keep accepting connections but forward nothing (a hung peer): bytes wait in the proxy."""
        self.flowing.clear()

    def forward(self) -> None:
        """Forward again, the held bytes first."""
        self.flowing.set()

    def close(self) -> None:
        self.flowing.set()
        self.down()
        self.listener.close()


def test_postgres_down_for_seconds_mid_job_the_worker_keeps_training_and_catches_up(
    db, redis_url: str, redis_queue: str, tmp_path: Path
) -> None:
    url, sessions = db
    proxy = TcpProxy(("127.0.0.1", 5432))
    via_proxy = url.replace("@127.0.0.1:5432/", f"@127.0.0.1:{proxy.port}/")
    # The heartbeat timeout outlasts the outage: the job keeps its worker and its try.
    env = env_for(via_proxy, redis_url, redis_queue, tmp_path / "artifacts", heartbeat_timeout="60")
    job_id = submit(sessions, {**QUICK, "epochs": 6, "train_subset": 1024})
    worker = start_worker(env, tmp_path / "worker.log")
    try:
        wait_for(lambda: job_row(sessions, job_id).epochs_done >= 1, 120, 0.1, "an epoch")
        proxy.down()
        during = job_row(sessions, job_id).epochs_done
        time.sleep(6)
        assert job_row(sessions, job_id).epochs_done == during  # nothing reached the database
        proxy.up()
        done = wait_job(sessions, job_id, {"succeeded", "failed", "cancelled"}, 120, tmp_path / "worker.log")
    finally:
        stop_process(worker)
        proxy.close()
    assert done.status == "succeeded", done.error
    assert done.attempts == 1
    assert epochs_of(sessions, job_id) == [1, 2, 3, 4, 5, 6]
    assert "not written yet" in (tmp_path / "worker.log").read_text()  # it trained on, buffering


def test_the_job_list_version_read_survives_a_killed_connection_without_a_pre_ping(db) -> None:
    from api.routes.jobs import read_version

    url, _sessions = db
    engine = make_engine(url, pool_size=1, pre_ping=False)
    try:
        first = read_version(engine)  # the pool now holds one open connection
        name = engine.url.database
        assert kill_connections(name) >= 1
        assert read_version(engine) == first  # the dead connection was replaced, the read retried
    finally:
        engine.dispose()


# --- the broker lost or hung, the API killed before it published ---------------------------------


def test_redis_restarted_without_persistence_with_jobs_queued_and_running(
    db, private_redis, tmp_path: Path
) -> None:
    """Redis SIGKILLed and started empty on the same port while one job runs and two wait in the
    queue: the reconciler delivers the two lost messages again, the running job finishes."""
    from store.reconciler import live_job_ids

    url, sessions = db
    broker_url, start_redis = private_redis
    redis_proc = start_redis()
    env = env_for(url, broker_url, "proxns-faults", tmp_path / "artifacts")
    broker = Settings(broker_url=broker_url, queue="proxns-faults", publish_timeout=1)
    log = tmp_path / "worker.log"
    ids = [submit(sessions, {**QUICK, "epochs": 2, "train_subset": 1024}) for _ in range(3)]
    worker = start_worker(env, log)
    try:

        def one_running_two_waiting() -> int | None:
            running = [j for j in ids if job_row(sessions, j).status == "running"]
            if len(running) != 1 or job_row(sessions, running[0]).epochs_done >= 2:
                return None
            waiting = set(ids) - set(running)
            return running[0] if waiting <= (live_job_ids(broker) or set()) else None

        running = wait_for(one_running_two_waiting, 120, 0.05, "one job running, two waiting in Redis")
        redis_proc.send_signal(signal.SIGKILL)
        redis_proc.wait(timeout=10)
        start_redis()  # the same port, empty: the two waiting messages (and the unacked one) are gone
        assert live_job_ids(broker) == set()
        done = [wait_job(sessions, j, {"succeeded", "failed", "cancelled"}, 120, log) for j in ids]
    finally:
        stop_process(worker)
    for job in done:
        assert job.status == "succeeded", (job.id, job.error)
        assert job.attempts == 1, job.id  # the running one kept its worker; the others ran once
        assert epochs_of(sessions, job.id) == [1, 2]
    text = log.read_text()
    assert "had no message in the broker" in text
    assert f"job {running} lost its worker" not in text


@pytest.mark.slow
def test_broker_hanging_during_submissions_answers_201_in_time_and_delivers_once_it_forwards(
    db, private_redis, tmp_path: Path
) -> None:
    """A broker that accepts connections and answers nothing (a proxy that holds every byte):
    each submission still gets its 201 within the publish timeout and a margin, /healthz answers,
    and once the proxy forwards again every job is delivered and succeeds."""
    from concurrent.futures import ThreadPoolExecutor

    url, sessions = db
    broker_url, start_redis = private_redis
    start_redis()
    proxy = TcpProxy(("127.0.0.1", int(broker_url.rsplit(":", 1)[1].split("/")[0])))
    env = env_for(url, f"redis://127.0.0.1:{proxy.port}/0", "proxns-faults", tmp_path / "artifacts")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    api = start_api(env, port, tmp_path / "api.log")
    log = tmp_path / "worker.log"
    worker = start_worker(env, log)
    try:
        wait_healthy(base, api)
        wait_for(lambda: " ready." in log.read_text(), 90, 0.2, "the worker to be ready")
        proxy.hang()
        with httpx.Client(base_url=base, timeout=30) as client:
            authorize(client, url)

            def post() -> tuple[httpx.Response, float]:
                t0 = time.monotonic()
                response = client.post("/api/jobs", json=QUICK)
                return response, time.monotonic() - t0

            timed = [post() for _ in range(2)]  # one after the other
            with ThreadPoolExecutor(4) as pool:  # and several at once
                timed += list(pool.map(lambda _: post(), range(4)))
            assert [r.status_code for r, _ in timed] == [201] * 6, timed[0][0].text
            slowest = max(took for _, took in timed)
            assert slowest < 5, f"a submission took {slowest:.1f} s with the broker hanging"
            t0 = time.monotonic()
            health = client.get("/healthz")
            health_took = time.monotonic() - t0
            print(f"submissions {[round(took, 2) for _, took in timed]} s, /healthz {health_took:.2f} s")
            assert health_took < 3 and health.status_code == 503  # one 1-second try at the broker
            ids = sorted(r.json()["id"] for r, _ in timed)
            assert all(client.get(f"/api/jobs/{j}").json()["status"] == "queued" for j in ids)
        with sessions() as s:
            pending = s.execute(select(Outbox.job_id).where(Outbox.delivered_at.is_(None))).scalars()
            assert sorted(pending) == ids  # nothing got through, nothing lost: all wait in the outbox
        # The worker's reconciler too gives up on a hung publish (a timeout) instead of blocking.
        wait_for(lambda: "not delivered yet" in log.read_text(), 30, 0.2, "the worker's publish to time out")

        proxy.forward()
        done = [wait_job(sessions, j, {"succeeded", "failed", "cancelled"}, 120, log) for j in ids]
    finally:
        stop_process(worker)
        stop_process(api)
        proxy.close()
    for job in done:
        assert job.status == "succeeded", (job.id, job.error)
        assert job.attempts == 1
        assert epochs_of(sessions, job.id) == [1]


def test_api_killed_between_commit_and_enqueue_the_outbox_delivers_the_jobs(
    db, redis_url: str, redis_queue: str, tmp_path: Path
) -> None:
    """What a killed API leaves behind: jobs and their outbox rows committed, nothing published. A
    worker's reconciler delivers them."""
    from store.reconciler import live_job_ids

    url, sessions = db
    with sessions() as s:  # the API's transaction, then the process dies before it publishes
        ids = [job.id for job in create_jobs(s, [TrainConfig(**QUICK) for _ in range(3)])]
    with sessions() as s:
        pending = s.execute(select(Outbox.job_id).where(Outbox.delivered_at.is_(None))).scalars()
        assert sorted(pending) == sorted(ids)
    assert live_job_ids(Settings(broker_url=redis_url, queue=redis_queue)) == set()
    assert {job_row(sessions, j).status for j in ids} == {"queued"}

    log = tmp_path / "worker.log"
    worker = start_worker(env_for(url, redis_url, redis_queue, tmp_path / "artifacts"), log)
    try:
        done = [wait_job(sessions, j, {"succeeded", "failed", "cancelled"}, 120, log) for j in ids]
    finally:
        stop_process(worker)
    for job in done:
        assert job.status == "succeeded", (job.id, job.error)
        assert job.attempts == 1
        assert epochs_of(sessions, job.id) == [1]
    with sessions() as s:
        assert s.execute(select(Outbox.job_id).where(Outbox.delivered_at.is_(None))).first() is None

"""API under load on Postgres: GET /api/jobs with 1,000 stored jobs, and job submissions per second.

The load comes from a separate process on loopback (a small asyncio HTTP/1.1 keep-alive client,
cheap enough not to steal the server's CPU): 50 concurrent connections, each sending its next
request as soon as the previous answer arrived (closed loop: this measures saturation). A second
run paces the same 50 clients to a fixed total rate (open loop: latency when not saturated). A
third run is closed-loop again while a job's progress changes 20 times a second, as with busy
workers: every change makes each API process render the page again.
Targets (issue 3): p99 < 50 ms for GET /api/jobs, > 200 submissions/s. Every request carries the
Bearer token of a (non-admin) user who owns the stored jobs, so the figures include authentication
and the owner filter.

    python benchmarks/bench_api_load.py [--api-workers 2] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.service_stack import (  # noqa: E402
    REDIS_URL,
    api_process,
    drop_redis_queue,
    percentile,
    postgres_database,
)
from proxns_testkit import TINY_JOB, create_token, service_env  # noqa: E402

# --------------------------------------------------------------------------- load generator (own process)


async def _one_client(
    host: str,
    port: int,
    request: bytes,
    deadline: float,
    interval: float | None,
    latencies: list[float],
    errors: list[int],
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    next_at = time.perf_counter()
    try:
        while True:
            if interval is not None:
                next_at += interval
            now = time.perf_counter()
            if now >= deadline:
                break
            t0 = now
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - t0)
            if status >= 400:
                errors.append(status)
            if interval is not None:
                await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
    finally:
        writer.close()


async def _load(
    url: str, method: str, path: str, body: bytes, clients: int, seconds: float, rate: float | None
) -> dict:
    host, port = url.removeprefix("http://").split(":")
    token = os.environ.get("PROXNS_TOKEN")
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    request = (
        f"{method} {path} HTTP/1.1\r\nHost: {host}\r\n{auth}Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    latencies: list[float] = []
    errors: list[int] = []
    interval = clients / rate if rate else None
    start = time.perf_counter()
    deadline = start + seconds

    # Paced clients start spread over one interval so they do not fire in lock-step.
    async def staggered(i: int) -> None:
        if interval:
            await asyncio.sleep(interval * i / clients)
        await _one_client(host, int(port), request, deadline, interval, latencies, errors)

    await asyncio.gather(*(staggered(i) for i in range(clients)))
    elapsed = time.perf_counter() - start
    return {
        "requests": len(latencies),
        "errors": len(errors),
        "seconds": elapsed,
        "per_second": len(latencies) / elapsed,
        "p50_ms": 1000 * percentile(latencies, 50),
        "p90_ms": 1000 * percentile(latencies, 90),
        "p99_ms": 1000 * percentile(latencies, 99),
        "max_ms": 1000 * max(latencies),
    }


def run_load_process(
    url: str,
    method: str,
    path: str,
    body: dict | None,
    clients: int,
    seconds: float,
    rate: float | None = None,
) -> dict:
    """Run the load generator in a separate Python process and return its figures."""
    spec = json.dumps(
        {
            "url": url,
            "method": method,
            "path": path,
            "body": body,
            "clients": clients,
            "seconds": seconds,
            "rate": rate,
        }
    )
    env = {**os.environ, "PROXNS_TOKEN": TOKEN[0]} if TOKEN else None
    out = subprocess.run(
        [sys.executable, __file__, "--load", spec], capture_output=True, text=True, check=True, env=env
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- set-up and report

#: The load's Bearer token (set by ``main``), handed to the load process as PROXNS_TOKEN.
TOKEN: list[str] = []


def store_jobs(database_url: str, n: int, owner_id: int | None = None) -> None:
    """``n`` jobs in a realistic mix: 60 % succeeded with results, the rest queued/running/failed."""
    from proxns_core.spec import TrainConfig
    from store import Result, make_engine, make_sessionmaker
    from store.models import utcnow
    from store.queries import commit_jobs, new_job

    engine = make_engine(database_url)
    sessions = make_sessionmaker(engine)
    methods = ["proxns", "ns", "baseline"]
    with sessions() as s:
        jobs = []
        for i in range(n):
            method = methods[i % 3]
            cfg = TrainConfig(**{**TINY_JOB, "method": method, "lam": None, "seed": i})
            job = new_job(cfg, owner_id=owner_id)
            job.status = ["succeeded", "succeeded", "succeeded", "queued", "running", "failed"][i % 6]
            if job.status != "queued":
                job.started_at, job.attempts, job.worker_host, job.device = utcnow(), 1, "bench:1", "cpu"
                job.heartbeat_at = job.started_at
            jobs.append(job)
        s.add_all(jobs)
        s.flush()
        layers = [{"name": f"features.{k}", "total": 64, "kept": 40} for k in range(8)]
        for job in jobs:
            if job.status == "succeeded":
                job.finished_at, job.progress, job.epochs_done = utcnow(), 1.0, 2
                s.add(
                    Result(
                        job_id=job.id,
                        acc_full=0.9,
                        acc_slim=0.89,
                        acc_finetuned=None,
                        channels_total=512,
                        channels_pruned=192,
                        pruned_fraction=0.375,
                        params_full=1_000_000,
                        params_slim=400_000,
                        flops_full=10_000_000,
                        flops_slim=4_000_000,
                        latency_full_ms=1.2,
                        latency_slim_ms=0.7,
                        layers=layers,
                        kept_forced=[],
                        device="cpu",
                    )
                )
        commit_jobs(s)  # seeded states a worker would have reached: written directly, counted once
    engine.dispose()


class ChangingJobs:
    """Moves a running job's progress ``hz`` times a second, as a busy worker would, from a thread."""

    def __init__(self, database_url: str, hz: float) -> None:
        import threading

        from store import Job, make_engine, make_sessionmaker

        self.engine = make_engine(database_url, pool_size=1)
        self.sessions = make_sessionmaker(self.engine)
        with self.sessions() as s:
            self.job_id = s.query(Job.id).filter(Job.status == "running").order_by(Job.id.desc()).first()[0]
        self.interval, self.writes = 1.0 / hz, 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        from store.queries import report_progress

        with self.sessions() as s:
            while not self.stop.wait(self.interval):
                self.writes += 1
                report_progress(s, self.job_id, (self.writes % 100) / 100, 60.0)

    def __enter__(self) -> ChangingJobs:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop.set()
        self.thread.join()
        self.engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--api-workers", type=int, default=max(2, os.cpu_count() or 2))
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=200.0, help="total requests/s of the paced run")
    parser.add_argument("--changes-per-second", type=float, default=20.0, help="job updates in the third run")
    args = parser.parse_args()

    queue = f"proxns-bench-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory() as tmp, postgres_database() as db:
        from store import User, make_engine, make_sessionmaker

        TOKEN.append(create_token(db, "bench", admin=False))
        engine = make_engine(db)
        with make_sessionmaker(engine)() as s:
            owner = s.query(User.id).filter(User.name == "bench").scalar()
        engine.dispose()
        store_jobs(db, args.jobs, owner)
        env = service_env(
            database_url=db,
            broker_url=REDIS_URL,
            queue=queue,
            artifact_dir=f"{tmp}/artifacts",
            max_queued_jobs_per_user="1000000",  # the submission run queues thousands
            # The seeded running jobs have no live worker: the reconciler must not take them back.
            heartbeat_timeout="86400",
            reconcile_every=os.environ.get("BENCH_RECONCILE_EVERY", "5"),
        )
        print(
            f"API: {args.api_workers} uvicorn worker(s) on Postgres, {args.jobs} jobs stored; "
            f"load: {args.clients} clients in a separate process, {os.cpu_count()} CPU cores shared"
        )
        with api_process(env, args.api_workers, Path(tmp) / "api.log") as url:
            run_load_process(url, "GET", "/api/jobs", None, args.clients, 2.0)  # warm-up
            closed = run_load_process(url, "GET", "/api/jobs", None, args.clients, args.seconds)
            paced = run_load_process(url, "GET", "/api/jobs", None, args.clients, args.seconds, args.rate)
            with ChangingJobs(db, args.changes_per_second):
                changing = run_load_process(url, "GET", "/api/jobs", None, args.clients, args.seconds)
            posts = run_load_process(url, "POST", "/api/jobs", TINY_JOB, args.clients, args.seconds)
        drop_redis_queue(queue)

    def line(name: str, r: dict) -> str:
        return (
            f"{name:<42} {r['per_second']:8.0f} req/s  p50 {r['p50_ms']:6.1f} ms  p90 {r['p90_ms']:6.1f} ms  "
            f"p99 {r['p99_ms']:6.1f} ms  max {r['max_ms']:6.1f} ms  errors {r['errors']}"
        )

    print(line("GET /api/jobs, closed loop (saturated)", closed))
    print(line(f"GET /api/jobs, paced to {args.rate:.0f} req/s total", paced))
    print(line(f"GET /api/jobs, closed, {args.changes_per_second:.0f} job updates/s", changing))
    print(line("POST /api/jobs (Postgres + Redis enqueue)", posts))
    print(
        f"targets: GET p99 < 50 ms -> closed {closed['p99_ms']:.1f} ms, paced {paced['p99_ms']:.1f} ms; "
        f"submissions > 200/s -> {posts['per_second']:.0f}/s"
    )


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--load":
        spec = json.loads(sys.argv[2])
        body = json.dumps(spec["body"]).encode() if spec["body"] is not None else b""
        result = asyncio.run(
            _load(
                spec["url"],
                spec["method"],
                spec["path"],
                body,
                spec["clients"],
                spec["seconds"],
                spec["rate"],
            )
        )
        print(json.dumps(result))
    else:
        main()

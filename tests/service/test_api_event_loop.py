"""No blocking database call on the API's event loop (issue 9).

The API (one uvicorn process, so one event loop) talks to Postgres through a proxy the test
controls; the proxy then holds every answer of the database for a second. Job-list requests in
flight each need the jobs' change counter (a database read): while they wait, a request that needs
no database must still answer at once, /healthz must answer after its own round trips only, and
the waiting job lists share their reads instead of queueing one after another.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from test_faults import TcpProxy, db, env_for

from proxns_testkit import authorize, free_port, start_api, stop_process, wait_healthy

pytestmark = pytest.mark.integration

__all__ = ["db"]  # the fixture, imported for the test below

DELAY = 1.0


class SlowProxy(TcpProxy):
    """:class:`TcpProxy` that, once ``delay`` is set, holds each chunk the server sends that long."""

    delay = 0.0

    def _hold(self, from_server: bool) -> None:
        if from_server and self.delay:
            time.sleep(self.delay)


@pytest.mark.slow
def test_a_slow_database_read_does_not_stall_the_event_loop(
    db, redis_url: str, redis_queue: str, tmp_path: Path
) -> None:
    url, _sessions = db
    proxy = SlowProxy(("127.0.0.1", 5432))
    via_proxy = url.replace("@127.0.0.1:5432/", f"@127.0.0.1:{proxy.port}/")
    env = env_for(via_proxy, redis_url, redis_queue, tmp_path / "artifacts", token_cache_seconds="600")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    api = start_api(env, port, tmp_path / "api.log")  # one process: one event loop
    try:
        wait_healthy(base, api)
        with httpx.Client(base_url=base, timeout=30) as client:
            token = authorize(client, url)
            for path in ("/api/me", "/api/jobs", "/openapi.json", "/healthz"):
                assert client.get(path).status_code == 200, path  # warm: token cached, pages, pools

            proxy.delay = DELAY  # from now on, every database answer takes a second
            t0 = time.monotonic()
            assert client.get("/healthz").status_code == 200
            health_alone = time.monotonic() - t0
            t0 = time.monotonic()
            assert client.get("/api/jobs").status_code == 200
            list_alone = time.monotonic() - t0
            started = threading.Barrier(5)

            def list_jobs() -> tuple[int, float]:
                with httpx.Client(
                    base_url=base, timeout=30, headers={"Authorization": f"Bearer {token}"}
                ) as c:
                    started.wait()
                    t0 = time.monotonic()
                    return c.get("/api/jobs").status_code, time.monotonic() - t0

            with ThreadPoolExecutor(4) as pool:
                lists = [pool.submit(list_jobs) for _ in range(4)]
                started.wait()
                time.sleep(0.3)  # the four list requests are waiting for the database now

                def timed(path: str) -> tuple[int, float]:
                    t0 = time.monotonic()
                    return client.get(path).status_code, time.monotonic() - t0

                me, spec, health = timed("/api/me"), timed("/openapi.json"), timed("/healthz")
                listed = [f.result() for f in lists]
    finally:
        stop_process(api)
        proxy.close()
    print(
        f"database answers delayed {DELAY} s: /api/me {me[1] * 1000:.0f} ms, /openapi.json "
        f"{spec[1] * 1000:.0f} ms, /healthz {health[1]:.2f} s (alone {health_alone:.2f} s), "
        f"job lists {[round(t, 2) for _, t in listed]} s (alone {list_alone:.2f} s)"
    )
    assert me[0] == 200 and me[1] < 0.5 * DELAY  # no database: never waits for one
    assert spec[0] == 200 and spec[1] < 0.5 * DELAY
    # /healthz pings the database itself (several delayed answers), but does not wait for the job
    # lists' reads as well.
    assert health[0] == 200 and health[1] < health_alone + 0.5 * DELAY
    assert [code for code, _ in listed] == [200] * 4
    # Four concurrent lists share their counter reads (at most two rounds), not four in a row.
    assert max(t for _, t in listed) < 2 * list_alone + 0.5 * DELAY

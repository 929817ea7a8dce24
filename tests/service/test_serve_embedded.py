"""`proxns serve` as a new user runs it: no settings, SQLite and the filesystem queue under ./var/."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from service_checks import check_succeeded_job

from proxns_testkit import TINY_JOB, alive, descendants, free_port, healthy, service_env, wait_for


def proxns_command() -> list[str]:
    script = Path(sys.executable).parent / "proxns"
    return [str(script)] if script.exists() else [sys.executable, "-c", "from proxns_cli import main; main()"]


def test_proxns_serve_runs_a_job_on_the_embedded_default_and_stops_its_children(tmp_path: Path) -> None:
    port = free_port()
    log = (tmp_path / "serve.log").open("w")
    serve = subprocess.Popen(
        [*proxns_command(), "serve", "--port", str(port)],
        cwd=tmp_path,
        env=service_env(),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=url, timeout=30) as client:
            wait_for(lambda: healthy(client), 90, 0.2, "proxns serve to answer /healthz")
            assert client.get("/healthz").json() == {"status": "ok", "database": "ok", "broker": "ok"}
            # The first start made user admin and left its token, readable only by its owner.
            token_file = tmp_path / "var" / "admin-token"
            assert token_file.stat().st_mode & 0o777 == 0o600
            token = token_file.read_text().strip()
            assert token not in (tmp_path / "serve.log").read_text()  # only where it is, never the token
            assert client.get("/api/jobs").status_code == 401
            client.headers["Authorization"] = f"Bearer {token}"
            assert client.get("/api/me").json()["name"] == "admin"
            env = service_env(token=token)
            children = descendants(serve.pid)
            assert children, "proxns serve started no worker process"

            # Submitted with the client command, as the README shows.
            config = tmp_path / "tiny.json"
            config.write_text(json.dumps(TINY_JOB))
            out = subprocess.run(
                [*proxns_command(), "submit", str(config), "--server", url],
                capture_output=True,
                text=True,
                env=env,
                check=True,
            )
            job_id = int(out.stdout.split()[1])

            def finished() -> dict | None:
                job = client.get(f"/api/jobs/{job_id}").json()
                return job if job["status"] in ("succeeded", "failed", "cancelled") else None

            job = wait_for(finished, 180, 0.3, "the job to finish")
            check_succeeded_job(client, job, TINY_JOB, tmp_path)

            target = tmp_path / "model.onnx"
            subprocess.run(
                [
                    *proxns_command(),
                    "download",
                    str(job_id),
                    "--format",
                    "onnx",
                    "-o",
                    str(target),
                    "--server",
                    url,
                ],
                check=True,
                env=env,
                capture_output=True,
            )
            assert target.read_bytes() == (tmp_path / "slim.onnx").read_bytes()

            def cli(*args: str) -> subprocess.CompletedProcess:
                cmd = [*proxns_command(), *args, "--server", url]
                return subprocess.run(cmd, capture_output=True, text=True, env=env)

            listing = cli("jobs", "--status", "succeeded")
            assert listing.returncode == 0
            row = listing.stdout.splitlines()[1].split()
            width = f"{TINY_JOB['width']:g}"
            assert row[:6] == [str(job_id), "succeeded", "proxns", "vgg-11", width, "digits"]
            assert "1 of 1 jobs" in listing.stdout
            shown = json.loads(cli("show", str(job_id), "--metrics").stdout)
            assert shown["id"] == job_id and [m["epoch"] for m in shown["metrics"]] == [1, 2]
            bad = tmp_path / "bad.yaml"
            bad.write_text("arch: resnet\ndepth: 100\n")
            rejected = cli("submit", str(bad))
            assert rejected.returncode == 2
            assert "depth: Value error, depth 100 is not valid for resnet" in rejected.stderr

        # Everything lives under ./var of the directory it was started in.
        var = tmp_path / "var"
        assert (var / "proxns.db").is_file()
        assert (var / "broker" / "queue").is_dir()
        assert (var / "artifacts" / str(job_id) / "slim.onnx").is_file()

        serve.send_signal(signal.SIGTERM)
        started = time.monotonic()
        assert serve.wait(timeout=60) == 0
        wait_for(lambda: not any(alive(pid) for pid in children), 10, 0.1, "serve's children to exit")
        assert time.monotonic() - started < 60
    finally:
        if serve.poll() is None:
            serve.kill()
        log.close()
        print((tmp_path / "serve.log").read_text()[-4000:])
    assert "ProxNS Lab dashboard: http://127.0.0.1:" in (tmp_path / "serve.log").read_text()
    assert "first start: created user admin; its API token is in" in (tmp_path / "serve.log").read_text()

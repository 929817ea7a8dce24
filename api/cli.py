"""``proxns serve`` (API + workers on one machine) and the HTTP client commands
``proxns submit``, ``proxns jobs``, ``proxns show`` and ``proxns download``."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import click
import httpx
import yaml

#: Seconds the training workers get after SIGTERM to hand their job back and exit.
STOP_GRACE = 60.0
DEFAULT_SERVER = "http://127.0.0.1:8000"


# --------------------------------------------------------------------------- serve


def _stop(proc: subprocess.Popen, grace: float) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface the API listens on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(min=0),
    help="Training worker processes started beside the API (0: run the API only).",
)
@click.option(
    "--api-workers", default=1, show_default=True, type=click.IntRange(min=1), help="API server processes."
)
def serve(host: str, port: int, workers: int, api_workers: int) -> None:
    """Migrate the database, start the API and the training workers; Ctrl-C or SIGTERM stops them all.

    SQLite and a filesystem queue under ./var/ unless PROXNS_DATABASE_URL / PROXNS_BROKER_URL say otherwise.
    """
    import uvicorn
    from sqlalchemy.engine import make_url

    from store.migrate import upgrade
    from store.settings import Settings

    settings = Settings()
    upgrade(settings.database_url)
    click.echo(
        f"database {make_url(settings.database_url).render_as_string(hide_password=True)} is up to date"
    )

    received: list[int] = []
    # uvicorn restores these handlers and re-raises the signal it caught once it has shut down.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda s, _f: received.append(s))

    worker = None
    stopping, crashed = threading.Event(), threading.Event()
    if workers:
        worker = subprocess.Popen([sys.executable, "-m", "worker", "--processes", str(workers)])

        def watch() -> None:
            # A worker that dies on its own takes the service down, rather than leaving jobs queued forever.
            worker.wait()
            if not stopping.is_set():
                click.echo(f"training worker exited with code {worker.returncode}; stopping", err=True)
                crashed.set()
                os.kill(os.getpid(), signal.SIGTERM)

        threading.Thread(target=watch, daemon=True).start()

    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    click.echo(f"ProxNS Lab dashboard: http://{shown}:{port}/  (API docs: http://{shown}:{port}/docs)")
    try:
        if not received:
            uvicorn.run(
                "api.main:create_app",
                factory=True,
                host=host,
                port=port,
                workers=api_workers,
                log_level="info",
                timeout_graceful_shutdown=5,
            )
    finally:
        stopping.set()
        code = _stop(worker, STOP_GRACE) if worker is not None else 0
    click.echo("stopped")
    if crashed.is_set() or code not in (0, -signal.SIGTERM):
        sys.exit(1)


# --------------------------------------------------------------------------- client

server_option = click.option(
    "--server",
    envvar="PROXNS_SERVER",
    default=DEFAULT_SERVER,
    show_default=True,
    help="Base URL of the service (or PROXNS_SERVER).",
)


def _request(server: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
    try:
        response = httpx.request(method, server.rstrip("/") + path, timeout=30, **kwargs)
    except httpx.HTTPError as exc:
        raise click.ClickException(f"cannot reach {server}: {exc}") from exc
    if response.status_code >= 400:
        raise click.ClickException(_describe_error(response))
    return response


def _describe_error(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail")
    except ValueError:
        return f"HTTP {response.status_code}: {response.text[:500]}"
    if isinstance(detail, list):
        lines = [
            f"{'.'.join(str(p) for p in e.get('loc', [])[1:]) or 'body'}: {e.get('msg')}" for e in detail
        ]
        return f"HTTP {response.status_code}, invalid request:\n  " + "\n  ".join(lines)
    return f"HTTP {response.status_code}: {detail}"


def _load_config(path: str) -> dict:
    text = sys.stdin.read() if path == "-" else Path(path).read_text()
    data = yaml.safe_load(text)  # YAML is a superset of JSON: one loader for both
    if not isinstance(data, dict):
        raise click.BadParameter(f"{path} must hold a mapping of config fields", param_hint="CONFIG")
    return data


@click.command("submit")
@click.argument("config", type=click.Path(allow_dash=True))
@server_option
@click.option("--json", "as_json", is_flag=True, help="Print the created job (or experiment) as JSON.")
def submit(config: str, server: str, as_json: bool) -> None:
    """Submit a job: CONFIG is a JSON or YAML TrainConfig file ('-' reads stdin).

    A file with `name`, `base` and `sweep` keys creates an experiment (one job per sweep combination).
    """
    data = _load_config(config)
    if "base" in data and "name" in data:
        created = _request(server, "POST", "/api/experiments", json=data).json()
        if as_json:
            click.echo(json.dumps(created, indent=2))
            return
        ids = ", ".join(str(j["id"]) for j in created["jobs"])
        click.echo(
            f"experiment {created['id']} {created['name']!r}: {len(created['jobs'])} jobs queued ({ids})"
        )
        return
    job = _request(server, "POST", "/api/jobs", json=data).json()
    click.echo(json.dumps(job, indent=2) if as_json else f"job {job['id']} {job['status']}")


def _fmt(value: Any, spec: str) -> str:
    return "-" if value is None else format(value, spec)


@click.command("jobs")
@server_option
@click.option("--status", type=click.Choice(["queued", "running", "succeeded", "failed", "cancelled"]))
@click.option("--method", type=click.Choice(["baseline", "ns", "proxns"]))
@click.option("--experiment", "experiment_id", type=int, help="Only this experiment's jobs.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 500))
def jobs(server: str, status: str | None, method: str | None, experiment_id: int | None, limit: int) -> None:
    """List jobs, newest first."""
    params = {"status": status, "method": method, "experiment_id": experiment_id, "limit": limit}
    page = _request(
        server, "GET", "/api/jobs", params={k: v for k, v in params.items() if v is not None}
    ).json()
    head = (
        f"{'id':>5}  {'status':<9}  {'method':<8}  {'model':<12}  {'dataset':<9}  {'lam':>8}  {'progress':>8}"
    )
    click.echo(head + f"  {'acc_slim':>8}  {'pruned':>6}")
    for j in page["items"]:
        c, r = j["config"], j["result"] or {}
        model = f"{c['arch']}-{c['depth']}"
        click.echo(
            f"{j['id']:>5}  {j['status']:<9}  {c['method']:<8}  {model:<12}  {c['dataset']:<9}  "
            f"{_fmt(c.get('lam'), '.4g'):>8}  {j['progress']:>8.0%}  {_fmt(r.get('acc_slim'), '.4f'):>8}  "
            f"{_fmt(r.get('pruned_fraction'), '.1%'):>6}"
        )
    click.echo(f"{len(page['items'])} of {page['total']} jobs")


@click.command("show")
@click.argument("job_id", type=int)
@server_option
@click.option("--metrics", is_flag=True, help="Also print the per-epoch metrics.")
def show(job_id: int, server: str, metrics: bool) -> None:
    """Print one job (config, status, result) as JSON."""
    job = _request(server, "GET", f"/api/jobs/{job_id}").json()
    if metrics:
        job["metrics"] = _request(server, "GET", f"/api/jobs/{job_id}/metrics").json()["items"]
    click.echo(json.dumps(job, indent=2))


@click.command("download")
@click.argument("job_id", type=int)
@server_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["onnx", "torchscript", "safetensors", "json"]),
    default="onnx",
    show_default=True,
)
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, writable=True), help="Default: the file's name."
)
def download(job_id: int, server: str, fmt: str, output: str | None) -> None:
    """Download a finished job's slim model and check its sha256."""
    items = _request(server, "GET", f"/api/jobs/{job_id}/artifacts").json()["items"]
    match = [a for a in items if a["format"] == fmt]
    if not match:
        have = ", ".join(a["format"] for a in items) or "none (the job has not succeeded)"
        raise click.ClickException(f"job {job_id} has no {fmt} file; available: {have}")
    artifact = match[0]
    target = Path(output or artifact["name"])
    digest = hashlib.sha256()
    try:
        with httpx.stream("GET", server.rstrip("/") + artifact["url"], timeout=60) as response:
            if response.status_code >= 400:
                response.read()
                raise click.ClickException(_describe_error(response))
            with target.open("wb") as f:
                for chunk in response.iter_bytes():
                    digest.update(chunk)
                    f.write(chunk)
    except httpx.HTTPError as exc:
        raise click.ClickException(f"cannot reach {server}: {exc}") from exc
    if digest.hexdigest() != artifact["sha256"]:
        raise click.ClickException(
            f"{target}: sha256 {digest.hexdigest()} does not match {artifact['sha256']}"
        )
    click.echo(f"{target} ({artifact['bytes']} bytes, sha256 {artifact['sha256']})")

"""The HTTP client commands ``proxns submit``, ``proxns jobs``, ``proxns show`` and ``proxns download``.

Torch-free: they talk to a server over HTTP and read names (statuses, methods, formats) from the spec.
Every request carries ``Authorization: Bearer`` with the token of ``--token`` or ``PROXNS_TOKEN``.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click
import httpx

from proxns_core.spec import ARTIFACT_FORMATS, JOB_STATUSES, METHODS

from .common import fail, one_line, read_mapping

DEFAULT_SERVER = "http://127.0.0.1:8000"


def check_server(_ctx: click.Context | None, _param: click.Parameter | None, value: str) -> str:
    """``--server`` must be an http(s) URL with a host: ``127.0.0.1:8000`` alone is refused."""
    try:
        parts = urlsplit(value)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number
    except ValueError:
        ok = False
    if not ok:
        fail(
            f"--server {value!r} (or PROXNS_SERVER) is not a URL of the service; "
            f"expected http://HOST:PORT or https://HOST, e.g. {DEFAULT_SERVER}"
        )
    return value.rstrip("/")


server_option = click.option(
    "--server",
    envvar="PROXNS_SERVER",
    default=DEFAULT_SERVER,
    show_default=True,
    callback=check_server,
    help="Base URL of the service, http://HOST:PORT (or PROXNS_SERVER).",
)


token_option = click.option(
    "--token",
    envvar="PROXNS_TOKEN",
    default=None,
    show_envvar=True,
    help="API token (or PROXNS_TOKEN); `proxns user create NAME` prints one.",
)

TOKEN_HINT = "set PROXNS_TOKEN or --token (proxns user create NAME prints a token)"


def auth_headers(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token.strip()}"} if token and token.strip() else {}


def describe_error(response: httpx.Response) -> str:
    """One line for an HTTP error answer: status and the server's ``detail`` (fields of a 422 by ``; ``)."""
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    if response.status_code == 401:
        reason = str(detail).split(";")[0] if isinstance(detail, str) else "token missing or refused"
        return f"HTTP 401: {reason}; {TOKEN_HINT}"
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        return f"HTTP {response.status_code}: {one_line(response.text[:300]) or response.reason_phrase}"
    if isinstance(detail, list):
        fields = [
            f"{'.'.join(str(p) for p in e.get('loc', [])[1:]) or 'body'}: {e.get('msg')}"
            if isinstance(e, dict)
            else str(e)
            for e in detail
        ]
        return f"HTTP {response.status_code}, invalid request: " + "; ".join(fields)
    return f"HTTP {response.status_code}: {detail if detail is not None else response.reason_phrase}"


def _unreachable(server: str, exc: Exception) -> str:
    return f"cannot reach {server}: {one_line(str(exc)) or type(exc).__name__}"


def request(
    server: str,
    method: str,
    path: str,
    token: str | None = None,
    timeout: float = 30,
    headers: dict[str, str] | None = None,
    **kwargs: Any,
) -> Any:
    """``method path`` on the server with ``token``; its JSON answer (None for 204 No Content).
    Unreachable, HTTP errors and non-JSON fail."""
    try:
        response = httpx.request(
            method,
            server + path,
            timeout=timeout,
            headers={**(headers or {}), **auth_headers(token)},
            **kwargs,
        )
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        fail(_unreachable(server, exc))
    if response.status_code >= 400:
        fail(describe_error(response))
    if response.status_code == 204:
        return None
    try:
        return response.json()
    except ValueError:
        fail(f"{server}{path} did not answer JSON (HTTP {response.status_code}); is it a ProxNS Lab server?")


@click.command("submit")
@click.argument("config", type=click.Path(allow_dash=True))
@server_option
@token_option
@click.option("--json", "as_json", is_flag=True, help="Print the created job (or experiment) as JSON.")
@click.option(
    "--wait",
    is_flag=True,
    help="For a budget search: wait until it ends and print its outcome (exit 0 met, 3 not met).",
)
def submit(config: str, server: str, token: str | None, as_json: bool, wait: bool) -> None:
    """Submit a job: CONFIG is a JSON or YAML TrainConfig file ('-' reads stdin).

    A file with `name`, `base` and `sweep` keys creates an experiment (one job per sweep combination);
    one with `name`, `base` and `search` ({target: pruned_fraction | flops_fraction, value, tolerance,
    max_jobs, parallel}) an experiment that searches λ of its proxns base until a job meets the budget.
    """
    data = read_mapping(config, empty_ok=False)
    if "base" in data and "name" in data:
        created = request(server, "POST", "/api/experiments", token, json=data)
        if as_json and not wait:
            click.echo(json.dumps(created, indent=2))
            return
        if created.get("search"):
            _search_outcome(server, token, created, wait, as_json)
            return
        ids = ", ".join(str(j["id"]) for j in created["jobs"])
        click.echo(
            f"experiment {created['id']} {created['name']!r}: {len(created['jobs'])} jobs queued ({ids})"
        )
        return
    job = request(server, "POST", "/api/jobs", token, json=data)
    waiting = f" (waiting: {job['waiting_reason']})" if job.get("waiting_reason") else ""
    click.echo(json.dumps(job, indent=2) if as_json else f"job {job['id']} {job['status']}{waiting}")


def _search_outcome(server: str, token: str | None, exp: dict, wait: bool, as_json: bool) -> None:
    """A searching experiment: its first round, then (``--wait``) every job as it ends and the outcome."""
    spec = exp["search"]
    lams = ", ".join(f"{j['config']['lam']:.4g}" for j in exp["jobs"])
    click.echo(
        f"experiment {exp['id']} {exp['name']!r}: searching λ for {spec['target']} {spec['value']} "
        f"± {spec['tolerance']} (at most {spec['max_jobs']} jobs); first round λ {lams}"
    )
    if not wait:
        return
    seen: set[int] = set()
    while True:
        exp = request(server, "GET", f"/api/experiments/{exp['id']}", token)
        state = exp["search_state"] or {}
        for p in state.get("points", []):
            if p["job_id"] not in seen and p["status"] in ("succeeded", "failed", "cancelled"):
                seen.add(p["job_id"])
                shown = "—" if p["value"] is None else f"{100 * p['value']:.1f} %"
                click.echo(f"job {p['job_id']}: λ {p['lam']:.4g} → {shown} ({p['status']})")
        if state.get("status") in ("met", "closest"):
            break
        time.sleep(2)
    if as_json:
        click.echo(json.dumps(exp, indent=2))
    click.echo(f"{state['status']}: {state['reason']} (best job {state.get('best_job_id')})")
    if state["status"] != "met":
        raise SystemExit(3)


def _fmt(value: Any, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def model_name(config: dict[str, Any]) -> str:
    """``vgg-19`` for the paper's networks, ``resnet18`` for a torchvision one (no depth)."""
    depth = config.get("depth")
    return config["arch"] if depth is None else f"{config['arch']}-{depth}"


@click.command("jobs")
@server_option
@token_option
@click.option("--status", type=click.Choice(JOB_STATUSES))
@click.option("--method", type=click.Choice(METHODS))
@click.option("--experiment", "experiment_id", type=int, help="Only this experiment's jobs.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 500))
def jobs(
    server: str,
    token: str | None,
    status: str | None,
    method: str | None,
    experiment_id: int | None,
    limit: int,
) -> None:
    """List jobs, newest first."""
    params = {"status": status, "method": method, "experiment_id": experiment_id, "limit": limit}
    page = request(
        server, "GET", "/api/jobs", token, params={k: v for k, v in params.items() if v is not None}
    )
    head = f"{'id':>5}  {'status':<9}  {'method':<8}  {'model':<18}  {'dataset':<11}  {'lam':>8}  {'progress':>8}"
    click.echo(head + f"  {'acc_slim':>8}  {'pruned':>6}")
    for j in page["items"]:
        c, r = j["config"], j["result"] or {}
        click.echo(
            f"{j['id']:>5}  {j['status']:<9}  {c['method']:<8}  {model_name(c):<18}  {c['dataset']:<11}  "
            f"{_fmt(c.get('lam'), '.4g'):>8}  {j['progress']:>8.0%}  {_fmt(r.get('acc_slim'), '.4f'):>8}  "
            f"{_fmt(r.get('pruned_fraction'), '.1%'):>6}"
        )
        if j.get("waiting_reason"):
            click.echo(f"{'':>5}  waiting: {j['waiting_reason']}")
    click.echo(f"{len(page['items'])} of {page['total']} jobs")


@click.command("show")
@click.argument("job_id", type=int)
@server_option
@token_option
@click.option("--metrics", is_flag=True, help="Also print the per-epoch metrics.")
def show(job_id: int, server: str, token: str | None, metrics: bool) -> None:
    """Print one job (config, status, result) as JSON."""
    job = request(server, "GET", f"/api/jobs/{job_id}", token)
    if metrics:
        job["metrics"] = request(server, "GET", f"/api/jobs/{job_id}/metrics", token)["items"]
    click.echo(json.dumps(job, indent=2))


def _check_target(target: Path, given: bool) -> None:
    """Fail before anything is downloaded when ``target`` cannot be written."""
    shown = f"-o {target}" if given else str(target)
    folder = target.parent
    if target.is_dir():
        fail(f"{shown}: is a folder; give a file name")
    if not folder.is_dir():
        fail(f"{shown}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        fail(f"{shown}: folder {folder} is not writable")


@click.command("download")
@click.argument("job_id", type=int)
@server_option
@token_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(list(ARTIFACT_FORMATS)),
    default="onnx",
    show_default=True,
)
@click.option("-o", "--output", type=click.Path(), help="File to write (default: the file's name, here).")
def download(job_id: int, server: str, token: str | None, fmt: str, output: str | None) -> None:
    """Download a finished job's slim model and check its sha256."""
    if output is not None:
        _check_target(Path(output), given=True)
    items = request(server, "GET", f"/api/jobs/{job_id}/artifacts", token)["items"]
    match = [a for a in items if a["format"] == fmt]
    if not match:
        have = ", ".join(a["format"] for a in items) or "none (the job has not succeeded)"
        fail(f"job {job_id} has no {fmt} file; available: {have}")
    artifact = match[0]
    target = Path(output or artifact["name"])
    if output is None:
        _check_target(target, given=False)
    partial = target.with_name(target.name + ".part")
    digest = hashlib.sha256()
    try:
        with httpx.stream(
            "GET", server + artifact["url"], timeout=60, headers=auth_headers(token)
        ) as response:
            if response.status_code >= 400:
                response.read()
                fail(describe_error(response))
            with partial.open("wb") as f:
                for chunk in response.iter_bytes():
                    digest.update(chunk)
                    f.write(chunk)
        if digest.hexdigest() != artifact["sha256"]:
            fail(f"{target}: sha256 {digest.hexdigest()} does not match {artifact['sha256']}; not saved")
        os.replace(partial, target)
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        fail(_unreachable(server, exc))
    except OSError as exc:
        fail(f"{target}: cannot write it ({exc.strerror or exc})")
    finally:
        partial.unlink(missing_ok=True)
    click.echo(f"{target} ({artifact['bytes']} bytes, sha256 {artifact['sha256']})")

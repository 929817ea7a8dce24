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
@click.option(
    "--dry-run",
    is_flag=True,
    help="For an experiment file: print the jobs it would create, by method; create nothing.",
)
def submit(config: str, server: str, token: str | None, as_json: bool, wait: bool, dry_run: bool) -> None:
    """Submit a job: CONFIG is a JSON or YAML TrainConfig file ('-' reads stdin).

    A file with `name`, `base` and `sweep` keys creates an experiment (one job per sweep combination);
    one with `name`, `base` and `search` ({target: pruned_fraction | flops_fraction, value, tolerance,
    max_jobs, parallel}) an experiment that searches λ of its proxns base until a job meets the budget.
    """
    data = read_mapping(config, empty_ok=False)
    if dry_run:
        if not ("base" in data and "name" in data):
            fail("--dry-run applies to experiment files (name, base, sweep or search)")
        from .organise import print_plan  # here: organise imports this module

        plan = request(server, "POST", "/api/experiments", token, json=data, params={"dry_run": "true"})
        if as_json:
            click.echo(json.dumps(plan, indent=2))
        else:
            print_plan(plan, "would create")
        return
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
        if state.get("status") in ("met", "closest", "cancelled"):
            break
        time.sleep(2)
    if as_json:
        click.echo(json.dumps(exp, indent=2))
    click.echo(f"{state['status']}: {state['reason']} (best job {state.get('best_job_id')})")
    if state["status"] != "met":
        raise SystemExit(3)


def _fmt(value: Any, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def percent(value: float | None) -> str:
    """A fraction of the API (an accuracy, a pruned share) as people read it: ``98.3 %``."""
    return "-" if value is None else f"{100 * value:.1f} %"


def model_name(config: dict[str, Any]) -> str:
    """``vgg-19`` for the paper's networks, ``resnet18`` for a torchvision one (no depth)."""
    depth = config.get("depth")
    return config["arch"] if depth is None else f"{config['arch']}-{depth}"


#: The job table's columns: heading, how a job fills it, left-aligned. Width, β, prune ratio, seed
#: and epochs are there so that jobs of one sweep that differ only there can be told apart.
JOB_COLUMNS: tuple[tuple[str, Any, bool], ...] = (
    ("id", lambda j, c, r: str(j["id"]), False),
    ("status", lambda j, c, r: _status(j), True),
    ("method", lambda j, c, r: c["method"], True),
    ("model", lambda j, c, r: model_name(c), True),
    ("width", lambda j, c, r: "-" if c.get("depth") is None else _fmt(c.get("width"), "g"), False),
    ("dataset", lambda j, c, r: c["dataset"], True),
    ("lam", lambda j, c, r: _fmt(c.get("lam"), ".4g"), False),
    ("beta", lambda j, c, r: _fmt(c.get("beta"), ".4g"), False),
    ("ratio", lambda j, c, r: _fmt(c.get("prune_ratio"), ".4g"), False),
    ("seed", lambda j, c, r: str(c.get("seed", "-")), False),
    ("epochs", lambda j, c, r: _epochs(c), False),
    ("acc_full", lambda j, c, r: percent(r.get("acc_full")), False),
    ("acc_slim", lambda j, c, r: percent(r.get("acc_slim")), False),
    ("acc_ft", lambda j, c, r: percent(r.get("acc_finetuned")), False),
    ("pruned", lambda j, c, r: percent(r.get("pruned_fraction")), False),
    ("", lambda j, c, r: _flags(j), True),
)


def _status(job: dict[str, Any]) -> str:
    return f"running {100 * job['progress']:.0f} %" if job["status"] == "running" else job["status"]


def _epochs(config: dict[str, Any]) -> str:
    """Training epochs, with the fine-tuning epochs after a ``+`` (``20+5``)."""
    extra = config.get("finetune_epochs") or 0
    return f"{config['epochs']}+{extra}" if extra else str(config["epochs"])


def _flags(job: dict[str, Any]) -> str:
    """``! chance_accuracy`` for a job whose result a reader must not take at face value."""
    codes = [w["code"] for w in job.get("warnings") or []]
    return "! " + ", ".join(codes) if codes else ""


def job_table(items: list[dict[str, Any]]) -> list[str]:
    """The lines of a table of ``items`` (jobs as the API answers them), columns as wide as they need."""
    rows = [[fill(j, j["config"], j["result"] or {}) for _, fill, _ in JOB_COLUMNS] for j in items]
    widths = [max([len(head)] + [len(row[i]) for row in rows]) for i, (head, _, _) in enumerate(JOB_COLUMNS)]

    def line(cells: list[str]) -> str:
        text = "  ".join(
            cell.ljust(w) if left else cell.rjust(w)
            for cell, w, (_, _, left) in zip(cells, widths, JOB_COLUMNS, strict=True)
        )
        return text.rstrip()

    out = [line([head for head, _, _ in JOB_COLUMNS])]
    for job, row in zip(items, rows, strict=True):
        out.append(line(row))
        if job.get("waiting_reason"):
            out.append(f"{'':>{widths[0]}}  waiting: {job['waiting_reason']}")
    return out


@click.command("jobs")
@server_option
@token_option
@click.option("--status", type=click.Choice(JOB_STATUSES))
@click.option("--method", type=click.Choice(METHODS))
@click.option("--experiment", "experiment_id", type=int, help="Only this experiment's jobs.")
@click.option(
    "--where",
    help='Filter expression, e.g. "method = proxns and lam >= 0.1 and acc_slim > 0.95" '
    "(fields: GET /api/meta, or the README's 'Finding jobs').",
)
@click.option(
    "--sort", default="-id", show_default=True, help="A field to sort on; a leading - sorts descending."
)
@click.option("--tag", "tags", multiple=True, help="Only jobs with this tag (repeat: all of them).")
@click.option("--archived", is_flag=True, help="Only archived jobs.")
@click.option("--all", "show_all", is_flag=True, help="Archived jobs too.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 500))
@click.option("--offset", default=0, show_default=True, type=click.IntRange(0), help="Skip this many jobs.")
def jobs(
    server: str,
    token: str | None,
    status: str | None,
    method: str | None,
    experiment_id: int | None,
    where: str | None,
    sort: str,
    tags: tuple[str, ...],
    archived: bool,
    show_all: bool,
    limit: int,
    offset: int,
) -> None:
    """List jobs, newest first (or by --sort); accuracies in percent, `!` marks a warning."""
    if archived and show_all:
        fail("--archived (only archived jobs) and --all (archived ones too) exclude each other; give one")
    params: dict[str, Any] = {
        "status": status,
        "method": method,
        "experiment_id": experiment_id,
        "where": where,
        "sort": sort,
        "tag": list(tags) or None,
        "archived": "true" if archived else "all" if show_all else None,
        "limit": limit,
        "offset": offset or None,
    }
    page = request(
        server, "GET", "/api/jobs", token, params={k: v for k, v in params.items() if v is not None}
    )
    for text in job_table(page["items"]):
        click.echo(text)
    shown = len(page["items"])
    footer = f"{shown} of {page['total']} jobs"
    if offset:
        footer += f", from #{offset + 1}"
    if offset + shown < page["total"]:
        footer += f"; next page: --offset {offset + shown}"
    click.echo(footer)


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

"""Organising jobs and experiments from the console: ``proxns cancel``, ``tag``, ``note``, ``archive``,
``unarchive``, ``delete`` and the ``proxns experiments`` group (list, show, rename, cancel, delete,
add, plan, archive, unarchive).

Torch-free HTTP commands over the API's organising routes (PATCH/DELETE of jobs and experiments,
``POST /api/experiments/{id}/cancel``, ``POST /api/experiments/{id}/jobs``, ``dry_run=true``).
Deletions cannot be undone: they ask first, and without a terminal to ask on they need ``--yes``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from typing import Any

import click

from .client import request, server_option, token_option
from .common import fail, read_mapping

#: Config fields shown for each planned or listed job, beside its method (those a sweep varies most).
PLAN_FIELDS = ("lam", "beta", "prune_ratio", "penalty", "seed", "width", "epochs")


def _pct(value: float | None) -> str:
    """An accuracy (a fraction in the API) as the dashboard shows it: ``98.3 %``."""
    return "-" if value is None else f"{100 * value:.1f} %"


def _num(value: Any) -> str:
    return "-" if value is None else format(value, ".4g") if isinstance(value, float) else str(value)


def confirm_deletion(what: str, yes: bool) -> None:
    """Ask before deleting; without a terminal to ask on, refuse unless ``--yes`` was given."""
    if yes:
        return
    if not sys.stdin.isatty():
        fail(f"not deleting {what} without confirmation: no terminal to ask on; pass --yes")
    if not click.confirm(f"Delete {what} for good (rows and model files)?", default=False):
        fail(f"not deleted: {what}")


def _patch_job(server: str, token: str | None, job_id: int, changes: dict[str, Any]) -> dict:
    return request(server, "PATCH", f"/api/jobs/{job_id}", token, json=changes)


def _ids_text(ids: Iterable[int]) -> str:
    ids = list(ids)
    return ", ".join(str(i) for i in ids) if ids else "none"


# --------------------------------------------------------------------------- jobs


@click.command("cancel")
@click.argument("job_ids", nargs=-1, type=click.IntRange(1))
@click.option(
    "--experiment", "experiment_id", type=click.IntRange(1), help="Cancel all of this experiment's jobs."
)
@server_option
@token_option
def cancel(job_ids: tuple[int, ...], experiment_id: int | None, server: str, token: str | None) -> None:
    """Cancel jobs (queued ones end at once, running ones within seconds), or --experiment ID's all."""
    if bool(job_ids) == (experiment_id is not None):
        fail("give job ids (proxns cancel 12 13) or --experiment ID, not both and not neither")
    if experiment_id is not None:
        done = request(server, "POST", f"/api/experiments/{experiment_id}/cancel", token)
        click.echo(
            f"experiment {experiment_id}: cancelled {len(done['cancelled'])} job(s): {_ids_text(done['cancelled'])}"
        )
        return
    for job_id in job_ids:
        job = request(server, "POST", f"/api/jobs/{job_id}/cancel", token)
        click.echo(f"job {job_id} {job['status']}" + (" (stopping)" if job["status"] == "running" else ""))


@click.command("tag")
@click.argument("job_id", type=click.IntRange(1))
@click.argument("tags", nargs=-1, required=True)
@click.option("--remove", is_flag=True, help="Remove these tags instead of adding them.")
@server_option
@token_option
def tag(job_id: int, tags: tuple[str, ...], remove: bool, server: str, token: str | None) -> None:
    """Add TAGS to a job (or --remove them); prints the job's tags."""
    have = request(server, "GET", f"/api/jobs/{job_id}", token)["tags"]
    given = [t.strip() for t in tags]
    if remove:
        missing = [t for t in given if t not in have]
        if missing:
            fail(f"job {job_id} has no tag {', '.join(missing)}; its tags: {', '.join(have) or 'none'}")
        new = [t for t in have if t not in given]
    else:
        new = list(dict.fromkeys([*have, *given]))
    job = _patch_job(server, token, job_id, {"tags": new})
    click.echo(f"job {job_id} tags: {', '.join(job['tags']) or 'none'}")


@click.command("note")
@click.argument("job_id", type=click.IntRange(1))
@click.argument("text")
@server_option
@token_option
def note(job_id: int, text: str, server: str, token: str | None) -> None:
    """Set a job's note to TEXT ('-' reads it from stdin; '' clears it)."""
    if text == "-":
        text = sys.stdin.read()
    _patch_job(server, token, job_id, {"note": text})
    click.echo(f"job {job_id}: note {'cleared' if not text else f'set ({len(text)} characters)'}")


def _set_archived(kind: str, ids: Iterable[int], archived: bool, server: str, token: str | None) -> None:
    path = "/api/jobs" if kind == "job" else "/api/experiments"
    for i in ids:
        request(server, "PATCH", f"{path}/{i}", token, json={"archived": archived})
        click.echo(f"{kind} {i} {'archived (hidden from default lists)' if archived else 'unarchived'}")


@click.command("archive")
@click.argument("job_ids", nargs=-1, required=True, type=click.IntRange(1))
@server_option
@token_option
def archive(job_ids: tuple[int, ...], server: str, token: str | None) -> None:
    """Archive jobs: hidden from default lists (proxns jobs --archived shows them)."""
    _set_archived("job", job_ids, True, server, token)


@click.command("unarchive")
@click.argument("job_ids", nargs=-1, required=True, type=click.IntRange(1))
@server_option
@token_option
def unarchive(job_ids: tuple[int, ...], server: str, token: str | None) -> None:
    """Show archived jobs in default lists again."""
    _set_archived("job", job_ids, False, server, token)


@click.command("delete")
@click.argument("job_ids", nargs=-1, required=True, type=click.IntRange(1))
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@server_option
@token_option
def delete(job_ids: tuple[int, ...], yes: bool, server: str, token: str | None) -> None:
    """Delete jobs with their metrics, results and model files (running ones are cancelled first)."""
    confirm_deletion(f"job(s) {_ids_text(job_ids)}", yes)
    for job_id in job_ids:
        request(server, "DELETE", f"/api/jobs/{job_id}", token)
        click.echo(f"job {job_id} deleted")


# --------------------------------------------------------------------------- experiments


@click.group("experiments")
def experiments() -> None:
    """Experiments: list, show, rename, cancel, delete, add jobs, plan a sweep, archive."""


@experiments.command("list")
@click.option("--archived", "which", flag_value="true", help="Only archived experiments.")
@click.option("--all", "which", flag_value="all", help="Archived ones too.")
@click.option("--q", "query", help="Only those whose name, note or a tag holds this text.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 500))
@click.option("--json", "as_json", is_flag=True, help="Print the page as JSON.")
@server_option
@token_option
def list_(
    which: str | None, query: str | None, limit: int, as_json: bool, server: str, token: str | None
) -> None:
    """List experiments, newest first (archived ones hidden unless --archived or --all)."""
    params: dict[str, Any] = {"archived": which or "false", "limit": limit}
    if query:
        params["q"] = query
    page = request(server, "GET", "/api/experiments", token, params=params)
    if as_json:
        click.echo(json.dumps(page, indent=2))
        return
    click.echo(f"{'id':>5}  {'name':<30}  {'jobs':>4}  {'done':>4}  {'running':>7}  {'queued':>6}  tags")
    for e in page["items"]:
        c = e["status_counts"]
        name = e["name"] if len(e["name"]) <= 30 else e["name"][:29] + "…"
        mark = " [archived]" if e.get("archived_at") else ""
        click.echo(
            f"{e['id']:>5}  {name:<30}  {e['job_count']:>4}  {c.get('succeeded', 0):>4}  "
            f"{c.get('running', 0):>7}  {c.get('queued', 0):>6}  {', '.join(e.get('tags', [])) or '-'}{mark}"
        )
    click.echo(f"{len(page['items'])} of {page['total']} experiments")


def _job_row(config: dict[str, Any]) -> str:
    return "  ".join(f"{_num(config.get(f)):>8}" for f in PLAN_FIELDS)


HEAD = "  ".join(f"{f:>8}" for f in PLAN_FIELDS)


@experiments.command("show")
@click.argument("experiment_id", type=click.IntRange(1))
@click.option("--json", "as_json", is_flag=True, help="Print the experiment as JSON.")
@server_option
@token_option
def show(experiment_id: int, as_json: bool, server: str, token: str | None) -> None:
    """An experiment: its labels, its jobs (config, status, accuracy, channels pruned)."""
    exp = request(server, "GET", f"/api/experiments/{experiment_id}", token)
    if as_json:
        click.echo(json.dumps(exp, indent=2))
        return
    archived = f", archived {exp['archived_at']}" if exp.get("archived_at") else ""
    click.echo(f"experiment {exp['id']} {exp['name']!r}: {len(exp['jobs'])} jobs{archived}")
    click.echo(f"tags: {', '.join(exp.get('tags', [])) or 'none'}")
    if exp.get("note"):
        click.echo("note: " + exp["note"].replace("\n", "\n      "))
    click.echo(f"{'id':>5}  {'status':<9}  {'method':<8}  {HEAD}  {'acc_slim':>8}  {'pruned':>7}")
    for j in exp["jobs"]:
        r = j.get("result") or {}
        pruned = "-" if r.get("pruned_fraction") is None else f"{100 * r['pruned_fraction']:.1f} %"
        click.echo(
            f"{j['id']:>5}  {j['status']:<9}  {j['config']['method']:<8}  {_job_row(j['config'])}  "
            f"{_pct(r.get('acc_slim')):>8}  {pruned:>7}"
        )


@experiments.command("rename")
@click.argument("experiment_id", type=click.IntRange(1))
@click.argument("name")
@server_option
@token_option
def rename(experiment_id: int, name: str, server: str, token: str | None) -> None:
    """Rename an experiment."""
    exp = request(server, "PATCH", f"/api/experiments/{experiment_id}", token, json={"name": name})
    click.echo(f"experiment {experiment_id} renamed {exp['name']!r}")


@experiments.command("cancel")
@click.argument("experiment_id", type=click.IntRange(1))
@server_option
@token_option
def cancel_experiment(experiment_id: int, server: str, token: str | None) -> None:
    """Cancel all of an experiment's queued and running jobs (and its budget search)."""
    done = request(server, "POST", f"/api/experiments/{experiment_id}/cancel", token)
    click.echo(
        f"experiment {experiment_id}: cancelled {len(done['cancelled'])} job(s): {_ids_text(done['cancelled'])}"
    )


@experiments.command("delete")
@click.argument("experiment_id", type=click.IntRange(1))
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@server_option
@token_option
def delete_experiment(experiment_id: int, yes: bool, server: str, token: str | None) -> None:
    """Delete an experiment with all its jobs and their files (running ones are cancelled first)."""
    exp = request(server, "GET", f"/api/experiments/{experiment_id}", token)
    confirm_deletion(f"experiment {experiment_id} {exp['name']!r} and its {len(exp['jobs'])} job(s)", yes)
    request(server, "DELETE", f"/api/experiments/{experiment_id}", token)
    click.echo(f"experiment {experiment_id} deleted with its {len(exp['jobs'])} job(s)")


@experiments.command("archive")
@click.argument("experiment_ids", nargs=-1, required=True, type=click.IntRange(1))
@server_option
@token_option
def archive_experiment(experiment_ids: tuple[int, ...], server: str, token: str | None) -> None:
    """Archive experiments: hidden from default lists (their jobs are not archived)."""
    _set_archived("experiment", experiment_ids, True, server, token)


@experiments.command("unarchive")
@click.argument("experiment_ids", nargs=-1, required=True, type=click.IntRange(1))
@server_option
@token_option
def unarchive_experiment(experiment_ids: tuple[int, ...], server: str, token: str | None) -> None:
    """Show archived experiments in default lists again."""
    _set_archived("experiment", experiment_ids, False, server, token)


def print_plan(plan: dict[str, Any], verb: str) -> None:
    """A dry run's answer: the count by method, then each job's swept fields."""
    by_method = ", ".join(f"{m} {n}" for m, n in plan["count_by_method"].items()) or "none"
    skipped = plan["skipped_duplicates"]
    tail = f"; {skipped} combination(s) skipped as duplicates" if skipped else ""
    click.echo(f"{verb} {plan['count']} job(s) ({by_method}){tail}")
    if plan["jobs"]:
        click.echo(f"{'method':<8}  {HEAD}")
    for config in sorted(plan["jobs"], key=lambda c: c["method"]):
        click.echo(f"{config['method']:<8}  {_job_row(config)}")


@experiments.command("add")
@click.argument("experiment_id", type=click.IntRange(1))
@click.argument("config_file", type=click.Path(allow_dash=True))
@click.option("--dry-run", is_flag=True, help="Print the jobs it would add; add nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the answer as JSON.")
@server_option
@token_option
def add(
    experiment_id: int, config_file: str, dry_run: bool, as_json: bool, server: str, token: str | None
) -> None:
    """Add jobs to an experiment: CONFIG_FILE (YAML/JSON) holds `sweep` lists (`by_method` too) and an
    optional partial `base` changing the experiment's base. Configs it already has are skipped."""
    data = read_mapping(config_file, empty_ok=False)
    extra = sorted(set(data) - {"sweep", "base"})
    if extra:
        fail(
            f"{config_file}: unexpected key(s) {', '.join(extra)}; a file to add jobs holds `sweep` and optional `base`"
        )
    if "sweep" not in data:
        fail(f"{config_file}: no `sweep`; give the lists to add, e.g. sweep: {{seed: [2, 3]}}")
    path = f"/api/experiments/{experiment_id}/jobs"
    answer = request(server, "POST", path, token, json=data, params={"dry_run": "true"} if dry_run else None)
    if as_json:
        click.echo(json.dumps(answer, indent=2))
    elif dry_run:
        print_plan(answer, f"experiment {experiment_id}: would add")
    else:
        ids = [j["id"] for j in answer["created"]]
        skipped = f"; {answer['skipped']} already in it, skipped" if answer["skipped"] else ""
        click.echo(f"experiment {experiment_id}: {len(ids)} job(s) queued ({_ids_text(ids)}){skipped}")


@experiments.command("plan")
@click.argument("config_file", type=click.Path(allow_dash=True))
@click.option("--json", "as_json", is_flag=True, help="Print the answer as JSON.")
@server_option
@token_option
def plan(config_file: str, as_json: bool, server: str, token: str | None) -> None:
    """Print the jobs an experiment file (`base` and `sweep`, as for `proxns submit`) would create, by
    method, with the server's own count and checks; nothing is created."""
    data = read_mapping(config_file, empty_ok=False)
    if "base" not in data:
        fail(f"{config_file}: no `base`; an experiment file holds `name`, `base` and `sweep` (or `search`)")
    data.setdefault("name", "plan")
    answer = request(server, "POST", "/api/experiments", token, json=data, params={"dry_run": "true"})
    if as_json:
        click.echo(json.dumps(answer, indent=2))
    else:
        print_plan(answer, "would create")


COMMANDS = (cancel, tag, note, archive, unarchive, delete, experiments)

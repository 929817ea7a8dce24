"""``proxns worker``: one Celery worker process, or one per GPU pinned with CUDA_VISIBLE_DEVICES.

``python -m proxns_cli worker`` (how ``proxns serve`` and the supervisor start worker children) runs this
command too. Celery and torch load only in the process that really runs a worker.
"""

from __future__ import annotations

import os
import sys

import click

from .supervise import supervise


def parse_gpus(text: str) -> list[str]:
    """``"0,1"`` -> ``["0", "1"]``; anything but distinct non-negative integers is a usage error."""
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items or not all(t.isdigit() for t in items) or len(set(items)) != len(items):
        raise click.BadParameter(
            f"{text!r} is not a list of GPU indices; give distinct integers such as 0,1,2",
            param_hint="--gpus",
        )
    return items


def celery_argv(name: str, loglevel: str, queue: str) -> list[str]:
    # Solo pool: the job runs in the worker's own process, so SIGTERM reaches the training loop.
    return [
        "worker",
        "--pool=solo",
        "--concurrency=1",
        "--prefetch-multiplier=1",
        f"--loglevel={loglevel}",
        f"--hostname={name}",
        f"--queues={queue}",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
    ]


def run_in_process(name: str, loglevel: str) -> None:
    """Run one Celery worker in this process until SIGTERM/SIGINT."""
    from worker.app import app, settings

    app.worker_main(celery_argv(name, loglevel, settings.queue))


def child_command(name: str, loglevel: str) -> list[str]:
    return [sys.executable, "-m", "proxns_cli", "worker", "--name", name, "--loglevel", loglevel]


@click.command("worker")
@click.option(
    "--gpus",
    default=None,
    metavar="0,1,...",
    help="One worker process per listed GPU, each seeing only its card (CUDA_VISIBLE_DEVICES).",
)
@click.option(
    "--processes",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Worker processes without GPU pinning (ignored with --gpus).",
)
@click.option("--name", default=None, help="Celery node name (default proxns@HOST, proxns-gpuN@HOST).")
@click.option(
    "--loglevel",
    type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
    default="info",
    show_default=True,
)
def worker(gpus: str | None, processes: int, name: str | None, loglevel: str) -> None:
    """Run training workers against PROXNS_BROKER_URL and PROXNS_DATABASE_URL; one job per process."""
    if gpus is None and processes == 1:
        run_in_process(name or "proxns@%h", loglevel)
        return
    children, names = [], []
    if gpus is not None:
        for gpu in parse_gpus(gpus):
            env = {**os.environ, "CUDA_VISIBLE_DEVICES": gpu}
            children.append((child_command(f"{name or 'proxns'}-gpu{gpu}@%h", loglevel), env))
            names.append(f"worker process of GPU {gpu}")
    else:
        for i in range(processes):
            children.append((child_command(f"{name or 'proxns'}-{i}@%h", loglevel), dict(os.environ)))
            names.append(f"worker process {i}")
    sys.exit(supervise(children, names=names))

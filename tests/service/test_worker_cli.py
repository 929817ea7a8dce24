"""`proxns worker --gpus`: one worker process per GPU, each pinned with CUDA_VISIBLE_DEVICES."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import click
import pytest

from proxns_cli.worker import parse_gpus
from proxns_testkit import alive, descendants, service_env, wait_for


def environ_of(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


def test_gpus_option_starts_one_pinned_worker_per_gpu_and_stops_them(tmp_path: Path) -> None:
    env = service_env(
        database_url=f"sqlite:///{tmp_path / 'proxns.db'}",
        broker_dir=str(tmp_path / "broker"),
        artifact_dir=str(tmp_path / "artifacts"),
    )
    log = (tmp_path / "workers.log").open("w")
    cmd = [sys.executable, "-c", "from proxns_cli import main; main()", "worker", "--gpus", "0,1"]
    parent = subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
    try:
        children = wait_for(
            lambda: len(descendants(parent.pid)) == 2 and descendants(parent.pid), 30, 0.1, "two workers"
        )
        pinned = sorted(environ_of(pid).get("CUDA_VISIBLE_DEVICES") for pid in children)
        assert pinned == ["0", "1"]
        # Both really become Celery workers (node names say which GPU).
        wait_for(lambda: (tmp_path / "workers.log").read_text().count(" ready.") == 2, 90, 0.5, "both ready")
        text = (tmp_path / "workers.log").read_text()
        assert "proxns-gpu0@" in text and "proxns-gpu1@" in text
        parent.send_signal(signal.SIGTERM)
        started = time.monotonic()
        assert parent.wait(timeout=60) == 0
        wait_for(lambda: not any(alive(pid) for pid in children), 10, 0.1, "the workers to exit")
        assert time.monotonic() - started < 60
    finally:
        if parent.poll() is None:
            parent.kill()
        log.close()


@pytest.mark.parametrize("text", ["", "a,b", "0,0", "-1", "0;1"])
def test_gpus_option_rejects_what_is_not_a_list_of_distinct_indices(text: str) -> None:
    with pytest.raises(click.BadParameter, match="GPU indices"):
        parse_gpus(text)


def test_gpus_option_accepts_spaces_and_keeps_order() -> None:
    assert parse_gpus(" 2, 0,1 ") == ["2", "0", "1"]

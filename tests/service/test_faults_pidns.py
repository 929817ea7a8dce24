"""Faults with workers in fresh PID namespaces (issue 9): liveness is the heartbeat, never the PID.

Each worker runs as process 1 of its own PID namespace (``unshare --pid --fork``, as a container
runs it), so a killed worker and its successor have the same host and the same PID: a liveness
check by PID would think the dead one still runs the job. The job must still be taken back once
its heartbeat stops, resume from its checkpoint on the successor, and stay cancellable.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
from test_faults import QUICK, db, env_for, epochs_of, job_row, submit, wait_job

from proxns_testkit import PID_NAMESPACE, inner_pid, start_worker, stop_process, wait_for
from store.queries import request_cancel

pytestmark = pytest.mark.integration

__all__ = ["db"]  # the fixture, imported for the tests below


def _namespaces_work() -> None:
    """Fail (CI) or skip when this machine cannot make a PID namespace (no root, no unshare)."""
    from proxns_testkit import unavailable

    if shutil.which("unshare") is None:
        unavailable("unshare (util-linux)", "not installed")
    probe = subprocess.run([*PID_NAMESPACE, "sh", "-c", "echo $$"], capture_output=True, text=True)
    if probe.returncode != 0 or probe.stdout.strip() != "1":
        unavailable("a fresh PID namespace", probe.stderr.strip() or probe.stdout.strip())


def start_namespaced_worker(env: dict[str, str], log: Path) -> tuple[subprocess.Popen, int]:
    """A worker as process 1 of a fresh PID namespace: (the ``unshare`` process, the worker's pid here)."""
    proc = start_worker(env, log, wrap=PID_NAMESPACE)
    return proc, inner_pid(proc)


def stop_namespaced(proc: subprocess.Popen, pid: int) -> None:
    """SIGTERM the worker itself (``unshare`` ignores it), then wait for ``unshare`` (kill it late)."""
    if proc.poll() is None:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    stop_process(proc, timeout=30)


@pytest.mark.slow
def test_worker_sigkill_in_a_fresh_pid_namespace_resumes_on_a_worker_with_the_same_pid(
    db, redis_url: str, redis_queue: str, tmp_path: Path
) -> None:
    _namespaces_work()
    url, sessions = db
    env = env_for(url, redis_url, redis_queue, tmp_path / "artifacts")
    job_id = submit(sessions, {**QUICK, "epochs": 4, "train_subset": 1024})
    same_host_and_pid = f"{socket.gethostname()}:1"

    first, first_pid = start_namespaced_worker(env, tmp_path / "worker1.log")
    try:
        wait_for(lambda: job_row(sessions, job_id).epochs_done >= 2, 120, 0.05, "epoch 2 on the first worker")
        assert job_row(sessions, job_id).worker_host == same_host_and_pid  # PID 1 in its namespace
        os.kill(first_pid, signal.SIGKILL)  # the namespace's init dies: the kernel ends the namespace
        first.wait(timeout=10)
    finally:
        stop_namespaced(first, first_pid)
    killed = job_row(sessions, job_id)
    assert killed.status == "running" and killed.epochs_done < 4

    t0 = time.monotonic()
    second, second_pid = start_namespaced_worker(env, tmp_path / "worker2.log")
    try:
        resumed = wait_for(
            lambda: (j := job_row(sessions, job_id)).attempts == 2 and j, 120, 0.1, "the second try"
        )
        taken_back_after = time.monotonic() - t0
        # The successor runs it under the very same host:PID as the dead worker.
        assert resumed.worker_host == same_host_and_pid
        done = wait_job(sessions, job_id, {"succeeded", "failed", "cancelled"}, 120, tmp_path / "worker2.log")
    finally:
        stop_namespaced(second, second_pid)
    print(
        f"job {job_id}: killed after {killed.epochs_done} epochs, second try began {taken_back_after:.1f} s later"
    )
    assert done.status == "succeeded", done.error
    assert done.attempts == 2 and done.handbacks == 0
    assert epochs_of(sessions, job_id) == [1, 2, 3, 4]  # none lost, none twice
    assert done.epochs_done == 4
    log = (tmp_path / "worker2.log").read_text()
    assert f"job {job_id} lost its worker" in log and f"job {job_id} running (attempt 2)" in log


def test_a_job_whose_namespaced_worker_was_killed_can_be_cancelled(
    db, redis_url: str, redis_queue: str, tmp_path: Path
) -> None:
    """A cancel asked while the job's dead worker's PID is alive again (its successor, same PID)
    ends the job ``cancelled`` once the heartbeat is stale; it is not run again."""
    _namespaces_work()
    url, sessions = db
    env = env_for(url, redis_url, redis_queue, tmp_path / "artifacts")
    job_id = submit(sessions, {**QUICK, "epochs": 1000})
    first, first_pid = start_namespaced_worker(env, tmp_path / "worker1.log")
    try:
        wait_for(lambda: job_row(sessions, job_id).epochs_done >= 1, 120, 0.05, "an epoch")
        os.kill(first_pid, signal.SIGKILL)
        first.wait(timeout=10)
    finally:
        stop_namespaced(first, first_pid)
    with sessions() as s:
        assert request_cancel(s, job_id) == "running"  # the dead worker cannot see the flag
    t0 = time.monotonic()
    second, second_pid = start_namespaced_worker(env, tmp_path / "worker2.log")
    try:
        done = wait_job(sessions, job_id, {"succeeded", "failed", "cancelled"}, 60, tmp_path / "worker2.log")
        took = time.monotonic() - t0
    finally:
        stop_namespaced(second, second_pid)
    print(f"job {job_id} cancelled {took:.1f} s after the second worker started (heartbeat timeout 4 s)")
    assert done.status == "cancelled" and done.attempts == 1
    assert took < 30

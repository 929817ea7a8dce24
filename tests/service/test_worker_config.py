"""The worker's Celery settings: one job per process, acknowledged only once it has ended."""

from __future__ import annotations

from pathlib import Path

from store.settings import Settings
from worker.config import make_celery


def test_worker_acks_late_prefetches_one_and_runs_one_job_per_process(tmp_path: Path) -> None:
    app = make_celery(Settings(broker_url="redis://127.0.0.1:6379/0", queue="q1", broker_dir=str(tmp_path)))
    conf = app.conf
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1
    assert conf.worker_concurrency == 1
    assert conf.worker_pool == "solo"
    assert conf.task_default_queue == "q1"
    assert conf.worker_enable_remote_control is True


def test_filesystem_broker_lives_in_its_folder(tmp_path: Path) -> None:
    settings = Settings(broker_url="filesystem://", broker_dir=str(tmp_path / "broker"))
    app = make_celery(settings)
    options = app.conf.broker_transport_options
    assert options["data_folder_in"] == options["data_folder_out"] == str(tmp_path / "broker" / "queue")
    assert (tmp_path / "broker" / "queue").is_dir() and (tmp_path / "broker" / "processed").is_dir()
    assert app.conf.worker_enable_remote_control is False

"""Submission never loses a job: job and outbox row commit together; a down broker still gets 201."""

from __future__ import annotations

import time
from pathlib import Path

from sqlalchemy import select

from proxns_testkit import TINY_JOB, api_client, embedded_settings
from store import make_engine, make_sessionmaker
from store.migrate import upgrade
from store.models import Outbox
from store.reconciler import filesystem_live_job_ids
from store.settings import Settings


def outbox(database_url: str) -> list[tuple[int, bool]]:
    engine = make_engine(database_url)
    try:
        with make_sessionmaker(engine)() as s:
            rows = s.execute(select(Outbox.job_id, Outbox.delivered_at).order_by(Outbox.id)).all()
            return [(job_id, delivered is not None) for job_id, delivered in rows]
    finally:
        engine.dispose()


def test_a_submission_with_the_broker_down_answers_201_and_keeps_the_job_in_the_outbox(
    tmp_path: Path,
) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'proxns.db'}",
        broker_url="redis://127.0.0.1:1/0",  # nothing listens on port 1
        artifact_dir=str(tmp_path / "artifacts"),
        publish_timeout=1,
    )
    upgrade(settings.database_url)
    with api_client(settings) as client:
        assert client.get("/healthz").status_code == 503
        t0 = time.monotonic()
        submit = client.post("/api/jobs", json=TINY_JOB)
        assert time.monotonic() - t0 < 5
        assert submit.status_code == 201, submit.text
        job = submit.json()
        assert job["status"] == "queued"
        assert client.get(f"/api/jobs/{job['id']}").json()["status"] == "queued"
        assert client.get("/api/jobs").json()["total"] == 1
    assert outbox(settings.database_url) == [(job["id"], False)]  # the dispatcher delivers it later


def test_a_submission_is_published_at_once_and_its_outbox_row_marked_delivered(tmp_path: Path) -> None:
    settings = embedded_settings(tmp_path)
    with api_client(settings) as client:
        job = client.post("/api/jobs", json=TINY_JOB).json()
        exp = client.post(
            "/api/experiments", json={"name": "two", "base": TINY_JOB, "sweep": {"lam": [0.1, 0.2]}}
        ).json()
    ids = [job["id"]] + [j["id"] for j in exp["jobs"]]
    assert outbox(settings.database_url) == [(i, True) for i in ids]
    assert filesystem_live_job_ids(settings) == set(ids)  # the messages wait in the queue folder

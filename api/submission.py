"""Submission: check what a request submits, then hand the jobs it created to the workers.

The jobs and their outbox rows are already committed together (``store.queries.create_jobs``), so
a job is never lost: it is published here at once (in the queue's threads, for at most the publish
timeout); when the broker is down or slow the request still answers 201 with the job ``queued``,
and the reconciler's dispatcher delivers it once the broker is back.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from api.fleet import check_fleet
from api.limits import check_configs
from api.queue import JobQueue
from api.routes.weights import check_init_weights
from proxns_core.spec import TrainConfig
from store.models import Job
from store.queries import mark_jobs_delivered
from store.settings import Settings
from store.users import Principal


def check_submission(
    configs: list[TrainConfig], db: Session, user: Principal, settings: Settings, loc: tuple = ("body",)
) -> None:
    """422 for configs this server will not run: over its limits (``check_configs``), beyond what its
    live workers offer (``check_fleet``), or naming starting weights that are not the user's or do not
    fit (``check_init_weights``). Blocking: call it from a sync route."""
    check_configs(configs, settings, loc)
    check_fleet(configs, db, loc)
    check_init_weights(configs, db, user, settings, loc)


def publish_now(db: Session, queue: JobQueue, jobs: list[Job]) -> list[int]:
    """Try to publish new jobs right away; mark the published ones delivered. Returns their ids."""
    sent = queue.publish_within([j.id for j in jobs])
    if sent:
        try:
            mark_jobs_delivered(db, sent)
            db.commit()
        except Exception:  # noqa: BLE001 - the dispatcher publishes them again: a duplicate is harmless
            db.rollback()
    return sent

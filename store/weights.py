"""Uploaded starting weights: the rows of ``weights`` and how a config's ``init_weights`` finds one."""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from proxns_core.spec import FINISHED_STATUSES, WEIGHTS_REF_PREFIX
from store.models import Job, Weights

#: ``weights:ID`` (ASCII digits, no sign, no leading zero).
WEIGHTS_REF = re.compile(re.escape(WEIGHTS_REF_PREFIX) + r"([1-9][0-9]{0,9})")


def weights_ref(weights_id: int) -> str:
    """How a config names upload ``weights_id``."""
    return f"{WEIGHTS_REF_PREFIX}{weights_id}"


def parse_ref(ref: str) -> int | None:
    """The id a ``weights:ID`` reference names; None for anything else."""
    match = WEIGHTS_REF.fullmatch(ref)
    return int(match.group(1)) if match and int(match.group(1)) < 2**31 else None


def add_weights(db: Session, **fields) -> Weights:
    row = Weights(**fields)
    db.add(row)
    db.commit()
    return row


def list_weights(db: Session, owner_id: int | None) -> list[Weights]:
    """Uploads of ``owner_id`` (None: everyone's), newest first."""
    query = select(Weights).order_by(Weights.id.desc())
    if owner_id is not None:
        query = query.where(Weights.owner_id == owner_id)
    return list(db.scalars(query))


def jobs_using(db: Session, weights_id: int) -> list[int]:
    """Ids of the queued or running jobs whose ``init_weights`` names upload ``weights_id``."""
    ref = weights_ref(weights_id)
    query = (
        select(Job.id)
        .where(Job.status.not_in(FINISHED_STATUSES), Job.config["init_weights"].as_string() == ref)
        .order_by(Job.id)
    )
    return list(db.scalars(query))


def delete_weights(db: Session, weights_id: int) -> Weights | None:
    """Delete the row of upload ``weights_id`` unless an unfinished job starts from it; the deleted row
    (its ``location`` is the caller's to remove), or None when it did not exist.

    Raises :class:`WeightsInUse` naming those jobs. (A job submitted in the same instant can still
    slip past; its worker then fails it saying the upload does not exist.)"""
    row = db.scalars(select(Weights).where(Weights.id == weights_id).with_for_update()).one_or_none()
    if row is None:
        db.rollback()
        return None
    users = jobs_using(db, weights_id)
    if users:
        db.rollback()
        raise WeightsInUse(users)
    db.delete(row)
    db.commit()
    return row


class WeightsInUse(Exception):
    """An upload that queued or running jobs start from: ``job_ids``."""

    def __init__(self, job_ids: list[int]) -> None:
        super().__init__(f"jobs {job_ids} start from it")
        self.job_ids = job_ids


def weights_file(db: Session, ref: str, artifact_dir: str) -> str | None:
    """The file a config's ``init_weights`` reference names (a plain path is returned as it is:
    the API accepts only references, ``proxns train`` only paths); None when the upload no longer
    exists."""
    weights_id = parse_ref(ref)
    if weights_id is None:
        return ref
    row = db.get(Weights, weights_id)
    return None if row is None else str(Path(artifact_dir) / row.location)

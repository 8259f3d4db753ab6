"""Instances to send: C-MOVE and C-GET (PS3.4 C.4.2.2, C.4.3.2), WADO-RS (PS3.18 10.4)
and WADO-URI (PS3.18 9).

`locate` turns the unique keys of a retrieval into the stored files the requester (and, for
a C-MOVE, its destination) may read; each study sent is audited once as ``study.retrieve``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset
from sqlalchemy.orm import Session

from concilium.imaging.access import STUDY_KIND, NotAuthorized, may_read_any, refuse, target_of
from concilium.imaging.actions import ImagingAction
from concilium.imaging.archive import Archive
from concilium.imaging.matching import (
    UNIQUE_KEY,
    WILDCARDS,
    InvalidQuery,
    Level,
    level_of,
    parse_identifier,
    values_of,
)
from concilium.imaging.query import readable_rows
from concilium.platform import audit
from concilium.platform.policy import Decision, Principal, decide

__all__ = [
    "RetrievableInstance",
    "locate",
]


@dataclass(frozen=True)
class RetrievableInstance:
    """One instance a retrieval will send, with what is needed to send it as stored."""

    study_instance_uid: str
    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax_uid: str
    path: Path
    """The stored Part 10 file, sent byte for byte."""
    size: int = 0
    """Size of the stored file in bytes."""


def locate(
    archive: Archive,
    session: Session,
    principal: Principal,
    actor: audit.Actor,
    identifier: Dataset,
    *,
    now: dt.datetime,
    destination: Principal | None = None,
    destination_title: str = "",
) -> list[RetrievableInstance]:
    """Instances a C-MOVE or C-GET identifier designates (PS3.4 C.4.2.2, C.4.3.2).

    The identifier must carry the unique key of its level (and may list several values).
    Each study must be readable by the requester and, for a C-MOVE, by the destination
    node too: images only go where the policy lets them be seen. One audit entry per study
    says how many of its instances went where. Raises `InvalidQuery` (A900) or
    `NotAuthorized` (0124).
    """
    level = level_of(identifier)
    unique = UNIQUE_KEY[level]
    if not values_of(identifier.get(unique)) or any(
        WILDCARDS & set(v) for v in values_of(identifier.get(unique))
    ):
        raise InvalidQuery(f"a retrieval names the {unique} values it wants")
    if not may_read_any(principal):
        raise NotAuthorized("this node or person may not retrieve from the archive")
    sqlite = session.get_bind().dialect.name == "sqlite"
    query = parse_identifier(identifier, Level.IMAGE, sqlite)
    query.level = Level.IMAGE
    rows = readable_rows(session, principal, query, now)
    studies: dict[int, Any] = {}
    instances: dict[int, int] = {}
    for row in rows:
        studies.setdefault(row.st_id, row)
        instances[row.st_id] = instances.get(row.st_id, 0) + 1
    # The rows are what the policy lets the requester read; it still has the last word on
    # each study, and says on what basis (role, share, emergency) for the audit trail.
    decisions: dict[int, Decision] = {}
    for study_id, row in studies.items():
        target = target_of(
            session, row.st_study_instance_uid, row.st_site_id, row.st_patient_id, now
        )
        decisions[study_id] = decide(principal, ImagingAction.STUDY_READ, target)
        if destination is not None and decisions[study_id].allowed:
            decision = decide(destination, ImagingAction.STUDY_READ, target)
            if not decision.allowed:
                session.rollback()
                raise refuse(
                    archive,
                    actor,
                    ImagingAction.STUDY_READ,
                    target,
                    Decision(False, f"destination {destination_title}: {decision.reason}"),
                )
    for study_id, row in studies.items():
        decision = decisions[study_id]
        if not decision.allowed:
            continue
        audit.record(
            session,
            actor,
            "study.retrieve",
            "emergency-override" if decision.emergency else "success",
            object_kind=STUDY_KIND,
            object_id=row.st_study_instance_uid,
            patient_id=row.st_patient_id,
            detail={
                "instances": instances[study_id],
                "destination": destination_title,
                "basis": decision.basis,
            },
        )
    path_of = archive.store.path_of
    return [
        RetrievableInstance(
            row.st_study_instance_uid,
            row.in_sop_class_uid,
            row.in_sop_instance_uid,
            row.in_transfer_syntax_uid,
            path_of(row.in_address),
            row.in_size,
        )
        for row in rows
        if decisions[row.st_id].allowed
    ]

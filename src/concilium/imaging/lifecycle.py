"""Withdrawing and removing studies: rejection as in IHE RAD TF-2 Imaging Object Change
Management (reasons of PS3.16 CID 7011), then deletion.

Rejected instances leave every query and retrieval while their files stay. Deletion removes
the index rows first and the files after; the transaction removing the rows records the
files as pending writes of the process, so that a crash in between leaves them to recovery
(`concilium.imaging.writers`).
"""

from __future__ import annotations

import enum

from sqlalchemy import delete, select

from concilium.imaging.access import STUDY_KIND, authorised_study
from concilium.imaging.actions import ImagingAction
from concilium.imaging.archive import STUDY_DELETED, Archive
from concilium.imaging.tables import ImagingInstance, ImagingSeries, ImagingStudy
from concilium.platform import audit
from concilium.platform.db import transaction
from concilium.platform.errors import NotFound
from concilium.platform.i18n import _
from concilium.platform.policy import Principal

__all__ = [
    "RejectionReason",
    "delete_study",
    "reject",
]


def delete_study(
    archive: Archive, principal: Principal, actor: audit.Actor, study_instance_uid: str
) -> int:
    """Remove a study from the index and its files from the store; returns instances removed.

    The index goes first, in one audited transaction that records the files as pending
    removals; files follow, so a crash in between leaves them to recovery.
    """
    now = archive.clock()
    with transaction(archive.sessions) as session:
        study, target = authorised_study(
            archive, session, principal, actor, study_instance_uid, ImagingAction.STUDY_DELETE, now
        )
        addresses = list(
            session.execute(
                select(ImagingInstance.address)
                .join(ImagingSeries)
                .where(ImagingSeries.study_id == study.id)
            ).scalars()
        )
        series_ids = select(ImagingSeries.id).where(ImagingSeries.study_id == study.id)
        session.execute(delete(ImagingInstance).where(ImagingInstance.series_id.in_(series_ids)))
        session.execute(delete(ImagingSeries).where(ImagingSeries.study_id == study.id))
        session.execute(delete(ImagingStudy).where(ImagingStudy.id == study.id))
        audit.record(
            session,
            actor,
            str(ImagingAction.STUDY_DELETE),
            "success",
            object_kind=STUDY_KIND,
            object_id=study_instance_uid,
            patient_id=target.patient_id,
            detail={"instances": len(addresses)},
        )
        leaving = sorted(set(addresses))
        pending = list(zip(archive.writer.journal(session, leaving), leaving, strict=True))
    archive.writer.forget(pending)
    archive.bus.publish(STUDY_DELETED, {"study_instance_uid": study_instance_uid})
    return len(addresses)


class RejectionReason(enum.StrEnum):
    """Why instances are withdrawn: code values of PS3.16 CID 7011 (Rejected Objects)."""

    QUALITY = "113001"
    """Rejected for Quality Reasons."""
    PATIENT_SAFETY = "113037"
    """Rejected for Patient Safety Reasons."""
    INCORRECT_WORKLIST_ENTRY = "113038"
    """Incorrect Modality Worklist Entry."""
    RETENTION_EXPIRED = "113039"
    """Data Retention Policy Expired."""


def reject(
    archive: Archive,
    principal: Principal,
    actor: audit.Actor,
    study_instance_uid: str,
    reason: RejectionReason,
    *,
    series_instance_uid: str | None = None,
) -> int:
    """Withdraw a study or one of its series from every query and retrieval; returns the
    number of instances rejected.

    The files stay until `delete_study` (IHE RAD TF-2 Imaging Object Change Management:
    rejection first, deletion by retention policy later), and the action is audited.
    """
    now = archive.clock()
    with transaction(archive.sessions) as session:
        study, target = authorised_study(
            archive, session, principal, actor, study_instance_uid, ImagingAction.STUDY_DELETE, now
        )
        series = select(ImagingSeries.id).where(ImagingSeries.study_id == study.id)
        if series_instance_uid is not None:
            series = series.where(ImagingSeries.series_instance_uid == series_instance_uid)
        instances = (
            session.execute(
                select(ImagingInstance).where(
                    ImagingInstance.series_id.in_(series), ImagingInstance.rejected_at.is_(None)
                )
            )
            .scalars()
            .all()
        )
        if series_instance_uid is not None and not instances:
            raise NotFound(
                _("no accepted instance in series %(series_instance_uid)s")
                % {"series_instance_uid": series_instance_uid}
            )
        for instance in instances:
            instance.rejected_at = now
            instance.rejection_reason = str(reason)
        audit.record(
            session,
            actor,
            "study.reject",
            "success",
            object_kind=STUDY_KIND,
            object_id=study_instance_uid,
            patient_id=target.patient_id,
            detail={
                "series": series_instance_uid,
                "reason": str(reason),
                "instances": len(instances),
            },
        )
    return len(instances)

"""Modality Performed Procedure Steps kept in the database (PS3.4 F.7), and the scheduled
steps they carry out marked with their progress.

`DatabaseMpps.apply` is one transaction: the instance of the site is read (its row locked),
changed as the N-CREATE or N-SET says, stored with every attribute (DICOM JSON, PS3.18
F.2, so that the next N-SET applies to the whole instance), the scheduled steps it refers
to set IN_PROGRESS, COMPLETED or DISCONTINUED (their orders following), the change
audited, and committed before the modality is answered. A refused request writes nothing.

A reference (Scheduled Step Attributes Sequence item) names a step by the accession
number, requested procedure ID and scheduled procedure step ID of the site; when those do
not name one (an exam the modality did not take from the worklist, or an incomplete
reference), by the Study Instance UID of the step or its order.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable

from pydicom.dataset import Dataset
from sqlalchemy import and_, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from concilium.platform import audit
from concilium.platform.db import transaction
from concilium.reading.mpps import (
    DUPLICATE_SOP_INSTANCE,
    FINAL,
    MppsError,
    PerformedStep,
    ScheduledStepReference,
    performed_step,
    scheduled_status,
)
from concilium.reading.orders import OrderStatus
from concilium.reading.tables import ImagingOrderRecord, PerformedStepRecord, ScheduledStepRecord
from concilium.reading.worklist import StepStatus
from concilium.reading.worklist_store import StepKey, set_step_status

__all__ = ["PERFORMED_STEP_CREATE", "PERFORMED_STEP_UPDATE", "DatabaseMpps", "order_status"]

PERFORMED_STEP_CREATE = "performed_step.create"
"""Audit action: a modality started an exam (N-CREATE)."""
PERFORMED_STEP_UPDATE = "performed_step.update"
"""Audit action: a modality changed or ended it (N-SET)."""

_ORDER_STATUSES = {
    StepStatus.STARTED: OrderStatus.IN_PROGRESS,
    StepStatus.COMPLETED: OrderStatus.COMPLETED,
    StepStatus.DISCONTINUED: OrderStatus.DISCONTINUED,
}

_SETTLED = frozenset({OrderStatus.COMPLETED.value, OrderStatus.CANCELLED.value})
"""A scheduled step no performed step changes again: completed, or cancelled by the order."""


def order_status(status: StepStatus) -> OrderStatus:
    """The status of a scheduled step (and its order) that a performed step gives it."""
    return _ORDER_STATUSES[status]


def _serialise(attributes: Dataset) -> str:
    return json.dumps(attributes.to_json_dict(), sort_keys=True, ensure_ascii=False)


def _read(row: PerformedStepRecord) -> PerformedStep:
    return performed_step(
        row.sop_instance_uid, row.site_id, Dataset.from_json(json.loads(row.attributes))
    )


def _referenced(
    session: Session, site_id: int, reference: ScheduledStepReference
) -> list[tuple[StepKey, str, int]]:
    """The scheduled steps of the site a reference names: each key, status and patient."""
    query = (
        select(
            ImagingOrderRecord.accession_number,
            ScheduledStepRecord.requested_procedure_id,
            ScheduledStepRecord.step_id,
            ScheduledStepRecord.status,
            ImagingOrderRecord.patient_id,
        )
        .join(ImagingOrderRecord, ScheduledStepRecord.order_id == ImagingOrderRecord.id)
        .where(ImagingOrderRecord.site_id == site_id)
        .order_by(ScheduledStepRecord.id)
    )
    rows = []
    if (
        reference.accession_number
        and reference.requested_procedure_id
        and reference.scheduled_procedure_step_id
    ):
        rows = list(
            session.execute(
                query.where(
                    ImagingOrderRecord.accession_number == reference.accession_number,
                    ScheduledStepRecord.requested_procedure_id == reference.requested_procedure_id,
                    ScheduledStepRecord.step_id == reference.scheduled_procedure_step_id,
                )
            )
        )
    if not rows:
        uid = reference.study_instance_uid
        by_study = query.where(
            or_(
                ScheduledStepRecord.study_instance_uid == uid,
                and_(
                    ScheduledStepRecord.study_instance_uid == "",
                    ImagingOrderRecord.study_instance_uid == uid,
                ),
            )
        )
        if reference.accession_number:
            by_study = by_study.where(
                ImagingOrderRecord.accession_number == reference.accession_number
            )
        rows = list(session.execute(by_study))
    return [
        (StepKey(site_id, accession, procedure, step), status, patient)
        for accession, procedure, step, status, patient in rows
    ]


class DatabaseMpps:
    """An `MppsSink` over the database (table ``reading_performed_steps``)."""

    def __init__(self, sessions: sessionmaker[Session], clock: Callable[[], dt.datetime]) -> None:
        self._sessions = sessions
        self._clock = clock

    def apply(
        self,
        site_id: int,
        actor: audit.Actor,
        sop_instance_uid: str,
        change: Callable[[PerformedStep | None], PerformedStep],
    ) -> PerformedStep:
        """Read, change, store and apply one performed step in one transaction (see
        `MppsSink.apply`); `MppsError` from ``change`` leaves everything as it was."""
        with transaction(self._sessions) as session:
            row = session.execute(
                select(PerformedStepRecord)
                .where(
                    PerformedStepRecord.site_id == site_id,
                    PerformedStepRecord.sop_instance_uid == sop_instance_uid,
                )
                .with_for_update()
            ).scalar_one_or_none()
            current = _read(row) if row is not None else None
            step = change(current)
            now = self._clock()
            if row is None:
                row = PerformedStepRecord(
                    site_id=site_id, sop_instance_uid=sop_instance_uid, created_at=now
                )
                session.add(row)
            row.status = step.status.value
            row.step_id = step.step_id[:16]
            row.station_ae_title = step.station_ae_title[:16]
            row.modality = step.modality[:16]
            row.attributes = _serialise(step.attributes)
            row.updated_at = now
            if step.status in FINAL:
                row.ended_at = now
            try:
                session.flush()
            except IntegrityError as exc:
                # Another association created the same instance at the same moment.
                raise MppsError(DUPLICATE_SOP_INSTANCE, "the instance exists") from exc
            marked = self._mark(session, site_id, step)
            audit.record(
                session,
                actor,
                PERFORMED_STEP_CREATE if current is None else PERFORMED_STEP_UPDATE,
                "success",
                object_kind="performed_procedure_step",
                object_id=sop_instance_uid[:64],
                patient_id=next(iter(marked.values()), None),
                site_id=site_id,
                detail={
                    "status": step.status.value,
                    "accession_numbers": sorted({key.accession_number for key in marked}),
                    "scheduled_steps": len(marked),
                },
            )
        return step

    def _mark(self, session: Session, site_id: int, step: PerformedStep) -> dict[StepKey, int]:
        """Set the scheduled steps the performed step refers to; each with its patient."""
        status = order_status(scheduled_status(step.status))
        marked: dict[StepKey, int] = {}
        for reference in step.references:
            for key, current, patient in _referenced(session, site_id, reference):
                if key in marked or current in _SETTLED or current == status.value:
                    marked.setdefault(key, patient)
                    continue
                set_step_status(session, key, status)
                marked[key] = patient
        return marked

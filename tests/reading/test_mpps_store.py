"""Performed procedure steps in the database: created, completed or discontinued, final
ones never changed, the scheduled steps and orders they name updated, and a refused
request writing nothing."""

from __future__ import annotations

import json

import pytest
from pydicom.dataset import Dataset
from sqlalchemy import func, select

from concilium.platform import audit
from concilium.platform.db import transaction
from concilium.platform.tables import AuditEvent
from concilium.reading.mpps import (
    DUPLICATE_SOP_INSTANCE,
    MAY_NO_LONGER_BE_UPDATED,
    MISSING_ATTRIBUTE,
    NO_SUCH_SOP_INSTANCE,
    PROCESSING_FAILURE,
    MppsError,
    PpsStatus,
    n_create,
    n_set,
)
from concilium.reading.mpps_store import PERFORMED_STEP_CREATE, DatabaseMpps
from concilium.reading.orders import OrderStatus
from concilium.reading.tables import ImagingOrderRecord, PerformedStepRecord, ScheduledStepRecord
from concilium.reading.worklist_store import scheduled_steps

from .test_worklist_source import briey, order  # noqa: F401 - the fixture

UID = "1.2.276.0.7230010.3.9.1"
STUDY = "1.2.276.0.7230010.3.2.101"
ACTOR = audit.Actor(None, "ae:BRIEY_CT")


def in_progress(accession: str = "ACC-1", *, ids: bool = True, study: str = STUDY) -> Dataset:
    ds = Dataset()
    reference = Dataset()
    reference.StudyInstanceUID = study
    reference.AccessionNumber = accession if ids else ""
    reference.RequestedProcedureID = "RP-1" if ids else ""
    reference.ScheduledProcedureStepID = "SPS-1" if ids else ""
    ds.ScheduledStepAttributesSequence = [reference]
    ds.PatientName = "Lefèvre^Hélène"
    ds.PatientID = "IPP001"
    ds.PerformedProcedureStepID = "PPS1"
    ds.PerformedStationAETitle = "BRIEY_CT"
    ds.PerformedProcedureStepStartDate = "20260307"
    ds.PerformedProcedureStepStartTime = "021000"
    ds.PerformedProcedureStepStatus = "IN PROGRESS"
    ds.Modality = "CT"
    return ds


def ended(status: str = "COMPLETED") -> Dataset:
    ds = Dataset()
    ds.PerformedProcedureStepStatus = status
    ds.PerformedProcedureStepEndDate = "20260307"
    ds.PerformedProcedureStepEndTime = "022500"
    ds.PerformedProcedureStepDescription = "Scanner thorax"
    item = Dataset()
    item.SeriesInstanceUID = "1.2.276.0.7230010.3.3.1"
    image = Dataset()
    image.ReferencedSOPInstanceUID = "1.2.276.0.7230010.3.4.1"
    item.ReferencedImageSequence = [image]
    ds.PerformedSeriesSequence = [item]
    return ds


@pytest.fixture
def sink(runtime, briey):  # noqa: F811 - the fixture
    order(runtime, "ACC-1", "20260307020000")
    return DatabaseMpps(runtime.sessions, runtime.now)


def states(runtime, accession: str = "ACC-1") -> tuple[str, str]:
    with transaction(runtime.sessions) as db:
        found = db.scalars(
            select(ImagingOrderRecord).where(ImagingOrderRecord.accession_number == accession)
        ).one()
        return found.steps[0].status, found.status


def counts(runtime) -> tuple[int, int]:
    with transaction(runtime.sessions) as db:
        return (
            db.scalar(select(func.count()).select_from(PerformedStepRecord)) or 0,
            db.scalar(select(func.count()).select_from(AuditEvent)) or 0,
        )


def test_create_starts_the_step_and_its_order(runtime, briey, sink):  # noqa: F811
    step = n_create(sink, briey.id, ACTOR, UID, in_progress())
    assert step.status is PpsStatus.IN_PROGRESS
    assert states(runtime) == ("IN_PROGRESS", "IN_PROGRESS")
    with transaction(runtime.sessions) as db:
        row = db.scalars(select(PerformedStepRecord)).one()
        assert (row.site_id, row.sop_instance_uid, row.status) == (briey.id, UID, "IN PROGRESS")
        assert json.loads(row.attributes)["00400253"]["Value"] == ["PPS1"]
        assert row.ended_at is None
        event = db.scalars(
            select(AuditEvent).where(AuditEvent.action == PERFORMED_STEP_CREATE)
        ).one()
        assert event.actor == "ae:BRIEY_CT"
        assert event.patient_id is not None
        assert "ACC-1" in event.detail
        # A started step stays on the worklist, as STARTED.
        [exam] = scheduled_steps(db, [briey.id])
        assert exam.status is OrderStatus.IN_PROGRESS


def test_complete_ends_the_step_and_the_order(runtime, briey, sink):  # noqa: F811
    n_create(sink, briey.id, ACTOR, UID, in_progress())
    step = n_set(sink, briey.id, ACTOR, UID, ended())
    assert step.status is PpsStatus.COMPLETED
    # What the N-CREATE gave was read back from the database and kept.
    assert step.attributes.PatientID == "IPP001"
    assert str(step.attributes.PatientName) == "Lefèvre^Hélène"
    assert step.attributes.PerformedProcedureStepDescription == "Scanner thorax"
    assert [s.series_instance_uid for s in step.series] == ["1.2.276.0.7230010.3.3.1"]
    assert states(runtime) == ("COMPLETED", "COMPLETED")
    with transaction(runtime.sessions) as db:
        assert scheduled_steps(db, [briey.id]) == []
        assert db.scalars(select(PerformedStepRecord.ended_at)).one() is not None


def test_discontinue_discontinues_the_step_and_the_order(runtime, briey, sink):  # noqa: F811
    n_create(sink, briey.id, ACTOR, UID, in_progress())
    n_set(sink, briey.id, ACTOR, UID, ended("DISCONTINUED"))
    assert states(runtime) == ("DISCONTINUED", "DISCONTINUED")


def test_a_final_step_is_never_changed(runtime, briey, sink):  # noqa: F811
    n_create(sink, briey.id, ACTOR, UID, in_progress())
    n_set(sink, briey.id, ACTOR, UID, ended())
    before = counts(runtime)
    with pytest.raises(MppsError) as caught:
        n_set(sink, briey.id, ACTOR, UID, ended("DISCONTINUED"))
    assert (caught.value.status, caught.value.error_id) == (
        PROCESSING_FAILURE,
        MAY_NO_LONGER_BE_UPDATED,
    )
    assert counts(runtime) == before
    assert states(runtime) == ("COMPLETED", "COMPLETED")


def test_a_refused_request_writes_nothing(runtime, world, briey, sink):  # noqa: F811
    before = counts(runtime)
    bad = in_progress()
    del bad.Modality
    with pytest.raises(MppsError) as caught:
        n_create(sink, briey.id, ACTOR, UID, bad)
    assert caught.value.status == MISSING_ATTRIBUTE
    assert counts(runtime) == before
    assert states(runtime) == ("SCHEDULED", "SCHEDULED")

    n_create(sink, briey.id, ACTOR, UID, in_progress())
    before = counts(runtime)
    with pytest.raises(MppsError) as caught:
        n_create(sink, briey.id, ACTOR, UID, in_progress())
    assert caught.value.status == DUPLICATE_SOP_INSTANCE
    # Another site's node does not know the instance.
    with pytest.raises(MppsError) as caught:
        n_set(sink, world.metz.id, ACTOR, UID, ended())
    assert caught.value.status == NO_SUCH_SOP_INSTANCE
    assert counts(runtime) == before
    assert states(runtime) == ("IN_PROGRESS", "IN_PROGRESS")


def test_a_reference_without_the_ids_names_its_step_by_study_uid(runtime, briey, sink):  # noqa: F811
    with transaction(runtime.sessions) as db:
        db.scalars(select(ScheduledStepRecord)).one().study_instance_uid = STUDY
    n_create(sink, briey.id, ACTOR, UID, in_progress(ids=False))
    assert states(runtime) == ("IN_PROGRESS", "IN_PROGRESS")
    # An unscheduled exam (a study no order names) changes no order.
    n_create(
        sink, briey.id, ACTOR, "1.2.276.0.7230010.3.9.2", in_progress(ids=False, study="1.2.3")
    )
    n_set(sink, briey.id, ACTOR, UID, ended())
    assert states(runtime) == ("COMPLETED", "COMPLETED")

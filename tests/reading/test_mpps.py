"""Modality Performed Procedure Step (PS3.4 F.7): N-CREATE and N-SET checked and applied,
without a network."""

from __future__ import annotations

import datetime as dt

import pytest
from pydicom.dataset import Dataset

from concilium.platform import audit
from concilium.reading.mpps import (
    ATTRIBUTE_VALUE_OUT_OF_RANGE,
    DUPLICATE_SOP_INSTANCE,
    INVALID_ATTRIBUTE_VALUE,
    MAY_NO_LONGER_BE_UPDATED,
    MISSING_ATTRIBUTE,
    MISSING_ATTRIBUTE_VALUE,
    NO_SUCH_SOP_INSTANCE,
    PROCESSING_FAILURE,
    InMemoryMpps,
    MppsError,
    PpsStatus,
    create_performed_step,
    n_create,
    n_set,
    set_performed_step,
)
from concilium.reading.worklist import StepStatus

UID = "1.2.276.0.7230010.3.9.1"
STUDY = "1.2.276.0.7230010.3.2.101"
ACTOR = audit.Actor(None, "ae:BRIEY_CT", site_id=2)


def in_progress() -> Dataset:
    ds = Dataset()
    reference = Dataset()
    reference.StudyInstanceUID = STUDY
    reference.AccessionNumber = "ACC0001"
    reference.RequestedProcedureID = "RP1"
    reference.ScheduledProcedureStepID = "SPS1"
    ds.ScheduledStepAttributesSequence = [reference]
    ds.PatientID = "AV35674"
    ds.PerformedProcedureStepID = "PPS1"
    ds.PerformedStationAETitle = "BRIEY_CT"
    ds.PerformedProcedureStepStartDate = "20261212"
    ds.PerformedProcedureStepStartTime = "0200"
    ds.PerformedProcedureStepStatus = "IN PROGRESS"
    ds.Modality = "CT"
    return ds


def ended(status: str = "COMPLETED", *, series: bool = True) -> Dataset:
    ds = Dataset()
    ds.PerformedProcedureStepStatus = status
    ds.PerformedProcedureStepEndDate = "20261212"
    ds.PerformedProcedureStepEndTime = "021500"
    if series:
        item = Dataset()
        item.SeriesInstanceUID = "1.2.276.0.7230010.3.3.1"
        image = Dataset()
        image.ReferencedSOPInstanceUID = "1.2.276.0.7230010.3.4.1"
        item.ReferencedImageSequence = [image]
        ds.PerformedSeriesSequence = [item]
    return ds


def refused(call, *args) -> MppsError:  # type: ignore[no-untyped-def]
    with pytest.raises(MppsError) as caught:
        call(*args)
    return caught.value


def test_create_reads_the_step_and_its_references():
    step = create_performed_step(UID, 2, in_progress())
    assert step.status is PpsStatus.IN_PROGRESS
    assert step.start == dt.datetime(2026, 12, 12, 2, 0)
    assert step.end is None
    assert step.references[0].scheduled_procedure_step_id == "SPS1"
    assert step.accession_numbers == ("ACC0001",)


@pytest.mark.parametrize(
    "keyword",
    [
        "ScheduledStepAttributesSequence",
        "PerformedProcedureStepID",
        "PerformedStationAETitle",
        "PerformedProcedureStepStartDate",
        "PerformedProcedureStepStartTime",
        "PerformedProcedureStepStatus",
        "Modality",
    ],
)
def test_create_needs_each_type_1_attribute(keyword):
    absent = in_progress()
    delattr(absent, keyword)
    error = refused(create_performed_step, UID, 2, absent)
    assert error.status == MISSING_ATTRIBUTE
    assert keyword in error.comment
    empty = in_progress()
    if keyword == "ScheduledStepAttributesSequence":
        empty.ScheduledStepAttributesSequence = []
    else:
        setattr(empty, keyword, "")
    assert refused(create_performed_step, UID, 2, empty).status == MISSING_ATTRIBUTE_VALUE


def test_create_refuses_bad_values():
    completed = in_progress()
    completed.PerformedProcedureStepStatus = "COMPLETED"
    error = refused(create_performed_step, UID, 2, completed)
    assert (error.status, error.offending) == (INVALID_ATTRIBUTE_VALUE, (0x00400252,))
    unknown = in_progress()
    unknown.PerformedProcedureStepStatus = "PAUSED"
    assert refused(create_performed_step, UID, 2, unknown).status == INVALID_ATTRIBUTE_VALUE
    malformed = in_progress()
    malformed.PerformedProcedureStepStartDate = "12/12/26"
    assert refused(create_performed_step, UID, 2, malformed).status == INVALID_ATTRIBUTE_VALUE
    no_such_day = in_progress()
    no_such_day.PerformedProcedureStepStartDate = "20260230"
    assert refused(create_performed_step, UID, 2, no_such_day).status == (
        ATTRIBUTE_VALUE_OUT_OF_RANGE
    )
    no_study = in_progress()
    del no_study.ScheduledStepAttributesSequence[0].StudyInstanceUID
    assert refused(create_performed_step, UID, 2, no_study).status == MISSING_ATTRIBUTE_VALUE
    assert refused(create_performed_step, "not-a-uid", 2, in_progress()).status == (
        INVALID_ATTRIBUTE_VALUE
    )


def test_set_completes_then_the_step_is_final():
    step = create_performed_step(UID, 2, in_progress())
    done = set_performed_step(step, ended())
    assert done.status is PpsStatus.COMPLETED
    assert done.end == dt.datetime(2026, 12, 12, 2, 15)
    assert done.series[0].sop_instance_uids == ("1.2.276.0.7230010.3.4.1",)
    assert step.status is PpsStatus.IN_PROGRESS  # the former state is untouched
    for change in (ended("DISCONTINUED"), ended("IN PROGRESS"), Dataset()):
        error = refused(set_performed_step, done, change)
        assert (error.status, error.error_id) == (PROCESSING_FAILURE, MAY_NO_LONGER_BE_UPDATED)


def test_set_without_what_ending_needs_is_refused():
    step = create_performed_step(UID, 2, in_progress())
    no_end = ended()
    del no_end.PerformedProcedureStepEndTime
    assert refused(set_performed_step, step, no_end).status == MISSING_ATTRIBUTE_VALUE
    assert refused(set_performed_step, step, ended(series=False)).status == (
        MISSING_ATTRIBUTE_VALUE
    )
    # A discontinued step may have made no series.
    assert set_performed_step(step, ended("DISCONTINUED", series=False)).status is (
        PpsStatus.DISCONTINUED
    )


def test_set_may_not_change_what_creation_fixed():
    step = create_performed_step(UID, 2, in_progress())
    change = Dataset()
    change.PatientID = "OTHER"
    change.PerformedProcedureStepDescription = "fine"
    error = refused(set_performed_step, step, change)
    assert (error.status, error.offending) == (INVALID_ATTRIBUTE_VALUE, (0x00100020,))
    # An intermediate N-SET that keeps the step in progress is accepted.
    kept = Dataset()
    kept.PerformedProcedureStepDescription = "SCANNER CEREBRAL"
    changed = set_performed_step(step, kept)
    assert changed.status is PpsStatus.IN_PROGRESS
    assert changed.attributes.PerformedProcedureStepDescription == "SCANNER CEREBRAL"


def test_the_sink_marks_the_scheduled_steps_and_refuses_duplicates_and_strangers():
    sink = InMemoryMpps()
    n_create(sink, 2, ACTOR, UID, in_progress())
    assert sink.scheduled[(2, STUDY, "SPS1")] is StepStatus.STARTED
    error = refused(n_create, sink, 2, ACTOR, UID, in_progress())
    assert error.status == DUPLICATE_SOP_INSTANCE
    # Another site does not know the instance.
    assert refused(n_set, sink, 3, ACTOR, UID, ended()).status == NO_SUCH_SOP_INSTANCE
    n_set(sink, 2, ACTOR, UID, ended("DISCONTINUED"))
    assert sink.scheduled[(2, STUDY, "SPS1")] is StepStatus.DISCONTINUED
    # A refused change writes nothing.
    refused(n_set, sink, 2, ACTOR, UID, ended())
    assert sink.steps[(2, UID)].status is PpsStatus.DISCONTINUED
    assert sink.actors == ["ae:BRIEY_CT", "ae:BRIEY_CT"]

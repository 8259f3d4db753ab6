"""Modality Performed Procedure Step, PS3.4 Annex F (F.7): what a modality says it did.

A modality creates a Performed Procedure Step when it starts an exam (N-CREATE, status
IN PROGRESS) and sets it COMPLETED or DISCONTINUED when it ends (N-SET); a step in a final
state is never changed again (F.7.2.2.2). `create_performed_step` and `set_performed_step`
check a request against Table F.7.2-1 and give the new state, or raise `MppsError` with the
DIMSE status of PS3.7 C and F.7.2.1.2 / F.7.2.2.2 (and the attributes at fault, never their
values). The scheduled steps the performed step refers to (Scheduled Step Attributes
Sequence: Study Instance UID, accession number, requested procedure and scheduled procedure
step IDs) are read into `ScheduledStepReference` so that storage can mark them
(`scheduled_status`).

An `MppsSink` keeps the performed steps: `apply` reads, changes and records one within one
transaction, committed before the modality is answered. `InMemoryMpps` is a sink for tests.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from pydicom.dataset import Dataset
from pydicom.tag import Tag
from pydicom.uid import UID

from concilium.platform import audit
from concilium.reading.worklist import StepStatus

__all__ = [
    "ATTRIBUTE_LIST_ERROR",
    "ATTRIBUTE_VALUE_OUT_OF_RANGE",
    "DUPLICATE_SOP_INSTANCE",
    "INVALID_ATTRIBUTE_VALUE",
    "MAY_NO_LONGER_BE_UPDATED",
    "MISSING_ATTRIBUTE",
    "MISSING_ATTRIBUTE_VALUE",
    "MODALITY_PERFORMED_PROCEDURE_STEP",
    "NO_SUCH_SOP_INSTANCE",
    "PROCESSING_FAILURE",
    "InMemoryMpps",
    "MppsError",
    "MppsSink",
    "PerformedSeries",
    "PerformedStep",
    "PpsStatus",
    "ScheduledStepReference",
    "create_performed_step",
    "n_create",
    "n_set",
    "performed_step",
    "scheduled_status",
    "set_performed_step",
]

MODALITY_PERFORMED_PROCEDURE_STEP = "1.2.840.10008.3.1.2.3.3"
"""Modality Performed Procedure Step SOP Class (PS3.4 F.7.1)."""

# Status (0000,0900) of the N-CREATE and N-SET responses (PS3.7 C.4, PS3.4 F.7.2).
INVALID_ATTRIBUTE_VALUE = 0x0106
"""A value the attribute cannot take, or an attribute N-SET may not change."""
PROCESSING_FAILURE = 0x0110
"""Processing failure; with Error ID `MAY_NO_LONGER_BE_UPDATED` for a final step."""
DUPLICATE_SOP_INSTANCE = 0x0111
"""N-CREATE of an instance that exists."""
NO_SUCH_SOP_INSTANCE = 0x0112
"""N-SET of an instance this SCP does not know (for the calling node's site)."""
ATTRIBUTE_VALUE_OUT_OF_RANGE = 0x0116
"""A value of the right form outside what the attribute allows (a date that is no day)."""
ATTRIBUTE_LIST_ERROR = 0x0107
"""N-CREATE without its attribute list."""
MISSING_ATTRIBUTE = 0x0120
"""A Type 1 attribute of the N-CREATE is absent."""
MISSING_ATTRIBUTE_VALUE = 0x0121
"""A Type 1 attribute is present with no value."""
MAY_NO_LONGER_BE_UPDATED = 0xA710
"""Error ID (0000,0903): "Performed Procedure Step Object may no longer be updated"
(PS3.4 Table F.7.2-2)."""


class PpsStatus(StrEnum):
    """Performed Procedure Step Status (0040,0252), PS3.3 C.4.14."""

    IN_PROGRESS = "IN PROGRESS"
    DISCONTINUED = "DISCONTINUED"
    COMPLETED = "COMPLETED"


FINAL = frozenset({PpsStatus.COMPLETED, PpsStatus.DISCONTINUED})


def scheduled_status(status: PpsStatus) -> StepStatus:
    """The state a scheduled step reaches when its performed step is in ``status``."""
    return {
        PpsStatus.IN_PROGRESS: StepStatus.STARTED,
        PpsStatus.COMPLETED: StepStatus.COMPLETED,
        PpsStatus.DISCONTINUED: StepStatus.DISCONTINUED,
    }[status]


class MppsError(Exception):
    """A request the SCP refuses, with its DIMSE status. The text names attributes, never
    their values (no patient data)."""

    def __init__(
        self,
        status: int,
        comment: str,
        offending: Sequence[int] = (),
        error_id: int | None = None,
    ) -> None:
        super().__init__(comment)
        self.status = status
        self.comment = comment
        self.offending = tuple(offending)
        self.error_id = error_id


@dataclass(frozen=True)
class ScheduledStepReference:
    """One item of the Scheduled Step Attributes Sequence (0040,0270): the scheduled step
    (and its order) the performed step carries out; empty strings for an unscheduled exam."""

    study_instance_uid: str
    accession_number: str = ""
    requested_procedure_id: str = ""
    scheduled_procedure_step_id: str = ""


@dataclass(frozen=True)
class PerformedSeries:
    """One item of the Performed Series Sequence (0040,0340)."""

    series_instance_uid: str
    sop_instance_uids: tuple[str, ...] = ()
    """Referenced Image and Non-Image Composite Object Sequences."""


@dataclass(frozen=True)
class PerformedStep:
    """A Modality Performed Procedure Step instance as the SCP holds it."""

    sop_instance_uid: str
    site_id: int
    """The site of the node that created it: only its nodes may see or change it."""
    station_ae_title: str
    """Performed Station AE Title (0040,0241)."""
    status: PpsStatus
    step_id: str
    """Performed Procedure Step ID (0040,0253)."""
    modality: str
    start: dt.datetime
    """Performed Procedure Step Start Date and Time (0040,0244), (0040,0245)."""
    end: dt.datetime | None
    """End Date and Time (0040,0250), (0040,0251), once the step has ended."""
    patient_id: str
    references: tuple[ScheduledStepReference, ...]
    series: tuple[PerformedSeries, ...]
    attributes: Dataset = field(compare=False, repr=False)
    """Every attribute of the instance, as created and set."""

    @property
    def accession_numbers(self) -> tuple[str, ...]:
        return tuple(
            dict.fromkeys(r.accession_number for r in self.references if r.accession_number)
        )


_TYPE_1_CREATE = (
    "ScheduledStepAttributesSequence",
    "PerformedProcedureStepID",
    "PerformedStationAETitle",
    "PerformedProcedureStepStartDate",
    "PerformedProcedureStepStartTime",
    "PerformedProcedureStepStatus",
    "Modality",
)
"""Required with a value in an N-CREATE (PS3.4 Table F.7.2-1, N-CREATE usage 1)."""

_CREATE_ONLY = frozenset(
    {
        "ScheduledStepAttributesSequence",
        "PatientName",
        "PatientID",
        "IssuerOfPatientID",
        "PatientBirthDate",
        "PatientSex",
        "ReferencedPatientSequence",
        "PerformedProcedureStepID",
        "PerformedStationAETitle",
        "PerformedStationName",
        "PerformedLocation",
        "PerformedProcedureStepStartDate",
        "PerformedProcedureStepStartTime",
        "Modality",
        "StudyID",
        "SOPClassUID",
        "SOPInstanceUID",
    }
)
"""Attributes Table F.7.2-1 does not allow in an N-SET."""


def _tag(keyword: str) -> int:
    return int(Tag(keyword))


def _text(ds: Dataset, keyword: str) -> str:
    value = ds.get(keyword)
    if value is None:
        return ""
    return str(value).strip()


def _date(ds: Dataset, keyword: str) -> dt.date | None:
    text = _text(ds, keyword)
    if not text:
        return None
    if len(text) != 8 or not text.isdigit():
        raise MppsError(INVALID_ATTRIBUTE_VALUE, f"{keyword}: not a date", [_tag(keyword)])
    try:
        return dt.date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError as exc:
        raise MppsError(
            ATTRIBUTE_VALUE_OUT_OF_RANGE, f"{keyword}: no such day", [_tag(keyword)]
        ) from exc


def _time(ds: Dataset, keyword: str) -> dt.time | None:
    text = _text(ds, keyword).replace(":", "")
    if not text:
        return None
    whole, _, fraction = text.partition(".")
    if not whole.isdigit() or len(whole) not in (2, 4, 6) or (fraction and not fraction.isdigit()):
        raise MppsError(INVALID_ATTRIBUTE_VALUE, f"{keyword}: not a time", [_tag(keyword)])
    hour, minute = int(whole[:2]), int(whole[2:4] or 0)
    second = min(int(whole[4:6] or 0), 59)
    try:
        return dt.time(hour, minute, second, int((fraction + "000000")[:6]) if fraction else 0)
    except ValueError as exc:
        raise MppsError(
            ATTRIBUTE_VALUE_OUT_OF_RANGE, f"{keyword}: no such time", [_tag(keyword)]
        ) from exc


def _status(ds: Dataset) -> PpsStatus:
    text = _text(ds, "PerformedProcedureStepStatus")
    try:
        return PpsStatus(text)
    except ValueError as exc:
        raise MppsError(
            INVALID_ATTRIBUTE_VALUE,
            "PerformedProcedureStepStatus: not IN PROGRESS, COMPLETED or DISCONTINUED",
            [_tag("PerformedProcedureStepStatus")],
        ) from exc


def _references(ds: Dataset) -> tuple[ScheduledStepReference, ...]:
    items = ds.get("ScheduledStepAttributesSequence") or []
    references = []
    for item in items:
        study = _text(item, "StudyInstanceUID")
        if not study:
            raise MppsError(
                MISSING_ATTRIBUTE_VALUE,
                "ScheduledStepAttributesSequence: an item without StudyInstanceUID",
                [_tag("ScheduledStepAttributesSequence"), _tag("StudyInstanceUID")],
            )
        if not UID(study).is_valid:
            raise MppsError(
                INVALID_ATTRIBUTE_VALUE,
                "ScheduledStepAttributesSequence: StudyInstanceUID is not a UID",
                [_tag("ScheduledStepAttributesSequence"), _tag("StudyInstanceUID")],
            )
        references.append(
            ScheduledStepReference(
                study_instance_uid=study,
                accession_number=_text(item, "AccessionNumber"),
                requested_procedure_id=_text(item, "RequestedProcedureID"),
                scheduled_procedure_step_id=_text(item, "ScheduledProcedureStepID"),
            )
        )
    return tuple(references)


def _series(ds: Dataset) -> tuple[PerformedSeries, ...]:
    found = []
    for item in ds.get("PerformedSeriesSequence") or []:
        uid = _text(item, "SeriesInstanceUID")
        if not uid or not UID(uid).is_valid:
            raise MppsError(
                INVALID_ATTRIBUTE_VALUE,
                "PerformedSeriesSequence: an item without a valid SeriesInstanceUID",
                [_tag("PerformedSeriesSequence"), _tag("SeriesInstanceUID")],
            )
        instances: list[str] = []
        for keyword in (
            "ReferencedImageSequence",
            "ReferencedNonImageCompositeSOPInstanceSequence",
        ):
            instances += [_text(ref, "ReferencedSOPInstanceUID") for ref in item.get(keyword) or []]
        found.append(PerformedSeries(uid, tuple(i for i in instances if i)))
    return tuple(found)


def _end(ds: Dataset) -> dt.datetime | None:
    day = _date(ds, "PerformedProcedureStepEndDate")
    moment = _time(ds, "PerformedProcedureStepEndTime")
    if day is None or moment is None:
        return None
    return dt.datetime.combine(day, moment)


def performed_step(uid: str, site_id: int, ds: Dataset) -> PerformedStep:
    """The performed step whose attributes are ``ds`` (as created and set, and as storage
    reads them back); raises `MppsError` for a value it cannot read."""
    start_day = _date(ds, "PerformedProcedureStepStartDate")
    start_time = _time(ds, "PerformedProcedureStepStartTime")
    assert start_day is not None and start_time is not None  # Type 1, checked on creation
    return PerformedStep(
        sop_instance_uid=uid,
        site_id=site_id,
        station_ae_title=_text(ds, "PerformedStationAETitle"),
        status=_status(ds),
        step_id=_text(ds, "PerformedProcedureStepID"),
        modality=_text(ds, "Modality"),
        start=dt.datetime.combine(start_day, start_time),
        end=_end(ds),
        patient_id=_text(ds, "PatientID"),
        references=_references(ds),
        series=_series(ds),
        attributes=ds,
    )


def _check_final(ds: Dataset, status: PpsStatus) -> None:
    """F.7.2.2.2: a step set COMPLETED or DISCONTINUED has its end date and time, and a
    completed one the series it made."""
    if status not in FINAL:
        return
    for keyword in ("PerformedProcedureStepEndDate", "PerformedProcedureStepEndTime"):
        if not _text(ds, keyword):
            raise MppsError(
                MISSING_ATTRIBUTE_VALUE, f"{keyword}: required to end the step", [_tag(keyword)]
            )
    if status is PpsStatus.COMPLETED and not ds.get("PerformedSeriesSequence"):
        raise MppsError(
            MISSING_ATTRIBUTE_VALUE,
            "PerformedSeriesSequence: required to complete the step",
            [_tag("PerformedSeriesSequence")],
        )


def create_performed_step(
    sop_instance_uid: str, site_id: int, attributes: Dataset | None
) -> PerformedStep:
    """The instance an N-CREATE makes (PS3.4 F.7.2.1); raises `MppsError`."""
    if not UID(sop_instance_uid).is_valid:
        raise MppsError(INVALID_ATTRIBUTE_VALUE, "Affected SOP Instance UID is not a UID")
    if attributes is None:
        raise MppsError(ATTRIBUTE_LIST_ERROR, "no attribute list")
    ds = copy.deepcopy(attributes)
    for keyword in _TYPE_1_CREATE:
        if keyword not in ds:
            raise MppsError(MISSING_ATTRIBUTE, f"{keyword}: missing", [_tag(keyword)])
        value = ds[keyword].value
        if value is None or value == "" or (ds[keyword].VR == "SQ" and len(value) == 0):
            raise MppsError(MISSING_ATTRIBUTE_VALUE, f"{keyword}: empty", [_tag(keyword)])
    if _status(ds) is not PpsStatus.IN_PROGRESS:
        raise MppsError(
            INVALID_ATTRIBUTE_VALUE,
            "PerformedProcedureStepStatus: an N-CREATE is IN PROGRESS",
            [_tag("PerformedProcedureStepStatus")],
        )
    # Dates and times are read (and refused when malformed) by building the step.
    _end(ds)
    return performed_step(sop_instance_uid, site_id, ds)


def set_performed_step(current: PerformedStep, modification: Dataset | None) -> PerformedStep:
    """The instance after an N-SET (PS3.4 F.7.2.2); raises `MppsError`."""
    if current.status in FINAL:
        raise MppsError(
            PROCESSING_FAILURE,
            "Performed Procedure Step Object may no longer be updated",
            error_id=MAY_NO_LONGER_BE_UPDATED,
        )
    if modification is None:
        raise MppsError(ATTRIBUTE_LIST_ERROR, "no modification list")
    refused = [
        int(elem.tag)
        for elem in modification
        if elem.keyword in _CREATE_ONLY and elem.tag.group not in (0x0000, 0x0002)
    ]
    if refused:
        raise MppsError(INVALID_ATTRIBUTE_VALUE, "attributes an N-SET may not change", refused)
    ds = copy.deepcopy(current.attributes)
    for elem in modification:
        if elem.tag.group in (0x0000, 0x0002):
            continue
        ds[elem.tag] = copy.deepcopy(elem)
    status = _status(ds)
    _check_final(ds, status)
    return performed_step(current.sop_instance_uid, current.site_id, ds)


class MppsSink(Protocol):
    """Where performed steps are kept, and where they update their scheduled steps."""

    def apply(
        self,
        site_id: int,
        actor: audit.Actor,
        sop_instance_uid: str,
        change: Callable[[PerformedStep | None], PerformedStep],
    ) -> PerformedStep:
        """In one transaction: read the instance (None when the site has none of that UID),
        call ``change`` with it, record the step it returns, set the scheduled steps its
        `references` name (Study Instance UID, accession number, step ID, of the site) to
        `scheduled_status` of its status, audit, and commit before returning. When ``change``
        raises `MppsError`, nothing is written and the error propagates."""
        ...


@dataclass
class InMemoryMpps:
    """An `MppsSink` in memory (for tests): the performed steps by (site, UID), and the
    state each scheduled step reached, by (site, study UID, scheduled step ID)."""

    steps: dict[tuple[int, str], PerformedStep] = field(default_factory=dict)
    scheduled: dict[tuple[int, str, str], StepStatus] = field(default_factory=dict)
    actors: list[str] = field(default_factory=list)

    def apply(
        self,
        site_id: int,
        actor: audit.Actor,
        sop_instance_uid: str,
        change: Callable[[PerformedStep | None], PerformedStep],
    ) -> PerformedStep:
        step = change(self.steps.get((site_id, sop_instance_uid)))
        self.steps[(site_id, sop_instance_uid)] = step
        for reference in step.references:
            key = (site_id, reference.study_instance_uid, reference.scheduled_procedure_step_id)
            self.scheduled[key] = scheduled_status(step.status)
        self.actors.append(actor.username)
        return step


def n_create(
    sink: MppsSink,
    site_id: int,
    actor: audit.Actor,
    sop_instance_uid: str,
    attributes: Dataset | None,
) -> PerformedStep:
    """An N-CREATE: a new performed step, refused when the UID exists (0111)."""

    def change(existing: PerformedStep | None) -> PerformedStep:
        if existing is not None:
            raise MppsError(DUPLICATE_SOP_INSTANCE, "the instance exists")
        return create_performed_step(sop_instance_uid, site_id, attributes)

    return sink.apply(site_id, actor, sop_instance_uid, change)


def n_set(
    sink: MppsSink,
    site_id: int,
    actor: audit.Actor,
    sop_instance_uid: str,
    modification: Dataset | None,
) -> PerformedStep:
    """An N-SET: the performed step changed, 0112 when the site has no such instance."""

    def change(existing: PerformedStep | None) -> PerformedStep:
        if existing is None:
            raise MppsError(NO_SUCH_SOP_INSTANCE, "no such Performed Procedure Step")
        return set_performed_step(existing, modification)

    return sink.apply(site_id, actor, sop_instance_uid, change)

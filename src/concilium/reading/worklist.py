"""Modality Worklist: the scheduled procedure steps as a modality asks for them, PS3.4 K.6.

A worklist item is one Scheduled Procedure Step with its requested procedure, imaging service
request and patient (PS3.4 K.6.1.2, Table K.6-1): `WorklistItem` holds what the hospital's
order gave, `item_dataset` writes it as the data set of the Modality Worklist Information
Model. A C-FIND identifier is matched against it as PS3.4 C.2.2.2 says (`matches`: single
value, universal, wildcard, date and time ranges and their combination, list of UIDs, empty
value, sequence matching on the Scheduled Procedure Step Sequence) with the archive's own
value matching (`concilium.imaging.value_matches`), and `answer` returns exactly the keys
asked for (C.2.2.1.2), empty when the item has no value for them.

Where the items come from is a `WorklistSource`: storage gives the candidates of the calling
node's site that a coarse `WorklistFilter` (station AE title, modality, start dates) cannot
exclude; `find_worklist` does the exact matching. `InMemoryWorklist` is a source for tests.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from pydicom.datadict import dictionary_VR
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence as DicomSequence
from pydicom.tag import Tag

from concilium.imaging import (
    CallingNode,
    InvalidQuery,
    KeyKind,
    datetime_range_matches,
    kind_of_vr,
    value_matches,
    values_of,
)

__all__ = [
    "MODALITY_WORKLIST_FIND",
    "Code",
    "InMemoryWorklist",
    "StepStatus",
    "WorklistFilter",
    "WorklistItem",
    "WorklistSource",
    "WorklistStep",
    "answer",
    "coarse_filter",
    "dicom_date",
    "dicom_time",
    "find_worklist",
    "item_dataset",
    "matches",
]

MODALITY_WORKLIST_FIND = "1.2.840.10008.5.1.4.31"
"""Modality Worklist Information Model - FIND (PS3.4 K.6.1.1)."""

_SPS = "ScheduledProcedureStepSequence"
_START_DATE = "ScheduledProcedureStepStartDate"
_START_TIME = "ScheduledProcedureStepStartTime"
_CHARSET = 0x00080005
_UTF8 = "ISO_IR 192"


class StepStatus(StrEnum):
    """Scheduled Procedure Step Status (0040,0020), PS3.3 C.4.10 defined terms, and the
    final states an MPPS gives it (PS3.4 F.7.2.1)."""

    SCHEDULED = "SCHEDULED"
    ARRIVED = "ARRIVED"
    READY = "READY"
    STARTED = "STARTED"
    DEPARTED = "DEPARTED"
    COMPLETED = "COMPLETED"
    DISCONTINUED = "DISCONTINUED"


@dataclass(frozen=True)
class Code:
    """A coded entry of a code sequence (PS3.3 8.8, Table 8.8-1)."""

    value: str
    scheme: str
    meaning: str
    scheme_version: str = ""

    def dataset(self) -> Dataset:
        ds = Dataset()
        ds.CodeValue = self.value
        ds.CodingSchemeDesignator = self.scheme
        if self.scheme_version:
            ds.CodingSchemeVersion = self.scheme_version
        ds.CodeMeaning = self.meaning
        return ds


@dataclass(frozen=True)
class WorklistStep:
    """The Scheduled Procedure Step of a worklist item (PS3.4 Table K.6-1, SPS Sequence)."""

    step_id: str
    """Scheduled Procedure Step ID (0040,0009)."""
    modality: str
    """Modality (0008,0060), e.g. ``CT``."""
    start_date: dt.date | None = None
    """Scheduled Procedure Step Start Date (0040,0002)."""
    start_time: dt.time | None = None
    """Scheduled Procedure Step Start Time (0040,0003)."""
    station_ae_title: str = ""
    """Scheduled Station AE Title (0040,0001): the modality that is to perform it."""
    station_name: str = ""
    """Scheduled Station Name (0040,0010)."""
    description: str = ""
    """Scheduled Procedure Step Description (0040,0007)."""
    performing_physician: str = ""
    """Scheduled Performing Physician's Name (0040,0006), a PN value (``FAMILY^GIVEN``)."""
    location: str = ""
    """Scheduled Procedure Step Location (0040,0011)."""
    status: StepStatus = StepStatus.SCHEDULED
    """Scheduled Procedure Step Status (0040,0020)."""
    protocol_codes: tuple[Code, ...] = ()
    """Scheduled Protocol Code Sequence (0040,0008)."""


@dataclass(frozen=True)
class WorklistItem:
    """One Modality Worklist item: a scheduled procedure step of a requested procedure of an
    imaging service request, for one patient (PS3.4 K.6.1.2.2)."""

    patient_name: str
    """Patient's Name (0010,0010), a PN value."""
    patient_id: str
    """Patient ID (0010,0020), the site's identifier."""
    step: WorklistStep
    issuer_of_patient_id: str = ""
    """Issuer of Patient ID (0010,0021)."""
    patient_birth_date: dt.date | None = None
    patient_sex: str = ""
    """Patient's Sex (0010,0040): ``M``, ``F``, ``O`` or empty."""
    accession_number: str = ""
    requested_procedure_id: str = ""
    requested_procedure_description: str = ""
    requested_procedure_codes: tuple[Code, ...] = ()
    study_instance_uid: str = ""
    referring_physician: str = ""
    """Referring Physician's Name (0008,0090), a PN value."""
    requesting_physician: str = ""
    """Requesting Physician (0032,1032), a PN value."""
    priority: str = ""
    """Requested Procedure Priority (0040,1003): STAT, HIGH, ROUTINE, MEDIUM or LOW."""
    admission_id: str = ""
    """Admission ID (0038,0010), when the patient is admitted."""


def dicom_date(value: dt.date | None) -> str:
    return value.strftime("%Y%m%d") if value is not None else ""


def dicom_time(value: dt.time | None) -> str:
    if value is None:
        return ""
    text = value.strftime("%H%M%S")
    return f"{text}.{value.microsecond:06d}" if value.microsecond else text


_Node = dict[int, tuple[str, Any]]
"""A data set as the worklist matches it: tag → (VR, value), a value being text or, for a
sequence, a list of nodes. Building pydicom data sets is left to the answers."""

_TAGS: dict[str, tuple[int, str]] = {}


def _put(node: _Node, keyword: str, value: Any) -> None:
    known = _TAGS.get(keyword)
    if known is None:
        tag = int(Tag(keyword))
        known = _TAGS[keyword] = (tag, dictionary_VR(tag))
    node[known[0]] = (known[1], value)


def _code_nodes(codes: tuple[Code, ...]) -> list[_Node]:
    nodes: list[_Node] = []
    for code in codes:
        node: _Node = {}
        _put(node, "CodeValue", code.value)
        _put(node, "CodingSchemeDesignator", code.scheme)
        if code.scheme_version:
            _put(node, "CodingSchemeVersion", code.scheme_version)
        _put(node, "CodeMeaning", code.meaning)
        nodes.append(node)
    return nodes


def _step_node(step: WorklistStep) -> _Node:
    node: _Node = {}
    _put(node, "Modality", step.modality)
    _put(node, "ScheduledStationAETitle", step.station_ae_title)
    _put(node, "ScheduledProcedureStepStartDate", dicom_date(step.start_date))
    _put(node, "ScheduledProcedureStepStartTime", dicom_time(step.start_time))
    _put(node, "ScheduledPerformingPhysicianName", step.performing_physician)
    _put(node, "ScheduledProcedureStepDescription", step.description)
    if step.protocol_codes:
        # Type 1C (PS3.4 Table K.6-1): present with its codes, else absent.
        _put(node, "ScheduledProtocolCodeSequence", _code_nodes(step.protocol_codes))
    _put(node, "ScheduledProcedureStepID", step.step_id)
    _put(node, "ScheduledStationName", step.station_name)
    _put(node, "ScheduledProcedureStepLocation", step.location)
    _put(node, "ScheduledProcedureStepStatus", str(step.status))
    return node


def _build(item: WorklistItem) -> _Node:
    node: _Node = {}
    _put(node, "AccessionNumber", item.accession_number)
    _put(node, "ReferringPhysicianName", item.referring_physician)
    # Type 2 in Table K.6-1; no order names a study or patient SOP instance to reference.
    _put(node, "ReferencedStudySequence", [])
    _put(node, "ReferencedPatientSequence", [])
    _put(node, "PatientName", item.patient_name)
    _put(node, "PatientID", item.patient_id)
    _put(node, "IssuerOfPatientID", item.issuer_of_patient_id)
    _put(node, "PatientBirthDate", dicom_date(item.patient_birth_date))
    _put(node, "PatientSex", item.patient_sex)
    _put(node, "StudyInstanceUID", item.study_instance_uid)
    _put(node, "RequestingPhysician", item.requesting_physician)
    _put(node, "RequestedProcedureDescription", item.requested_procedure_description)
    if item.requested_procedure_codes:
        _put(node, "RequestedProcedureCodeSequence", _code_nodes(item.requested_procedure_codes))
    _put(node, "AdmissionID", item.admission_id)
    _put(node, "ScheduledProcedureStepSequence", [_step_node(item.step)])
    _put(node, "RequestedProcedureID", item.requested_procedure_id)
    _put(node, "RequestedProcedurePriority", item.priority)
    if not _ascii(node):
        # Values are held as Unicode; declared UTF-8 (PS3.5 6.1.2.5.3) when it matters.
        node[_CHARSET] = ("CS", _UTF8)
    return dict(sorted(node.items()))


def _element(tag: int, vr: str, value: Any) -> DataElement:
    if vr == "SQ":
        return DataElement(tag, vr, DicomSequence([_dataset(child) for child in value]))
    return DataElement(tag, vr, value)


def _dataset(node: _Node) -> Dataset:
    ds = Dataset()
    for tag, (vr, value) in node.items():
        ds.add(_element(tag, vr, value))
    return ds


def item_dataset(item: WorklistItem) -> Dataset:
    """The item as a data set of the Modality Worklist Information Model (PS3.4 K.6.1.2.2):
    every attribute it holds, empty (Type 2) where the order gave no value."""
    return _dataset(_build(item))


@functools.lru_cache(maxsize=32768)
def _candidate(item: WorklistItem) -> _Node:
    # Items are immutable: the node of each is built once, and only read afterwards.
    return _build(item)


def _ascii(node: _Node) -> bool:
    for vr, value in node.values():
        if vr == "SQ":
            if not all(_ascii(child) for child in value):
                return False
        elif vr in _TEXT_VRS and not str(value).isascii():
            return False
    return True


_CODE_SEQUENCES = frozenset({"RequestedProcedureCodeSequence", "ScheduledProtocolCodeSequence"})
"""Sequences an item holds only when it has codes (Type 1C): absent, they have no item."""

_TEXT_VRS = frozenset({"PN", "LO", "SH", "LT", "ST", "UT", "UC"})


# -- matching ----------------------------------------------------------------------------


def _keys(ds: Dataset) -> Iterable[DataElement]:
    for elem in ds:
        if elem.tag.group in (0x0000, 0x0002) or elem.tag.is_private or elem.tag == _CHARSET:
            continue
        yield elem


_START_DATE_TAG = int(Tag(_START_DATE))
_START_TIME_TAG = int(Tag(_START_TIME))


@dataclass(frozen=True)
class _Key:
    """One matching key of a query, read once for every candidate."""

    tag: int
    kind: KeyKind
    value: Any
    """Text, or a list of texts; for a sequence, the `_Plan` of its item."""
    code_sequence: bool


@dataclass(frozen=True)
class _Plan:
    """The matching keys of a query (or of a sequence key's item), universal ones left out,
    and the combined date and time range when one applies."""

    keys: tuple[_Key, ...]
    combined: tuple[Any, Any] | None
    has_values: bool
    """Whether any key, at any depth, has a value (an empty sequence matches none)."""


def _plan(query: Dataset, *, combined_datetime: bool) -> _Plan:
    """Raises `InvalidQuery` for a key whose value its VR does not allow."""
    combined = None
    if combined_datetime and _START_DATE in query and _START_TIME in query:
        date, time = _flat(query[_START_DATE].value), _flat(query[_START_TIME].value)
        if values_of(date) and values_of(time):
            value_matches(KeyKind.DATE, date, "")
            value_matches(KeyKind.TIME, time, "")
            combined = (date, time)
    keys: list[_Key] = []
    has_values = combined is not None
    for key in _keys(query):
        tag = int(key.tag)
        if combined is not None and tag in (_START_DATE_TAG, _START_TIME_TAG):
            continue
        if key.VR == "SQ":
            if not key.value:
                continue
            if len(key.value) != 1:
                raise InvalidQuery(f"{key.keyword}: a sequence key has one item (C.2.2.2.6)")
            sub = _plan(key.value[0], combined_datetime=combined_datetime)
            has_values = has_values or sub.has_values
            if sub.keys or sub.combined is not None:
                code = key.keyword in _CODE_SEQUENCES
                keys.append(_Key(tag, KeyKind.TEXT, sub, code))
            continue
        value = _flat(key.value)
        kind = kind_of_vr(key.VR)
        # Matching against an empty value checks the key's syntax (dates, times, integers).
        value_matches(kind, value, "")
        if values_of(value) and values_of(value) != ["*"]:
            has_values = True
            keys.append(_Key(tag, kind, value, False))
    return _Plan(tuple(keys), combined, has_values)


def _plan_matches(plan: _Plan, candidate: _Node, *, fuzzy: bool) -> bool:
    if plan.combined is not None and not datetime_range_matches(
        plan.combined[0],
        plan.combined[1],
        candidate.get(_START_DATE_TAG, ("DA", ""))[1],
        candidate.get(_START_TIME_TAG, ("TM", ""))[1],
    ):
        return False
    for key in plan.keys:
        held = candidate.get(key.tag)
        if isinstance(key.value, _Plan):
            if held is None and not key.code_sequence:
                continue  # not held: a return key only (C.2.2.1.2)
            children = held[1] if held is not None else []
            if not any(_plan_matches(key.value, child, fuzzy=fuzzy) for child in children) and (
                children or key.value.has_values
            ):
                # No item matching is no match, but an empty sequence matches a query
                # item without values.
                return False
            continue
        if held is None:
            # Not held: a return key only (C.2.2.1.2 lets the SCP ignore it as a matching
            # key).
            continue
        if not value_matches(key.kind, key.value, held[1], fuzzy=fuzzy):
            return False
    return True


def _flat(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, MultiValue | list | tuple):
        return [str(v) for v in value]
    return str(value)


def matches(
    query: Dataset, item: WorklistItem, *, fuzzy: bool = False, combined_datetime: bool = False
) -> bool:
    """Whether the worklist item matches a C-FIND identifier (PS3.4 K.6.1.2.2, C.2.2.2).

    Every key the item holds is a matching key; keys it does not hold are return keys only.
    ``fuzzy``: person names by fuzzy semantic matching (C.2.2.2.1.1), otherwise without
    regard to case (C.2.2.2.1); ``combined_datetime``: the Scheduled Procedure Step Start
    Date and Time as one range (C.2.2.2.5), both negotiated per association (C.5.1.1).
    Raises `InvalidQuery` for a key whose value its VR does not allow.
    """
    plan = _plan(query, combined_datetime=combined_datetime)
    return _plan_matches(plan, _candidate(item), fuzzy=fuzzy)


# -- answering ---------------------------------------------------------------------------


def _empty(tag: int, vr: str) -> DataElement:
    if vr == "SQ":
        return DataElement(tag, vr, DicomSequence())
    return DataElement(tag, vr, None)


def _answer_of(query: Dataset, candidate: _Node) -> Dataset:
    response = Dataset()
    for key in _keys(query):
        tag = int(key.tag)
        held = candidate.get(tag)
        if held is None:
            vr = key.VR if key.VR not in ("UN", "") else dictionary_VR(key.tag)
            response.add(_empty(tag, vr))
            continue
        vr, value = held
        if vr != "SQ":
            response.add(_element(tag, vr, value))
            continue
        wanted = key.value[0] if key.value else Dataset()
        if not any(True for _ in _keys(wanted)):
            # A sequence key without items, or with one empty item, is universal matching
            # of the sequence: it is returned whole (C.2.2.2.6).
            response.add(_element(tag, "SQ", value))
            continue
        items = DicomSequence([_answer_of(wanted, child) for child in value])
        response.add(DataElement(tag, "SQ", items))
    return response


def answer(query: Dataset, item: WorklistItem) -> Dataset:
    """The C-FIND response identifier for a matching item (PS3.4 C.2.2.1.2, K.6.1.2.2): the
    keys of the query, each with the item's value or empty, sequences with the keys their
    query item names (all of them for a sequence key without items or with an empty item).
    Specific Character Set (0008,0005) is the item's: UTF-8 when one of its values is not
    ASCII (whatever the query's), else returned only when asked for, empty (the default
    repertoire)."""
    candidate = _candidate(item)
    response = _answer_of(query, candidate)
    if _CHARSET in candidate:
        response.SpecificCharacterSet = candidate[_CHARSET][1]
    elif _CHARSET in query:
        response.add(DataElement(_CHARSET, "CS", None))
    return response


# -- sources ------------------------------------------------------------------------------


@dataclass(frozen=True)
class WorklistFilter:
    """What a query says about the steps it can match, coarsely, for a source to search by
    (in an index): every matching item passes it; `matches` then decides exactly."""

    station_ae_titles: tuple[str, ...] | None = None
    """Scheduled Station AE Title: one of these (exact values), or any when None."""
    modalities: tuple[str, ...] | None = None
    """Modality: one of these (exact values), or any when None."""
    start_from: dt.date | None = None
    """Scheduled Procedure Step Start Date on or after, when given."""
    start_until: dt.date | None = None
    """Scheduled Procedure Step Start Date on or before, when given."""
    accession_numbers: tuple[str, ...] | None = None
    """Accession Number: one of these (exact values), or any when None. Not checked by
    `admits` (a step has none): a source narrows its search by it."""

    def admits(self, step: WorklistStep) -> bool:
        if self.station_ae_titles is not None and step.station_ae_title not in (
            self.station_ae_titles
        ):
            return False
        if self.modalities is not None and step.modality not in self.modalities:
            return False
        if self.start_from is not None or self.start_until is not None:
            if step.start_date is None:
                return False
            if self.start_from is not None and step.start_date < self.start_from:
                return False
            if self.start_until is not None and step.start_date > self.start_until:
                return False
        return True


def _exact(value: Any) -> tuple[str, ...] | None:
    values = values_of(_flat(value))
    if not values or any(set(v) & set('*?"') for v in values):
        return None
    return tuple(values)


def coarse_filter(query: Dataset) -> WorklistFilter:
    """The `WorklistFilter` of a C-FIND identifier: station, modality and start date of its
    Scheduled Procedure Step Sequence item when they are exact values or a date range, and
    its Accession Number when exact."""
    accessions = _exact(query.get("AccessionNumber", ""))
    if _SPS not in query:
        return WorklistFilter(accession_numbers=accessions)
    sequence = query[_SPS]
    if sequence.VR != "SQ" or not sequence.value or len(sequence.value) != 1:
        return WorklistFilter(accession_numbers=accessions)
    step = sequence.value[0]
    start_from = start_until = None
    dates = values_of(_flat(step.get(_START_DATE, "")))
    if len(dates) == 1 and dates[0] not in ("*", '""'):
        start_text, dash, end_text = dates[0].partition("-")
        start_from = _date(start_text)
        start_until = _date(end_text) if dash else start_from
    return WorklistFilter(
        station_ae_titles=_exact(step.get("ScheduledStationAETitle", "")),
        modalities=_exact(step.get("Modality", "")),
        start_from=start_from,
        start_until=start_until,
        accession_numbers=accessions,
    )


def _date(text: str) -> dt.date | None:
    try:
        return dt.datetime.strptime(text.strip(), "%Y%m%d").date() if text.strip() else None
    except ValueError:
        return None


class WorklistSource(Protocol):
    """Where worklist items come from: the scheduled steps of the sites a node belongs to."""

    def candidates(self, site_ids: Sequence[int], coarse: WorklistFilter) -> Iterable[WorklistItem]:
        """The items of these sites that ``coarse`` admits (more is allowed, fewer is not),
        among the steps a modality is to see (scheduled, not cancelled or performed)."""
        ...

    def disclosed(
        self, caller: CallingNode, site_ids: Sequence[int], items: Sequence[WorklistItem]
    ) -> None:
        """Record in the audit trail that ``caller`` (the `CallingNode`) was shown these
        items; called once per query, with no item when nothing matched."""
        ...


@dataclass
class InMemoryWorklist:
    """A `WorklistSource` of items held in memory, by site (for tests)."""

    items: dict[int, list[WorklistItem]] = field(default_factory=dict)
    disclosures: list[tuple[str, tuple[int, ...], int]] = field(default_factory=list)
    """(calling AE title, site ids, number of items shown), one per query."""

    def add(self, site_id: int, *items: WorklistItem) -> None:
        self.items.setdefault(site_id, []).extend(items)

    def candidates(self, site_ids: Sequence[int], coarse: WorklistFilter) -> Iterable[WorklistItem]:
        for site_id in site_ids:
            for item in self.items.get(site_id, []):
                if coarse.admits(item.step):
                    yield item

    def disclosed(
        self, caller: CallingNode, site_ids: Sequence[int], items: Sequence[WorklistItem]
    ) -> None:
        self.disclosures.append((caller.ae_title, tuple(site_ids), len(items)))


def find_worklist(
    source: WorklistSource,
    site_ids: Sequence[int],
    query: Dataset,
    *,
    fuzzy: bool = False,
    combined_datetime: bool = False,
) -> list[tuple[WorklistItem, Dataset]]:
    """The items of ``site_ids`` matching the identifier, each with its response identifier.

    Raises `InvalidQuery` when the identifier cannot be processed (status A900).
    """
    found: list[tuple[WorklistItem, Dataset]] = []
    plan = _plan(query, combined_datetime=combined_datetime)
    for item in source.candidates(site_ids, coarse_filter(query)):
        if _plan_matches(plan, _candidate(item), fuzzy=fuzzy):
            found.append((item, answer(query, item)))
    return found

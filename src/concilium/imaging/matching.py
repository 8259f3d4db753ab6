"""Attribute matching of PS3.4 C.2.2.2, as SQL conditions on the index.

A query identifier (a C-FIND request's, or the one a QIDO-RS query string stands for) is read
at its Query/Retrieve Level (0008,0052), PS3.4 C.6.1.1 and C.6.2.1: each matching key the
index holds becomes a condition, by single value, universal, wildcard (C.2.2.2.4), list of
UID (C.2.2.2.2) or range (C.2.2.2.5) matching; person names match without regard to case,
as C.2.2.2.1 allows, or by fuzzy semantic matching (C.2.2.2.1.1) when the query asks for it.
Keys the index does not hold are return keys only (C.2.2.1.2).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from sqlalchemy import ColumnElement, and_, exists, or_, select

from concilium.imaging.parsing import parse_da, parse_tm
from concilium.imaging.tables import ImagingInstance, ImagingSeries, ImagingStudy
from concilium.imaging.value_matching import (
    WILDCARDS,
    InvalidQuery,
    KeyKind,
    fuzzy_name_match,
    pad_time,
    parse_range,
    values_of,
)

__all__ = [
    "DEPTH",
    "KEYS",
    "TABLE_OF",
    "UNIQUE_KEY",
    "WILDCARDS",
    "InvalidQuery",
    "Key",
    "KeyKind",
    "Level",
    "ParsedQuery",
    "fuzzy_name_match",
    "level_of",
    "parse_identifier",
    "values_of",
]


class Level(enum.StrEnum):
    """Query/Retrieve Level (0008,0052), PS3.4 C.6.1.1 and C.6.2.1."""

    PATIENT = "PATIENT"
    STUDY = "STUDY"
    SERIES = "SERIES"
    IMAGE = "IMAGE"


DEPTH = {Level.PATIENT: 0, Level.STUDY: 1, Level.SERIES: 2, Level.IMAGE: 3}


@dataclass(frozen=True)
class Key:
    level: Level
    attribute: str
    kind: KeyKind


KEYS: Mapping[str, Key] = {
    "PatientID": Key(Level.PATIENT, "dicom_patient_id", KeyKind.TEXT),
    "PatientName": Key(Level.PATIENT, "patient_name", KeyKind.PERSON_NAME),
    "IssuerOfPatientID": Key(Level.PATIENT, "issuer_of_patient_id", KeyKind.TEXT),
    "PatientBirthDate": Key(Level.PATIENT, "patient_birth_date", KeyKind.DATE),
    "PatientSex": Key(Level.PATIENT, "patient_sex", KeyKind.TEXT),
    "StudyInstanceUID": Key(Level.STUDY, "study_instance_uid", KeyKind.UID),
    "StudyDate": Key(Level.STUDY, "study_date", KeyKind.DATE),
    "StudyTime": Key(Level.STUDY, "study_time", KeyKind.TIME),
    "AccessionNumber": Key(Level.STUDY, "accession_number", KeyKind.TEXT),
    "StudyID": Key(Level.STUDY, "study_id", KeyKind.TEXT),
    "StudyDescription": Key(Level.STUDY, "study_description", KeyKind.TEXT),
    "ReferringPhysicianName": Key(Level.STUDY, "referring_physician_name", KeyKind.PERSON_NAME),
    "InstitutionName": Key(Level.STUDY, "institution_name", KeyKind.TEXT),
    "SeriesInstanceUID": Key(Level.SERIES, "series_instance_uid", KeyKind.UID),
    "Modality": Key(Level.SERIES, "modality", KeyKind.TEXT),
    "SeriesNumber": Key(Level.SERIES, "series_number", KeyKind.INTEGER),
    "SeriesDescription": Key(Level.SERIES, "series_description", KeyKind.TEXT),
    "BodyPartExamined": Key(Level.SERIES, "body_part_examined", KeyKind.TEXT),
    "SeriesDate": Key(Level.SERIES, "series_date", KeyKind.DATE),
    "SeriesTime": Key(Level.SERIES, "series_time", KeyKind.TIME),
    "PerformedProcedureStepStartDate": Key(
        Level.SERIES, "performed_procedure_step_start_date", KeyKind.DATE
    ),
    "SOPInstanceUID": Key(Level.IMAGE, "sop_instance_uid", KeyKind.UID),
    "SOPClassUID": Key(Level.IMAGE, "sop_class_uid", KeyKind.UID),
    "InstanceNumber": Key(Level.IMAGE, "instance_number", KeyKind.INTEGER),
    "ContentDate": Key(Level.IMAGE, "content_date", KeyKind.DATE),
    "ContentTime": Key(Level.IMAGE, "content_time", KeyKind.TIME),
    "Rows": Key(Level.IMAGE, "rows", KeyKind.INTEGER),
    "Columns": Key(Level.IMAGE, "columns", KeyKind.INTEGER),
    "NumberOfFrames": Key(Level.IMAGE, "number_of_frames", KeyKind.INTEGER),
    "BitsAllocated": Key(Level.IMAGE, "bits_allocated", KeyKind.INTEGER),
    "PhotometricInterpretation": Key(Level.IMAGE, "photometric_interpretation", KeyKind.TEXT),
}
"""Matching keys the index holds, by keyword (PS3.4 C.6.1.1 tables C.6-1 to C.6-4)."""
TABLE_OF = {
    Level.PATIENT: ImagingStudy,
    Level.STUDY: ImagingStudy,
    Level.SERIES: ImagingSeries,
    Level.IMAGE: ImagingInstance,
}


UNIQUE_KEY = {
    Level.PATIENT: "PatientID",
    Level.STUDY: "StudyInstanceUID",
    Level.SERIES: "SeriesInstanceUID",
    Level.IMAGE: "SOPInstanceUID",
}


def _column(key: Key) -> Any:
    return getattr(TABLE_OF[key.level], key.attribute)


def _like(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%").replace("?", "_")


def _glob(value: str) -> str:
    return "".join(f"[{c}]" if c == "[" else c for c in value)


def _text_match(column: Any, value: str, *, fold_case: bool, sqlite: bool) -> ColumnElement[bool]:
    if fold_case:
        # ``column`` holds casefolded text already (see ImagingStudy.patient_name_folded).
        value = value.casefold()
        if not WILDCARDS & set(value):
            return column == value  # type: ignore[no-any-return]
        return column.like(_like(value), escape="\\")  # type: ignore[no-any-return]
    if not WILDCARDS & set(value):
        return column == value  # type: ignore[no-any-return]
    if sqlite:
        # SQLite's LIKE ignores case; GLOB honours it and uses the same * and ? wildcards.
        return column.op("GLOB")(_glob(value))  # type: ignore[no-any-return]
    return column.like(_like(value), escape="\\")  # type: ignore[no-any-return]


def _matcher(key: Key, values: list[str], sqlite: bool) -> ColumnElement[bool] | None:
    """SQL condition for one matching key, or None for universal matching."""
    column = _column(key)
    if not values or values == ["*"]:
        return None
    if key.kind is KeyKind.UID:
        return column.in_(values)  # type: ignore[no-any-return]
    if key.kind is KeyKind.DATE or key.kind is KeyKind.TIME:
        parse: Callable[[str], Any] = parse_da if key.kind is KeyKind.DATE else parse_tm
        pad = pad_time if key.kind is KeyKind.TIME else None
        conditions = []
        for value in values:
            start, end = parse_range(value, parse, pad_end=pad)
            parts = []
            if start is not None:
                parts.append(column >= start)
            if end is not None:
                parts.append(column <= end)
            conditions.append(and_(*parts))
        return or_(*conditions)
    if key.kind is KeyKind.INTEGER:
        try:
            return column.in_([int(v) for v in values])  # type: ignore[no-any-return]
        except ValueError as exc:
            raise InvalidQuery(f"{values!r} is not an integer") from exc
    fold = key.kind is KeyKind.PERSON_NAME
    if fold:
        column = getattr(TABLE_OF[key.level], f"{key.attribute}_folded")
    normalised = [v.rstrip("^") if fold and not WILDCARDS & set(v) else v for v in values]
    return or_(*(_text_match(column, v, fold_case=fold, sqlite=sqlite) for v in normalised))


@dataclass
class ParsedQuery:
    """A query identifier as the index answers it."""

    level: Level
    conditions: list[ColumnElement[bool]] = field(default_factory=list)
    """SQL conditions of the matching keys the index holds."""
    requested: list[tuple[int, str]] = field(default_factory=list)
    """(tag, keyword) of every attribute asked for, in identifier order."""
    fuzzy: dict[str, str] = field(default_factory=dict)
    """Person names matched by `fuzzy_name_match` rather than in SQL: pattern by keyword."""

    def fuzzy_matches(self, value_of: Callable[[str], Any]) -> bool:
        """Whether a match's names (``value_of(keyword)``) fit every fuzzy pattern."""
        return all(
            fuzzy_name_match(pattern, _joined(value_of(keyword)))
            for keyword, pattern in self.fuzzy.items()
        )


def parse_identifier(
    identifier: Dataset, level: Level, sqlite: bool, *, fuzzy: bool = False
) -> ParsedQuery:
    """The conditions and return keys of ``identifier`` at ``level``; raises `InvalidQuery`.

    With ``fuzzy``, person names are left to fuzzy semantic matching (C.2.2.2.1.1, see
    `ParsedQuery.fuzzy`) instead of case-insensitive matching.
    """
    query = ParsedQuery(level)
    for elem in identifier:
        if elem.tag.group == 0x0002 or elem.tag.is_private:
            continue
        keyword = elem.keyword
        if keyword in ("QueryRetrieveLevel", "SpecificCharacterSet"):
            continue
        query.requested.append((int(elem.tag), keyword))
        key = KEYS.get(keyword)
        if elem.VR == "SQ" or key is None or DEPTH[key.level] > DEPTH[level]:
            # Keys the index does not hold, and keys below the query level, are return keys
            # only: PS3.4 C.2.2.1.2 lets an SCP ignore optional matching keys.
            if keyword == "ModalitiesInStudy" and level is not Level.PATIENT:
                condition = _modalities_match(values_of(elem.value), sqlite)
                if condition is not None:
                    query.conditions.append(condition)
            continue
        if fuzzy and key.kind is KeyKind.PERSON_NAME:
            pattern = _joined(elem.value)
            if pattern:
                query.fuzzy[keyword] = pattern
            continue
        condition = _matcher(key, values_of(elem.value), sqlite)
        if condition is not None:
            query.conditions.append(condition)
    return query


def _joined(value: Any) -> str:
    # A value as the identifier or the match spells it, several values backslash-separated.
    if value is None:
        return ""
    if isinstance(value, MultiValue | list | tuple):
        return "\\".join(map(str, value))
    return str(value)


def _modalities_match(values: list[str], sqlite: bool) -> ColumnElement[bool] | None:
    if not values or values == ["*"]:
        return None
    # Not ``_matcher(...) or false()``: the truth value of an SQL "==" expression is not
    # the condition's, and exact matches would never match.
    condition = _matcher(KEYS["Modality"], values, sqlite)
    if condition is None:
        return None
    return exists(
        select(ImagingSeries.id).where(ImagingSeries.study_id == ImagingStudy.id, condition)
    )


def level_of(identifier: Dataset) -> Level:
    raw = str(identifier.get("QueryRetrieveLevel", "") or "").strip().upper()
    try:
        return Level(raw)
    except ValueError as exc:
        raise InvalidQuery(
            f"Query/Retrieve Level {raw!r} is not one of PATIENT, STUDY, SERIES, IMAGE"
        ) from exc

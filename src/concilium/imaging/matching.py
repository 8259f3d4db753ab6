"""Attribute matching of PS3.4 C.2.2.2, as SQL conditions on the index.

A query identifier (a C-FIND request's, or the one a QIDO-RS query string stands for) is read
at its Query/Retrieve Level (0008,0052), PS3.4 C.6.1.1 and C.6.2.1: each matching key the
index holds becomes a condition, by single value, universal, wildcard (C.2.2.2.4), list of
UID (C.2.2.2.2) or range (C.2.2.2.5) matching; person names match without regard to case,
as C.2.2.2.1 allows, or by fuzzy semantic matching (C.2.2.2.1.1) when the query asks for it.
Keys the index does not hold are return keys only (C.2.2.1.2).
"""

from __future__ import annotations

import datetime as dt
import enum
import fnmatch
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from sqlalchemy import ColumnElement, and_, exists, or_, select

from concilium.imaging.parsing import parse_da, parse_tm
from concilium.imaging.tables import ImagingInstance, ImagingSeries, ImagingStudy

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


class InvalidQuery(ValueError):
    """A query identifier that cannot be processed (PS3.4 C.4.1.1.4 status A900)."""


class Level(enum.StrEnum):
    """Query/Retrieve Level (0008,0052), PS3.4 C.6.1.1 and C.6.2.1."""

    PATIENT = "PATIENT"
    STUDY = "STUDY"
    SERIES = "SERIES"
    IMAGE = "IMAGE"


DEPTH = {Level.PATIENT: 0, Level.STUDY: 1, Level.SERIES: 2, Level.IMAGE: 3}


class KeyKind(enum.Enum):
    TEXT = "text"
    """Single value and wildcard matching, case-sensitive (C.2.2.2.1, C.2.2.2.4)."""
    PERSON_NAME = "pn"
    """As TEXT, but insensitive to case (C.2.2.2.1 allows it for PN)."""
    UID = "uid"
    """Single value or list of UIDs (C.2.2.2.2); no wildcards."""
    DATE = "date"
    """Single value or range (C.2.2.2.5)."""
    TIME = "time"
    """Single value or range (C.2.2.2.5)."""
    INTEGER = "int"
    """Single value."""


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


WILDCARDS = frozenset("*?")


def _column(key: Key) -> Any:
    return getattr(TABLE_OF[key.level], key.attribute)


def values_of(raw: Any) -> list[str]:
    if raw is None:
        return []
    if isinstance(raw, MultiValue | list | tuple):
        return [str(v).strip() for v in raw if str(v).strip()]
    text = str(raw).strip()
    return [part.strip() for part in text.split("\\") if part.strip()] if text else []


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


def _range(
    value: str, parse: Callable[[str], Any], *, pad_end: Callable[[str, Any], Any] | None = None
) -> tuple[Any, Any]:
    start_text, dash, end_text = value.partition("-")
    start = parse(start_text) if start_text else None
    end = parse(end_text) if end_text else None
    if (start_text and start is None) or (end_text and end is None) or (not dash and not start):
        raise InvalidQuery(f"not a valid date or time range: {value!r}")
    if not dash:
        end = start
        end_text = start_text
    if end is not None and pad_end is not None:
        end = pad_end(end_text, end)
    return start, end


def _pad_time(text: str, value: dt.time) -> dt.time:
    # "1200" as an upper bound means up to 12:00:59.999999: the bound covers its precision.
    digits = len(text.replace(":", "").partition(".")[0])
    if "." in text:
        return value
    if digits <= 2:
        return value.replace(minute=59, second=59, microsecond=999999)
    if digits <= 4:
        return value.replace(second=59, microsecond=999999)
    return value.replace(microsecond=999999)


def _matcher(key: Key, values: list[str], sqlite: bool) -> ColumnElement[bool] | None:
    """SQL condition for one matching key, or None for universal matching."""
    column = _column(key)
    if not values or values == ["*"]:
        return None
    if key.kind is KeyKind.UID:
        return column.in_(values)  # type: ignore[no-any-return]
    if key.kind is KeyKind.DATE or key.kind is KeyKind.TIME:
        parse: Callable[[str], Any] = parse_da if key.kind is KeyKind.DATE else parse_tm
        pad = _pad_time if key.kind is KeyKind.TIME else None
        conditions = []
        for value in values:
            start, end = _range(value, parse, pad_end=pad)
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


def _fold(text: str) -> str:
    """Case- and accent-insensitive form of a name, for fuzzy matching."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def fuzzy_name_match(pattern: str, name: str) -> bool:
    """Fuzzy semantic matching of a person name (PS3.4 C.2.2.2.1.1): negotiated for C-FIND
    (C.5.1.1), asked for by ``fuzzymatching=true`` in QIDO-RS (PS3.18 8.3.4.1).

    Insensitive to case and accents; ``*`` and ``?`` keep their meaning; without wildcards,
    each component given (family, given...) must begin the same component of the name.
    """
    folded_name = _fold(name)
    folded_pattern = _fold(pattern.strip())
    if not folded_pattern or folded_pattern == "*":
        return True
    if "*" in folded_pattern or "?" in folded_pattern:
        return fnmatch.fnmatchcase(folded_name, folded_pattern)
    wanted = folded_pattern.split("^")
    have = folded_name.split("^")
    return all(
        i < len(have) and have[i].strip().startswith(w.strip())
        for i, w in enumerate(wanted)
        if w.strip()
    )


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

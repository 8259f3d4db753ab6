"""Searches of the index: the C-FIND SCP of PS3.4 C.4.1.3, which QIDO-RS (PS3.18 10.6) uses too.

Patient Root and Study Root models. `search` matches an identifier
(`concilium.imaging.matching`) against the studies a principal may read
(`concilium.imaging.access.readable`) in one SQL query, which also pages the matches, and
answers each match with the attributes asked for (C.4.1.1.3.2); keys the index does not hold
are returned empty. Every search is audited.
"""

from __future__ import annotations

import datetime as dt
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydicom.datadict import dictionary_VR
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.tag import Tag
from sqlalchemy import ColumnElement, exists, func, select
from sqlalchemy.orm import Session

from concilium.imaging.access import STUDY_KIND, NotAuthorized, may_read_any, readable
from concilium.imaging.matching import (
    DEPTH,
    KEYS,
    TABLE_OF,
    UNIQUE_KEY,
    Key,
    KeyKind,
    Level,
    ParsedQuery,
    level_of,
    parse_identifier,
)
from concilium.imaging.tables import ImagingInstance, ImagingSeries, ImagingStudy
from concilium.platform import audit
from concilium.platform.policy import Principal

__all__ = [
    "PATIENT_STUDY_KEYS",
    "Match",
    "Page",
    "find",
    "patient_studies",
    "readable_rows",
    "search",
    "search_page",
]


def _study_has_accepted_instances() -> ColumnElement[bool]:
    # Rejected instances are gone for every reader (IHE IOCM), and so are emptied levels.
    return exists(
        select(ImagingInstance.id)
        .join(ImagingSeries, ImagingInstance.series_id == ImagingSeries.id)
        .where(ImagingSeries.study_id == ImagingStudy.id, ImagingInstance.rejected_at.is_(None))
    )


def _series_has_accepted_instances() -> ColumnElement[bool]:
    return exists(
        select(ImagingInstance.id).where(
            ImagingInstance.series_id == ImagingSeries.id, ImagingInstance.rejected_at.is_(None)
        )
    )


_PREFIXES = {Level.STUDY: "st_", Level.SERIES: "se_", Level.IMAGE: "in_"}


_OWN_COLUMNS = {
    Level.STUDY: ("id", "site_id", "patient_id", "updated_at"),
    Level.SERIES: ("id",),
    Level.IMAGE: ("id", "transfer_syntax_uid", "address", "size"),
}


def _label(level: Level, attribute: str) -> str:
    return _PREFIXES[Level.STUDY if level is Level.PATIENT else level] + attribute


def _level_columns(level: Level) -> list[Any]:
    table = TABLE_OF[level]
    keys = [k.attribute for k in KEYS.values() if TABLE_OF[k.level] is table]
    return [getattr(table, a).label(_label(level, a)) for a in (*_OWN_COLUMNS[level], *keys)]


_COLUMNS = {
    Level.STUDY: _level_columns(Level.STUDY),
    Level.SERIES: _level_columns(Level.STUDY) + _level_columns(Level.SERIES),
    Level.IMAGE: (
        _level_columns(Level.STUDY) + _level_columns(Level.SERIES) + _level_columns(Level.IMAGE)
    ),
}
"""What a query at each level reads: ids, the policy's facts and every matching key down to
that level, as plain columns (no ORM objects: a page of results is built from rows)."""


_LABELS = {keyword: _label(key.level, key.attribute) for keyword, key in KEYS.items()}


_SELECTS: dict[Level, Any] = {
    Level.STUDY: (
        select(*_COLUMNS[Level.STUDY])
        .where(_study_has_accepted_instances())
        .order_by(ImagingStudy.study_date, ImagingStudy.id)
    ),
    Level.SERIES: (
        select(*_COLUMNS[Level.SERIES])
        .select_from(ImagingStudy)
        .join(ImagingSeries, ImagingSeries.study_id == ImagingStudy.id)
        .where(_series_has_accepted_instances())
        .order_by(ImagingStudy.id, ImagingSeries.series_number, ImagingSeries.id)
    ),
    Level.IMAGE: (
        select(*_COLUMNS[Level.IMAGE])
        .select_from(ImagingStudy)
        .join(ImagingSeries, ImagingSeries.study_id == ImagingStudy.id)
        .join(ImagingInstance, ImagingInstance.series_id == ImagingSeries.id)
        .where(ImagingInstance.rejected_at.is_(None))
        .order_by(
            ImagingStudy.id, ImagingSeries.id, ImagingInstance.instance_number, ImagingInstance.id
        )
    ),
}
"""Each level's statement, built once (building one costs more than running it); a query
adds its conditions and the reader's visibility."""


def readable_rows(
    session: Session,
    principal: Principal,
    query: ParsedQuery,
    now: dt.datetime,
    *,
    limit: int | None = None,
    offset: int = 0,
) -> list[Any]:
    """The rows matching ``query`` that ``principal`` may read, in order, one SQL query;
    ``limit`` and ``offset`` page them in the database."""
    visible = readable(session, principal, now)
    base = _SELECTS[Level.STUDY if query.level is Level.PATIENT else query.level]
    statement = base.where(visible.condition(), *query.conditions)
    if offset:
        statement = statement.offset(offset)
    if limit is not None:
        statement = statement.limit(limit)
    # Plain rows of plain columns: the connection skips the ORM's work on each statement.
    return list(session.connection().execute(statement, visible.parameters()))


def _da(value: dt.date | None) -> str:
    return value.strftime("%Y%m%d") if value is not None else ""


def _tm(value: dt.time | None) -> str:
    if value is None:
        return ""
    return value.strftime("%H%M%S") + (f".{value.microsecond:06d}" if value.microsecond else "")


def _dicom_value(value: Any) -> Any:
    if isinstance(value, dt.date):
        return _da(value)
    if isinstance(value, dt.time):
        return _tm(value)
    return "" if value is None else value


@dataclass
class _Counts:
    series: dict[int, int] = field(default_factory=dict)
    instances_by_study: dict[int, int] = field(default_factory=dict)
    instances_by_series: dict[int, int] = field(default_factory=dict)
    modalities: dict[int, list[str]] = field(default_factory=dict)
    sop_classes: dict[int, list[str]] = field(default_factory=dict)


_COUNTED = frozenset(
    {
        "NumberOfPatientRelatedSeries",
        "NumberOfPatientRelatedInstances",
        "NumberOfStudyRelatedSeries",
        "NumberOfStudyRelatedInstances",
        "ModalitiesInStudy",
        "NumberOfSeriesRelatedInstances",
    }
)
"""Return keys computed from the series and instances of the matched studies."""


def _counts(session: Session, study_ids: set[int], *, sop_classes: bool) -> _Counts:
    counts = _Counts()
    if not study_ids:
        return counts
    ids = sorted(study_ids)
    accepted = ImagingInstance.rejected_at.is_(None)
    connection = session.connection()
    for series_id, study_id, modality, n in connection.execute(
        select(
            ImagingSeries.id,
            ImagingSeries.study_id,
            ImagingSeries.modality,
            func.count(ImagingInstance.id),
        )
        .join(ImagingInstance, ImagingInstance.series_id == ImagingSeries.id)
        .where(ImagingSeries.study_id.in_(ids), accepted)
        .group_by(ImagingSeries.id, ImagingSeries.study_id, ImagingSeries.modality)
    ):
        counts.series[study_id] = counts.series.get(study_id, 0) + 1
        counts.instances_by_series[series_id] = n
        counts.instances_by_study[study_id] = counts.instances_by_study.get(study_id, 0) + n
        modalities = counts.modalities.setdefault(study_id, [])
        if modality and modality not in modalities:
            modalities.append(str(modality))
    if not sop_classes:
        return counts
    for study_id, sop_class in connection.execute(
        select(ImagingSeries.study_id, ImagingInstance.sop_class_uid)
        .join(ImagingInstance, ImagingInstance.series_id == ImagingSeries.id)
        .where(ImagingSeries.study_id.in_(ids), accepted)
        .distinct()
    ):
        counts.sop_classes.setdefault(study_id, []).append(sop_class)
    return counts


def _counts_for(session: Session, query: ParsedQuery, rows: Sequence[Any]) -> _Counts:
    """Counts of the matched studies, read only when a return key needs them."""
    asked = {keyword for _, keyword in query.requested}
    sop_classes = "SOPClassesInStudy" in asked
    if not (sop_classes or asked & _COUNTED):
        return _Counts()
    return _counts(session, {row.st_id for row in rows}, sop_classes=sop_classes)


def _set(ds: Dataset, keyword_or_tag: str | int, value: Any) -> None:
    tag = Tag(keyword_or_tag)
    vr = dictionary_VR(tag)
    if vr == "SQ":
        ds.add(DataElement(tag, vr, []))
        return
    ds.add(DataElement(tag, vr, value if value != "" else None))


_SPECIFIC_CHARACTER_SET = 0x00080005


@dataclass(frozen=True, slots=True)
class Match:
    """One C-FIND / QIDO-RS match (PS3.4 C.4.1.1.3.2): each attribute asked for, by tag, in
    the order asked, as its DICOM value — text (DA and TM formatted), an integer, a list of
    either for several values, or "" when the archive holds none."""

    level: Level
    attributes: dict[int, Any]

    def value(self, keyword: str) -> Any:
        """The value of the attribute named by ``keyword``, "" when absent."""
        return self.attributes.get(int(Tag(keyword)), "")

    def dataset(self) -> Dataset:
        """The match as a C-FIND response identifier."""
        ds = Dataset()
        ds.QueryRetrieveLevel = str(self.level)
        for tag, value in self.attributes.items():
            _set(ds, tag, value)
        return ds


def _attributes(
    wanted: Sequence[tuple[int, str]], value_of: Callable[[str], Any]
) -> dict[int, Any]:
    attributes: dict[int, Any] = {}
    non_ascii = False
    for tag, keyword in wanted:
        value = _dicom_value(value_of(keyword))
        if isinstance(value, list):
            value = [v for v in value if v != ""] or ""
            non_ascii = non_ascii or any(isinstance(v, str) and not v.isascii() for v in value)
        elif isinstance(value, str):
            non_ascii = non_ascii or not value.isascii()
        attributes[tag] = value
    if non_ascii:
        # Values are held as Unicode; declare UTF-8 (PS3.5 6.1.2.5.3) only when it matters.
        attributes[_SPECIFIC_CHARACTER_SET] = "ISO_IR 192"
    return attributes


@dataclass(frozen=True, slots=True)
class Page:
    """The matches of one page of a search (PS3.18 8.3.4.4 ``limit`` and ``offset``)."""

    matches: list[Match]
    more: bool
    """Whether more matches follow this page."""


def search(
    session: Session,
    principal: Principal,
    actor: audit.Actor,
    identifier: Dataset,
    *,
    now: dt.datetime,
    retrieve_ae_title: str = "",
    limit: int | None = None,
    offset: int = 0,
    fuzzy: bool = False,
) -> list[Match]:
    """Match a query identifier against the studies ``principal`` may read.

    Implements the C-FIND SCP behaviour of PS3.4 C.4.1.3 for the Patient Root and Study
    Root models (the level comes from Query/Retrieve Level (0008,0052)), with single value,
    universal, wildcard, list-of-UID and range matching (C.2.2.2), and with ``fuzzy``,
    fuzzy semantic matching of person names (C.2.2.2.1.1). Keys the index does not hold are
    returned empty. One SQL query finds and pages the matches, restricted to what the policy
    lets ``principal`` read; the search is audited with what it returns. Raises
    `InvalidQuery` (A900) or `NotAuthorized` (0124).
    """
    return search_page(
        session,
        principal,
        actor,
        identifier,
        now=now,
        retrieve_ae_title=retrieve_ae_title,
        limit=limit,
        offset=offset,
        fuzzy=fuzzy,
    ).matches


def search_page(
    session: Session,
    principal: Principal,
    actor: audit.Actor,
    identifier: Dataset,
    *,
    now: dt.datetime,
    retrieve_ae_title: str = "",
    limit: int | None = None,
    offset: int = 0,
    fuzzy: bool = False,
) -> Page:
    """`search`, saying whether more matches follow the page."""
    level = level_of(identifier)
    if not may_read_any(principal):
        raise NotAuthorized("this node or person may not query the archive")
    sqlite = session.get_bind().dialect.name == "sqlite"
    query = parse_identifier(identifier, level, sqlite, fuzzy=fuzzy)
    found: list[tuple[Match, list[str]]]  # each match, with the studies it stands for
    if level is Level.PATIENT or query.fuzzy:
        # Patients gather several studies each, and fuzzy names are compared once the rows
        # are read: the page is taken once every match is known.
        rows = readable_rows(session, principal, query, now)
        counts = _counts_for(session, query, rows)
        if level is Level.PATIENT:
            found = _patient_matches(rows, query, counts)
        else:
            plan = _Plan(query, counts, retrieve_ae_title)
            found = [(plan.match(row), [row.st_study_instance_uid]) for row in rows]
        found = [(m, studies) for m, studies in found if query.fuzzy_matches(m.value)]
        more = limit is not None and len(found) > offset + limit
        found = found[offset : None if limit is None else offset + limit]
    else:
        # The database pages, reading one row more than the page to know whether more follow.
        rows = readable_rows(
            session,
            principal,
            query,
            now,
            limit=None if limit is None else limit + 1,
            offset=offset,
        )
        more = limit is not None and len(rows) > limit
        rows = rows[:limit] if limit is not None else rows
        plan = _Plan(query, _counts_for(session, query, rows), retrieve_ae_title)
        found = [(plan.match(row), [row.st_study_instance_uid]) for row in rows]
    _audit_search(session, actor, level, found)
    return Page([match for match, _ in found], more)


def _audit_search(
    session: Session,
    actor: audit.Actor,
    level: Level,
    found: Sequence[tuple[Match, list[str]]],
    patient_id: int | None = None,
) -> None:
    """One ``study.query`` entry: what the search returned, and the studies it stands for."""
    audit.record(
        session,
        actor,
        "study.query",
        "success",
        object_kind=STUDY_KIND,
        patient_id=patient_id,
        detail={
            "level": str(level),
            "matches": len(found),
            "studies": sorted({study for _, studies in found for study in studies})[:50],
        },
    )


PATIENT_STUDY_KEYS = (
    "StudyInstanceUID",
    "StudyDate",
    "StudyTime",
    "AccessionNumber",
    "StudyDescription",
    "ModalitiesInStudy",
    "NumberOfStudyRelatedSeries",
    "NumberOfStudyRelatedInstances",
)
"""What `patient_studies` tells of each study (PS3.4 C.6.2.1.2 study level keys)."""


def patient_studies(
    session: Session, principal: Principal, actor: audit.Actor, patient_id: int, *, now: dt.datetime
) -> list[Match]:
    """The studies of a platform patient that ``principal`` may read, oldest first, each with
    `PATIENT_STUDY_KEYS`: what a case for a meeting or a reading order attaches.

    Studies are linked to the platform patient when they are received (the Patient ID of the
    sending site); the lookup is audited as a search of that patient. Raises
    `NotAuthorized` when ``principal`` may read no study at all.
    """
    if not may_read_any(principal):
        raise NotAuthorized("this person may not read studies")
    query = ParsedQuery(
        Level.STUDY,
        conditions=[ImagingStudy.patient_id == patient_id],
        requested=[(int(Tag(keyword)), keyword) for keyword in PATIENT_STUDY_KEYS],
    )
    rows = readable_rows(session, principal, query, now)
    plan = _Plan(query, _counts_for(session, query, rows), "")
    found = [(plan.match(row), [row.st_study_instance_uid]) for row in rows]
    _audit_search(session, actor, Level.STUDY, found, patient_id=patient_id)
    return [match for match, _ in found]


def find(
    session: Session,
    principal: Principal,
    actor: audit.Actor,
    identifier: Dataset,
    *,
    now: dt.datetime,
    retrieve_ae_title: str = "",
    limit: int | None = None,
    offset: int = 0,
    fuzzy: bool = False,
) -> list[Dataset]:
    """`search`, each match as a C-FIND response identifier (PS3.4 C.4.1.1.3.2)."""
    matches = search(
        session,
        principal,
        actor,
        identifier,
        now=now,
        retrieve_ae_title=retrieve_ae_title,
        limit=limit,
        offset=offset,
        fuzzy=fuzzy,
    )
    return [match.dataset() for match in matches]


def _wanted(query: ParsedQuery) -> list[tuple[int, str]]:
    """Attributes each match returns: those asked for, then the unique keys down to the level."""
    wanted = list(query.requested)
    asked = {keyword for _, keyword in wanted}
    depth = DEPTH[query.level]
    for lvl in (Level.STUDY, Level.SERIES, Level.IMAGE):
        unique = UNIQUE_KEY[lvl]
        if DEPTH[lvl] <= depth and unique not in asked:
            wanted.append((int(Tag(unique)), unique))
    return wanted


_Getter = Callable[[Any], Any]


def _listed(values: list[str]) -> Any:
    return sorted(v for v in values if v != "") or ""


class _Plan:
    """How each match of a study, series or instance query is made from its row: one
    getter per attribute, chosen once per query rather than once per row and attribute."""

    def __init__(self, query: ParsedQuery, counts: _Counts, retrieve_ae_title: str) -> None:
        self.level = query.level
        depth = DEPTH[query.level]
        self.getters: list[tuple[int, _Getter]] = []
        self.texts: list[int] = []
        """Tags whose values may hold non-ASCII text."""
        for tag, keyword in _wanted(query):
            key = KEYS.get(keyword)
            if key is not None and DEPTH[key.level] <= depth:
                getter = self._column(keyword, key)
                if key.kind is KeyKind.TEXT or key.kind is KeyKind.PERSON_NAME:
                    self.texts.append(tag)
            else:
                getter = self._computed(keyword, depth, counts, retrieve_ae_title)
                if keyword == "ModalitiesInStudy":
                    self.texts.append(tag)
            self.getters.append((tag, getter))

    @staticmethod
    def _column(keyword: str, key: Key) -> _Getter:
        get = operator.attrgetter(_LABELS[keyword])
        if key.kind is KeyKind.DATE:
            return lambda row: _da(get(row))
        if key.kind is KeyKind.TIME:
            return lambda row: _tm(get(row))

        def value(row: Any) -> Any:
            found = get(row)
            return "" if found is None else found

        return value

    @staticmethod
    def _computed(keyword: str, depth: int, counts: _Counts, retrieve_ae_title: str) -> _Getter:
        if keyword == "NumberOfStudyRelatedSeries":
            return lambda row: counts.series.get(row.st_id, 0)
        if keyword == "NumberOfStudyRelatedInstances":
            return lambda row: counts.instances_by_study.get(row.st_id, 0)
        if keyword == "ModalitiesInStudy":
            return lambda row: _listed(counts.modalities.get(row.st_id, []))
        if keyword == "SOPClassesInStudy":
            return lambda row: _listed(counts.sop_classes.get(row.st_id, []))
        if keyword == "NumberOfSeriesRelatedInstances" and depth >= DEPTH[Level.SERIES]:
            return lambda row: counts.instances_by_series.get(row.se_id, 0)
        if keyword == "AvailableTransferSyntaxUID" and depth >= DEPTH[Level.IMAGE]:
            return operator.attrgetter("in_transfer_syntax_uid")
        constant = {"RetrieveAETitle": retrieve_ae_title, "InstanceAvailability": "ONLINE"}.get(
            keyword, ""
        )
        return lambda _row: constant

    def match(self, row: Any) -> Match:
        attributes = {tag: get(row) for tag, get in self.getters}
        for tag in self.texts:
            if not _ascii(attributes[tag]):
                # Values are held as Unicode; declare UTF-8 (PS3.5 6.1.2.5.3) when it matters.
                attributes[_SPECIFIC_CHARACTER_SET] = "ISO_IR 192"
                break
        return Match(self.level, attributes)


def _ascii(value: Any) -> bool:
    if isinstance(value, list):
        return all(_ascii(v) for v in value)
    return not isinstance(value, str) or value.isascii()


def _patient_matches(
    rows: Sequence[Any], query: ParsedQuery, counts: _Counts
) -> list[tuple[Match, list[str]]]:
    # Each hospital names its patients under its own Patient ID: one match per site and ID.
    groups: dict[tuple[int, str], list[Any]] = {}
    for row in rows:
        groups.setdefault((row.st_site_id, row.st_dicom_patient_id), []).append(row)
    wanted = list(query.requested)
    if "PatientID" not in {k for _, k in wanted}:
        wanted.append((int(Tag("PatientID")), "PatientID"))
    matches: list[tuple[Match, list[str]]] = []
    for studies in groups.values():
        latest = max(studies, key=lambda s: (s.st_updated_at, s.st_id))
        computed = {
            "NumberOfPatientRelatedStudies": len(studies),
            "NumberOfPatientRelatedSeries": sum(counts.series.get(s.st_id, 0) for s in studies),
            "NumberOfPatientRelatedInstances": sum(
                counts.instances_by_study.get(s.st_id, 0) for s in studies
            ),
        }

        def value_of(keyword: str, latest: Any = latest, computed: Any = computed) -> Any:
            key = KEYS.get(keyword)
            if key is not None and key.level is Level.PATIENT:
                return getattr(latest, _LABELS[keyword])
            return computed.get(keyword, "")

        uids = [s.st_study_instance_uid for s in studies]
        matches.append((Match(Level.PATIENT, _attributes(wanted, value_of)), uids))
    return matches

"""HL7 v2 data types read from and written to segments (HL7 v2.5.1 chapter 2A).

Each class names the data type it models: HD (§2A.33), EI (§2A.24), CE/CWE (§2A.8/§2A.13),
CX (§2A.19), XPN (§2A.88), XAD (§2A.87), XTN (§2A.89), XCN (§2A.86), PL (§2A.53). A class
reads itself from a field of a :class:`~concilium.reading.hl7v2_encoding.Segment` (``None``
when the field is empty) and composes itself back for outbound messages. DT and DTM
(§2A.21, §2A.22) are read by :func:`parse_date` and :func:`parse_datetime`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone, tzinfo

from concilium.reading.hl7v2_encoding import (
    DEFAULT_ENCODING,
    EncodingCharacters,
    Segment,
    compose_field,
)
from concilium.reading.hl7v2_errors import ErrorCode, HL7Error

_DTM = re.compile(
    r"^(\d{4})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:\.(\d{1,4}))?)?)?)?)?)?"
    r"([+-]\d{4})?$"
)


def parse_datetime(text: str, zone: tzinfo) -> datetime:
    """Read a DTM/TS value ``YYYY[MM[DD[HH[MM[SS[.S[S[S[S]]]]]]]]][+/-ZZZZ]`` (§2A.22).

    Without an offset the value is local time in ``zone``; missing parts default to the
    start of the period. Raises :class:`ValueError` when the text is not a DTM.
    """
    match = _DTM.match(text.strip())
    if match is None:
        raise ValueError("not an HL7 date/time (YYYY[MM[DD[HH[MM[SS[.SSSS]]]]]][+/-ZZZZ])")
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    tz: tzinfo = zone
    if offset is not None:
        sign = -1 if offset[0] == "-" else 1
        hours, minutes = int(offset[1:3]), int(offset[3:5])
        if hours > 14 or minutes > 59:
            raise ValueError("time zone offset out of range")
        tz = timezone(sign * timedelta(hours=hours, minutes=minutes))
    return datetime(
        int(year),
        int(month or 1),
        int(day or 1),
        int(hour or 0),
        int(minute or 0),
        int(second or 0),
        int((fraction or "0").ljust(6, "0")[:6]),
        tzinfo=tz,
    )


def parse_date(text: str) -> date:
    """Read a DT value ``YYYY[MM[DD]]`` (§2A.21); a DTM is accepted and its time ignored."""
    value = text.strip()
    match = _DTM.match(value)
    if match is None:
        raise ValueError("not an HL7 date (YYYY[MM[DD]])")
    year, month, day = match.group(1), match.group(2), match.group(3)
    return date(int(year), int(month or 1), int(day or 1))


def read_date(segment: Segment, field: int, component: int = 1, *, name: str) -> date | None:
    """A DT field of a segment, None when empty, :class:`HL7Error` 102 when malformed."""
    value = segment.get(field, component)
    if not value.strip():
        return None
    try:
        return parse_date(value)
    except ValueError:
        location = segment.location(field, component if component > 1 else None)
        raise HL7Error(
            ErrorCode.DATA_TYPE_ERROR, f"{location} ({name}) is not an HL7 date", location
        ) from None


def read_datetime(
    segment: Segment, field: int, zone: tzinfo, component: int = 1, *, name: str
) -> datetime | None:
    """A DTM/TS field of a segment, None when empty, :class:`HL7Error` 102 when malformed."""
    value = segment.get(field, component)
    if not value.strip():
        return None
    try:
        return parse_datetime(value, zone)
    except ValueError:
        location = segment.location(field, component if component > 1 else None)
        raise HL7Error(
            ErrorCode.DATA_TYPE_ERROR, f"{location} ({name}) is not an HL7 date/time", location
        ) from None


def format_datetime(value: datetime) -> str:
    """Write an aware datetime as DTM to the second, with its offset (§2A.22)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("an HL7 date/time is written from an aware datetime")
    return value.strftime("%Y%m%d%H%M%S%z")


def format_date(value: date) -> str:
    """Write a date as DT ``YYYYMMDD`` (§2A.21)."""
    return value.strftime("%Y%m%d")


@dataclass(frozen=True)
class HierarchicDesignator:
    """HD: an application, facility or assigning authority (§2A.33)."""

    namespace_id: str = ""
    """Local name, HD-1."""
    universal_id: str = ""
    """Universal identifier such as an OID, HD-2."""
    universal_id_type: str = ""
    """Type of the universal identifier (table 0301, e.g. ``ISO``), HD-3."""

    def __bool__(self) -> bool:
        return bool(self.namespace_id or self.universal_id)

    def __str__(self) -> str:
        return self.namespace_id or self.universal_id

    @classmethod
    def read(
        cls, segment: Segment, field: int, repetition: int = 1, component: int | None = None
    ) -> HierarchicDesignator | None:
        """Read an HD field, or an HD held in the sub-components of ``component``."""
        if component is None:
            parts = [segment.get(field, c, 1, repetition) for c in (1, 2, 3)]
        else:
            parts = [segment.get(field, component, s, repetition) for s in (1, 2, 3)]
        value = cls(*parts)
        return value if value else None

    def parts(self) -> tuple[str, str, str]:
        """The three parts, to compose as components or as sub-components."""
        return (self.namespace_id, self.universal_id, self.universal_id_type)

    def compose(self, encoding: EncodingCharacters = DEFAULT_ENCODING) -> str:
        """This HD as a field value."""
        return compose_field(*self.parts(), encoding=encoding)


@dataclass(frozen=True)
class EntityIdentifier:
    """EI: an identifier and the system that issued it, e.g. an order number (§2A.24)."""

    entity_id: str
    """The identifier, EI-1."""
    namespace_id: str = ""
    """Issuer's local name, EI-2."""
    universal_id: str = ""
    """Issuer's universal identifier, EI-3."""
    universal_id_type: str = ""
    """Type of EI-3 (table 0301), EI-4."""

    def __str__(self) -> str:
        return self.entity_id

    @classmethod
    def read(cls, segment: Segment, field: int, repetition: int = 1) -> EntityIdentifier | None:
        """Read an EI field; None when EI-1 is empty."""
        entity_id = segment.get(field, 1, 1, repetition).strip()
        if not entity_id:
            return None
        return cls(entity_id, *(segment.get(field, c, 1, repetition) for c in (2, 3, 4)))

    def compose(self, encoding: EncodingCharacters = DEFAULT_ENCODING) -> str:
        """This EI as a field value."""
        return compose_field(
            self.entity_id,
            self.namespace_id,
            self.universal_id,
            self.universal_id_type,
            encoding=encoding,
        )


@dataclass(frozen=True)
class CodedElement:
    """CE/CWE: a code, its text and its coding system, with an optional alternate (§2A.8)."""

    code: str
    """Identifier, component 1."""
    text: str = ""
    """Text for people, component 2."""
    coding_system: str = ""
    """Name of the coding system (table 0396), component 3."""
    alternate_code: str = ""
    """Alternate identifier, component 4."""
    alternate_text: str = ""
    """Alternate text, component 5."""
    alternate_coding_system: str = ""
    """Alternate coding system, component 6."""

    def __str__(self) -> str:
        return self.text or self.code

    @classmethod
    def read(
        cls, segment: Segment, field: int, repetition: int = 1, *, first_component: int = 1
    ) -> CodedElement | None:
        """Read a CE/CWE; ``first_component=4`` reads the alternate triplet as the main one.

        None when both the code and the text are empty.
        """
        count = 6 if first_component == 1 else 3
        parts = [segment.get(field, first_component + i, 1, repetition) for i in range(count)]
        if not parts[0].strip() and not parts[1].strip():
            return None
        return cls(*parts)

    def compose(self, encoding: EncodingCharacters = DEFAULT_ENCODING) -> str:
        """This CE as a field value."""
        return compose_field(
            self.code,
            self.text,
            self.coding_system,
            self.alternate_code,
            self.alternate_text,
            self.alternate_coding_system,
            encoding=encoding,
        )


@dataclass(frozen=True)
class PersonIdentifier:
    """CX: an identifier of a person and its assigning authority (§2A.19), e.g. PID-3."""

    id: str
    """The identifier, CX-1."""
    assigning_authority: HierarchicDesignator | None = None
    """Who issued it, CX-4 (for a French hospital: its own namespace or OID)."""
    identifier_type: str = ""
    """Identifier type code (table 0203: ``PI`` patient internal, ``NH`` national...), CX-5."""
    assigning_facility: HierarchicDesignator | None = None
    """Facility where it was issued, CX-6."""

    @classmethod
    def read(cls, segment: Segment, field: int, repetition: int = 1) -> PersonIdentifier | None:
        """Read a CX; None when CX-1 is empty."""
        value = segment.get(field, 1, 1, repetition).strip()
        if not value:
            return None
        return cls(
            value,
            HierarchicDesignator.read(segment, field, repetition, component=4),
            segment.get(field, 5, 1, repetition),
            HierarchicDesignator.read(segment, field, repetition, component=6),
        )

    @classmethod
    def read_all(cls, segment: Segment, field: int) -> tuple[PersonIdentifier, ...]:
        """Every repetition of a CX field, empty ones left out."""
        found = (cls.read(segment, field, r) for r in range(1, segment.repetitions(field) + 1))
        return tuple(item for item in found if item is not None)

    def compose(self, encoding: EncodingCharacters = DEFAULT_ENCODING) -> str:
        """This CX as a field value (one repetition)."""
        authority = self.assigning_authority.parts() if self.assigning_authority else ""
        facility = self.assigning_facility.parts() if self.assigning_facility else ""
        return compose_field(
            self.id, "", "", authority, self.identifier_type, facility, encoding=encoding
        )


@dataclass(frozen=True)
class PersonName:
    """XPN: a person's name (§2A.88), e.g. PID-5."""

    family: str
    """Family name (surname of FN), XPN-1.1."""
    given: str = ""
    """Given name, XPN-2."""
    middle: str = ""
    """Second and further given names or initials, XPN-3."""
    suffix: str = ""
    """Suffix such as ``JR``, XPN-4."""
    prefix: str = ""
    """Prefix such as ``DR``, XPN-5."""
    name_type: str = ""
    """Name type code (table 0200: ``L`` legal, ``D`` display, ``M`` maiden...), XPN-7."""

    def __str__(self) -> str:
        return " ".join(part for part in (self.given, self.family) if part)

    @classmethod
    def read(cls, segment: Segment, field: int, repetition: int = 1) -> PersonName | None:
        """Read an XPN; None when both the family and given names are empty."""
        family = segment.get(field, 1, 1, repetition)
        given = segment.get(field, 2, 1, repetition)
        if not family.strip() and not given.strip():
            return None
        return cls(
            family,
            given,
            segment.get(field, 3, 1, repetition),
            segment.get(field, 4, 1, repetition),
            segment.get(field, 5, 1, repetition),
            segment.get(field, 7, 1, repetition),
        )

    @classmethod
    def read_all(cls, segment: Segment, field: int) -> tuple[PersonName, ...]:
        """Every repetition of an XPN field, empty ones left out."""
        found = (cls.read(segment, field, r) for r in range(1, segment.repetitions(field) + 1))
        return tuple(item for item in found if item is not None)

    def compose(self, encoding: EncodingCharacters = DEFAULT_ENCODING) -> str:
        """This XPN as a field value (one repetition)."""
        return compose_field(
            self.family,
            self.given,
            self.middle,
            self.suffix,
            self.prefix,
            "",
            self.name_type,
            encoding=encoding,
        )


@dataclass(frozen=True)
class Address:
    """XAD: a postal address (§2A.87), e.g. PID-11."""

    street: str = ""
    """Street address, XAD-1.1."""
    other: str = ""
    """Other designation (building, lieu-dit), XAD-2."""
    city: str = ""
    """City, XAD-3."""
    state: str = ""
    """State or province (French département), XAD-4."""
    postal_code: str = ""
    """Zip or postal code, XAD-5."""
    country: str = ""
    """Country (ISO 3166), XAD-6."""
    address_type: str = ""
    """Address type (table 0190: ``H`` home, ``BR`` birth...), XAD-7."""

    @classmethod
    def read(cls, segment: Segment, field: int, repetition: int = 1) -> Address | None:
        """Read an XAD; None when all its parts are empty."""
        value = cls(
            segment.get(field, 1, 1, repetition),
            *(segment.get(field, c, 1, repetition) for c in range(2, 8)),
        )
        return None if value == cls() else value

    @classmethod
    def read_all(cls, segment: Segment, field: int) -> tuple[Address, ...]:
        """Every repetition of an XAD field, empty ones left out."""
        found = (cls.read(segment, field, r) for r in range(1, segment.repetitions(field) + 1))
        return tuple(item for item in found if item is not None)


@dataclass(frozen=True)
class Telecom:
    """XTN: a telephone number or e-mail address (§2A.89), e.g. PID-13."""

    number: str = ""
    """The number as sent: XTN-1, else XTN-12, else country, area and local parts joined."""
    use: str = ""
    """Telecommunication use code (table 0201: ``PRN`` primary residence...), XTN-2."""
    equipment: str = ""
    """Equipment type (table 0202: ``PH``, ``CP`` cell phone, ``Internet``...), XTN-3."""
    email: str = ""
    """E-mail address, XTN-4."""

    @classmethod
    def read(cls, segment: Segment, field: int, repetition: int = 1) -> Telecom | None:
        """Read an XTN; None when it holds neither number nor e-mail."""
        number = segment.get(field, 1, 1, repetition) or segment.get(field, 12, 1, repetition)
        if not number:
            parts = (segment.get(field, c, 1, repetition) for c in (5, 6, 7))
            number = " ".join(part for part in parts if part)
        email = segment.get(field, 4, 1, repetition)
        if not number.strip() and not email.strip():
            return None
        return cls(
            number,
            segment.get(field, 2, 1, repetition),
            segment.get(field, 3, 1, repetition),
            email,
        )

    @classmethod
    def read_all(cls, segment: Segment, field: int) -> tuple[Telecom, ...]:
        """Every repetition of an XTN field, empty ones left out."""
        found = (cls.read(segment, field, r) for r in range(1, segment.repetitions(field) + 1))
        return tuple(item for item in found if item is not None)


@dataclass(frozen=True)
class Practitioner:
    """XCN: a physician or other caregiver with an identifier (§2A.86), e.g. PV1-8, ORC-12."""

    id: str = ""
    """Identifier (in France, often the RPPS number), XCN-1."""
    family: str = ""
    """Family name, XCN-2.1."""
    given: str = ""
    """Given name, XCN-3."""
    middle: str = ""
    """Second given names or initials, XCN-4."""
    suffix: str = ""
    """Suffix, XCN-5."""
    prefix: str = ""
    """Prefix such as ``DR``, XCN-6."""
    assigning_authority: HierarchicDesignator | None = None
    """Who issued the identifier, XCN-9."""

    def __str__(self) -> str:
        return " ".join(p for p in (self.prefix, self.given, self.family) if p) or self.id

    @classmethod
    def read(cls, segment: Segment, field: int, repetition: int = 1) -> Practitioner | None:
        """Read an XCN; None when it has neither identifier nor name."""
        id_, family, given, middle, suffix, prefix = (
            segment.get(field, c, 1, repetition) for c in range(1, 7)
        )
        if not (id_.strip() or family.strip() or given.strip()):
            return None
        authority = HierarchicDesignator.read(segment, field, repetition, component=9)
        return cls(id_, family, given, middle, suffix, prefix, authority)

    def compose(self, encoding: EncodingCharacters = DEFAULT_ENCODING) -> str:
        """This XCN as a field value (one repetition)."""
        authority = self.assigning_authority.parts() if self.assigning_authority else ""
        return compose_field(
            self.id,
            self.family,
            self.given,
            self.middle,
            self.suffix,
            self.prefix,
            "",
            "",
            authority,
            encoding=encoding,
        )

    def compose_cnn(self, encoding: EncodingCharacters = DEFAULT_ENCODING) -> str:
        """This practitioner as the CNN held in the first component of an NDL (OBR-32)."""
        authority = self.assigning_authority.parts() if self.assigning_authority else ("",) * 3
        return compose_field(
            (
                self.id,
                self.family,
                self.given,
                self.middle,
                self.suffix,
                self.prefix,
                "",
                "",
                *authority,
            ),
            encoding=encoding,
        )


@dataclass(frozen=True)
class PatientLocation:
    """PL: where a patient is, e.g. PV1-3 (§2A.53)."""

    point_of_care: str = ""
    """Nursing unit or department, PL-1."""
    room: str = ""
    """Room, PL-2."""
    bed: str = ""
    """Bed, PL-3."""
    facility: str = ""
    """Facility (namespace of the HD), PL-4."""

    @classmethod
    def read(cls, segment: Segment, field: int, repetition: int = 1) -> PatientLocation | None:
        """Read a PL; None when all its parts are empty."""
        value = cls(*(segment.get(field, c, 1, repetition) for c in (1, 2, 3, 4)))
        return None if value == cls() else value

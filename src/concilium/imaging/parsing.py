"""Validation of received Part 10 objects and extraction of the attributes the index needs.

An instance arriving by C-STORE (PS3.4 B.2.3) or STOW-RS (PS3.18 10.5) is checked here before
it is committed: the PS3.10 7.1 preamble and File Meta Information are present, the transfer
syntax is known, the SOP Class is a storage class we accept, and the four identifying UIDs
are present and valid (PS3.5 9.1). Pixel Data is never loaded: large values are deferred.

Each refusal raises a subclass of `InvalidInstance` carrying a protocol-neutral
`FailureReason`, and the UIDs the object could be named by as far as its header was read;
each protocol translates the reason with its own table, beside its adapter
(`concilium.imaging.status.C_STORE_STATUS` for C-STORE, PS3.4 Annex B.2.3 and PS3.7 Annex C;
`concilium.imaging.dicomweb.stow.STOW_RS_FAILURE_REASON` for STOW-RS, PS3.18 Table 10.5.3-1).

The index attributes follow the Patient/Study/Series/Instance levels of the Query/Retrieve
Information Model (PS3.4 C.6.1.1) and the QIDO-RS required return keys (PS3.18 10.6.3.3).
"""

from __future__ import annotations

import datetime as dt
import enum
import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydicom
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataelem import DataElement, RawDataElement, convert_raw_data_element
from pydicom.dataset import Dataset, FileDataset
from pydicom.errors import InvalidDicomError
from pydicom.hooks import hooks as conversion_hooks
from pydicom.uid import UID, DeflatedExplicitVRLittleEndian
from pydicom.valuerep import AMBIGUOUS_VR
from pynetdicom import AllStoragePresentationContexts

from concilium.imaging.multipart import BodyTooLarge, PartTooLarge
from concilium.imaging.storage import ObjectTooLarge, OutOfResources

__all__ = [
    "STORAGE_SOP_CLASSES",
    "FailureReason",
    "Identification",
    "IndexRecord",
    "InstanceAttributes",
    "InvalidInstance",
    "MalformedObject",
    "MissingAttribute",
    "ParsedInstance",
    "PatientAttributes",
    "SeriesAttributes",
    "StudyAttributes",
    "UnsupportedSopClass",
    "UnsupportedTransferSyntax",
    "failure_reason",
    "modalities_in_study",
    "parse_da",
    "parse_instance",
    "parse_tm",
]

#: Values larger than this stay on disk when a header is parsed (Pixel Data, overlays...).
DEFER_SIZE = 4096
_PREAMBLE_LENGTH = 128
_UNDEFINED_LENGTH = 0xFFFFFFFF
_LONGEST_ELEMENT_HEADER = 12
_SPECIFIC_CHARACTER_SET = 0x00080005
_NOT_MEMOIZED_VRS = frozenset({"SQ", "UN"}) | frozenset(str(vr) for vr in AMBIGUOUS_VR)


class FailureReason(enum.Enum):
    """Why an instance was refused, independent of the protocol that carried it."""

    OUT_OF_RESOURCES = "out of resources"
    DATASET_DOES_NOT_MATCH_SOP_CLASS = "data set does not match SOP class"
    CANNOT_UNDERSTAND = "cannot understand"
    SOP_CLASS_NOT_SUPPORTED = "SOP class not supported"
    TRANSFER_SYNTAX_NOT_SUPPORTED = "transfer syntax not supported"
    PROCESSING_FAILURE = "processing failure"
    NOT_AUTHORIZED = "not authorized"
    DUPLICATE_SOP_INSTANCE = "duplicate SOP instance"


#: Every Storage SOP Class of PS3.4 Table B.5-1 that the DIMSE side can negotiate, so
#: STOW-RS and C-STORE accept the same objects.
STORAGE_SOP_CLASSES: frozenset[str] = frozenset(
    str(context.abstract_syntax) for context in AllStoragePresentationContexts
)


@dataclass(frozen=True, slots=True)
class Identification:
    """The UIDs a received object names itself by ("" for those that could not be read), to
    name it in an answer that refuses it (PS3.18 10.5.3 Failed SOP Sequence)."""

    sop_class_uid: str = ""
    """SOP Class UID (0008,0016), else Media Storage SOP Class UID (0002,0002)."""
    sop_instance_uid: str = ""
    """SOP Instance UID (0008,0018), else Media Storage SOP Instance UID (0002,0003)."""
    study_instance_uid: str = ""
    """Study Instance UID (0020,000D)."""

    @classmethod
    def of(cls, record: IndexRecord) -> Identification:
        """The identification of a valid object."""
        return cls(
            record.instance.sop_class_uid,
            record.instance.sop_instance_uid,
            record.study.study_instance_uid,
        )


class InvalidInstance(Exception):
    """A received object is refused; `reason` says why in protocol-neutral terms."""

    reason: FailureReason = FailureReason.CANNOT_UNDERSTAND

    identification: Identification = Identification()
    """The UIDs the refused object names itself by, as far as its header could be read."""


class MalformedObject(InvalidInstance):
    """Not a readable Part 10 object: no preamble, broken encoding or truncated file."""

    reason = FailureReason.CANNOT_UNDERSTAND


class MissingAttribute(InvalidInstance):
    """An attribute required for storage and indexing is absent, empty or invalid."""

    reason = FailureReason.DATASET_DOES_NOT_MATCH_SOP_CLASS

    def __init__(self, keyword: str, detail: str = "missing or empty") -> None:
        super().__init__(f"{keyword}: {detail}")
        self.keyword = keyword
        """Keyword (PS3.6) of the offending attribute."""


class UnsupportedSopClass(InvalidInstance):
    """The SOP Class UID is not one this archive stores."""

    reason = FailureReason.SOP_CLASS_NOT_SUPPORTED

    def __init__(self, sop_class_uid: str) -> None:
        super().__init__(f"SOP Class not supported: {sop_class_uid}")
        self.sop_class_uid = sop_class_uid


class UnsupportedTransferSyntax(InvalidInstance):
    """The transfer syntax of the File Meta Information is unknown or not readable."""

    reason = FailureReason.TRANSFER_SYNTAX_NOT_SUPPORTED

    def __init__(self, transfer_syntax_uid: str) -> None:
        super().__init__(f"transfer syntax not supported: {transfer_syntax_uid}")
        self.transfer_syntax_uid = transfer_syntax_uid


def failure_reason(exc: BaseException) -> FailureReason:
    """Protocol-neutral reason for any exception raised while receiving an instance.

    Lets the C-STORE and STOW-RS adapters answer every failure with the protocol's own code
    (each looks it up in its own status table) instead of crashing.
    """
    if isinstance(exc, InvalidInstance):
        return exc.reason
    if isinstance(exc, OutOfResources | ObjectTooLarge | PartTooLarge | BodyTooLarge | MemoryError):
        return FailureReason.OUT_OF_RESOURCES
    if isinstance(exc, PermissionError):
        return FailureReason.NOT_AUTHORIZED
    if isinstance(exc, ValueError):
        # Malformed transport framing (e.g. a broken multipart part) is a ValueError.
        return FailureReason.CANNOT_UNDERSTAND
    return FailureReason.PROCESSING_FAILURE


# --------------------------------------------------------------------------------------------
# Index attributes


@dataclass(frozen=True, slots=True)
class PatientAttributes:
    """Patient level of the Query/Retrieve Information Model (PS3.4 C.6.1.1.2)."""

    patient_id: str
    """Patient ID (0010,0020); may be empty (Type 2)."""
    patient_name: str
    """Patient's Name (0010,0010) in its DICOM PN form (``Family^Given``)."""
    issuer_of_patient_id: str | None
    """Issuer of Patient ID (0010,0021)."""
    birth_date: dt.date | None
    """Patient's Birth Date (0010,0030)."""
    sex: str | None
    """Patient's Sex (0010,0040): M, F or O."""


@dataclass(frozen=True, slots=True)
class StudyAttributes:
    """Study level (PS3.4 C.6.1.1.3); Modalities in Study is derived from the series."""

    study_instance_uid: str
    """Study Instance UID (0020,000D)."""
    study_date: dt.date | None
    """Study Date (0008,0020)."""
    study_time: dt.time | None
    """Study Time (0008,0030)."""
    accession_number: str | None
    """Accession Number (0008,0050)."""
    study_id: str | None
    """Study ID (0020,0010)."""
    study_description: str | None
    """Study Description (0008,1030)."""
    referring_physician_name: str | None
    """Referring Physician's Name (0008,0090)."""
    institution_name: str | None
    """Institution Name (0008,0080), to route studies by site."""


@dataclass(frozen=True, slots=True)
class SeriesAttributes:
    """Series level (PS3.4 C.6.1.1.4)."""

    series_instance_uid: str
    """Series Instance UID (0020,000E)."""
    modality: str | None
    """Modality (0008,0060)."""
    series_number: int | None
    """Series Number (0020,0011)."""
    series_description: str | None
    """Series Description (0008,103E)."""
    body_part_examined: str | None
    """Body Part Examined (0018,0015)."""
    series_date: dt.date | None
    """Series Date (0008,0021)."""
    series_time: dt.time | None
    """Series Time (0008,0031)."""
    performed_procedure_step_start_date: dt.date | None
    """Performed Procedure Step Start Date (0040,0244), a QIDO-RS series return key."""


@dataclass(frozen=True, slots=True)
class InstanceAttributes:
    """Composite object instance level (PS3.4 C.6.1.1.5) plus what WADO-RS needs."""

    sop_instance_uid: str
    """SOP Instance UID (0008,0018)."""
    sop_class_uid: str
    """SOP Class UID (0008,0016)."""
    transfer_syntax_uid: str
    """Transfer Syntax UID (0002,0010) as received; the Available Transfer Syntax UID."""
    instance_number: int | None
    """Instance Number (0020,0013)."""
    rows: int | None
    """Rows (0028,0010)."""
    columns: int | None
    """Columns (0028,0011)."""
    number_of_frames: int | None
    """Number of Frames (0028,0008); None for objects without pixels."""
    bits_allocated: int | None
    """Bits Allocated (0028,0100)."""
    photometric_interpretation: str | None
    """Photometric Interpretation (0028,0004)."""
    content_date: dt.date | None
    """Content Date (0008,0023)."""
    content_time: dt.time | None
    """Content Time (0008,0033)."""
    specific_character_set: str | None
    """Specific Character Set (0008,0005), backslash-joined when multi-valued."""


@dataclass(frozen=True, slots=True)
class IndexRecord:
    """Everything the index stores about one instance, level by level."""

    patient: PatientAttributes
    study: StudyAttributes
    series: SeriesAttributes
    instance: InstanceAttributes


@dataclass(frozen=True, slots=True)
class ParsedInstance:
    """Result of validating a received file."""

    dataset: FileDataset
    """Header; large values are deferred and read from the file on access, so they are
    only reachable while the file stays where it was parsed."""
    record: IndexRecord
    """Attributes for the index."""
    size: int
    """File size in bytes."""


# --------------------------------------------------------------------------------------------
# Value conversion: tolerant, because an archive must accept what modalities send and keep
# bad values out of the index rather than refuse the image.


_Lookup = Callable[[str], DataElement | None]
"""The top-level element of a data set with this keyword, if present."""


@functools.cache
def _tag_of(keyword: str) -> int:
    tag = tag_for_keyword(keyword)
    if tag is None:
        raise KeyError(keyword)
    return tag


def _dataset_lookup(ds: Dataset) -> _Lookup:
    def element(keyword: str) -> DataElement | None:
        found: DataElement | None = ds.get(_tag_of(keyword))
        return found

    return element


def _text(element: _Lookup, keyword: str) -> str | None:
    elem = element(keyword)
    if elem is None:
        return None
    value = elem.value
    if value is None or value == "":
        return None
    if isinstance(value, pydicom.multival.MultiValue):
        return "\\".join(str(v) for v in value) or None
    text = str(value).strip()
    if elem.VR == "PN":
        # Trailing empty components are insignificant (PS3.5 6.2, PN).
        text = "=".join(group.rstrip("^") for group in text.split("=")).rstrip("=")
    return text or None


def _int(element: _Lookup, keyword: str) -> int | None:
    elem = element(keyword)
    value: Any = elem.value if elem is not None else None
    if value is None or value == "":
        return None
    if isinstance(value, pydicom.multival.MultiValue):
        value = value[0] if len(value) else None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def parse_da(value: str | None) -> dt.date | None:
    """DA value (PS3.5 6.2: YYYYMMDD, or the ACR-NEMA YYYY.MM.DD) to a date, None if invalid."""
    if not value:
        return None
    digits = value.strip().replace(".", "")
    if len(digits) != 8 or not digits.isdigit():
        return None
    try:
        return dt.date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
    except ValueError:
        return None


def parse_tm(value: str | None) -> dt.time | None:
    """TM value (PS3.5 6.2: HH[MM[SS[.F{1,6}]]]) to a time, None if invalid."""
    if not value:
        return None
    text = value.strip().replace(":", "")
    whole, _, fraction = text.partition(".")
    if not whole.isdigit() or len(whole) not in (2, 4, 6) or (fraction and not fraction.isdigit()):
        return None
    hour = int(whole[0:2])
    minute = int(whole[2:4]) if len(whole) >= 4 else 0
    second = int(whole[4:6]) if len(whole) == 6 else 0
    micro = int((fraction + "000000")[:6]) if fraction else 0
    # PS3.5 allows 60 as a leap second, which datetime.time cannot hold.
    second = min(second, 59)
    try:
        return dt.time(hour, minute, second, micro)
    except ValueError:
        return None


def _required_uid(element: _Lookup, keyword: str) -> str:
    value = _text(element, keyword)
    if value is None:
        raise MissingAttribute(keyword)
    if not UID(value).is_valid:
        raise MissingAttribute(keyword, f"not a valid UID: {value!r}")
    return value


def _index_record(element: _Lookup, transfer_syntax_uid: str) -> IndexRecord:
    sop_class_uid = _required_uid(element, "SOPClassUID")
    sop_instance_uid = _required_uid(element, "SOPInstanceUID")
    study_uid = _required_uid(element, "StudyInstanceUID")
    series_uid = _required_uid(element, "SeriesInstanceUID")
    charset_element = element("SpecificCharacterSet")
    charset = charset_element.value if charset_element is not None else None
    if isinstance(charset, pydicom.multival.MultiValue):
        charset = "\\".join(str(c) for c in charset)
    has_pixels = element("Rows") is not None and element("Columns") is not None
    return IndexRecord(
        patient=PatientAttributes(
            patient_id=_text(element, "PatientID") or "",
            patient_name=_text(element, "PatientName") or "",
            issuer_of_patient_id=_text(element, "IssuerOfPatientID"),
            birth_date=parse_da(_text(element, "PatientBirthDate")),
            sex=_text(element, "PatientSex"),
        ),
        study=StudyAttributes(
            study_instance_uid=study_uid,
            study_date=parse_da(_text(element, "StudyDate")),
            study_time=parse_tm(_text(element, "StudyTime")),
            accession_number=_text(element, "AccessionNumber"),
            study_id=_text(element, "StudyID"),
            study_description=_text(element, "StudyDescription"),
            referring_physician_name=_text(element, "ReferringPhysicianName"),
            institution_name=_text(element, "InstitutionName"),
        ),
        series=SeriesAttributes(
            series_instance_uid=series_uid,
            modality=_text(element, "Modality"),
            series_number=_int(element, "SeriesNumber"),
            series_description=_text(element, "SeriesDescription"),
            body_part_examined=_text(element, "BodyPartExamined"),
            series_date=parse_da(_text(element, "SeriesDate")),
            series_time=parse_tm(_text(element, "SeriesTime")),
            performed_procedure_step_start_date=parse_da(
                _text(element, "PerformedProcedureStepStartDate")
            ),
        ),
        instance=InstanceAttributes(
            sop_instance_uid=sop_instance_uid,
            sop_class_uid=sop_class_uid,
            transfer_syntax_uid=transfer_syntax_uid,
            instance_number=_int(element, "InstanceNumber"),
            rows=_int(element, "Rows"),
            columns=_int(element, "Columns"),
            number_of_frames=(_int(element, "NumberOfFrames") or 1) if has_pixels else None,
            bits_allocated=_int(element, "BitsAllocated"),
            photometric_interpretation=_text(element, "PhotometricInterpretation"),
            content_date=parse_da(_text(element, "ContentDate")),
            content_time=parse_tm(_text(element, "ContentTime")),
            specific_character_set=str(charset) if charset else None,
        ),
    )


def modalities_in_study(series: Iterable[SeriesAttributes]) -> list[str]:
    """Modalities in Study (0008,0061): the distinct series modalities, sorted."""
    return sorted({s.modality for s in series if s.modality})


# --------------------------------------------------------------------------------------------
# Validation


def _check_preamble(path: Path) -> int:
    size = path.stat().st_size
    with path.open("rb") as fh:
        head = fh.read(_PREAMBLE_LENGTH + 4)
    if len(head) < _PREAMBLE_LENGTH + 4 or head[_PREAMBLE_LENGTH:] != b"DICM":
        raise MalformedObject("no PS3.10 preamble and DICM prefix")
    return size


def _check_not_truncated(ds: Dataset, size: int) -> None:
    # Deferred values are skipped with a seek, which never fails past the end of the file,
    # and a file cut inside an element header just ends the data set early: compare value
    # extents with the file size instead.
    end: int | None = None
    for tag in list(ds.keys()):
        elem = ds.get_item(tag, keep_deferred=True)
        if not isinstance(elem, RawDataElement) or elem.length == _UNDEFINED_LENGTH:
            end = None
            continue
        end = elem.value_tell + elem.length
        if end > size:
            raise MalformedObject(f"file truncated inside element {tag}")
    # A file cut inside the next element's header leaves fewer bytes than a header; longer
    # trailing data would have been parsed as elements, so it is not our concern here.
    if end is not None and 0 < size - end < _LONGEST_ELEMENT_HEADER:
        raise MalformedObject("file truncated inside an element header")


_MEMO_ENTRIES = 8192
_MEMO_VALUE_BYTES = 1024
_MemoKey = tuple[int, str | None, bytes, bool, bool, str | tuple[str, ...], tuple[object, ...]]
_converted_memo: dict[_MemoKey, DataElement] = {}
"""Elements converted without error, by everything their conversion depends on.

The instances of a series repeat most of their header byte for byte (patient, study, series,
equipment, geometry), so a value converted once need not be converted again to be checked.
Entries are never handed to callers (they could change them): only `_index_record` reads
them. Bounded, and cleared whole when full: a miss only costs the conversion it saves.
"""


@functools.cache
def _dictionary_vr(tag: int) -> str | None:
    try:
        return str(dictionary_VR(tag))
    except KeyError:
        return None


def _conversion_settings() -> tuple[object, ...] | None:
    """pydicom's settings that change what a conversion returns or whether it raises, or
    None when conversions are customised beyond what a key can hold. They may be changed at
    run time (e.g. validation made stricter), so they are part of the key."""
    config = pydicom.config
    if config.data_element_callback is not None or conversion_hooks.raw_element_kwargs:
        return None
    return (
        config.settings.reading_validation_mode,
        config.convert_wrong_length_to_UN,
        config.replace_un_with_known_vr,
        config.use_DS_decimal,
        config.use_DS_numpy,
        config.use_IS_numpy,
        conversion_hooks.raw_element_vr,
        conversion_hooks.raw_element_value,
    )


def _memo_key(
    raw: RawDataElement, encoding: str | tuple[str, ...], settings: tuple[object, ...]
) -> _MemoKey | None:
    """Key of an element whose conversion depends only on its own bytes, the character set
    and pydicom's settings, or None.

    Left out, and converted through the data set as always: private elements (their VR
    depends on a private creator), sequences (their items carry offsets and inherit from the
    parent), ambiguous VRs (resolved from other elements), UN (may be replaced by the
    dictionary VR), undefined lengths and long values.
    """
    value = raw.value
    if value is None or len(value) > _MEMO_VALUE_BYTES or raw.length == _UNDEFINED_LENGTH:
        return None
    tag = int(raw.tag)
    if tag >> 16 & 1:
        return None
    vr = raw.VR if raw.VR is not None else _dictionary_vr(tag)
    if vr is None or vr in _NOT_MEMOIZED_VRS:
        return None
    return (tag, raw.VR, bytes(value), raw.is_implicit_VR, raw.is_little_endian, encoding, settings)


def _convert_all(ds: Dataset) -> dict[int, DataElement]:
    """Every element of `ds` but the deferred ones, converted; raises what conversion raises.

    What a conversion depends on is what `Dataset.__getitem__` passes it (the raw element
    and the character set) and pydicom's settings, so an element equal in all of it to one
    converted without error converts without error again and is taken from
    `_converted_memo`.
    Memoized elements stay raw in `ds`, converted again on access, to the same value.
    """
    converted: dict[int, DataElement] = {}
    encoding: str | tuple[str, ...] | None = None
    settings = _conversion_settings()
    for tag in list(ds.keys()):
        raw = ds.get_item(tag, keep_deferred=True)
        if not isinstance(raw, RawDataElement):
            converted[tag] = ds[tag]
            continue
        if raw.value is None and raw.length:
            continue
        if tag == _SPECIFIC_CHARACTER_SET:
            # Read in the default repertoire, as `Dataset.__getitem__` does.
            converted[tag] = ds[tag]
            continue
        if encoding is None:
            charset = ds.original_character_set or ds._character_set
            encoding = charset if isinstance(charset, str) else tuple(charset)
        key = _memo_key(raw, encoding, settings) if settings is not None else None
        if key is None:
            converted[tag] = ds[tag]
            continue
        elem = _converted_memo.get(key)
        if elem is None:
            elem = convert_raw_data_element(
                raw, encoding=encoding if isinstance(encoding, str) else list(encoding), ds=ds
            )
            if len(_converted_memo) >= _MEMO_ENTRIES:
                _converted_memo.clear()
            _converted_memo[key] = elem
        converted[tag] = elem
    return converted


def parse_instance(
    path: Path | str,
    *,
    accepted_sop_classes: frozenset[str] | None = None,
) -> ParsedInstance:
    """Validate a received Part 10 file and extract its index record.

    `accepted_sop_classes` defaults to `STORAGE_SOP_CLASSES`; pass a wider set to accept
    private SOP classes. Raises `MalformedObject`, `UnsupportedTransferSyntax`,
    `UnsupportedSopClass` or `MissingAttribute`.
    """
    path = Path(path)
    size = _check_preamble(path)
    try:
        ds = pydicom.dcmread(path, defer_size=DEFER_SIZE)
    except InvalidDicomError as exc:
        raise MalformedObject(f"not a DICOM file: {exc}") from exc
    except OSError as exc:
        raise MalformedObject(f"unreadable file: {exc}") from exc
    except Exception as exc:
        # Garbled bytes surface from pydicom as many unrelated exception types (unknown
        # VR, bad lengths, struct errors); at this boundary they all mean "cannot understand".
        raise MalformedObject(f"unreadable encoding: {exc}") from exc

    try:
        record = _validated_record(ds, size, accepted_sop_classes)
    except InvalidInstance as exc:
        exc.identification = _identification(ds)
        raise
    return ParsedInstance(dataset=ds, record=record, size=size)


def _validated_record(
    ds: FileDataset, size: int, accepted_sop_classes: frozenset[str] | None
) -> IndexRecord:
    meta = getattr(ds, "file_meta", None)
    if meta is None or "TransferSyntaxUID" not in meta:
        raise MalformedObject("File Meta Information lacks Transfer Syntax UID (0002,0010)")
    transfer_syntax = UID(str(meta.TransferSyntaxUID))
    if not transfer_syntax.is_valid or not transfer_syntax.is_transfer_syntax:
        raise UnsupportedTransferSyntax(str(transfer_syntax))

    if len(ds) == 0:
        raise MalformedObject("no data set after the File Meta Information")
    try:
        # Offsets of a deflated data set count inflated bytes, so they say nothing about the
        # file size; zlib reports a truncated stream itself.
        if transfer_syntax != DeflatedExplicitVRLittleEndian:
            _check_not_truncated(ds, size)
        # Converting every element exposes encoding errors now rather than in a later read
        # by the viewer; deferred (large) values are left alone. The index attributes are
        # then taken from the converted elements, each looked up once.
        converted = _convert_all(ds)
        record = _index_record(
            lambda keyword: converted.get(_tag_of(keyword)), str(transfer_syntax)
        )
    except InvalidInstance:
        raise
    except Exception as exc:
        raise MalformedObject(f"unreadable element: {exc}") from exc

    accepted = STORAGE_SOP_CLASSES if accepted_sop_classes is None else accepted_sop_classes
    if record.instance.sop_class_uid not in accepted:
        raise UnsupportedSopClass(record.instance.sop_class_uid)
    return record


def _identification(ds: FileDataset) -> Identification:
    """The UIDs of a header read whole or in part; none of its values is trusted."""
    meta = getattr(ds, "file_meta", None)

    def text(keyword: str, fallback: str) -> str:
        for source, name in ((ds, keyword), (meta, fallback)):
            try:
                value = source.get(name, "") if source is not None and name else ""
            except Exception:
                # A value that does not convert names nothing; the refusal says why.
                value = ""
            if value:
                return str(value)
        return ""

    return Identification(
        text("SOPClassUID", "MediaStorageSOPClassUID"),
        text("SOPInstanceUID", "MediaStorageSOPInstanceUID"),
        text("StudyInstanceUID", ""),
    )

"""DICOM JSON Model (PS3.18 Annex F) encoding and decoding.

Used by QIDO-RS results and WADO-RS metadata (PS3.18 10.4.1.1.2). Large binary values, and
Pixel Data always, are given as a BulkDataURI (F.2.6) built from a caller-given prefix and the
element's position: ``{prefix}/{tag}`` at top level, ``{prefix}/{seq}/{item}/{tag}`` inside
sequences, so that `element_at_bulk_data_path` can find the element again when the URI is
dereferenced. Values of deferred elements are never read to produce the URI.
"""

from __future__ import annotations

import base64
import functools
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pydicom.datadict import dictionary_VR
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.tag import BaseTag, Tag
from pydicom.valuerep import PersonName

__all__ = [
    "BULK_DATA_VRS",
    "DEFAULT_BULK_DATA_THRESHOLD",
    "attributes_to_dicom_json",
    "bulk_data_path",
    "element_at_bulk_data_path",
    "from_dicom_json",
    "to_dicom_json",
]

JsonObject = dict[str, Any]

#: VRs whose values may be sent inline as base64 or by reference (PS3.18 F.2.7).
BULK_DATA_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN"})
#: Binary values longer than this become BulkDataURIs.
DEFAULT_BULK_DATA_THRESHOLD = 1024
# Pixel data are always fetched through WADO-RS, whatever their size.
_ALWAYS_BULK = frozenset({0x7FE00008, 0x7FE00009, 0x7FE00010})
_STRING_VRS = frozenset(
    {"AE", "AS", "CS", "DA", "DT", "LO", "LT", "SH", "ST", "TM", "UC", "UI", "UR", "UT"}
)
_INT_VRS = frozenset({"IS", "SL", "SS", "UL", "US", "SV", "UV"})
_FLOAT_VRS = frozenset({"DS", "FL", "FD"})
_PN_GROUPS = ("Alphabetic", "Ideographic", "Phonetic")
# Text VRs whose value is one string even with a backslash in it (PS3.5 6.2).
_SINGLE_VALUED_VRS = frozenset({"LT", "ST", "UT"})


def _tag_key(tag: int) -> str:
    return f"{tag:08X}"


def bulk_data_path(path: Sequence[int | str]) -> str:
    """Relative URI path of an element: tags as 8 hex digits, item indexes as decimals."""
    return "/".join(_tag_key(p) if isinstance(p, BaseTag) else str(p) for p in path)


def _element_vr(ds: Dataset, elem: DataElement | RawDataElement) -> str:
    vr = str(elem.VR) if elem.VR else ""
    if not vr:
        try:
            vr = str(dictionary_VR(elem.tag))
        except KeyError:
            vr = "UN"
    if " or " in vr:
        # Ambiguous dictionary VRs (PS3.5 Annex A rules): pixel data follows Bits Allocated.
        if elem.tag == 0x7FE00010:
            bits = ds.get("BitsAllocated", 16)
            vr = "OW" if bits is not None and int(bits) > 8 else "OB"
        else:
            vr = vr.split(" or ")[0]
    return vr


def _json_number(value: Any, as_int: bool) -> int | float | str | None:
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        # A malformed IS/DS received from a modality is passed on as text rather than
        # failing the whole metadata response.
        return str(value)
    if not math.isfinite(number):
        # JSON has no NaN or infinities; PS3.18 F.2.3 only allows finite numbers.
        return str(value)
    if as_int:
        return int(number) if number.is_integer() else number
    return number


def _person_name(value: Any) -> JsonObject | None:
    if value is None or value == "":
        return None
    name = value if isinstance(value, PersonName) else PersonName(value)
    out: JsonObject = {}
    for group, text in zip(_PN_GROUPS, name.components, strict=False):
        if text:
            out[group] = text
    return out or None


def _values(elem: DataElement) -> list[Any]:
    value = elem.value
    if value is None:
        return []
    if isinstance(value, MultiValue | list | tuple):
        return list(value)
    if value == "":
        return []
    return [value]


def to_dicom_json(
    ds: Dataset,
    *,
    bulk_data_uri_prefix: str | None = None,
    bulk_data_threshold: int = DEFAULT_BULK_DATA_THRESHOLD,
    _path: tuple[int | str, ...] = (),
) -> JsonObject:
    """Encode `ds` as a DICOM JSON object (PS3.18 F.2).

    With no `bulk_data_uri_prefix` every binary value is sent inline (F.2.7); otherwise
    binary values above `bulk_data_threshold` bytes, and Pixel Data always, are referenced.
    File Meta Information and Group Length elements are left out (F.2.2).
    """
    out: JsonObject = {}
    for tag in sorted(ds.keys()):
        if tag.element == 0 or tag.group == 0x0002:
            continue
        raw = ds.get_item(tag, keep_deferred=True)
        vr = _element_vr(ds, raw)
        path = (*_path, BaseTag(tag))
        entry: JsonObject = {"vr": vr}
        deferred = isinstance(raw, RawDataElement) and raw.value is None and raw.length > 0
        if vr in BULK_DATA_VRS and bulk_data_uri_prefix is not None:
            length = raw.length if isinstance(raw, RawDataElement) else len(raw.value or b"")
            if length > 0 and (tag in _ALWAYS_BULK or length > bulk_data_threshold or deferred):
                prefix = bulk_data_uri_prefix.rstrip("/")
                entry["BulkDataURI"] = f"{prefix}/{bulk_data_path(path)}"
                out[_tag_key(tag)] = entry
                continue
        elem = ds[tag]
        if vr in BULK_DATA_VRS:
            data = elem.value
            if data:
                entry["InlineBinary"] = base64.b64encode(bytes(data)).decode("ascii")
        elif vr == "SQ":
            items = [
                to_dicom_json(
                    item,
                    bulk_data_uri_prefix=bulk_data_uri_prefix,
                    bulk_data_threshold=bulk_data_threshold,
                    _path=(*path, index),
                )
                for index, item in enumerate(elem.value or [])
            ]
            if items:
                entry["Value"] = items
        else:
            values = _values(elem)
            if values:
                entry["Value"] = _encode_values(vr, values)
        out[_tag_key(tag)] = entry
    return out


def _encode_values(vr: str, values: list[Any]) -> list[Any]:
    if vr == "PN":
        return [_person_name(v) for v in values]
    if vr == "AT":
        return [_tag_key(Tag(v)) for v in values]
    if vr in _INT_VRS:
        return [_json_number(v, as_int=True) for v in values]
    if vr in _FLOAT_VRS:
        return [_json_number(v, as_int=False) for v in values]
    # Empty components of a multi-valued string are null in DICOM JSON (F.2.5).
    return [None if v in (None, "") else str(v) for v in values]


@functools.cache
def _attribute_key(tag: int) -> tuple[str, str]:
    """The JSON key of a tag and its VR from the data dictionary."""
    vr = str(dictionary_VR(tag))
    return _tag_key(tag), vr.split(" or ")[0] if " or " in vr else vr


def _plain_values(vr: str, value: Any) -> list[Any]:
    if value is None or value == "":
        return []
    if isinstance(value, list | tuple):
        return list(value)
    if isinstance(value, str) and "\\" in value and vr not in _SINGLE_VALUED_VRS:
        return value.split("\\")
    return [value]


def attributes_to_dicom_json(attributes: Mapping[int, Any]) -> JsonObject:
    """Encode plain values by tag as a DICOM JSON object (PS3.18 F.2), each VR taken from
    the data dictionary.

    A value is text, a number, a list of them for several values, or None or "" for an
    empty attribute; a sequence is always sent empty. The result is what `to_dicom_json`
    gives for a dataset of these values, without building one: query results (PS3.18
    10.6.3.3) are many small attributes, and a dataset costs more to build than to encode.
    """
    out: JsonObject = {}
    for tag in sorted(attributes):
        key, vr = _attribute_key(tag)
        value = attributes[tag]
        if value is None or value == "" or vr == "SQ" or vr in BULK_DATA_VRS:
            out[key] = {"vr": vr}
        elif type(value) is str and vr in _STRING_VRS and "\\" not in value:
            # The common case, a single text value, without the general conversions.
            out[key] = {"vr": vr, "Value": [value]}
        elif type(value) is int and vr in _INT_VRS:
            out[key] = {"vr": vr, "Value": [value]}
        else:
            values = _plain_values(vr, value)
            out[key] = {"vr": vr, "Value": _encode_values(vr, values)} if values else {"vr": vr}
    return out


def element_at_bulk_data_path(ds: Dataset, path: str) -> DataElement:
    """Find the element a BulkDataURI path (as built by `to_dicom_json`) refers to.

    Raises `KeyError` if the path does not lead to an element.
    """
    parts = [p for p in path.split("/") if p]
    if not parts or len(parts) % 2 == 0:
        raise KeyError(path)
    current = ds
    try:
        for seq_key, index in zip(parts[:-1:2], parts[1::2], strict=True):
            current = current[int(seq_key, 16)].value[int(index)]
        return current[int(parts[-1], 16)]
    except (ValueError, IndexError, TypeError, AttributeError) as exc:
        raise KeyError(path) from exc


def _decode_pn(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    groups = [str(value.get(group, "")) for group in _PN_GROUPS]
    while groups and not groups[-1]:
        groups.pop()
    return "=".join(groups)


def from_dicom_json(
    obj: JsonObject, *, bulk_data_loader: Callable[[str], bytes] | None = None
) -> Dataset:
    """Decode a DICOM JSON object into a dataset (PS3.18 F.2), e.g. STOW-RS JSON metadata.

    BulkDataURIs are resolved by `bulk_data_loader`; without one the element is kept empty.
    Raises `ValueError` on a malformed object.
    """
    ds = Dataset()
    if not isinstance(obj, dict):
        raise ValueError("DICOM JSON data set must be an object")
    for key, entry in obj.items():
        try:
            tag = Tag(int(key, 16))
        except ValueError as exc:
            raise ValueError(f"not a tag: {key!r}") from exc
        if not isinstance(entry, dict) or not isinstance(entry.get("vr"), str):
            raise ValueError(f"element {key} lacks a VR")
        vr = entry["vr"]
        value: Any
        if "BulkDataURI" in entry:
            uri = str(entry["BulkDataURI"])
            value = bulk_data_loader(uri) if bulk_data_loader is not None else None
        elif "InlineBinary" in entry:
            value = base64.b64decode(entry["InlineBinary"])
        else:
            raw_values = entry.get("Value", [])
            if not isinstance(raw_values, list):
                raise ValueError(f"element {key}: Value must be an array")
            value = _decode_values(vr, raw_values, bulk_data_loader)
        ds.add(DataElement(tag, vr, value))
    return ds


def _decode_values(
    vr: str, values: list[Any], bulk_data_loader: Callable[[str], bytes] | None
) -> Any:
    if vr == "SQ":
        return [from_dicom_json(item, bulk_data_loader=bulk_data_loader) for item in values]
    if vr == "PN":
        decoded: list[Any] = [_decode_pn(v) for v in values]
    elif vr == "AT":
        decoded = [Tag(int(str(v), 16)) for v in values]
    elif vr in _INT_VRS or vr in _FLOAT_VRS:
        decoded = [v for v in values if v is not None]
        if vr in ("IS", "DS"):
            decoded = [str(v) if isinstance(v, str) else v for v in decoded]
    else:
        decoded = ["" if v is None else str(v) for v in values]
    if not decoded:
        # An empty text element is the empty string in pydicom; numbers have no empty form.
        return "" if vr == "PN" or vr in _STRING_VRS else None
    return decoded[0] if len(decoded) == 1 else decoded

"""DICOM JSON Model (PS3.18 Annex F): encoding, BulkDataURI and round trip."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from concilium.imaging.dicom_json import (
    attributes_to_dicom_json,
    element_at_bulk_data_path,
    from_dicom_json,
    to_dicom_json,
)

Sample = Callable[[str], Path]
PREFIX = "https://pacs.example/dicomweb/studies/1/series/2/instances/3/bulkdata"


def _round_trip(path: Path) -> tuple[dict[str, object], Dataset]:
    header = pydicom.dcmread(path, defer_size=1024)
    encoded = to_dicom_json(header, bulk_data_uri_prefix=PREFIX)
    full = pydicom.dcmread(path)

    def load(uri: str) -> bytes:
        assert uri.startswith(PREFIX + "/")
        return bytes(element_at_bulk_data_path(full, uri[len(PREFIX) + 1 :]).value)

    decoded = from_dicom_json(json.loads(json.dumps(encoded)), bulk_data_loader=load)
    return encoded, decoded


@pytest.mark.parametrize(
    "name", ["CT_small.dcm", "MR_small_bigendian.dcm", "test-SR.dcm", "rtplan.dcm"]
)
def test_round_trip_preserves_every_element(sample: Sample, name: str) -> None:
    encoded, decoded = _round_trip(sample(name))
    original = pydicom.dcmread(sample(name))
    assert to_dicom_json(decoded, bulk_data_uri_prefix=PREFIX) == encoded
    for elem in original:
        if elem.tag.element == 0 or elem.VR in ("OB", "OW", "UN", "SQ"):
            continue
        again = decoded[elem.tag].value
        if elem.VR in ("DS", "FL", "FD"):
            assert again == pytest.approx(elem.value)
        elif elem.VR == "IS":
            assert again == elem.value
        else:
            assert str(again) == str(elem.value), elem


def test_pixel_data_is_a_bulk_data_uri_and_resolves(sample: Sample) -> None:
    path = sample("CT_small.dcm")
    encoded, decoded = _round_trip(path)
    assert encoded["7FE00010"] == {"vr": "OW", "BulkDataURI": f"{PREFIX}/7FE00010"}
    assert decoded.PixelData == pydicom.dcmread(path).PixelData


def test_value_encodings_follow_annex_f() -> None:
    ds = Dataset()
    ds.PatientName = "Yamada^Tarou=山田^太郎=やまだ^たろう"
    ds.PixelSpacing = ["0.5", "0.25"]
    ds.InstanceNumber = "7"
    ds.Rows = 512
    ds.FrameIncrementPointer = 0x00181063
    ds.ImageType = ["ORIGINAL", "", "AXIAL"]
    ds.AccessionNumber = ""
    ds.add_new(0x00091010, "OB", b"\x01\x02")
    item = Dataset()
    item.CodeValue = "113100"
    ds.DeidentificationMethodCodeSequence = Sequence([item])
    out = to_dicom_json(ds, bulk_data_uri_prefix=PREFIX)
    assert out["00100010"]["Value"] == [
        {"Alphabetic": "Yamada^Tarou", "Ideographic": "山田^太郎", "Phonetic": "やまだ^たろう"}
    ]
    assert out["00280030"] == {"vr": "DS", "Value": [0.5, 0.25]}
    assert out["00200013"] == {"vr": "IS", "Value": [7]}
    assert out["00280010"] == {"vr": "US", "Value": [512]}
    assert out["00280009"] == {"vr": "AT", "Value": ["00181063"]}
    assert out["00080008"]["Value"] == ["ORIGINAL", None, "AXIAL"]
    assert out["00080050"] == {"vr": "SH"}
    assert out["00091010"] == {"vr": "OB", "InlineBinary": "AQI="}
    assert out["00120064"]["Value"] == [{"00080100": {"vr": "SH", "Value": ["113100"]}}]
    back = from_dicom_json(out)
    assert str(back.PatientName) == "Yamada^Tarou=山田^太郎=やまだ^たろう"
    assert back.FrameIncrementPointer == 0x00181063


def test_plain_values_encode_as_the_same_values_in_a_dataset_would() -> None:
    # Query results are encoded from plain values; a dataset holding them is the reference.
    values = {
        0x00100010: "Yamada^Tarou=山田^太郎",  # PN, several groups
        0x00080061: ["CT", "MR"],  # CS, a list
        0x00080060: "CT\\PT",  # CS, several values in one string
        0x00081030: "",  # LO, empty
        0x00081032: "",  # SQ, always empty
        0x00201206: 3,  # IS from an integer
        0x00280010: 512,  # US
        0x0020000D: "1.2.3.4",  # UI
        0x00080020: "20261122",  # DA
        0x00080030: "101500.250000",  # TM
        0x00324000: "a \\ b",  # LT keeps its backslash
        0x00201208: None,  # IS, no value
        0x00081190: "https://pacs.example/dicomweb/studies/1.2.3.4",  # UR
    }
    ds = Dataset()
    for tag, value in values.items():
        vr = "SQ" if tag == 0x00081032 else None
        ds.add_new(tag, vr or pydicom.datadict.dictionary_VR(tag), [] if vr else value or None)
    assert attributes_to_dicom_json(values) == to_dicom_json(ds)
    assert list(attributes_to_dicom_json(values)) == sorted(f"{t:08X}" for t in values)


def test_nested_bulk_data_uri_points_into_the_sequence() -> None:
    ds = Dataset()
    item = Dataset()
    item.add_new(0x00420011, "OB", b"\x00" * 2048)
    ds.add_new(0x00409096, "SQ", Sequence([Dataset(), item]))
    out = to_dicom_json(ds, bulk_data_uri_prefix=PREFIX + "/")
    uri = out["00409096"]["Value"][1]["00420011"]["BulkDataURI"]
    assert uri == f"{PREFIX}/00409096/1/00420011"
    assert element_at_bulk_data_path(ds, "00409096/1/00420011").value == b"\x00" * 2048
    with pytest.raises(KeyError):
        element_at_bulk_data_path(ds, "00409096/5/00420011")


def test_without_prefix_binary_values_are_inline(sample: Sample) -> None:
    ds = pydicom.dcmread(sample("MR_small.dcm"))
    out = to_dicom_json(ds)
    assert "InlineBinary" in out["7FE00010"]
    assert from_dicom_json(out).PixelData == ds.PixelData


def test_group_lengths_and_file_meta_are_left_out(sample: Sample) -> None:
    out = to_dicom_json(pydicom.dcmread(sample("CT_small.dcm")))
    assert not [k for k in out if k.startswith("0002") or k.endswith("0000")]


def test_malformed_json_is_refused() -> None:
    with pytest.raises(ValueError):
        from_dicom_json({"zzzz": {"vr": "CS"}})
    with pytest.raises(ValueError):
        from_dicom_json({"00100010": {"Value": ["x"]}})

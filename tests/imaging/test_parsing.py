"""Validation of received objects and the index record extracted from them."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from pathlib import Path

import pydicom
import pytest

from concilium.imaging.dicomweb.stow import STOW_RS_FAILURE_REASON
from concilium.imaging.parsing import (
    FailureReason,
    Identification,
    InvalidInstance,
    MalformedObject,
    MissingAttribute,
    UnsupportedSopClass,
    UnsupportedTransferSyntax,
    failure_reason,
    modalities_in_study,
    parse_instance,
)
from concilium.imaging.status import C_STORE_STATUS
from concilium.imaging.synthetic import SyntheticStudy

Sample = Callable[[str], Path]


def c_store_status(refused: InvalidInstance) -> int:
    """The status a C-STORE answers this refusal with."""
    return C_STORE_STATUS[refused.reason]


def stow_rs_failure_reason(refused: InvalidInstance) -> int:
    """The Failure Reason a STOW-RS answers this refusal with."""
    return STOW_RS_FAILURE_REASON[refused.reason]


def test_ct_slice_yields_full_index_record(ct_series: list[Path], study: SyntheticStudy) -> None:
    parsed = parse_instance(ct_series[0])
    record = parsed.record
    assert record.patient.patient_id == study.patient.patient_id
    assert record.patient.patient_name == "DOE^JANE"
    assert record.patient.birth_date == dt.date(1961, 3, 15)
    assert record.patient.sex == "F"
    assert record.study.study_instance_uid == study.study_instance_uid
    assert record.study.study_date == study.study_date
    assert record.study.study_time == dt.time(8, 30)
    assert record.study.accession_number == "ACC-0001"
    assert record.study.referring_physician_name == "HOUSE^GREGORY"
    assert record.series.modality == "CT"
    assert record.series.series_number == 2
    assert record.series.body_part_examined == "CHEST"
    assert record.instance.sop_class_uid == "1.2.840.10008.5.1.4.1.1.2"
    assert record.instance.transfer_syntax_uid == "1.2.840.10008.1.2.1"
    assert (record.instance.rows, record.instance.columns) == (512, 512)
    assert record.instance.number_of_frames == 1
    assert record.instance.instance_number == 1
    assert parsed.size == ct_series[0].stat().st_size


def test_pixel_data_is_not_loaded(ct_series: list[Path]) -> None:
    parsed = parse_instance(ct_series[0])
    raw = parsed.dataset.get_item(0x7FE00010, keep_deferred=True)
    assert raw is not None and raw.value is None


def test_multiframe_and_compressed_samples(sample: Sample, xa_cine: Path) -> None:
    assert parse_instance(xa_cine).record.instance.number_of_frames == 30
    j2k = parse_instance(sample("JPEG2000.dcm")).record
    assert j2k.instance.transfer_syntax_uid == "1.2.840.10008.1.2.4.91"
    big = parse_instance(sample("MR_small_bigendian.dcm")).record
    assert big.series.modality == "MR"
    sr = parse_instance(sample("test-SR.dcm")).record
    assert sr.instance.rows is None and sr.instance.number_of_frames is None


def test_modalities_in_study_is_derived_from_series(sample: Sample, xa_cine: Path) -> None:
    series = [
        parse_instance(p).record.series
        for p in (xa_cine, sample("CT_small.dcm"), sample("MR_small.dcm"), sample("CT_small.dcm"))
    ]
    assert modalities_in_study(series) == ["CT", "MR", "XA"]


def test_truncated_file_is_malformed(sample: Sample, tmp_path: Path) -> None:
    with pytest.raises(MalformedObject):
        parse_instance(sample("MR_truncated.dcm"))
    whole = sample("CT_small.dcm").read_bytes()
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(whole[: len(whole) - 100])
    with pytest.raises(MalformedObject, match="truncated"):
        parse_instance(cut)
    header_only = tmp_path / "header.dcm"
    header_only.write_bytes(whole[:300])
    with pytest.raises(MalformedObject):
        parse_instance(header_only)


def test_not_dicom_bytes_are_malformed(tmp_path: Path) -> None:
    for content in (b"", b"hello world", b"\x00" * 128 + b"DICX" + b"\x00" * 64):
        path = tmp_path / "junk.dcm"
        path.write_bytes(content)
        with pytest.raises(MalformedObject) as info:
            parse_instance(path)
        assert c_store_status(info.value) == 0xC000
        assert stow_rs_failure_reason(info.value) == 0xC000
        assert info.value.identification == Identification()


def test_file_without_part10_header_is_malformed(sample: Sample) -> None:
    with pytest.raises(MalformedObject):
        parse_instance(sample("no_meta.dcm"))
    with pytest.raises(MalformedObject, match="Transfer Syntax"):
        parse_instance(sample("meta_missing_tsyntax.dcm"))


@pytest.mark.parametrize(
    "keyword", ["SOPInstanceUID", "SOPClassUID", "StudyInstanceUID", "SeriesInstanceUID"]
)
def test_missing_uid_is_reported_by_keyword(
    ct_series: list[Path], tmp_path: Path, keyword: str
) -> None:
    ds = pydicom.dcmread(ct_series[0])
    del ds[keyword]
    path = tmp_path / "missing.dcm"
    ds.save_as(path, enforce_file_format=True)
    with pytest.raises(MissingAttribute) as info:
        parse_instance(path)
    assert info.value.keyword == keyword
    assert c_store_status(info.value) == 0xA900


@pytest.mark.filterwarnings("ignore:Invalid value for VR UI")
def test_invalid_uid_is_refused(ct_series: list[Path], tmp_path: Path) -> None:
    ds = pydicom.dcmread(ct_series[0])
    ds.SeriesInstanceUID = "1.2.03.abc"
    path = tmp_path / "bad.dcm"
    ds.save_as(path, enforce_file_format=True)
    with pytest.raises(MissingAttribute, match="valid UID"):
        parse_instance(path)


def test_unknown_sop_class_is_unsupported(ct_series: list[Path], tmp_path: Path) -> None:
    ds = pydicom.dcmread(ct_series[0])
    ds.SOPClassUID = "1.2.3.4.5.6.7"
    ds.file_meta.MediaStorageSOPClassUID = "1.2.3.4.5.6.7"
    path = tmp_path / "private.dcm"
    ds.save_as(path, enforce_file_format=True)
    with pytest.raises(UnsupportedSopClass) as info:
        parse_instance(path)
    assert c_store_status(info.value) == 0x0122
    assert stow_rs_failure_reason(info.value) == 0x0122
    # Refused, it is still named as its header names it, for the answer that refuses it.
    assert info.value.identification == Identification(
        "1.2.3.4.5.6.7", str(ds.SOPInstanceUID), str(ds.StudyInstanceUID)
    )
    accepted = parse_instance(path, accepted_sop_classes=frozenset({"1.2.3.4.5.6.7"}))
    assert accepted.record.instance.sop_class_uid == "1.2.3.4.5.6.7"


def test_unknown_transfer_syntax_is_refused(ct_series: list[Path], tmp_path: Path) -> None:
    data = bytearray(ct_series[0].read_bytes())
    index = data.index(b"1.2.840.10008.1.2.1\x00")
    data[index : index + 20] = b"1.2.840.99999.1.2.1\x00"
    path = tmp_path / "ts.dcm"
    path.write_bytes(bytes(data))
    with pytest.raises(UnsupportedTransferSyntax) as info:
        parse_instance(path)
    assert stow_rs_failure_reason(info.value) == 0xC122


def test_a_bad_value_is_refused_after_good_ones_of_the_same_series(
    ct_series: list[Path], tmp_path: Path
) -> None:
    for path in ct_series:
        parse_instance(path)
    data = ct_series[0].read_bytes()
    rows = data.index(b"\x28\x00\x10\x00US\x02\x00")
    # Rows with three bytes: a US value must be a multiple of two bytes long.
    cut = data[:rows] + b"\x28\x00\x10\x00US\x03\x00" + data[rows + 8 : rows + 10] + b"\x00"
    path = tmp_path / "odd-rows.dcm"
    path.write_bytes(cut + data[rows + 10 :])
    with pytest.raises(MalformedObject, match="0028,0010"):
        parse_instance(path)


def test_a_value_accepted_before_is_refused_when_validation_is_stricter(
    ct_series: list[Path], tmp_path: Path
) -> None:
    data = ct_series[0].read_bytes()
    thickness = data.index(b"\x18\x00\x50\x00DS") + 6
    length = int.from_bytes(data[thickness : thickness + 2], "little")
    # Slice Thickness (DS) that is no number: read as text unless validation raises.
    path = tmp_path / "not-a-number.dcm"
    path.write_bytes(data[: thickness + 2] + b"x" * length + data[thickness + 2 + length :])
    assert parse_instance(path).record.series.modality == "CT"
    settings = pydicom.config.settings
    mode = settings.reading_validation_mode
    settings.reading_validation_mode = pydicom.config.RAISE
    try:
        with pytest.raises(MalformedObject, match="float"):
            parse_instance(path)
    finally:
        settings.reading_validation_mode = mode


def test_parsed_data_set_still_reads_every_value(ct_series: list[Path]) -> None:
    first = parse_instance(ct_series[0])
    again = parse_instance(ct_series[0])
    reference = pydicom.dcmread(ct_series[0])
    for ds in (first.dataset, again.dataset):
        for keyword in ("PatientName", "StudyInstanceUID", "Rows", "PixelSpacing", "Modality"):
            assert ds[keyword].value == reference[keyword].value
        assert ds.PixelData == reference.PixelData


def test_status_tables_cover_every_reason() -> None:
    assert set(C_STORE_STATUS) == set(FailureReason) == set(STOW_RS_FAILURE_REASON)
    assert C_STORE_STATUS[FailureReason.OUT_OF_RESOURCES] == 0xA700
    assert STOW_RS_FAILURE_REASON[FailureReason.NOT_AUTHORIZED] == 0x0124
    assert STOW_RS_FAILURE_REASON[FailureReason.PROCESSING_FAILURE] == 0x0110


def test_any_receive_failure_maps_to_a_protocol_code() -> None:
    from concilium.imaging.multipart import MultipartError, PartTooLarge
    from concilium.imaging.storage import ObjectTooLarge, OutOfResources

    cases = {
        MalformedObject("x"): 0xC000,
        MissingAttribute("PatientID"): 0xA900,
        UnsupportedSopClass("1.2.3"): 0x0122,
        OutOfResources("disk full"): 0xA700,
        ObjectTooLarge("big"): 0xA700,
        PartTooLarge("big part"): 0xA700,
        MultipartError("no close delimiter"): 0xC000,
        PermissionError("denied"): 0x0124,
        RuntimeError("bug"): 0x0110,
    }
    for exc, code in cases.items():
        assert STOW_RS_FAILURE_REASON[failure_reason(exc)] == code, exc
    assert C_STORE_STATUS[failure_reason(UnsupportedTransferSyntax("1.2"))] == 0xC000


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("name", ["CT_small.dcm", "test-SR.dcm", "JPEG2000.dcm", "rtplan.dcm"])
def test_corrupted_bytes_never_escape_as_other_exceptions(
    sample: Sample, tmp_path: Path, name: str
) -> None:
    rng = random.Random(name)
    data = sample(name).read_bytes()
    path = tmp_path / "fuzz.dcm"
    refused = 0
    for _ in range(150):
        mutated = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            mutated[rng.randrange(132, min(len(data), 2000))] = rng.randrange(256)
        if rng.random() < 0.3:
            mutated = mutated[: rng.randrange(132, len(mutated))]
        path.write_bytes(bytes(mutated))
        try:
            parse_instance(path)
        except InvalidInstance:
            refused += 1
    assert refused > 0

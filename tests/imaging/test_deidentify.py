"""Basic Application Level Confidentiality Profile with modified dates (PS3.15 E.2, E.3.6)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from concilium.imaging.deidentify import (
    BASIC_PROFILE,
    DeidentificationError,
    DeidentificationOptions,
    TemporalOption,
    date_offset_days,
    deidentify,
    patient_key,
    remap_uid,
)

SALT = b"project-salt-0123456789abcdef"
OPTIONS = DeidentificationOptions(salt=SALT)
PHI = {
    "PatientName": "DUPONT^MARIE-CLAIRE",
    "PatientID": "IPP-7781234",
    "PatientBirthDate": "19580704",
    "OtherPatientIDs": "NIR-2580775123456",
    "PatientAddress": "12 RUE DES LILAS LYON",
    "PatientTelephoneNumbers": "+33612345678",
    "PatientMotherBirthName": "MARTINEAU",
    "AccessionNumber": "ACC-PHI-9911",
    "InstitutionName": "HOPITAL SAINT-PHILIBERT",
    "InstitutionAddress": "3 AVENUE FOCH",
    "ReferringPhysicianName": "REFERRER^PAUL",
    "PerformingPhysicianName": "PERFORMER^ANNE",
    "OperatorsName": "OPERATOR^LUC",
    "StationName": "CT-ROOM-BLUE",
    "StudyID": "STUDYID-4471",
    "DeviceSerialNumber": "SN-99887766",
    "StudyDescription": "SUSPECTED ASSAULT INJURY",
    "ImageComments": "PATIENT IS THE MAYOR",
    "AdditionalPatientHistory": "HIV POSITIVE",
    "RequestingPhysician": "REQUESTER^JEAN",
}


def _walk(ds: Dataset) -> Iterator[pydicom.DataElement]:
    for elem in ds:
        yield elem
        if elem.VR == "SQ":
            for item in elem.value:
                yield from _walk(item)


def _texts(ds: Dataset) -> list[str]:
    out = [str(e.value) for e in _walk(ds) if e.VR not in ("OB", "OW", "UN")]
    if hasattr(ds, "file_meta"):
        out += [str(e.value) for e in ds.file_meta]
    return out


def _phi_dataset(path: Path) -> Dataset:
    ds = pydicom.dcmread(path)
    for keyword, value in PHI.items():
        setattr(ds, keyword, value)
    ds.PatientAge = "068Y"
    ds.PatientWeight = "81.5"
    operator = Dataset()
    operator.PersonIdentificationCodeSequence = Sequence()
    operator.InstitutionName = "HOPITAL SAINT-PHILIBERT"
    operator.add_new(0x00401101, "SQ", Sequence())
    ds.OperatorIdentificationSequence = Sequence([operator])
    request = Dataset()
    request.RequestedProcedureID = "RP-PHI-1"
    request.ScheduledProcedureStepID = "SPS-PHI-1"
    ds.RequestAttributesSequence = Sequence([request])
    source = Dataset()
    source.ReferencedSOPClassUID = ds.SOPClassUID
    source.ReferencedSOPInstanceUID = "1.2.826.0.1.3680043.2.1125.1.99"
    ds.SourceImageSequence = Sequence([source])
    ds.add_new(0x00091010, "LO", "GEMS_PRIVATE PHI VALUE")
    ds.add_new(0x00091011, "LO", "PRIVATE-PATIENT-TAG")
    ds.add_new(0x60000010, "US", 2)
    ds.add_new(0x60000011, "US", 2)
    ds.add_new(0x60003000, "OW", b"\x00\x00")
    ds.add_new(0x50000005, "US", 1)
    ds.file_meta.SourceApplicationEntityTitle = "ST_PHILIBERT_CT"
    return ds


def test_no_original_phi_value_survives(ct_series: list[Path]) -> None:
    original = _phi_dataset(ct_series[0])
    out = deidentify(original, OPTIONS)
    texts = "\n".join(_texts(out))
    secrets = [*PHI.values(), "ST_PHILIBERT_CT", "068Y", "81.5", "RP-PHI-1", "SPS-PHI-1"]
    secrets += ["PRIVATE-PATIENT-TAG", "GEMS_PRIVATE PHI VALUE", original.StudyDate]
    for uid_keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"):
        secrets.append(str(original[uid_keyword].value))
    secrets += [str(original.FrameOfReferenceUID), "1.2.826.0.1.3680043.2.1125.1.99"]
    for secret in secrets:
        assert secret not in texts, secret
    assert all(not e.tag.is_private for e in _walk(out))
    assert not [e for e in out if 0x5000 <= e.tag.group <= 0x60FF]


def test_input_dataset_is_not_modified(ct_series: list[Path]) -> None:
    original = _phi_dataset(ct_series[0])
    before = original.to_json_dict()
    deidentify(original, OPTIONS)
    assert original.to_json_dict() == before


def test_required_attributes_are_set(ct_series: list[Path]) -> None:
    out = deidentify(_phi_dataset(ct_series[0]), OPTIONS)
    assert out.PatientIdentityRemoved == "YES"
    assert out.LongitudinalTemporalInformationModified == "MODIFIED"
    codes = [
        (i.CodeValue, i.CodingSchemeDesignator) for i in out.DeidentificationMethodCodeSequence
    ]
    assert codes == [("113100", "DCM"), ("113107", "DCM")]
    assert "Basic Application Confidentiality Profile" in list(out.DeidentificationMethod)
    assert out.file_meta.MediaStorageSOPInstanceUID == out.SOPInstanceUID
    assert out.PatientID.startswith("ANON-")
    assert str(out.PatientName) == out.PatientID.replace("-", "^")
    assert out.PatientBirthDate == ""
    assert out.SOPClassUID == "1.2.840.10008.5.1.4.1.1.2"  # registered UIDs are kept
    assert out.Modality == "CT" and out.PixelData  # clinical content is kept
    assert "StudyDescription" not in out and "PatientAddress" not in out
    assert out.OperatorsName == "ANONYMIZED"  # X/Z/D: a dummy keeps Type 1/2 uses valid


def test_uids_are_consistent_across_a_series(ct_series: list[Path]) -> None:
    outs = [deidentify(pydicom.dcmread(p), OPTIONS) for p in ct_series]
    originals = [pydicom.dcmread(p) for p in ct_series]
    assert len({o.StudyInstanceUID for o in outs}) == 1
    assert len({o.SeriesInstanceUID for o in outs}) == 1
    assert len({o.FrameOfReferenceUID for o in outs}) == 1
    assert len({o.SOPInstanceUID for o in outs}) == len(outs)
    for out, original in zip(outs, originals, strict=True):
        assert out.SOPInstanceUID == remap_uid(original.SOPInstanceUID, SALT)
        assert out.StudyInstanceUID != original.StudyInstanceUID
        assert pydicom.uid.UID(out.SOPInstanceUID).is_valid
        assert len(out.SOPInstanceUID) <= 64
    # A reference from one image to another follows the remapping.
    referring = _phi_dataset(ct_series[1])
    referring.SourceImageSequence[0].ReferencedSOPInstanceUID = originals[0].SOPInstanceUID
    ref = deidentify(referring, OPTIONS).SourceImageSequence[0].ReferencedSOPInstanceUID
    assert ref == outs[0].SOPInstanceUID
    other_salt = DeidentificationOptions(salt=b"another-project-salt-000")
    assert deidentify(originals[0], other_salt).SOPInstanceUID != outs[0].SOPInstanceUID


def test_dates_shift_consistently_by_a_per_patient_offset(ct_series: list[Path]) -> None:
    original = _phi_dataset(ct_series[0])
    original.AcquisitionDateTime = original.StudyDate + "101500.25"
    original.SeriesDate = "20261119"
    out = deidentify(original, OPTIONS)
    offset = date_offset_days(patient_key(original), SALT)
    assert -3650 <= offset <= -1

    def shifted(value: str) -> str:
        day = dt.datetime.strptime(value, "%Y%m%d").date() + dt.timedelta(days=offset)
        return day.strftime("%Y%m%d")

    assert out.StudyDate == shifted(original.StudyDate)
    assert out.ContentDate == shifted(original.ContentDate)
    assert out.SeriesDate == shifted("20261119")
    assert out.AcquisitionDateTime == shifted(original.StudyDate) + "101500.25"
    assert out.StudyTime == original.StudyTime  # whole days: times of day are kept
    # The same patient in another study gets the same shift.
    later = _phi_dataset(ct_series[2])
    later.StudyDate = "20270301"
    assert deidentify(later, OPTIONS).StudyDate == shifted("20270301")
    other = _phi_dataset(ct_series[0])
    other.PatientID = "IPP-0000003"
    assert date_offset_days(patient_key(other), SALT) != offset
    assert deidentify(other, OPTIONS).StudyDate != out.StudyDate


def test_fixed_offset_and_basic_profile_without_dates(ct_series: list[Path]) -> None:
    ds = _phi_dataset(ct_series[0])
    fixed = deidentify(ds, DeidentificationOptions(salt=SALT, date_offset_days=-1))
    assert fixed.StudyDate == (
        dt.datetime.strptime(ds.StudyDate, "%Y%m%d") - dt.timedelta(days=1)
    ).strftime("%Y%m%d")
    basic = deidentify(ds, DeidentificationOptions(salt=SALT, temporal=TemporalOption.REMOVE))
    assert basic.StudyDate == ""
    assert "SeriesDate" not in basic or basic.SeriesDate in ("", "19000101")
    assert basic.LongitudinalTemporalInformationModified == "REMOVED"
    assert [i.CodeValue for i in basic.DeidentificationMethodCodeSequence] == ["113100"]
    full = deidentify(ds, DeidentificationOptions(salt=SALT, temporal=TemporalOption.FULL_DATES))
    assert full.StudyDate == ds.StudyDate and full.PatientBirthDate == ""
    assert full.LongitudinalTemporalInformationModified == "UNMODIFIED"
    codes = [i.CodeValue for i in full.DeidentificationMethodCodeSequence]
    assert codes == ["113100", "113106"]


def test_burned_in_annotation_is_refused(ct_series: list[Path]) -> None:
    ds = pydicom.dcmread(ct_series[0])
    ds.BurnedInAnnotation = "YES"
    with pytest.raises(DeidentificationError):
        deidentify(ds, OPTIONS)
    allowed = DeidentificationOptions(salt=SALT, reject_burned_in_annotation=False)
    assert deidentify(ds, allowed).PatientIdentityRemoved == "YES"


def test_structured_report_content_is_removed(sample: object) -> None:
    from collections.abc import Callable

    assert callable(sample)
    get: Callable[[str], Path] = sample
    sr = pydicom.dcmread(get("test-SR.dcm"))
    out = deidentify(sr, OPTIONS)
    assert "ContentSequence" not in out
    assert str(sr.PatientName) not in "\n".join(_texts(out))


def test_profile_table_uses_only_defined_actions() -> None:
    allowed = {"D", "Z", "X", "K", "C", "U", "U*"}
    for tag, action in BASIC_PROFILE.items():
        assert set(action.split("/")) <= allowed, hex(tag)
    assert BASIC_PROFILE[0x00100010] == "Z" and BASIC_PROFILE[0x00080018] == "U"


def test_short_salt_is_refused() -> None:
    with pytest.raises(ValueError):
        DeidentificationOptions(salt=b"short")


def test_written_output_is_valid_part10(ct_series: list[Path], tmp_path: Path) -> None:
    out = deidentify(_phi_dataset(ct_series[0]), OPTIONS)
    path = tmp_path / "anon.dcm"
    out.save_as(path, enforce_file_format=True)
    back = pydicom.dcmread(path)
    assert back.PatientIdentityRemoved == "YES"
    assert back.SOPInstanceUID == out.SOPInstanceUID


def test_same_patient_id_from_two_issuers_gets_two_pseudonyms(ct_series: list[Path]) -> None:
    first = pydicom.dcmread(ct_series[0])
    first.IssuerOfPatientID = "HOSPITAL-A"
    second = pydicom.dcmread(ct_series[0])
    second.IssuerOfPatientID = "HOSPITAL-B"
    a, b = deidentify(first, OPTIONS), deidentify(second, OPTIONS)
    assert a.PatientID != b.PatientID
    assert deidentify(first, OPTIONS).PatientID == a.PatientID
    assert "IssuerOfPatientID" not in a

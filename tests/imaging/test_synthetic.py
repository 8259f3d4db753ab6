"""Synthetic CT series and XA cine loop: valid Part 10 objects of one patient and study."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest

from concilium.imaging.deidentify import DeidentificationOptions, deidentify
from concilium.imaging.synthetic import (
    SyntheticStudy,
    generate_ct_series,
    generate_demo_study,
    synthetic_uid,
)


def test_ct_series_shares_patient_study_series(
    ct_series: list[Path], study: SyntheticStudy
) -> None:
    datasets = [pydicom.dcmread(p) for p in ct_series]
    assert len(datasets) == 4
    assert {d.StudyInstanceUID for d in datasets} == {study.study_instance_uid}
    assert len({d.SeriesInstanceUID for d in datasets}) == 1
    assert len({d.SOPInstanceUID for d in datasets}) == 4
    assert [d.InstanceNumber for d in datasets] == [1, 2, 3, 4]
    positions = [float(d.ImagePositionPatient[2]) for d in datasets]
    assert np.allclose(np.diff(positions), -2.5)
    first = datasets[0]
    assert (first.Rows, first.Columns, first.BitsAllocated) == (512, 512, 16)
    assert first.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
    hu = first.pixel_array.astype(float) * float(first.RescaleSlope) + float(first.RescaleIntercept)
    assert hu.min() < -900 and hu.max() > 600  # air outside, bone in the spine
    assert all(pydicom.uid.UID(d.SOPInstanceUID).is_valid for d in datasets)


def test_xa_cine_has_frame_timing(xa_cine: Path) -> None:
    ds = pydicom.dcmread(xa_cine)
    assert ds.NumberOfFrames == 30
    assert ds.CineRate == 15 and float(ds.FrameTime) == pytest.approx(1000 / 15, rel=1e-4)
    assert ds.FrameIncrementPointer == 0x00181063
    frames = ds.pixel_array
    assert frames.shape == (30, 512, 512) and frames.dtype == np.uint8
    assert not np.array_equal(frames[0], frames[15])  # contrast arrives, vessel pulses


def test_generation_is_reproducible(tmp_path: Path) -> None:
    study = SyntheticStudy(seed="repro")
    a = generate_ct_series(tmp_path / "a", 1, study=study, rows=64, columns=64)
    b = generate_ct_series(tmp_path / "b", 1, study=study, rows=64, columns=64)
    assert a[0].read_bytes() == b[0].read_bytes()
    assert synthetic_uid("x", 1) != synthetic_uid("x", 2)
    with pytest.raises(ValueError):
        generate_ct_series(tmp_path, 0)


needs_dciodvfy = pytest.mark.skipif(
    shutil.which("dciodvfy") is None, reason="dicom3tools' dciodvfy not installed"
)


def _dciodvfy_errors(path: Path) -> list[str]:
    result = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, check=False)
    return [line for line in (result.stdout + result.stderr).splitlines() if "Error" in line]


@needs_dciodvfy
def test_generated_objects_pass_dciodvfy(ct_series: list[Path], xa_cine: Path) -> None:
    assert _dciodvfy_errors(ct_series[0]) == []
    assert _dciodvfy_errors(xa_cine) == []


@needs_dciodvfy
def test_deidentified_objects_pass_dciodvfy(
    ct_series: list[Path], xa_cine: Path, tmp_path: Path
) -> None:
    options = DeidentificationOptions(salt=b"dciodvfy-salt-0123456789")
    for source in (ct_series[0], xa_cine):
        out = tmp_path / f"anon-{source.name}"
        deidentify(pydicom.dcmread(source), options).save_as(out, enforce_file_format=True)
        assert _dciodvfy_errors(out) == []


@pytest.mark.skipif(shutil.which("dcmdump") is None, reason="dcmtk's dcmdump not installed")
def test_dcmdump_reads_generated_cine(xa_cine: Path) -> None:
    result = subprocess.run(
        ["dcmdump", "+P", "0028,0008", "+P", "0018,0040", str(xa_cine)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "[30]" in result.stdout and "[15]" in result.stdout


def test_demo_study_is_one_patient_one_study(tmp_path: Path) -> None:
    paths = generate_demo_study(tmp_path, ct_slices=2, cine_frames=3)
    datasets = [pydicom.dcmread(p, stop_before_pixels=True) for p in paths]
    assert len({d.StudyInstanceUID for d in datasets}) == 1
    assert len({d.PatientID for d in datasets}) == 1
    assert [d.Modality for d in datasets] == ["CT", "CT", "XA"]
    assert len({d.SeriesInstanceUID for d in datasets}) == 2


def test_content_time_stays_valid_for_long_series(tmp_path):
    from pydicom import dcmread

    from concilium.imaging.synthetic import generate_ct_series

    paths = generate_ct_series(tmp_path, count=600, rows=16, columns=16)
    times = [str(dcmread(p, stop_before_pixels=True).ContentTime) for p in paths[::50]]
    assert all(int(t[2:4]) < 60 and int(t[4:6]) < 60 for t in times), times
    assert times == sorted(times)

"""Synthetic, realistic imaging data for tests, the demo and benchmarks.

Generates a CT series (CT Image IOD, PS3.3 A.3) of a cylindrical phantom with body, lungs,
spine and noise, and an X-Ray Angiographic cine loop (XA Image IOD, PS3.3 A.14, with the
Cine and Multi-frame modules C.7.6.5/C.7.6.6) of a contrast-filled vessel whose calibre
pulses with the heartbeat. Files are written as PS3.10 Part 10, Explicit VR Little Endian.
All identifiers are fictitious; UIDs are derived from a seed so runs are reproducible.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    UID,
    CTImageStorage,
    DigitalXRayImageStorageForPresentation,
    ExplicitVRLittleEndian,
    XRayAngiographicImageStorage,
)

__all__ = [
    "SyntheticPatient",
    "SyntheticStudy",
    "generate_ct_series",
    "generate_demo_study",
    "generate_dx_image",
    "generate_xa_cine",
    "synthetic_uid",
]

IMPLEMENTATION_CLASS_UID = UID("2.25.266389424744011125428131006209049838919")
IMPLEMENTATION_VERSION_NAME = "CONCILIUM_01"


def synthetic_uid(seed: str, *parts: object) -> str:
    """A ``2.25.`` UID (PS3.5 B.2) derived from `seed` and `parts`: reproducible, unique."""
    text = "\x00".join([seed, *map(str, parts)])
    return "2.25." + str(int.from_bytes(hashlib.sha256(text.encode()).digest()[:16], "big"))


@dataclass(frozen=True, slots=True)
class SyntheticPatient:
    """Fictitious patient demographics."""

    name: str = "DOE^JANE"
    """Patient's Name (0010,0010)."""
    patient_id: str = "CONC-000001"
    """Patient ID (0010,0020)."""
    birth_date: str = "19610315"
    """Patient's Birth Date (0010,0030)."""
    sex: str = "F"
    """Patient's Sex (0010,0040)."""


@dataclass(frozen=True, slots=True)
class SyntheticStudy:
    """Fictitious study context shared by every generated object of one study."""

    seed: str = "concilium-demo"
    """Seed from which every UID derives."""
    patient: SyntheticPatient = field(default_factory=SyntheticPatient)
    """The patient."""
    study_date: dt.date = dt.date(2026, 11, 20)
    """Study Date (0008,0020)."""
    accession_number: str = "ACC-0001"
    """Accession Number (0008,0050)."""
    institution_name: str = "Concilium General Hospital"
    """Institution Name (0008,0080)."""
    referring_physician: str = "HOUSE^GREGORY"
    """Referring Physician's Name (0008,0090)."""
    description: str = "CT THORAX WITH CONTRAST"
    """Study Description (0008,1030)."""

    @property
    def study_instance_uid(self) -> str:
        """Study Instance UID (0020,000D)."""
        return synthetic_uid(self.seed, "study")


def _file_meta(sop_class: str, sop_instance: str) -> FileMetaDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(sop_class)
    meta.MediaStorageSOPInstanceUID = UID(sop_instance)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = IMPLEMENTATION_CLASS_UID
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION_NAME
    return meta


def _common(study: SyntheticStudy, sop_class: str, sop_instance: str, modality: str) -> Dataset:
    ds = Dataset()
    ds.file_meta = _file_meta(sop_class, sop_instance)
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_instance
    ds.StudyDate = study.study_date.strftime("%Y%m%d")
    ds.ContentDate = ds.StudyDate
    ds.SeriesDate = ds.StudyDate
    ds.AcquisitionDate = ds.StudyDate
    ds.StudyTime = "083000"
    ds.SeriesTime = "083512"
    ds.AccessionNumber = study.accession_number
    ds.Modality = modality
    ds.Manufacturer = "Concilium Synthetic"
    ds.ManufacturerModelName = "Phantom"
    ds.InstitutionName = study.institution_name
    ds.ReferringPhysicianName = study.referring_physician
    ds.StudyDescription = study.description
    ds.PatientName = study.patient.name
    ds.PatientID = study.patient.patient_id
    ds.PatientBirthDate = study.patient.birth_date
    ds.PatientSex = study.patient.sex
    ds.StudyInstanceUID = study.study_instance_uid
    ds.StudyID = "1"
    ds.PatientOrientation = ""
    ds.BurnedInAnnotation = "NO"
    return ds


def _ct_slice(rows: int, cols: int, z: float, rng: np.random.Generator) -> npt.NDArray[np.float64]:
    """Hounsfield units of one axial slice of the thorax phantom."""
    y, x = np.mgrid[-1.0 : 1.0 : rows * 1j, -1.0 : 1.0 : cols * 1j]
    hu = np.full((rows, cols), -1000.0)
    body = (x / 0.85) ** 2 + (y / 0.62) ** 2 <= 1.0
    hu[body] = 40.0
    fat = body & ((x / 0.80) ** 2 + (y / 0.57) ** 2 > 1.0)
    hu[fat] = -100.0
    # Lungs shrink towards the ends of the scanned range, as they do over a thorax.
    lung_scale = 0.25 + 0.1 * np.cos(z * np.pi)
    for side in (-1, 1):
        lung = ((x - side * 0.38) / lung_scale) ** 2 + ((y + 0.02) / 0.42) ** 2 <= 1.0
        hu[lung] = -850.0
    spine = (x / 0.09) ** 2 + ((y - 0.42) / 0.09) ** 2 <= 1.0
    hu[spine] = 700.0
    aorta = ((x + 0.08) / 0.07) ** 2 + ((y - 0.25) / 0.07) ** 2 <= 1.0
    hu[aorta] = 250.0
    heart = ((x + 0.12) / 0.22) ** 2 + ((y + 0.05) / 0.2) ** 2 <= 1.0
    hu[heart & (z < 0.6)] = 45.0
    hu += rng.normal(0.0, 12.0, size=hu.shape)
    return hu


def generate_ct_series(
    directory: Path | str,
    count: int = 20,
    *,
    study: SyntheticStudy | None = None,
    rows: int = 512,
    columns: int = 512,
    series_number: int = 2,
    slice_thickness: float = 2.5,
) -> list[Path]:
    """Write `count` axial CT slices (16-bit, 12 bits stored, rescale -1024) and return paths."""
    if count < 1 or rows < 16 or columns < 16:
        raise ValueError("need at least one slice of at least 16x16 pixels")
    study = study or SyntheticStudy()
    out_dir = Path(directory)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(int.from_bytes(hashlib.sha256(study.seed.encode()).digest()[:8]))
    series_uid = synthetic_uid(study.seed, "ct-series", series_number)
    frame_of_reference = synthetic_uid(study.seed, "ct-for", series_number)
    spacing = 350.0 / columns
    paths: list[Path] = []
    for i in range(count):
        sop_uid = synthetic_uid(study.seed, "ct", series_number, i)
        ds = _common(study, CTImageStorage, sop_uid, "CT")
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.SeriesInstanceUID = series_uid
        ds.SeriesNumber = series_number
        ds.SeriesDescription = "THORAX 2.5mm"
        ds.BodyPartExamined = "CHEST"
        ds.ProtocolName = "THORAX"
        ds.PatientPosition = "HFS"
        ds.FrameOfReferenceUID = frame_of_reference
        ds.PositionReferenceIndicator = ""
        ds.InstanceNumber = i + 1
        ds.AcquisitionNumber = 1
        # Ten slices a second from 08:35:12, carried into minutes and hours (valid TM for
        # series of any length).
        seconds = 8 * 3600 + 35 * 60 + 12 + i // 10
        ds.ContentTime = f"{seconds // 3600 % 24:02d}{seconds // 60 % 60:02d}{seconds % 60:02d}"
        ds.AcquisitionTime = ds.ContentTime
        ds.KVP = "120"
        ds.SliceThickness = f"{slice_thickness}"
        ds.PixelSpacing = [f"{spacing:.6f}", f"{spacing:.6f}"]
        ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
        z_position = -float(i) * slice_thickness
        ds.ImagePositionPatient = [f"{-175.0:.1f}", f"{-175.0:.1f}", f"{z_position:.2f}"]
        ds.SliceLocation = f"{z_position:.2f}"
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.Rows = rows
        ds.Columns = columns
        ds.BitsAllocated = 16
        ds.BitsStored = 12
        ds.HighBit = 11
        ds.PixelRepresentation = 0
        ds.RescaleIntercept = "-1024"
        ds.RescaleSlope = "1"
        ds.RescaleType = "HU"
        ds.WindowCenter = "40"
        ds.WindowWidth = "400"
        ds.WindowCenterWidthExplanation = "SOFT TISSUE"
        hu = _ct_slice(rows, columns, i / max(count - 1, 1), rng)
        stored = np.clip(np.rint(hu + 1024.0), 0, 4095).astype("<u2")
        ds.PixelData = stored.tobytes()
        path = out_dir / f"CT{series_number:02d}_{i + 1:04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def generate_xa_cine(
    directory: Path | str,
    frames: int = 30,
    *,
    study: SyntheticStudy | None = None,
    rows: int = 512,
    columns: int = 512,
    frames_per_second: int = 15,
    series_number: int = 10,
) -> Path:
    """Write a multi-frame 8-bit XA cine loop (Cine Rate and Frame Time set) and return its path."""
    if frames < 1 or frames_per_second < 1:
        raise ValueError("need at least one frame and a positive frame rate")
    study = study or SyntheticStudy()
    out_dir = Path(directory)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(int.from_bytes(hashlib.sha256(study.seed.encode()).digest()[8:16]))
    sop_uid = synthetic_uid(study.seed, "xa", series_number)
    ds = _common(study, XRayAngiographicImageStorage, sop_uid, "XA")
    ds.ImageType = ["ORIGINAL", "PRIMARY", "SINGLE PLANE"]
    ds.SeriesInstanceUID = synthetic_uid(study.seed, "xa-series", series_number)
    ds.SeriesNumber = series_number
    ds.SeriesDescription = "LCA RAO 30 CRA 20"
    ds.BodyPartExamined = "HEART"
    ds.InstanceNumber = 1
    ds.ContentTime = "091502"
    ds.AcquisitionDateTime = ds.StudyDate + "091500"
    ds.KVP = "80"
    ds.RadiationSetting = "GR"
    ds.XRayTubeCurrent = 600
    ds.ExposureTime = 6
    ds.Exposure = 4
    ds.PositionerMotion = "STATIC"
    ds.PositionerPrimaryAngle = "-30"
    ds.PositionerSecondaryAngle = "20"
    ds.DistanceSourceToDetector = "1100"
    ds.DistanceSourceToPatient = "750"
    ds.IntensifierSize = "250"
    ds.ImagerPixelSpacing = ["0.2", "0.2"]
    ds.PixelIntensityRelationship = "LOG"
    ds.NumberOfFrames = frames
    # Frame Increment Pointer names Frame Time, per the XA IOD (PS3.3 C.8.7.3).
    ds.FrameIncrementPointer = 0x00181063
    frame_time = 1000.0 / frames_per_second
    ds.FrameTime = f"{frame_time:.4f}"
    ds.CineRate = frames_per_second
    ds.RecommendedDisplayFrameRate = frames_per_second
    ds.FrameDelay = "0"
    ds.StartTrim = 1
    ds.StopTrim = frames
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = rows
    ds.Columns = columns
    ds.BitsAllocated = 8
    ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.RescaleIntercept = "0"
    ds.RescaleSlope = "1"
    ds.RescaleType = "US"
    ds.WindowCenter = "128"
    ds.WindowWidth = "256"
    y, x = np.mgrid[0:rows, 0:columns].astype(np.float64)
    # A vessel curving across the field, its lumen pulsing at 72 beats per minute.
    centre_line = rows * (0.5 + 0.2 * np.sin(x / columns * 2.5 * np.pi))
    background = 170.0 + 25.0 * np.cos(x / columns * np.pi) * np.cos(y / rows * np.pi)
    volume = np.empty((frames, rows, columns), dtype=np.uint8)
    for f in range(frames):
        t = f / frames_per_second
        radius = rows * (0.02 + 0.006 * np.sin(2 * np.pi * 1.2 * t))
        opacity = min(1.0, (f + 1) / (0.3 * frames))
        vessel = np.exp(-(((y - centre_line) / radius) ** 2)) * 110.0 * opacity
        frame = background - vessel + rng.normal(0.0, 4.0, size=(rows, columns))
        volume[f] = np.clip(np.rint(frame), 0, 255).astype(np.uint8)
    ds.PixelData = volume.tobytes()
    path = out_dir / f"XA{series_number:02d}_cine.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path


def generate_dx_image(
    directory: Path | str,
    *,
    study: SyntheticStudy | None = None,
    rows: int = 512,
    columns: int = 512,
    series_number: int = 20,
) -> Path:
    """Write one digital X-ray for presentation (DX, PS3.3 A.26): a chest radiograph, 16-bit
    with 12 bits stored, and return its path."""
    if rows < 16 or columns < 16:
        raise ValueError("need at least 16x16 pixels")
    study = study or SyntheticStudy()
    out_dir = Path(directory)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(int.from_bytes(hashlib.sha256(study.seed.encode()).digest()[:8]))
    sop_uid = synthetic_uid(study.seed, "dx", series_number)
    ds = _common(study, DigitalXRayImageStorageForPresentation, sop_uid, "DX")
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.PresentationIntentType = "FOR PRESENTATION"
    ds.SeriesInstanceUID = synthetic_uid(study.seed, "dx-series", series_number)
    ds.SeriesNumber = series_number
    ds.SeriesDescription = "THORAX PA"
    ds.BodyPartExamined = "CHEST"
    ds.ViewPosition = "PA"
    ds.PatientOrientation = ["L", "F"]
    ds.InstanceNumber = 1
    ds.ContentTime = "084000"
    ds.KVP = "120"
    ds.ImagerPixelSpacing = ["0.15", "0.15"]
    ds.PixelSpacing = ["0.15", "0.15"]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = rows
    ds.Columns = columns
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.RescaleIntercept = "0"
    ds.RescaleSlope = "1"
    ds.WindowCenter = "2048"
    ds.WindowWidth = "4096"
    y, x = np.mgrid[0:rows, 0:columns].astype(np.float64)
    u, v = (x / columns - 0.5) * 2, (y / rows - 0.5) * 2
    # Two lungs (dark) in a bright thorax, the heart's shadow between them.
    lungs = np.exp(-((((np.abs(u) - 0.45) / 0.28) ** 2 + ((v + 0.05) / 0.6) ** 2) ** 2))
    heart = np.exp(-(((u + 0.08) / 0.22) ** 2 + ((v - 0.25) / 0.3) ** 2))
    body = np.exp(-((u / 0.95) ** 8 + (v / 1.1) ** 8))
    image = 400 + 2600 * body - 1800 * lungs + 900 * heart + rng.normal(0, 30, (rows, columns))
    ds.PixelData = np.clip(np.rint(image), 0, 4095).astype(np.uint16).tobytes()
    path = out_dir / f"DX{series_number:02d}.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path


def generate_demo_study(
    directory: Path | str, *, ct_slices: int = 40, cine_frames: int = 30
) -> list[Path]:
    """One patient, one study: a CT series and an XA cine loop, for the demo and benchmarks."""
    study = SyntheticStudy()
    paths = generate_ct_series(directory, ct_slices, study=study)
    paths.append(generate_xa_cine(directory, cine_frames, study=study))
    return paths

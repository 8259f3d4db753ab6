"""What the DICOMweb tests share: generated studies, DICOM JSON values, multipart parts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pydicom
import requests
from pydicom.dataset import Dataset

from concilium.imaging.synthetic import SyntheticPatient, SyntheticStudy, generate_ct_series

REFERENCED = "ReferencedSOPSequence"


FAILED = "FailedSOPSequence"


def read(paths: list[Path]) -> list[Dataset]:
    return [pydicom.dcmread(p) for p in paths]


def ct(tmp: Path, seed: str, count: int = 4, **patient: str) -> list[Path]:
    study = SyntheticStudy(seed=seed, patient=SyntheticPatient(**patient))
    return generate_ct_series(tmp, count, study=study, rows=32, columns=32)


def multipart_parts(response: requests.Response) -> list[tuple[str, bytes]]:
    """(Content-Type, body) of each part of a multipart/related response."""
    content_type = response.headers["content-type"]
    assert content_type.startswith("multipart/related")
    boundary = content_type.split("boundary=")[1].split(";")[0].strip('"').encode()
    parts = []
    for chunk in response.content.split(b"--" + boundary)[1:]:
        if chunk.startswith(b"--"):
            break
        head, _, body = chunk.lstrip(b"\r\n").partition(b"\r\n\r\n")
        headers = dict(line.split(": ", 1) for line in head.decode("latin-1").split("\r\n") if line)
        parts.append((headers["Content-Type"], body.removesuffix(b"\r\n")))
    return parts


def value(result: dict[str, Any], tag: str) -> Any:
    """First value of an attribute of a DICOM JSON object, or None."""
    values = result.get(tag, {}).get("Value")
    return values[0] if values else None


def uids(path: Path) -> tuple[str, str, str]:
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    return ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID

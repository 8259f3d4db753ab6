"""Running Debian's DCMTK tools against the archive, as a modality or a workstation would."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pydicom
import pytest
from pynetdicom.dsutils import split_dataset

TOOLS = ("echoscu", "storescu", "findscu", "movescu", "getscu", "storescp")


def require_dcmtk() -> None:
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        pytest.fail(
            f"DCMTK tools missing ({', '.join(missing)}): install them with "
            "`apt-get install -y dcmtk`",
            pytrace=False,
        )


def run(*args: str | Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, timeout=timeout, check=False
    )


def find(
    port: int, calling: str, keys: dict[str, str], out: Path, *, model: str = "-S"
) -> list[pydicom.Dataset]:
    """C-FIND with findscu; returns the response identifiers it extracted."""
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("rsp*.dcm"):
        old.unlink()
    args: list[str | Path] = ["findscu", model, "-aet", calling, "-aec", "CONCILIUM", "-X"]
    args += ["-od", out]
    for key, value in keys.items():
        args += ["-k", f"{key}={value}" if value else key]
    result = run(*args, "127.0.0.1", str(port))
    assert result.returncode == 0, result.stdout + result.stderr
    return [pydicom.dcmread(p) for p in sorted(out.glob("rsp*.dcm"))]


def dataset_bytes(path: Path) -> bytes:
    """The encoded data set of a Part 10 file, without its File Meta Information."""
    _, offset = split_dataset(path)
    return path.read_bytes()[offset:]

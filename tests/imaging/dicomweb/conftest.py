"""One live ``concilium serve`` for every DICOMweb test, with Metz's and Briey's clients and the
studies several tests read."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pydicom
import pytest
from dicomweb_client import DICOMwebClient
from pydicom.dataset import Dataset

from ..dicomweb_server import LiveArchive, start_live_archive
from .clients import FAILED, ct, read


@pytest.fixture(scope="package")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveArchive]:
    yield from start_live_archive(tmp_path_factory.mktemp("dicomweb"))


@pytest.fixture(scope="package")
def metz(live: LiveArchive) -> DICOMwebClient:
    return live.client(live.metz_token)


@pytest.fixture(scope="package")
def briey(live: LiveArchive) -> DICOMwebClient:
    return live.client(live.briey_token)


@pytest.fixture(scope="package")
def accented(live: LiveArchive, metz: DICOMwebClient, tmp_path_factory) -> list[Dataset]:
    """A stored study of Mme Zoé Müller, four CT slices."""
    paths = ct(
        tmp_path_factory.mktemp("accented"),
        "qido-accented",
        name="MÜLLER^ZOÉ",
        patient_id="MTZ-QIDO-1",
    )
    metz.store_instances(read(paths))
    return read(paths)


@pytest.fixture(scope="package")
def samples(
    live: LiveArchive, metz: DICOMwebClient, sample: Callable[[str], Path]
) -> dict[str, Path]:
    """pydicom's compressed, multi-frame and big endian files, stored once."""
    files = {
        "jpeg": sample("SC_rgb_jpeg_dcmtk.dcm"),
        "multiframe": sample("examples_ybr_color.dcm"),
        "bigendian": sample("MR_small_bigendian.dcm"),
        "ct": sample("CT_small.dcm"),
    }
    response = metz.store_instances([pydicom.dcmread(p) for p in files.values()])
    assert FAILED not in response, response
    return files

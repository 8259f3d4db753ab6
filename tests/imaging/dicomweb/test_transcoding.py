"""WADO-RS in another transfer syntax (PS3.18 8.7.3.5.2): compressed instances decompressed on
request, as the real ``dicomweb_client`` asks for them from a live ``concilium serve``."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pydicom
import pytest
import requests
from dicomweb_client import DICOMwebClient
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from ..dicomweb_server import LiveArchive, start_live_archive
from .clients import multipart_parts

EXPLICIT = "1.2.840.10008.1.2.1"
IMPLICIT = "1.2.840.10008.1.2"
JPEG_BASELINE = "1.2.840.10008.1.2.4.50"
JPEG_LS = "1.2.840.10008.1.2.4.80"
# pydicom's shipped files, one per compression the archive must decode.
SAMPLES = {
    "jpeg-baseline": "SC_rgb_jpeg_dcmtk.dcm",
    "jpeg-lossless": "SC_rgb_jpeg_gdcm.dcm",
    "jpeg-ls": "MR_small_jpeg_ls_lossless.dcm",
    "jpeg-2000": "MR_small_jp2klossless.dcm",
    "jpeg-2000-lossy": "JPEG2000.dcm",
    "rle": "MR_small_RLE.dcm",
    "rle-rgb": "SC_rgb_rle.dcm",
    "multiframe-jpeg": "examples_ybr_color.dcm",
    "big-endian": "MR_small_bigendian.dcm",
}


def accept(transfer_syntax: str, media_type: str = "application/dicom") -> dict[str, str]:
    return {"Accept": f'multipart/related; type="{media_type}"; transfer-syntax={transfer_syntax}'}


def decoded(ds: Dataset) -> npt.NDArray[np.generic]:
    """The pixels as the archive's first decoder (pylibjpeg) gives them."""
    if ds.file_meta.TransferSyntaxUID.is_compressed:
        ds.pixel_array_options(decoding_plugin="pylibjpeg")
    return ds.pixel_array


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveArchive]:
    yield from start_live_archive(tmp_path_factory.mktemp("transcoding"))


@pytest.fixture(scope="module")
def metz(live: LiveArchive) -> DICOMwebClient:
    return live.client(live.metz_token)


@pytest.fixture(scope="module")
def study(metz: DICOMwebClient, sample: Callable[[str], Path]) -> dict[str, Dataset]:
    """The samples as one study, a series each, stored as they are (compressed)."""
    study_uid = generate_uid()
    stored = {}
    for name, filename in SAMPLES.items():
        ds = pydicom.dcmread(sample(filename))
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = generate_uid()
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.PatientID = "MTZ-TRANSCODE"
        stored[name] = ds
    response = metz.store_instances(list(stored.values()))
    assert "FailedSOPSequence" not in response, response
    return stored


def url(live: LiveArchive, ds: Dataset, *, instance: bool = True) -> str:
    base = f"{live.url}/dicomweb/studies/{ds.StudyInstanceUID}"
    if not instance:
        return base
    return f"{base}/series/{ds.SeriesInstanceUID}/instances/{ds.SOPInstanceUID}"


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_an_instance_comes_decompressed_to_explicit_vr_little_endian(metz, study, name):
    original = study[name]
    ds = metz.retrieve_instance(
        original.StudyInstanceUID,
        original.SeriesInstanceUID,
        original.SOPInstanceUID,
        media_types=(("application/dicom", EXPLICIT),),
    )
    assert ds.file_meta.TransferSyntaxUID == EXPLICIT
    # The same image in another encoding: same instance, same pixels.
    assert ds.SOPInstanceUID == original.SOPInstanceUID
    assert np.array_equal(ds.pixel_array, decoded(original))


def test_an_instance_comes_as_implicit_vr_little_endian(live, metz, study):
    original = study["jpeg-ls"]
    response = metz._http_get(url(live, original), headers=accept(IMPLICIT))
    ((content_type, body),) = multipart_parts(response)
    assert content_type == f"application/dicom; transfer-syntax={IMPLICIT}"
    ds = pydicom.dcmread(io.BytesIO(body))
    assert ds.file_meta.TransferSyntaxUID == IMPLICIT
    assert np.array_equal(ds.pixel_array, decoded(original))


def test_a_study_comes_decompressed_part_by_part(live, metz, study):
    first = next(iter(study.values()))
    retrieved = metz.retrieve_study(
        first.StudyInstanceUID, media_types=(("application/dicom", EXPLICIT),)
    )
    by_uid = {ds.SOPInstanceUID: ds for ds in retrieved}
    assert set(by_uid) == {ds.SOPInstanceUID for ds in study.values()}
    for original in study.values():
        ds = by_uid[original.SOPInstanceUID]
        assert ds.file_meta.TransferSyntaxUID == EXPLICIT
        assert np.array_equal(ds.pixel_array, decoded(original))
    response = metz._http_get(url(live, first, instance=False), headers=accept(EXPLICIT))
    types = {content_type for content_type, _ in multipart_parts(response)}
    assert types == {f"application/dicom; transfer-syntax={EXPLICIT}"}


def test_a_series_keeps_what_is_already_acceptable_and_transcodes_the_rest(live, metz, study):
    jpeg_ls = study["jpeg-ls"]
    both = {
        "Accept": f'multipart/related; type="application/dicom"; transfer-syntax={JPEG_LS}, '
        f'multipart/related; type="application/dicom"; transfer-syntax={EXPLICIT}'
    }
    series_url = url(live, jpeg_ls).rsplit("/instances/", 1)[0]
    ((content_type, body),) = multipart_parts(metz._http_get(series_url, headers=both))
    assert content_type == f"application/dicom; transfer-syntax={JPEG_LS}"
    assert pydicom.dcmread(io.BytesIO(body)).SOPInstanceUID == jpeg_ls.SOPInstanceUID
    rle = study["rle"]
    series_url = url(live, rle).rsplit("/instances/", 1)[0]
    ((content_type, _),) = multipart_parts(metz._http_get(series_url, headers=both))
    assert content_type == f"application/dicom; transfer-syntax={EXPLICIT}"


def test_the_stored_bytes_go_unchanged_when_their_syntax_is_asked_for(live, metz, study):
    original = study["jpeg-ls"]
    for headers in (accept(JPEG_LS), accept("*"), {"Accept": "multipart/related"}):
        response = metz._http_get(url(live, original), headers=headers)
        ((content_type, body),) = multipart_parts(response)
        assert content_type == f"application/dicom; transfer-syntax={JPEG_LS}"
        assert pydicom.dcmread(io.BytesIO(body)).PixelData == original.PixelData


def test_a_lossy_or_unknown_target_is_not_acceptable(live, metz, study):
    for target, resource in (
        (JPEG_BASELINE, url(live, study["jpeg-ls"])),
        (JPEG_BASELINE, url(live, study["big-endian"], instance=False)),
        ("1.2.840.10008.1.2.4.91", url(live, study["rle"])),
        ("1.2.3.4", url(live, study["rle"])),
    ):
        refused = metz._session.get(resource, headers=accept(target))
        assert refused.status_code == 406, (target, resource)
        assert refused.headers["content-type"] == "application/problem+json"
        assert f"transfer syntax {target} cannot be produced" in refused.json()["detail"]


@pytest.mark.parametrize("name", ["jpeg-baseline", "jpeg-ls", "jpeg-2000", "rle", "big-endian"])
def test_a_frame_comes_decoded_to_explicit_vr_little_endian(live, metz, study, name):
    original = study[name]
    (frame,) = metz.retrieve_instance_frames(
        original.StudyInstanceUID,
        original.SeriesInstanceUID,
        original.SOPInstanceUID,
        [1],
        media_types=(("application/octet-stream", EXPLICIT),),
    )
    expected = decoded(original)
    assert frame == expected.astype(expected.dtype.newbyteorder("<")).tobytes()
    response = metz._http_get(
        f"{url(live, original)}/frames/1", headers=accept(EXPLICIT, "application/octet-stream")
    )
    ((content_type, _),) = multipart_parts(response)
    assert content_type == f"application/octet-stream; transfer-syntax={EXPLICIT}"


def test_frames_of_a_multiframe_jpeg_come_decoded(metz, study):
    original = study["multiframe-jpeg"]
    frames = metz.retrieve_instance_frames(
        original.StudyInstanceUID,
        original.SeriesInstanceUID,
        original.SOPInstanceUID,
        [2, 30],
        media_types=(("application/octet-stream", EXPLICIT),),
    )
    expected = decoded(original)
    assert frames == [expected[1].tobytes(), expected[29].tobytes()]


def test_a_frame_in_a_syntax_it_is_not_stored_in_is_not_acceptable(metz, study):
    original = study["jpeg-ls"]
    with pytest.raises(requests.HTTPError) as refused:
        metz.retrieve_instance_frames(
            original.StudyInstanceUID,
            original.SeriesInstanceUID,
            original.SOPInstanceUID,
            [1],
            media_types=(("image/jpeg", JPEG_BASELINE),),
        )
    assert refused.value.response.status_code == 406
    assert refused.value.response.headers["content-type"] == "application/problem+json"


def wado_uri(live: LiveArchive, ds: Dataset, **extra: str) -> str:
    """A WADO-URI address (PS3.18 9.1) of a stored instance."""
    query = {
        "requestType": "WADO",
        "studyUID": ds.StudyInstanceUID,
        "seriesUID": ds.SeriesInstanceUID,
        "objectUID": ds.SOPInstanceUID,
        "contentType": "application/dicom",
        **extra,
    }
    return f"{live.url}/wado?" + "&".join(f"{k}={v}" for k, v in query.items())


@pytest.mark.parametrize("name", ["jpeg-baseline", "jpeg-2000", "rle-rgb", "big-endian"])
def test_wado_uri_sends_the_transfer_syntax_asked_for(live, metz, study, name):
    original = study[name]
    for target in (EXPLICIT, IMPLICIT):
        response = metz._session.get(wado_uri(live, original, transferSyntax=target))
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/dicom"
        ds = pydicom.dcmread(io.BytesIO(response.content))
        assert ds.file_meta.TransferSyntaxUID == target
        assert ds.SOPInstanceUID == original.SOPInstanceUID
        assert np.array_equal(ds.pixel_array, decoded(original))


def test_wado_uri_sends_the_stored_bytes_unless_asked_otherwise(live, metz, study):
    original = study["jpeg-ls"]
    for extra in ({}, {"transferSyntax": "*"}, {"transferSyntax": JPEG_LS}):
        response = metz._session.get(wado_uri(live, original, **extra))
        ds = pydicom.dcmread(io.BytesIO(response.content))
        assert ds.file_meta.TransferSyntaxUID == JPEG_LS
        assert ds.PixelData == original.PixelData
    refused = metz._session.get(wado_uri(live, original, transferSyntax=JPEG_BASELINE))
    assert refused.status_code == 406
    assert refused.headers["content-type"] == "application/problem+json"
    assert f"transfer syntax {JPEG_BASELINE} cannot be produced" in refused.json()["detail"]

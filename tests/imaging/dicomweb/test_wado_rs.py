"""WADO-RS (PS3.18 10.4) as a viewer sees it: instances, metadata, bulk data, frames, rendered
images and thumbnails."""

from __future__ import annotations

import hashlib
import io

import numpy as np
import pydicom
import pytest
import requests
from PIL import Image
from pydicom.encaps import generate_frames

from .clients import multipart_parts, uids


def test_retrieve_study_series_and_instance_give_the_original_bytes(live, metz, samples):
    path = samples["jpeg"]
    study, series, instance = uids(path)
    for retrieved in (
        metz.retrieve_study(study),
        metz.retrieve_series(study, series),
        [metz.retrieve_instance(study, series, instance)],
    ):
        (ds,) = retrieved
        assert ds.SOPInstanceUID == instance
        assert ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.4.50"
    response = metz._http_get(
        f"{live.url}/dicomweb/studies/{study}/series/{series}/instances/{instance}",
        headers={"Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'},
    )
    ((content_type, body),) = multipart_parts(response)
    assert body == path.read_bytes()
    assert "transfer-syntax=1.2.840.10008.1.2.4.50" in content_type
    # Sizes known from the index: the body goes with its length, not chunked.
    assert int(response.headers["content-length"]) == len(response.content)
    assert "transfer-encoding" not in response.headers


def test_metadata_points_to_bulk_data_that_can_be_retrieved(metz, samples):
    path = samples["ct"]
    study, series, instance = uids(path)
    metadata = metz.retrieve_instance_metadata(study, series, instance)
    pixel = metadata["7FE00010"]
    assert "Value" not in pixel and "InlineBinary" not in pixel
    uri = pixel["BulkDataURI"]
    assert uri.endswith(f"/instances/{instance}/bulkdata/7FE00010")
    data = metz.retrieve_bulkdata(uri)
    assert data[0] == pydicom.dcmread(path).PixelData
    assert metz.retrieve_series_metadata(study, series)[0]["00080018"]["Value"] == [instance]
    assert metz.retrieve_study_metadata(study)[0]["00080018"]["Value"] == [instance]


def test_metadata_is_derived_once_and_served_from_the_cache(metz, samples, live):
    path = samples["ct"]
    study, series, instance = uids(path)
    first = metz.retrieve_instance_metadata(study, series, instance)
    (cached,) = (live.images / "cache" / "metadata").rglob(
        hashlib.sha256(path.read_bytes()).hexdigest()
    )
    # The cache holds the DICOM JSON with a stand-in for the server's address, filled in per
    # response; a second answer from the cache is the same as the first.
    assert live.url not in cached.read_text() and "\\u0000BASE\\u0000" in cached.read_text()
    assert metz.retrieve_instance_metadata(study, series, instance) == first
    assert first["7FE00010"]["BulkDataURI"].startswith(f"{live.url}/dicomweb/studies/{study}")


def test_big_endian_bulk_data_and_frames_come_little_endian(metz, samples):
    path = samples["bigendian"]
    study, series, instance = uids(path)
    original = pydicom.dcmread(path)
    native = original.pixel_array.astype("<u2").tobytes()
    metadata = metz.retrieve_instance_metadata(study, series, instance)
    assert metz.retrieve_bulkdata(metadata["7FE00010"]["BulkDataURI"])[0] == native
    (frame,) = metz.retrieve_instance_frames(study, series, instance, [1])
    assert frame == native


def test_frames_as_stored_or_decoded(metz, samples):
    path = samples["multiframe"]
    study, series, instance = uids(path)
    original = pydicom.dcmread(path)
    stored = list(generate_frames(original.PixelData, number_of_frames=30))
    as_stored = metz.retrieve_instance_frames(
        study,
        series,
        instance,
        [2, 30],
        media_types=(("image/jpeg", "1.2.840.10008.1.2.4.50"),),
    )
    assert as_stored == [stored[1], stored[29]]
    decoded = metz.retrieve_instance_frames(
        study,
        series,
        instance,
        [3],
        media_types=(("application/octet-stream", "1.2.840.10008.1.2.1"),),
    )
    assert len(decoded[0]) == 240 * 320 * 3


def test_frames_of_a_generated_multiframe_cine(live, metz, xa_cine):
    metz.store_instances([pydicom.dcmread(xa_cine)])
    study, series, instance = uids(xa_cine)
    original = pydicom.dcmread(xa_cine)
    frames = metz.retrieve_instance_frames(study, series, instance, [1, 15])
    assert frames == [original.pixel_array[0].tobytes(), original.pixel_array[14].tobytes()]
    with pytest.raises(requests.HTTPError) as beyond:
        metz.retrieve_instance_frames(study, series, instance, [31])
    assert beyond.value.response.status_code == 400


def test_rendered_and_thumbnail_honour_window_viewport_and_media_type(live, metz, samples):
    study, series, instance = uids(samples["ct"])
    jpeg = metz.retrieve_instance_rendered(study, series, instance, media_types=("image/jpeg",))
    assert jpeg[:2] == b"\xff\xd8"
    png = metz.retrieve_instance_rendered(
        study,
        series,
        instance,
        media_types=("image/png",),
        params={"window": "40,400", "viewport": "64,64"},
    )
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert Image.open(io.BytesIO(png)).size == (64, 64)
    narrow = metz.retrieve_instance_rendered(
        study, series, instance, media_types=("image/png",), params={"window": "40,1"}
    )
    assert narrow != metz.retrieve_instance_rendered(
        study, series, instance, media_types=("image/png",), params={"window": "40,4000"}
    )
    frame = metz.retrieve_instance_frames_rendered(
        study, series, instance, [1], media_types=("image/png",)
    )
    assert Image.open(io.BytesIO(frame)).size == (128, 128)
    base = f"{live.url}/dicomweb/studies/{study}"
    for url in (
        f"{base}/thumbnail",
        f"{base}/series/{series}/thumbnail",
        f"{base}/series/{series}/instances/{instance}/thumbnail",
    ):
        thumb = metz._http_get(url, headers={"Accept": "image/png"})
        assert thumb.headers["content-type"] == "image/png"
        assert max(Image.open(io.BytesIO(thumb.content)).size) <= 128
    bad = metz._session.get(f"{base}/series/{series}/instances/{instance}/rendered?window=x")
    assert bad.status_code == 400


def test_native_frame_of_a_generated_ct_matches_its_pixels(metz, accented):
    ds = accented[0]
    (frame,) = metz.retrieve_instance_frames(
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID, [1]
    )
    assert np.array_equal(np.frombuffer(frame, dtype="<u2").reshape(32, 32), ds.pixel_array)


def test_a_lossy_transfer_syntax_and_xml_results_are_not_acceptable(live, metz, samples):
    # Decompression is offered (see test_transcoding.py); lossy compression is not.
    study, series, instance = uids(samples["ct"])
    url = f"{live.url}/dicomweb/studies/{study}/series/{series}/instances/{instance}"
    lossy = 'multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.4.50'
    refused = metz._session.get(url, headers={"Accept": lossy})
    assert refused.status_code == 406
    assert "never to a lossy syntax" in refused.json()["detail"]
    xml = metz._session.get(
        f"{live.url}/dicomweb/studies", headers={"Accept": "application/dicom+xml"}
    )
    assert xml.status_code == 406


def test_a_path_segment_must_be_one_uid(live, metz):
    for bad in ("1.2.3\\4.5.6", "1.2.*", "not-a-uid"):
        response = metz._session.get(f"{live.url}/dicomweb/studies/{bad}/metadata")
        assert response.status_code == 400, bad
        assert response.headers["content-type"] == "application/problem+json"


def test_any_media_type_gets_the_default_representation(live, metz, samples):
    study, series, instance = uids(samples["ct"])
    url = f"{live.url}/dicomweb/studies/{study}/series/{series}/instances/{instance}"
    response = metz._session.get(url, headers={"Accept": "*/*"})
    ((content_type, body),) = multipart_parts(response)
    assert content_type.startswith("application/dicom")
    assert body == samples["ct"].read_bytes()

"""DICOMweb (PS3.18) as a viewer or a modality sees it: the real ``dicomweb_client`` against a
live ``concilium serve``."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
import requests
from dicomweb_client import DICOMwebClient
from fastapi.testclient import TestClient
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.encaps import generate_frames

from concilium.config import Settings
from concilium.imaging.matching import fuzzy_name_match
from concilium.imaging.synthetic import SyntheticPatient, SyntheticStudy, generate_ct_series
from concilium.web.app import create_app

from .dicomweb_server import LiveArchive, start_live_archive

REFERENCED = "ReferencedSOPSequence"
FAILED = "FailedSOPSequence"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveArchive]:
    yield from start_live_archive(tmp_path_factory.mktemp("dicomweb"))


@pytest.fixture(scope="module")
def metz(live: LiveArchive) -> DICOMwebClient:
    return live.client(live.metz_token)


@pytest.fixture(scope="module")
def briey(live: LiveArchive) -> DICOMwebClient:
    return live.client(live.briey_token)


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


# --------------------------------------------------------------------------------------------
# STOW-RS


def test_stow_stores_a_generated_ct_and_answers_with_retrieve_urls(live, metz, tmp_path):
    paths = ct(tmp_path, "stow-ct")
    before = live.stored_files()
    response = metz.store_instances(read(paths))
    assert live.statuses[-1] == 200
    referenced = response[REFERENCED].value
    assert len(referenced) == 4
    assert FAILED not in response
    originals = read(paths)
    assert {r.ReferencedSOPInstanceUID for r in referenced} == {d.SOPInstanceUID for d in originals}
    study_uid = originals[0].StudyInstanceUID
    assert response.RetrieveURL.endswith(f"/dicomweb/studies/{study_uid}")
    assert all("/instances/" in r.RetrieveURL for r in referenced)
    assert live.stored_files() == before + 4


def test_stow_of_a_fifty_instance_batch(live, metz, tmp_path):
    paths = ct(tmp_path, "stow-fifty", count=50)
    response = metz.store_instances(read(paths))
    assert len(response[REFERENCED].value) == 50
    study_uid = pydicom.dcmread(paths[0]).StudyInstanceUID
    (study,) = metz.search_for_studies(search_filters={"StudyInstanceUID": study_uid})
    assert value(study, "00201208") == 50  # NumberOfStudyRelatedInstances


def test_stow_partial_failure_names_the_failed_instance_and_stores_nothing_of_it(
    live, metz, tmp_path
):
    good, bad = read(ct(tmp_path, "stow-partial", count=2))
    bad.SOPClassUID = "1.2.826.0.1.3680043.8.498.1"  # not a storage SOP class
    bad.file_meta.MediaStorageSOPClassUID = bad.SOPClassUID
    before = live.stored_files()
    response = metz.store_instances([good, bad])
    # PS3.18 10.5.3: some stored and some failed is 202; 409 is for "unable to store any".
    assert live.statuses[-1] == 202
    assert [r.ReferencedSOPInstanceUID for r in response[REFERENCED].value] == [good.SOPInstanceUID]
    (failed,) = response[FAILED].value
    assert failed.ReferencedSOPInstanceUID == bad.SOPInstanceUID
    assert failed.FailureReason == 0x0122
    assert live.stored_files() == before + 1
    found = metz.search_for_instances(
        study_instance_uid=good.StudyInstanceUID, search_filters={"SOPInstanceUID": "*"}
    )
    assert [value(i, "00080018") for i in found] == [good.SOPInstanceUID]
    with pytest.raises(requests.HTTPError) as missing:
        metz.retrieve_instance(good.StudyInstanceUID, bad.SeriesInstanceUID, bad.SOPInstanceUID)
    assert missing.value.response.status_code == 404


def test_stow_complete_failure_is_409_with_failure_reasons(live, metz, tmp_path):
    (bad,) = read(ct(tmp_path, "stow-none", count=1))
    bad.SOPClassUID = "1.2.826.0.1.3680043.8.498.1"
    bad.file_meta.MediaStorageSOPClassUID = bad.SOPClassUID
    before = live.stored_files()
    with pytest.raises(requests.HTTPError) as refused:
        metz.store_instances([bad])
    response = refused.value.response
    assert response.status_code == 409
    body = Dataset.from_json(response.json())
    assert body[FAILED].value[0].FailureReason == 0x0122
    assert REFERENCED not in body or not body[REFERENCED].value
    assert live.stored_files() == before


def test_stow_to_a_study_refuses_instances_of_another_study(live, metz, tmp_path):
    (other,) = read(ct(tmp_path, "stow-other-study", count=1))
    target = "1.2.826.0.1.3680043.8.498.99"
    with pytest.raises(requests.HTTPError) as refused:
        metz.store_instances([other], study_instance_uid=target)
    response = refused.value.response
    assert response.status_code == 409
    item = Dataset.from_json(response.json())[FAILED].value[0]
    assert item.ReferencedSOPInstanceUID == other.SOPInstanceUID
    assert item.FailureReason == 0xA900
    assert (
        metz.search_for_studies(search_filters={"StudyInstanceUID": other.StudyInstanceUID}) == []
    )


def test_stow_answers_415_to_a_wrong_media_type_and_400_to_a_broken_body(live, metz):
    url = f"{live.url}/dicomweb/studies"
    wrong = metz._session.post(url, data=b"{}", headers={"Content-Type": "application/json"})
    assert wrong.status_code == 415
    assert wrong.headers["content-type"] == "application/problem+json"
    xml_parts = metz._session.post(
        url,
        data=b"--b\r\n\r\nx\r\n--b--\r\n",
        headers={"Content-Type": 'multipart/related; type="application/dicom+xml"; boundary=b'},
    )
    assert xml_parts.status_code == 415
    before = live.stored_files()
    broken = metz._session.post(
        url,
        data=b"--b\r\nContent-Type: application/dicom\r\n\r\nnever closed",
        headers={"Content-Type": 'multipart/related; type="application/dicom"; boundary=b'},
    )
    assert broken.status_code == 400
    assert live.stored_files() == before


def test_stow_of_a_body_broken_after_whole_parts_stores_none_of_them(live, metz, tmp_path):
    paths = ct(tmp_path, "stow-broken-late", count=3)
    head = b"--b\r\nContent-Type: application/dicom\r\n\r\n"
    body = b"".join(head + p.read_bytes() + b"\r\n" for p in paths) + head + b"cut short"
    before = live.stored_files()
    broken = metz._session.post(
        f"{live.url}/dicomweb/studies",
        data=body,
        headers={"Content-Type": 'multipart/related; type="application/dicom"; boundary=b'},
    )
    assert broken.status_code == 400
    assert live.stored_files() == before
    assert list((live.images / "tmp").iterdir()) == []  # the parts received are gone too
    study_uid = pydicom.dcmread(paths[0]).StudyInstanceUID
    assert metz.search_for_studies(search_filters={"StudyInstanceUID": study_uid}) == []


def test_stow_leaves_one_audit_entry_per_study_it_stored_in(live, metz, tmp_path):
    first = ct(tmp_path / "a", "stow-audit-a", count=3)
    second = ct(tmp_path / "b", "stow-audit-b", count=2)
    stores = live.audit_count("study.store")
    response = metz.store_instances(read(first + second))
    assert len(response[REFERENCED].value) == 5
    assert live.audit_count("study.store") == stores + 2


def test_stow_needs_the_write_scope(live, tmp_path):
    read_only = live.client(live.token(live.metz_user, "imaging:read"))
    (instance,) = read(ct(tmp_path, "stow-scope", count=1))
    with pytest.raises(requests.HTTPError) as refused:
        read_only.store_instances([instance])
    assert refused.value.response.status_code == 403
    assert read_only.search_for_studies(search_filters={"PatientID": "none"}) == []


# --------------------------------------------------------------------------------------------
# QIDO-RS


@pytest.fixture(scope="module")
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


def test_qido_matches_by_keyword_or_tag_with_wildcards(metz, accented):
    uid = accented[0].StudyInstanceUID
    by_keyword = metz.search_for_studies(search_filters={"PatientID": "MTZ-QIDO-1"})
    by_tag = metz.search_for_studies(search_filters={"00100020": "MTZ-QIDO-*"})
    assert [value(s, "0020000D") for s in by_keyword] == [uid]
    assert [value(s, "0020000D") for s in by_tag] == [uid]
    assert metz.search_for_studies(search_filters={"PatientID": "MTZ-QIDO-2"}) == []
    (study,) = by_keyword
    assert value(study, "00100010") == {"Alphabetic": "MÜLLER^ZOÉ"}
    assert value(study, "00201206") == 1  # NumberOfStudyRelatedSeries
    assert value(study, "00081190").endswith(f"/dicomweb/studies/{uid}")  # RetrieveURL


def test_qido_fuzzy_matching_ignores_case_and_accents(metz, accented):
    uid = accented[0].StudyInstanceUID
    plain = {"PatientName": "muller^zoe"}
    assert metz.search_for_studies(search_filters=plain) == []
    fuzzy = metz.search_for_studies(fuzzymatching=True, search_filters=plain)
    assert [value(s, "0020000D") for s in fuzzy] == [uid]
    prefix = metz.search_for_studies(fuzzymatching=True, search_filters={"PatientName": "mull"})
    assert [value(s, "0020000D") for s in prefix] == [uid]


def test_fuzzy_name_matching_rules():
    assert fuzzy_name_match("muller^zoe", "MÜLLER^ZOÉ")
    assert fuzzy_name_match("m*ller", "Müller^Zoé") is False  # wildcards cover the whole name
    assert fuzzy_name_match("m*ller*", "Müller^Zoé")
    assert not fuzzy_name_match("martin", "Müller^Zoé")
    assert not fuzzy_name_match("muller^anne", "Müller^Zoé")


def test_qido_date_ranges(metz, accented):
    uid = accented[0].StudyInstanceUID
    inside = metz.search_for_studies(
        search_filters={"StudyDate": "20261101-20261130", "PatientID": "MTZ-QIDO-1"}
    )
    assert [value(s, "0020000D") for s in inside] == [uid]
    open_ended = metz.search_for_studies(
        search_filters={"StudyDate": "20261120-", "PatientID": "MTZ-QIDO-1"}
    )
    assert len(open_ended) == 1
    outside = metz.search_for_studies(
        search_filters={"StudyDate": "20250101-20250131", "PatientID": "MTZ-QIDO-1"}
    )
    assert outside == []
    times = metz.search_for_studies(
        search_filters={"StudyTime": "0800-0900", "PatientID": "MTZ-QIDO-1"}
    )
    assert len(times) == 1


def test_qido_includefield_and_all(metz, accented):
    filters = {"PatientID": "MTZ-QIDO-1"}
    (default,) = metz.search_for_studies(search_filters=filters)
    assert "00080080" not in default  # InstitutionName is not a default attribute
    (one,) = metz.search_for_studies(search_filters=filters, fields=["InstitutionName"])
    assert value(one, "00080080") == "Concilium General Hospital"
    (everything,) = metz.search_for_studies(search_filters=filters, fields=["all"])
    assert value(everything, "00080080") == "Concilium General Hospital"
    assert value(everything, "00080062") == "1.2.840.10008.5.1.4.1.1.2"  # SOPClassesInStudy


def test_qido_series_and_instances_at_every_resource(metz, accented):
    uid = accented[0].StudyInstanceUID
    series_uid = accented[0].SeriesInstanceUID
    (series,) = metz.search_for_series(study_instance_uid=uid)
    assert value(series, "0020000E") == series_uid
    assert value(series, "00080060") == "CT"
    assert value(series, "00201209") == 4  # NumberOfSeriesRelatedInstances
    everywhere = metz.search_for_series(search_filters={"PatientID": "MTZ-QIDO-1"})
    assert [value(s, "0020000E") for s in everywhere] == [series_uid]
    in_series = metz.search_for_instances(study_instance_uid=uid, series_instance_uid=series_uid)
    in_study = metz.search_for_instances(study_instance_uid=uid)
    anywhere = metz.search_for_instances(search_filters={"PatientID": "MTZ-QIDO-1"})
    expected = sorted(d.SOPInstanceUID for d in accented)
    for found in (in_series, in_study, anywhere):
        assert sorted(value(i, "00080018") for i in found) == expected
    assert value(in_series[0], "00280010") == 32  # Rows


def test_qido_limit_and_offset_page_through_results(live, metz, accented):
    uid = accented[0].StudyInstanceUID
    every = [value(i, "00080018") for i in metz.search_for_instances(study_instance_uid=uid)]
    page = metz.search_for_instances(study_instance_uid=uid, limit=2, offset=1)
    assert [value(i, "00080018") for i in page] == every[1:3]
    response = metz._session.get(
        f"{live.url}/dicomweb/studies/{uid}/instances", params={"limit": 1}
    )
    assert "additional results" in response.headers["warning"]
    assert response.headers["content-type"] == "application/dicom+json"
    last = metz._session.get(
        f"{live.url}/dicomweb/studies/{uid}/instances",
        params={"limit": 1, "offset": len(every) - 1},
    )
    assert [value(i, "00080018") for i in last.json()] == every[-1:]
    assert "warning" not in last.headers


def test_qido_refuses_an_unknown_attribute(live, metz):
    response = metz._session.get(f"{live.url}/dicomweb/studies", params={"NoSuchThing": "1"})
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"


# --------------------------------------------------------------------------------------------
# WADO-RS and WADO-URI


@pytest.fixture(scope="module")
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


def uids(path: Path) -> tuple[str, str, str]:
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    return ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID


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


def test_wado_uri_gives_the_object_or_a_rendered_image(live, metz, samples):
    path = samples["ct"]
    study, series, instance = uids(path)
    params = {"requestType": "WADO", "studyUID": study, "seriesUID": series, "objectUID": instance}
    dicom = metz._http_get(
        f"{live.url}/wado", params={**params, "contentType": "application/dicom"}
    )
    assert dicom.content == path.read_bytes()
    image = metz._http_get(f"{live.url}/wado", params={**params, "rows": "50"})
    assert image.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(image.content)).size == (50, 50)
    missing = metz._session.get(f"{live.url}/wado", params={"requestType": "WADO"})
    assert missing.status_code == 400


# --------------------------------------------------------------------------------------------
# Access control and audit


def test_another_sites_study_is_invisible_until_shared(live, metz, briey, tmp_path):
    paths = ct(tmp_path, "metz-private", count=2, patient_id="MTZ-PRIVATE")
    metz.store_instances(read(paths))
    study, series, instance = uids(paths[0])
    assert briey.search_for_studies(search_filters={"StudyInstanceUID": study}) == []
    assert briey.search_for_instances(study_instance_uid=study) == []
    assert briey.search_for_series(search_filters={"PatientID": "MTZ-PRIVATE"}) == []
    for attempt in (
        lambda: briey.retrieve_study(study),
        lambda: briey.retrieve_instance_metadata(study, series, instance),
        lambda: briey.retrieve_instance_frames(study, series, instance, [1]),
        lambda: briey.retrieve_instance_rendered(study, series, instance),
    ):
        with pytest.raises(requests.HTTPError) as hidden:
            attempt()
        assert hidden.value.response.status_code == 404
    # Briey cannot slip an instance into the Metz study either.
    (intruder,) = read(ct(tmp_path / "x", "metz-private", count=1))
    intruder.SOPInstanceUID = intruder.file_meta.MediaStorageSOPInstanceUID = "2.25.1234567"
    with pytest.raises(requests.HTTPError) as refused:
        briey.store_instances([intruder])
    assert refused.value.response.status_code == 403

    live.share_study_with_briey(study)
    (found,) = briey.search_for_studies(search_filters={"StudyInstanceUID": study})
    assert value(found, "00100020") == "MTZ-PRIVATE"
    assert len(briey.retrieve_study(study)) == 2


def test_each_request_leaves_one_audit_entry(live, metz, tmp_path):
    paths = ct(tmp_path, "audited", count=3)
    metz.store_instances(read(paths))
    study = uids(paths[0])[0]
    queries, retrievals = live.audit_count("study.query"), live.audit_count("study.retrieve")
    metz.search_for_instances(study_instance_uid=study)
    assert live.audit_count("study.query") == queries + 1
    assert len(metz.retrieve_study(study)) == 3
    assert live.audit_count("study.retrieve") == retrievals + 1


def test_anonymous_callers_get_401(live):
    anonymous = DICOMwebClient(f"{live.url}/dicomweb")
    with pytest.raises(requests.HTTPError) as refused:
        anonymous.search_for_studies()
    assert refused.value.response.status_code == 401


# --------------------------------------------------------------------------------------------
# CORS


def test_cors_is_answered_for_configured_origins_on_dicomweb_only(tmp_path):
    settings = Settings(
        data_dir=tmp_path / "var",
        database_url=f"sqlite:///{tmp_path / 'cors.db'}",
        dicomweb_cors_origins=["https://viewer.example.org"],
    )
    preflight = {
        "Origin": "https://viewer.example.org",
        "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization",
    }
    with TestClient(create_app(settings)) as client:
        allowed = client.options("/dicomweb/studies", headers=preflight)
        assert allowed.headers["access-control-allow-origin"] == "https://viewer.example.org"
        other = client.options(
            "/dicomweb/studies", headers={**preflight, "Origin": "https://evil.example"}
        )
        assert "access-control-allow-origin" not in other.headers
        api = client.options("/api/v1/me", headers=preflight)
        assert "access-control-allow-origin" not in api.headers


def test_no_cors_by_default(tmp_path):
    settings = Settings(data_dir=tmp_path / "var", database_url=f"sqlite:///{tmp_path / 'c.db'}")
    with TestClient(create_app(settings)) as client:
        response = client.options(
            "/dicomweb/studies",
            headers={
                "Origin": "https://viewer.example.org",
                "Access-Control-Request-Method": "GET",
            },
        )
        assert "access-control-allow-origin" not in response.headers


def test_native_frame_of_a_generated_ct_matches_its_pixels(metz, accented):
    ds = accented[0]
    (frame,) = metz.retrieve_instance_frames(
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID, [1]
    )
    assert np.array_equal(np.frombuffer(frame, dtype="<u2").reshape(32, 32), ds.pixel_array)


def test_stow_of_a_duplicate_with_other_bytes_is_a_warning(live, metz, tmp_path):
    (first,) = read(ct(tmp_path, "stow-duplicate", count=1))
    metz.store_instances([first])
    assert live.statuses[-1] == 200
    first.SeriesDescription = "changed after sending"
    response = metz.store_instances([first])
    assert live.statuses[-1] == 202
    (kept,) = response[REFERENCED].value
    assert kept.WarningReason == 0xB006  # the stored instance was kept (duplicate policy)


def test_stow_over_the_size_limit_is_413_and_stores_nothing(client, world, runtime, tmp_path):
    """In process, on SQLite and PostgreSQL alike."""
    tech = world.user("metz-tech", (world.metz, "technologist"))
    token = world.token(tech, "imaging:write", "imaging:read")
    (path,) = ct(tmp_path, "stow-limit", count=1)
    body = b"--b\r\nContent-Type: application/dicom\r\n\r\n" + path.read_bytes() + b"\r\n--b--\r\n"
    headers = {
        "Authorization": f"Bearer {token}",
        "Content-Type": 'multipart/related; type="application/dicom"; boundary=b',
    }
    runtime.settings.dicomweb_max_stow_bytes = len(body) - 1
    refused = client.post("/dicomweb/studies", content=body, headers=headers)
    assert refused.status_code == 413
    objects = runtime.settings.data_dir / "images" / "objects"
    assert not [p for p in objects.rglob("*") if p.is_file()]
    runtime.settings.dicomweb_max_stow_bytes = len(body)
    stored = client.post("/dicomweb/studies", content=body, headers=headers)
    assert stored.status_code == 200, stored.text
    found = client.get("/dicomweb/studies", params={"PatientName": "doe^jane"}, headers=headers)
    assert [s["00100020"]["Value"] for s in found.json()] == [["CONC-000001"]]


def test_a_lossy_transfer_syntax_and_xml_results_are_not_acceptable(live, metz, samples):
    # Decompression is offered (tests/imaging/test_transcoding.py); lossy compression is not.
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


def test_qido_uid_list_matching(metz, accented, samples):
    wanted = [accented[0].StudyInstanceUID, uids(samples["ct"])[0]]
    found = metz.search_for_studies(search_filters={"StudyInstanceUID": ",".join(wanted)})
    assert sorted(value(s, "0020000D") for s in found) == sorted(wanted)


def test_a_signed_in_browser_uses_its_session_and_csrf_token(app, world, runtime, tmp_path):
    """In process, on SQLite and PostgreSQL alike: the viewer's own origin, no token."""
    tech = world.user("metz-viewer", (world.metz, "technologist"))
    browser = world.client(app)
    csrf = world.sign_in(browser, tech)
    (path,) = ct(tmp_path, "stow-session", count=1, patient_id="MTZ-SESSION")
    body = b"--b\r\nContent-Type: application/dicom\r\n\r\n" + path.read_bytes() + b"\r\n--b--\r\n"
    content_type = {"Content-Type": 'multipart/related; type="application/dicom"; boundary=b'}
    without = browser.post("/dicomweb/studies", content=body, headers=content_type)
    assert without.status_code == 403
    stored = browser.post(
        "/dicomweb/studies", content=body, headers={**content_type, "X-CSRF-Token": csrf}
    )
    assert stored.status_code == 200, stored.text
    found = browser.get("/dicomweb/studies", params={"PatientID": "MTZ-SESSION"})
    assert found.status_code == 200
    assert [s["00100020"]["Value"] for s in found.json()] == [["MTZ-SESSION"]]

"""STOW-RS (PS3.18 10.5) as a modality or a viewer sees it: the real ``dicomweb_client``
against a live ``concilium serve``."""

from __future__ import annotations

import pydicom
import pytest
import requests
from pydicom.dataset import Dataset

from .clients import FAILED, REFERENCED, ct, read, value


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


def test_stow_answers_400_to_a_boundary_outside_ascii(live, metz):
    # Found by fuzz/stow_multipart.py: the boundary was encoded as ASCII only once the body
    # was read, and a Latin-1 character in it escaped as a UnicodeEncodeError (a 500).
    before = live.stored_files()
    response = metz._session.post(
        f"{live.url}/dicomweb/studies",
        data=b"--fuzz-\xcedary\r\nContent-Type: application/dicom\r\n\r\nx\r\n"
        b"--fuzz-\xcedary--\r\n",
        headers={
            "Content-Type": 'multipart/related; type="application/dicom"; boundary=fuzz-\xcedary'
        },
    )
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert "boundary" in response.json()["detail"]
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
    # the parts received are gone too
    assert [p for p in (live.images / "tmp").rglob("*") if p.is_file()] == []
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

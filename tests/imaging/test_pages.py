"""The archive's pages as a person uses them: search, study page, sharing, rejection,
deletion, the teaching export and the administration of DICOM nodes."""

from __future__ import annotations

import datetime as dt
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pydicom
import pytest

from concilium.imaging import nodes
from concilium.imaging.archive import Archive, statistics
from concilium.imaging.export import stored_instances
from concilium.imaging.ingest import Sender, ingest_instance
from concilium.imaging.synthetic import SyntheticPatient, SyntheticStudy, generate_ct_series
from concilium.platform import audit
from concilium.platform.policy import Principal
from concilium.platform.tables import AuditEvent, Share


def store(world: Any, site: Any, tmp: Path, seed: str, count: int = 3, **study: Any) -> str:
    """Ingest a small generated CT study as a technologist of ``site``; its Study UID."""
    rt = world.runtime
    patient = study.pop("patient", SyntheticPatient())
    synthetic = SyntheticStudy(seed, patient, **study)
    paths = generate_ct_series(tmp / seed, count, study=synthetic, rows=32, columns=32)
    archive = Archive(rt.settings.data_dir / "images", rt.sessions, rt.bus, clock=rt.now)
    principal = Principal(0, "modality", {site.id: frozenset({"technologist"})})
    sender = Sender(principal, audit.Actor(None, "modality"), site.id)
    for path in paths:
        ingest_instance(archive, sender, [path.read_bytes()])
    return synthetic.study_instance_uid


@pytest.fixture
def studies(world: Any, tmp_path: Path) -> dict[str, str]:
    return {
        "doe": store(
            world,
            world.metz,
            tmp_path,
            "pages-doe",
            patient=SyntheticPatient("DOE^JANE", "MTZ-100"),
            study_date=dt.date(2026, 3, 1),
            accession_number="ACC-DOE",
        ),
        "martin": store(
            world,
            world.metz,
            tmp_path,
            "pages-martin",
            patient=SyntheticPatient("MARTIN^PAUL", "MTZ-200"),
            study_date=dt.date(2026, 6, 15),
            accession_number="ACC-MARTIN",
        ),
        "briey": store(
            world,
            world.briey,
            tmp_path,
            "pages-briey",
            patient=SyntheticPatient("BRIEYONLY^ANNE", "BRY-1"),
            accession_number="ACC-BRY",
        ),
    }


def signed_in(world: Any, app: Any, username: str, *roles: tuple[Any, str]) -> Any:
    user = world.user(username, *roles, with_totp=True)
    browser = world.client(app)
    browser.headers["x-csrf-token"] = world.sign_in(browser, user)
    browser.user = user
    return browser


def names_listed(page: str) -> set[str]:
    return {n for n in ("DOE JANE", "MARTIN PAUL", "BRIEYONLY ANNE") if n in page}


def test_the_list_shows_own_site_studies_and_searches_them(app, world, studies):
    radiologist = signed_in(world, app, "metz-radio", (world.metz, "radiologist"))
    page = radiologist.get("/imaging")
    assert page.status_code == 200
    assert names_listed(page.text) == {"DOE JANE", "MARTIN PAUL"}
    assert f'href="/imaging/studies/{studies["doe"]}"' in page.text
    assert '<a href="/imaging" aria-current="page">Imaging</a>' in page.text

    def found(**params: str) -> set[str]:
        response = radiologist.get("/imaging", params=params)
        assert response.status_code == 200, response.text
        return names_listed(response.text)

    assert found(patient_name="mar") == {"MARTIN PAUL"}  # prefix, case folded
    assert found(patient_name="*JANE") == {"DOE JANE"}  # wildcard
    assert found(patient_id="MTZ-100") == {"DOE JANE"}
    assert found(accession="ACC-MARTIN") == {"MARTIN PAUL"}
    assert found(date_from="2026-05-01") == {"MARTIN PAUL"}
    assert found(date_to="2026-05-01") == {"DOE JANE"}
    assert found(date_from="2026-03-01", date_to="2026-03-01") == {"DOE JANE"}
    assert found(modality="ct") == {"DOE JANE", "MARTIN PAUL"}
    assert found(modality="MR") == set()
    bad = radiologist.get("/imaging", params={"date_from": "2026-13-45"})
    assert bad.status_code == 422 and "YYYY-MM-DD" in bad.text


def test_the_list_is_paged(app, world, tmp_path, monkeypatch):
    from concilium.imaging import pages

    for i in range(3):
        store(world, world.metz, tmp_path, f"paged-{i}", count=1)
    monkeypatch.setattr(pages, "PAGE_SIZE", 2)
    radiologist = signed_in(world, app, "metz-radio", (world.metz, "radiologist"))
    first = radiologist.get("/imaging")
    assert first.text.count('href="/imaging/studies/') == 2
    assert 'rel="next"' in first.text and 'rel="prev"' not in first.text
    second = radiologist.get("/imaging", params={"page": 2})
    assert second.text.count('href="/imaging/studies/') == 1
    assert 'rel="next"' not in second.text and 'rel="prev"' in second.text


def test_the_study_page_shows_series_thumbnails_and_viewer_links(app, world, studies):
    radiologist = signed_in(world, app, "metz-radio", (world.metz, "radiologist"))
    uid = studies["doe"]
    page = radiologist.get(f"/imaging/studies/{uid}")
    assert page.status_code == 200
    text = page.text
    assert "DOE JANE" in text and "MTZ-100" in text and "ACC-DOE" in text
    assert f'href="/imaging/studies/{uid}/viewer"' in text
    assert f'href="/ohif/viewer?StudyInstanceUIDs={uid}"' in text
    assert "3 images" in text
    thumbnail = f"/dicomweb/studies/{uid}/series/"
    assert thumbnail in text
    src = text[text.index(thumbnail) :].split('"')[0]
    image = radiologist.get(src, headers={"accept": "image/jpeg"})
    assert image.status_code == 200 and image.headers["content-type"].startswith("image/")
    # A radiologist may share, not remove: the removal forms are not offered.
    assert "Share this study" in text and "Reject study" not in text


def test_another_site_sees_nothing_until_shared_then_loses_it_on_revocation(app, world, studies):
    uid = studies["doe"]
    metz = signed_in(world, app, "metz-radio", (world.metz, "radiologist"))
    briey = signed_in(world, app, "briey-radio", (world.briey, "radiologist"))
    assert names_listed(briey.get("/imaging").text) == {"BRIEYONLY ANNE"}
    assert briey.get(f"/imaging/studies/{uid}").status_code == 404
    assert briey.get(f"/imaging/studies/{uid}/teaching-export").status_code == 404
    # Briey may not share Metz's study, even knowing its UID.
    refused = briey.post(
        f"/imaging/studies/{uid}/shares",
        data={"to_site_id": str(world.briey.id), "expires_on": "2099-01-01"},
    )
    assert refused.status_code == 404

    expiry = (world.runtime.now() + dt.timedelta(days=3)).date().isoformat()
    shared = metz.post(
        f"/imaging/studies/{uid}/shares",
        data={"to_site_id": str(world.briey.id), "expires_on": expiry, "reason": "second opinion"},
    )
    assert shared.status_code == 303, shared.text
    assert names_listed(briey.get("/imaging").text) == {"BRIEYONLY ANNE", "DOE JANE"}
    page = briey.get(f"/imaging/studies/{uid}")
    assert page.status_code == 200 and "Shared with you by CHR Metz-Thionville" in page.text
    assert "Share this study" not in page.text  # a share to read is not a share to re-share

    with world.runtime.sessions() as db:
        share = db.query(Share).filter_by(resource_kind="study", resource_id=uid).one()
        created = db.query(AuditEvent).filter_by(action="share.create", object_id=uid).count()
    assert created == 1
    owner_page = metz.get(f"/imaging/studies/{uid}").text
    assert "CH Briey" in owner_page and "second opinion" in owner_page
    revoked = metz.post(f"/imaging/studies/{uid}/shares/{share.id}/revoke")
    assert revoked.status_code == 303
    assert names_listed(briey.get("/imaging").text) == {"BRIEYONLY ANNE"}
    assert briey.get(f"/imaging/studies/{uid}").status_code == 404
    with world.runtime.sessions() as db:
        assert db.query(AuditEvent).filter_by(action="share.revoke", object_id=uid).count() == 1


def test_a_share_to_one_person_and_its_expiry(app, world, studies, clock):
    uid = studies["martin"]
    metz = signed_in(world, app, "metz-radio", (world.metz, "radiologist"))
    expert = signed_in(world, app, "expert", (world.briey, "specialist"))
    colleague = signed_in(world, app, "colleague", (world.briey, "specialist"))
    tomorrow = (world.runtime.now() + dt.timedelta(days=1)).date().isoformat()
    shared = metz.post(
        f"/imaging/studies/{uid}/shares",
        data={"to_user_id": str(expert.user.id), "expires_on": tomorrow},
    )
    assert shared.status_code == 303, shared.text
    assert expert.get(f"/imaging/studies/{uid}").status_code == 200
    assert colleague.get(f"/imaging/studies/{uid}").status_code == 404
    clock.advance(days=2)
    again = world.client(app)  # the session ended meanwhile
    world.sign_in(again, expert.user)
    assert again.get(f"/imaging/studies/{uid}").status_code == 404


def test_bad_share_forms_are_shown_again_and_save_nothing(app, world, studies):
    uid = studies["doe"]
    metz = signed_in(world, app, "metz-radio", (world.metz, "radiologist"))
    past = metz.post(
        f"/imaging/studies/{uid}/shares",
        data={"to_site_id": str(world.briey.id), "expires_on": "2001-01-01"},
    )
    assert past.status_code == 422 and "expire in the future" in past.text
    both = metz.post(
        f"/imaging/studies/{uid}/shares",
        data={
            "to_site_id": str(world.briey.id),
            "to_user_id": str(metz.user.id),
            "expires_on": "2099-01-01",
        },
    )
    assert both.status_code == 422 and "exactly one" in both.text
    with world.runtime.sessions() as db:
        assert db.query(Share).filter_by(resource_id=uid).count() == 0


def test_an_administrator_rejects_a_study_with_a_reason(app, world, studies):
    uid = studies["doe"]
    radiologist = signed_in(world, app, "metz-radio", (world.metz, "radiologist"))
    refused = radiologist.post(f"/imaging/studies/{uid}/reject", data={"reason": "113001"})
    assert refused.status_code == 403
    # The administrator's role alone opens no images: rejecting one needs seeing it.
    alone = signed_in(world, app, "metz-it", (world.metz, "admin"))
    assert alone.get(f"/imaging/studies/{uid}").status_code == 404
    admin = signed_in(world, app, "metz-admin", (world.metz, "admin"), (world.metz, "radiologist"))
    page = admin.get(f"/imaging/studies/{uid}").text
    assert "Rejected for quality reasons" in page and "Delete study" in page
    bad = admin.post(f"/imaging/studies/{uid}/reject", data={"reason": "999"})
    assert bad.status_code == 422 and "rejection reason" in bad.text
    done = admin.post(f"/imaging/studies/{uid}/reject", data={"reason": "113001"})
    assert done.status_code == 303 and done.headers["location"] == "/imaging"
    assert names_listed(radiologist.get("/imaging").text) == {"MARTIN PAUL"}
    with world.runtime.sessions() as db:
        event = db.query(AuditEvent).filter_by(action="study.reject", object_id=uid).one()
        detail = json.loads(event.detail)
        assert detail["reason"] == "113001" and detail["instances"] == 3


def test_an_administrator_deletes_a_study_and_its_files(app, world, studies):
    uid = studies["martin"]
    admin = signed_in(world, app, "metz-admin", (world.metz, "admin"), (world.metz, "radiologist"))
    with world.runtime.sessions() as db:
        before = statistics(db, world.metz.id)
        files = [i.address for i in stored_instances(db, uid)]
    done = admin.post(f"/imaging/studies/{uid}/delete")
    assert done.status_code == 303, done.text
    assert admin.get(f"/imaging/studies/{uid}").status_code == 404
    store_root = world.runtime.settings.data_dir / "images"
    archive = Archive(store_root, world.runtime.sessions, world.runtime.bus)
    assert not any(archive.store.path_of(a).exists() for a in files)
    with world.runtime.sessions() as db:
        after = statistics(db, world.metz.id)
        assert db.query(AuditEvent).filter_by(action="study.delete", object_id=uid).count() == 1
    assert (before.studies - after.studies, before.instances - after.instances) == (1, 3)


def _export(client: Any, uid: str, **params: str) -> list[pydicom.Dataset]:
    response = client.get(f"/imaging/studies/{uid}/teaching-export", params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(response.content)) as zf:
        return [pydicom.dcmread(io.BytesIO(zf.read(name))) for name in sorted(zf.namelist())]


def test_the_teaching_export_is_de_identified_with_consistent_uids(app, world, studies):
    uid = studies["doe"]
    metz = signed_in(world, app, "metz-radio", (world.metz, "radiologist"))
    exported = _export(metz, uid)
    assert len(exported) == 3
    for ds in exported:
        assert "DOE" not in str(ds.PatientName) and ds.PatientID != "MTZ-100"
        assert ds.PatientIdentityRemoved == "YES"
        codes = [item.CodeValue for item in ds.DeidentificationMethodCodeSequence]
        assert codes == ["113100"]  # basic profile, dates removed
        assert not ds.get("StudyDate") and not ds.get("PatientBirthDate")
        assert ds.get("AccessionNumber", "") in ("", None) or ds.AccessionNumber != "ACC-DOE"
        assert "InstitutionName" not in ds or ds.InstitutionName != "Concilium General Hospital"
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    # One new Study UID and one new Series UID across the study; every SOP UID remapped.
    assert {ds.StudyInstanceUID for ds in exported} != {uid}
    assert len({ds.StudyInstanceUID for ds in exported}) == 1
    assert len({ds.SeriesInstanceUID for ds in exported}) == 1
    assert len({ds.FrameOfReferenceUID for ds in exported}) == 1
    with world.runtime.sessions() as db:
        originals = {i.sop_instance_uid for i in stored_instances(db, uid)}
        event = db.query(AuditEvent).filter_by(action="study.export", object_id=uid).one()
    assert not originals & {ds.SOPInstanceUID for ds in exported}
    detail = json.loads(event.detail)
    assert detail["instances"] == 3 and detail["temporal"] == "remove"
    # The pixel data is the study's own.
    assert exported[0].pixel_array.shape == (32, 32)


def test_the_teaching_export_can_retain_shifted_dates(app, world, studies):
    uid = studies["doe"]
    metz = signed_in(world, app, "metz-radio", (world.metz, "radiologist"))
    exported = _export(metz, uid, retain_dates="1")
    for ds in exported:
        codes = [item.CodeValue for item in ds.DeidentificationMethodCodeSequence]
        assert codes == ["113100", "113107"]
        assert ds.LongitudinalTemporalInformationModified == "MODIFIED"
        assert ds.StudyDate and ds.StudyDate != "20260301"
    # One shift for the whole study, into the past: intervals between its dates survive.
    shifted = {dt.datetime.strptime(ds.StudyDate, "%Y%m%d").date() for ds in exported}
    assert len(shifted) == 1
    assert 1 <= (dt.date(2026, 3, 1) - shifted.pop()).days <= 3650
    assert all(ds.SeriesDate == ds.StudyDate for ds in exported)


def test_the_node_registry_is_for_administrators_of_the_site(app, world, studies):
    radiologist = signed_in(world, app, "metz-radio", (world.metz, "radiologist"))
    assert radiologist.get("/admin/imaging/aes").status_code == 403
    admin = signed_in(world, app, "metz-admin", (world.metz, "admin"))
    assert '<a href="/admin/imaging/aes">DICOM nodes</a>' in admin.get("/").text
    page = admin.get("/admin/imaging/aes")
    assert page.status_code == 200 and "No node registered." in page.text
    # Storage: Metz holds two studies of three instances; Briey's is not this admin's.
    storage = page.text[page.text.index('id="storage"') :]
    assert (
        'CHR Metz-Thionville</td><td data-label="Studies">2</td><td data-label="Series">2</td>'
        '<td data-label="Instances">6</td>'
    ) in storage
    assert "CH Briey" not in storage

    added = admin.post(
        "/admin/imaging/aes",
        data={
            "ae_title": "MTZ_CT1",
            "host": "10.0.0.5",
            "port": "104",
            "site_id": str(world.metz.id),
            "allow_store": "1",
            "allow_query": "1",
        },
    )
    assert added.status_code == 303, added.text
    listed = admin.get("/admin/imaging/aes").text
    assert "MTZ_CT1" in listed and "10.0.0.5:104" in listed and "query/retrieve" in listed
    with world.runtime.sessions() as db:
        ae = nodes.remote_ae(db, "MTZ_CT1")
        assert ae is not None and ae.allow_store and ae.allow_query
        assert not ae.allow_move_destination

    duplicate = admin.post(
        "/admin/imaging/aes",
        data={"ae_title": "MTZ_CT1", "host": "h", "port": "104", "site_id": str(world.metz.id)},
    )
    assert duplicate.status_code == 409 and "already registered" in duplicate.text
    bad_port = admin.post(
        "/admin/imaging/aes",
        data={"ae_title": "X", "host": "h", "port": "70000", "site_id": str(world.metz.id)},
    )
    assert bad_port.status_code == 422 and 'value="X"' in bad_port.text
    elsewhere = admin.post(
        "/admin/imaging/aes",
        data={"ae_title": "BRY_CT", "host": "h", "port": "104", "site_id": str(world.briey.id)},
    )
    assert elsewhere.status_code == 403

    # Briey's administrator does not see Metz's node, and cannot remove it.
    briey_admin = signed_in(world, app, "briey-admin", (world.briey, "admin"))
    assert "MTZ_CT1" not in briey_admin.get("/admin/imaging/aes").text
    assert briey_admin.post("/admin/imaging/aes/MTZ_CT1/remove").status_code == 404
    removed = admin.post("/admin/imaging/aes/MTZ_CT1/remove")
    assert removed.status_code == 303
    with world.runtime.sessions() as db:
        assert nodes.remote_ae(db, "MTZ_CT1") is None
        actions = db.query(AuditEvent).filter_by(action="ae.manage", object_id="MTZ_CT1").count()
    assert actions == 2


def test_pages_of_the_archive_need_a_signed_in_reader(app, client, world, studies):
    assert client.get("/imaging").status_code == 303
    assert client.get(f"/imaging/studies/{studies['doe']}").headers["location"].startswith("/login")
    platform_admin = world.user("it", platform_admin=True, with_totp=True)
    browser = world.client(app)
    world.sign_in(browser, platform_admin)
    # Images are patient data: the platform administrator's office does not open them.
    assert browser.get("/imaging").status_code == 403
    assert browser.get("/admin/imaging/aes").status_code == 200


def test_an_administrator_has_a_node_called_over_tls_and_back(app, world):
    admin = signed_in(world, app, "metz-admin", (world.metz, "admin"))
    form = {"host": "10.0.0.9", "port": "104", "site_id": str(world.metz.id)}
    page = admin.get("/admin/imaging/aes").text
    assert 'name="tls"' in page and "call it over TLS" in page
    added = admin.post(
        "/admin/imaging/aes", data={**form, "ae_title": "MTZ_PACS", "tls": "1", "allow_store": ""}
    )
    assert added.status_code == 303, added.text
    assert admin.post("/admin/imaging/aes", data={**form, "ae_title": "MTZ_US"}).status_code == 303
    listed = admin.get("/admin/imaging/aes").text
    pacs_row = listed[listed.index("<code>MTZ_PACS</code>") : listed.index("<code>MTZ_US</code>")]
    assert '<span class="badge">TLS</span>' in pacs_row and "Use plain TCP" in pacs_row
    us_row = listed[listed.index("<code>MTZ_US</code>") :].split("</tr>")[0]
    assert "plain TCP" in us_row and "Use TLS" in us_row
    assert '<input type="hidden" name="tls" value="1">' in us_row

    def tls_of(title: str) -> bool:
        with world.runtime.sessions() as db:
            ae = nodes.remote_ae(db, title)
            assert ae is not None
            return ae.tls

    assert tls_of("MTZ_PACS") and not tls_of("MTZ_US")
    # The row's button sends the other state.
    assert admin.post("/admin/imaging/aes/MTZ_US/tls", data={"tls": "1"}).status_code == 303
    assert admin.post("/admin/imaging/aes/MTZ_PACS/tls", data={"tls": ""}).status_code == 303
    assert tls_of("MTZ_US") and not tls_of("MTZ_PACS")
    listed = admin.get("/admin/imaging/aes").text
    us_row = listed[listed.index("<code>MTZ_US</code>") :].split("</tr>")[0]
    assert '<span class="badge">TLS</span>' in us_row

    # Another site's administrator cannot change it, nor learn it exists.
    briey_admin = signed_in(world, app, "briey-admin", (world.briey, "admin"))
    assert briey_admin.post("/admin/imaging/aes/MTZ_US/tls", data={}).status_code == 404
    assert tls_of("MTZ_US")
    with world.runtime.sessions() as db:
        changes = [
            json.loads(e.detail)
            for e in db.query(AuditEvent).filter_by(action="ae.manage", object_id="MTZ_US")
        ]
    assert [c["tls"] for c in changes] == [False, True]


def test_the_pages_speak_french_with_plurals_and_french_days(app, world, tmp_path):
    one = store(world, world.metz, tmp_path, "fr-one", 1, study_date=dt.date(2026, 3, 1))
    store(world, world.metz, tmp_path, "fr-two", 2, patient=SyntheticPatient("MARTIN^PAUL"))
    radiologist = signed_in(world, app, "metz-radio", (world.metz, "radiologist"))
    radiologist.headers["accept-language"] = "fr"
    page = radiologist.get("/imaging").text
    assert "Examens d\u2019imagerie" in page and "Imaging studies" not in page
    assert "1 série, 1 image<" in page and "1 série, 2 images<" in page
    assert "01/03/2026" in page
    study = radiologist.get(f"/imaging/studies/{one}").text
    assert "1 mars 2026" in study and "Dossier pédagogique" in study
    assert "<p>1 image" in study and "<p>1 images" not in study
    radiologist.headers["accept-language"] = "en"
    page = radiologist.get("/imaging").text
    assert "1 series, 1 image<" in page and "1 series, 2 images<" in page

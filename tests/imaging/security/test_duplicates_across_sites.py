"""A duplicate SOP Instance UID never reaches across sites: one site cannot replace another's
instance under ``dicom_duplicate_policy=replace``, and the answer to a duplicate of another
site's instance names none of that site's studies or series (PS3.18 10.5.3, PS3.4 B.2.3)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest
from pynetdicom import AE
from pynetdicom.sop_class import CTImageStorage  # type: ignore[attr-defined]
from sqlalchemy import select

from concilium.imaging import ImagingProcess, nodes
from concilium.imaging.archive import DuplicatePolicy
from concilium.imaging.dimse import DicomServer, DimseSettings
from concilium.imaging.tables import ImagingInstance, ImagingSeries, ImagingStudy
from concilium.platform import audit
from concilium.platform.db import transaction
from concilium.web.context import process_of

from ..dicomweb.clients import ct

MULTIPART = 'multipart/related; type="application/dicom"; boundary=b'


def _body(*paths: Path) -> bytes:
    parts = b"".join(
        b"--b\r\nContent-Type: application/dicom\r\n\r\n" + p.read_bytes() + b"\r\n" for p in paths
    )
    return parts + b"--b--\r\n"


def _stow(client, token: str, path: Path):  # type: ignore[no-untyped-def]
    headers = {"Authorization": f"Bearer {token}", "Content-Type": MULTIPART}
    return client.post("/dicomweb/studies", content=_body(path), headers=headers)


def _where(runtime, sop_uid: str) -> tuple[str, str, int, str]:  # type: ignore[no-untyped-def]
    with transaction(runtime.sessions) as db:
        row = db.execute(
            select(
                ImagingStudy.study_instance_uid,
                ImagingSeries.series_instance_uid,
                ImagingStudy.site_id,
                ImagingInstance.address,
            )
            .join(ImagingSeries, ImagingSeries.study_id == ImagingStudy.id)
            .join(ImagingInstance, ImagingInstance.series_id == ImagingSeries.id)
            .where(ImagingInstance.sop_instance_uid == sop_uid)
        ).one()
        return row[0], row[1], row[2], row[3]


def _impostor(original: Path, tmp: Path) -> Path:
    """Briey's object reusing the SOP Instance UID of Metz's, in a study of its own."""
    ds = pydicom.dcmread(original)
    ds.StudyInstanceUID = pydicom.uid.generate_uid()
    ds.SeriesInstanceUID = pydicom.uid.generate_uid()
    ds.PatientName = "IMPOSTOR^BRIEY"
    out = tmp / "impostor.dcm"
    ds.save_as(out, enforce_file_format=True)
    return out


@pytest.fixture
def archive_of(app):  # type: ignore[no-untyped-def]
    archive = process_of(app, ImagingProcess).archive
    archive.duplicate_policy = DuplicatePolicy.REPLACE
    return archive


def test_stow_from_another_site_neither_replaces_nor_reveals_the_owners_instance(
    client, app, world, runtime, archive_of, tmp_path
):
    metz = world.token(world.user("metz-tech", (world.metz, "technologist")), "imaging:write")
    briey = world.token(world.user("briey-tech", (world.briey, "technologist")), "imaging:write")
    (original,) = ct(tmp_path, "dup-owner", count=1, patient_id="MTZ-DUP")
    assert _stow(client, metz, original).status_code == 200
    ds = pydicom.dcmread(original)
    before = _where(runtime, ds.SOPInstanceUID)

    answer = _stow(client, briey, _impostor(original, tmp_path))

    assert answer.status_code == 403, answer.text
    assert _where(runtime, ds.SOPInstanceUID) == before  # Metz's instance untouched
    assert ds.StudyInstanceUID not in answer.text
    assert ds.SeriesInstanceUID not in answer.text
    failed = answer.json()["00081198"]["Value"]
    assert [f["00081197"]["Value"] for f in failed] == [[0x0124]]

    # The same bytes again (an exact duplicate) reveal nothing either.
    again = _stow(client, briey, original)
    assert again.status_code == 403, again.text
    assert ds.StudyInstanceUID not in again.text and ds.SeriesInstanceUID not in again.text


def test_replace_still_works_within_the_owning_site(client, world, runtime, archive_of, tmp_path):
    metz = world.token(world.user("metz-tech", (world.metz, "technologist")), "imaging:write")
    (original,) = ct(tmp_path, "dup-same-site", count=1, patient_id="MTZ-DUP2")
    assert _stow(client, metz, original).status_code == 200
    ds = pydicom.dcmread(original)
    before = _where(runtime, ds.SOPInstanceUID)
    ds.SeriesDescription = "corrected"
    changed = tmp_path / "changed.dcm"
    ds.save_as(changed, enforce_file_format=True)
    assert _stow(client, metz, changed).status_code == 200
    after = _where(runtime, ds.SOPInstanceUID)
    assert after[:3] == before[:3] and after[3] != before[3]


@pytest.fixture
def listener(world, runtime, archive_of) -> Iterator[int]:  # type: ignore[no-untyped-def]
    with transaction(runtime.sessions) as db:
        nodes.add_remote_ae(
            db, audit.SYSTEM, ae_title="BRIEY_CT", host="127.0.0.1", port=104,
            site_id=world.briey.id, allow_store=True,
        )  # fmt: skip
    server = DicomServer(archive_of, DimseSettings(port=0, network_timeout=10))
    server.start()
    yield server.port
    server.stop()


def test_c_store_from_another_site_cannot_replace_the_owners_instance(
    client, world, runtime, listener, tmp_path
):
    metz = world.token(world.user("metz-tech", (world.metz, "technologist")), "imaging:write")
    (original,) = ct(tmp_path, "dup-dimse", count=1, patient_id="MTZ-DUP3")
    assert _stow(client, metz, original).status_code == 200
    uid = pydicom.dcmread(original).SOPInstanceUID
    before = _where(runtime, uid)

    ae = AE(ae_title="BRIEY_CT")
    ae.add_requested_context(CTImageStorage)
    assoc = ae.associate("127.0.0.1", listener, ae_title="CONCILIUM")
    assert assoc.is_established
    status = assoc.send_c_store(pydicom.dcmread(_impostor(original, tmp_path)))
    assoc.release()

    assert status.Status == 0x0124  # Refused: Not Authorized
    assert _where(runtime, uid) == before

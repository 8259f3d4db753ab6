"""Knowing a patient is no right to another hospital's data. A patient known at CH Briey and
at CHR Metz-Thionville: a Briey radiologist can neither share them with themselves nor with
Briey, and a share of the patient coming from Briey grants Briey's studies only, by QIDO-RS,
WADO-RS, C-FIND and C-GET. A share coming from Metz grants Metz's studies (the control)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset
from pynetdicom import AE, build_role, evt
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    CTImageStorage,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
)

from concilium.imaging import ImagingProcess, nodes
from concilium.imaging.dimse import DicomServer, DimseSettings
from concilium.platform import audit, patients
from concilium.platform.db import transaction
from concilium.platform.tables import Share
from concilium.web.context import process_of

from ..dicomweb.clients import ct

MULTIPART = 'multipart/related; type="application/dicom"; boundary=b'


def _stow(client, token: str, path: Path) -> None:  # type: ignore[no-untyped-def]
    body = b"--b\r\nContent-Type: application/dicom\r\n\r\n" + path.read_bytes() + b"\r\n--b--\r\n"
    headers = {"Authorization": f"Bearer {token}", "Content-Type": MULTIPART}
    assert client.post("/dicomweb/studies", content=body, headers=headers).status_code == 200


@pytest.fixture
def known_at_both(app, client, world, runtime, tmp_path):  # type: ignore[no-untyped-def]
    """The patient, Metz's study of them and Briey's."""
    with transaction(runtime.sessions) as db:
        who = patients.Demographics("MARTIN", "Paul", None, "M")
        patient = patients.create_patient(db, audit.SYSTEM, world.metz.id, "MTZ-77", who)
        patients.add_identifier(db, audit.SYSTEM, patient, world.briey.id, "BRY-77")
        patient_id = patient.id
    metz_tech = world.token(world.user("metz-tech", (world.metz, "technologist")), "imaging:write")
    briey_tech = world.token(
        world.user("briey-tech", (world.briey, "technologist")), "imaging:write"
    )
    (metz_file,) = ct(
        tmp_path / "m", "share-metz", count=1, patient_id="MTZ-77", name="MARTIN^PAUL"
    )
    (briey_file,) = ct(
        tmp_path / "b", "share-briey", count=1, patient_id="BRY-77", name="MARTIN^PAUL"
    )
    _stow(client, metz_tech, metz_file)
    _stow(client, briey_tech, briey_file)
    return patient_id, pydicom.dcmread(metz_file), pydicom.dcmread(briey_file)


@pytest.fixture
def briey_node(app, world, runtime) -> Iterator[int]:  # type: ignore[no-untyped-def]
    with transaction(runtime.sessions) as db:
        nodes.add_remote_ae(
            db, audit.SYSTEM, ae_title="BRIEY_WS", host="127.0.0.1", port=104,
            site_id=world.briey.id, allow_store=False, allow_query=True,
        )  # fmt: skip
    server = DicomServer(process_of(app, ImagingProcess).archive, DimseSettings(port=0))
    server.start()
    yield server.port
    server.stop()


def _dimse_sees(port: int, study_uid: str) -> tuple[int, int]:
    """(C-FIND matches, instances C-GET brings) of a study, as Briey's workstation."""
    got: list[Dataset] = []

    def on_store(event: evt.Event) -> int:
        got.append(event.dataset)
        return 0x0000

    ae = AE(ae_title="BRIEY_WS")
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelGet)
    ae.add_requested_context(CTImageStorage)
    assoc = ae.associate(
        "127.0.0.1", port, ae_title="CONCILIUM",
        ext_neg=[build_role(CTImageStorage, scp_role=True)],
        evt_handlers=[(evt.EVT_C_STORE, on_store)],
    )  # fmt: skip
    assert assoc.is_established
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.StudyInstanceUID = study_uid
    found = [
        s.Status
        for s, ident in assoc.send_c_find(query, StudyRootQueryRetrieveInformationModelFind)
        if ident is not None
    ]
    list(assoc.send_c_get(query, StudyRootQueryRetrieveInformationModelGet))
    assoc.release()
    return len(found), len(got)


def _web_sees(client, token: str, metz: Dataset) -> tuple[int, bool]:  # type: ignore[no-untyped-def]
    headers = {"Authorization": f"Bearer {token}"}
    qido = client.get("/dicomweb/studies", params={"PatientName": "MARTIN^PAUL"}, headers=headers)
    assert qido.status_code == 200
    uids = [s["0020000D"]["Value"][0] for s in qido.json()]
    wado = client.get(
        f"/dicomweb/studies/{metz.StudyInstanceUID}/metadata", headers=headers
    ).status_code
    assert wado in (200, 403, 404)
    return uids.count(metz.StudyInstanceUID), wado == 200


def test_a_briey_radiologist_gets_nothing_of_metz_by_sharing_a_patient_with_briey(
    app, client, world, runtime, known_at_both, briey_node
):
    patient_id, metz, briey = known_at_both
    radiologist = world.user("briey-rad", (world.briey, "radiologist"))
    token = world.token(radiologist, "imaging:read", "patients:write", "patients:read")
    headers = {"Authorization": f"Bearer {token}"}
    until = (runtime.now() + timedelta(days=7)).isoformat()
    url = f"/api/v1/patients/{patient_id}/shares"

    to_self = client.post(
        url, json={"to_user_id": radiologist.id, "expires_at": until}, headers=headers
    )
    to_briey = client.post(
        url, json={"to_site_id": world.briey.id, "expires_at": until}, headers=headers
    )
    assert to_self.status_code == 422, to_self.text
    assert to_briey.status_code == 422, to_briey.text
    assert to_self.headers["content-type"].startswith("application/problem+json")

    # Even a share of the patient coming from Briey, to the radiologist and to Briey (what
    # the refused requests asked for), grants Briey's studies and none of Metz's.
    now = runtime.now()
    with transaction(runtime.sessions) as db:
        for to in ({"to_user_id": radiologist.id}, {"to_site_id": world.briey.id}):
            share = Share(
                resource_kind="patient", resource_id=str(patient_id), from_site_id=world.briey.id,
                granted_by_id=radiologist.id, created_at=now, expires_at=now + timedelta(days=7),
            )  # fmt: skip
            share.to_user_id, share.to_site_id = to.get("to_user_id"), to.get("to_site_id")
            db.add(share)
    assert _web_sees(client, token, metz) == (0, False)
    assert _dimse_sees(briey_node, metz.StudyInstanceUID) == (0, 0)
    assert _dimse_sees(briey_node, briey.StudyInstanceUID) == (1, 1)

    # The control: Metz shares the patient with Briey, and Briey sees Metz's study.
    coordinator = world.user("metz-coord", (world.metz, "coordinator"))
    metz_token = world.token(coordinator, "patients:write", "patients:read")
    shared = client.post(
        url,
        json={"to_site_id": world.briey.id, "expires_at": until},
        headers={"Authorization": f"Bearer {metz_token}"},
    )
    assert shared.status_code == 201, shared.text
    assert _web_sees(client, token, metz) == (1, True)
    assert _dimse_sees(briey_node, metz.StudyInstanceUID) == (1, 1)

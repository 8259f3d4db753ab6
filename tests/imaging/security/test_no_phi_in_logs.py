"""No patient's name or birth date reaches the log, whatever the level: not through
pynetdicom's own logger (which dumps C-FIND identifiers), not through the SQL parameters of a
failing statement, not through the web side's requests and forms."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset
from pynetdicom import AE
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    CTImageStorage,
    StudyRootQueryRetrieveInformationModelFind,
)
from sqlalchemy import text

from concilium.imaging import ImagingProcess, nodes
from concilium.imaging.dimse import DicomServer, DimseSettings
from concilium.platform import audit
from concilium.platform.db import transaction
from concilium.web.context import process_of

from ..dicomweb.clients import ct

NAME = "ZYGMUNTOWICZ^ELODIE"
FAMILY = "ZYGMUNTOWICZ"
BIRTH = "19510417"


def _failing_statement(sessions) -> None:  # type: ignore[no-untyped-def]
    """What a database failure looks like: a statement carrying the patient's name fails."""
    with transaction(sessions) as db:
        db.execute(text("SELECT no_such_column FROM no_such_table WHERE n = :name"), {"name": NAME})


@pytest.fixture
def listener(app, world, runtime) -> Iterator[int]:  # type: ignore[no-untyped-def]
    with transaction(runtime.sessions) as db:
        nodes.add_remote_ae(
            db, audit.SYSTEM, ae_title="METZ_CT", host="127.0.0.1", port=104,
            site_id=world.metz.id, allow_store=True, allow_query=True,
        )  # fmt: skip
    server = DicomServer(process_of(app, ImagingProcess).archive, DimseSettings(port=0))
    server.start()
    yield server.port
    server.stop()


def _association(port: int):  # type: ignore[no-untyped-def]
    ae = AE(ae_title="METZ_CT")
    ae.add_requested_context(CTImageStorage)
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
    assoc = ae.associate("127.0.0.1", port, ae_title="CONCILIUM")
    assert assoc.is_established
    return assoc


def _query() -> Dataset:
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.PatientName = NAME
    query.PatientBirthDate = BIRTH
    query.StudyInstanceUID = ""
    return query


def test_dimse_and_web_leave_no_patient_name_in_the_log(
    app, client, world, runtime, listener, tmp_path: Path, caplog, monkeypatch
):
    caplog.set_level(logging.DEBUG)
    (path,) = ct(tmp_path, "phi-log", count=1, name=NAME, patient_id="MTZ-LOG", birth_date=BIRTH)
    ds = pydicom.dcmread(path)

    assoc = _association(listener)
    assert assoc.send_c_store(ds).Status == 0x0000
    found = [
        status.Status
        for status, _ in assoc.send_c_find(_query(), StudyRootQueryRetrieveInformationModelFind)
    ]
    assert found == [0xFF00, 0x0000]

    # A C-FIND and a C-STORE that fail in the database.
    import concilium.imaging.dimse as dimse

    sessions = runtime.sessions
    monkeypatch.setattr(dimse, "find", lambda *a, **k: _failing_statement(sessions))
    monkeypatch.setattr(dimse, "ingest_instance", lambda *a, **k: _failing_statement(sessions))
    failed = [
        status.Status
        for status, _ in assoc.send_c_find(_query(), StudyRootQueryRetrieveInformationModelFind)
    ]
    assert failed == [0xC001]  # unable to process
    ds.SOPInstanceUID = pydicom.uid.generate_uid()
    assert assoc.send_c_store(ds).Status != 0x0000
    assoc.release()

    # QIDO-RS by name, and the patient form, valid and refused.
    tech = world.user("metz-reader", (world.metz, "radiologist"))
    token = world.token(tech, "imaging:read")
    qido = client.get(
        "/dicomweb/studies",
        params={"PatientName": NAME, "PatientBirthDate": BIRTH},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert qido.status_code == 200 and len(qido.json()) == 1
    coordinator = world.user("metz-coord", (world.metz, "coordinator"))
    browser = world.client(app)
    csrf = world.sign_in(browser, coordinator)
    for birth in ("1951-04-17", "17/04/1951"):
        browser.post(
            "/patients",
            data={
                "site_id": str(world.metz.id), "identifier": "MTZ-FORM", "family_name": FAMILY,
                "given_name": "Elodie", "birth_date": birth, "sex": "F", "csrf_token": csrf,
            },
        )  # fmt: skip

    assert caplog.records, "the log was captured"
    formatter = logging.Formatter()
    # Every logger but the test's own HTTP client's (httpx logs the URLs it requests).
    server_side = [r for r in caplog.records if not r.name.startswith("httpx")]
    logged = "\n".join(f"{formatter.format(r)} {vars(r)}" for r in server_side)
    for secret in (FAMILY, FAMILY.lower(), FAMILY.title(), BIRTH, "1951-04-17"):
        assert secret not in logged, secret

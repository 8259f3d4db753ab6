"""FHIR R4 orders: CH Briey's hospital system registers a patient and places a CT with a
``ServiceRequest``; the step enters the modality worklist as an HL7 order's does, a change
moves it, ``status: revoked`` cancels it as ORC CA does; every error is an
``OperationOutcome``; another site's account is refused without learning what exists."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.servicerequest import ServiceRequest
from pydicom.dataset import Dataset
from sqlalchemy import select

from concilium.platform.tables import AuditEvent
from concilium.reading.orders import OrderStatus
from concilium.reading.tables import ImagingOrderRecord, ScheduledStepRecord
from concilium.reading.worklist import find_worklist
from concilium.reading.worklist_source import DatabaseWorklist

FHIR = "application/fhir+json"
BRIEY_IPP = "urn:concilium:ipp:540000049"
BRIEY_ACC = "urn:concilium:accession:540000049"
DCM = "http://dicom.nema.org/resources/ontology/DCM"


def patient(value: str = "IPP-77", family: str = "Lefèvre") -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "identifier": [{"system": BRIEY_IPP, "value": value}],
        "name": [{"use": "official", "family": family, "given": ["Hélène"]}],
        "gender": "female",
        "birthDate": "1985-05-23",
    }


def service_request(patient_id: int, accession: str = "ACC-F1", **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "identifier": [
            {
                "type": {
                    "coding": [
                        {"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "ACSN"}
                    ]
                },
                "system": BRIEY_ACC,
                "value": accession,
            },
            {"system": "urn:dicom:uid", "value": "urn:oid:1.2.250.1.59.77.1"},
        ],
        "status": "active",
        "intent": "order",
        "priority": "stat",
        "code": {
            "coding": [{"system": "http://loinc.org", "code": "24627-2", "display": "CT Chest"}]
        },
        "orderDetail": [{"coding": [{"system": DCM, "code": "CT"}]}],
        "subject": {"reference": f"Patient/{patient_id}"},
        "occurrenceDateTime": "2026-03-07T02:00:00+01:00",
        "requester": {"display": "Durand^Anne", "identifier": {"value": "10003456789"}},
        "reasonCode": [{"text": "Dyspnée aiguë"}],
    }
    body.update(changes)
    return body


def send(client, method: str, url: str, body: Any, headers: dict[str, str], **extra: str):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.request(
        method, url, content=raw, headers={**headers, "content-type": FHIR, **extra}
    )


def outcome_of(response, status: int, code: str) -> list[dict[str, Any]]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(FHIR)
    OperationOutcome.model_validate(response.json())
    issues = response.json()["issue"]
    assert issues[0]["code"] == code, issues
    return issues


@pytest.fixture
def his(world) -> dict[str, str]:
    """Briey's hospital system: a coordinator account whose token places orders only."""
    account = world.user("his-briey", (world.briey, "coordinator"))
    return {"Authorization": f"Bearer {world.token(account, 'reading:order')}"}


@pytest.fixture
def metz_his(world) -> dict[str, str]:
    account = world.user("his-metz", (world.metz, "coordinator"))
    return {"Authorization": f"Bearer {world.token(account, 'reading:order')}"}


@pytest.fixture
def registered(client, his) -> int:
    created = send(client, "POST", "/fhir/Patient", patient(), his)
    assert created.status_code == 201, created.text
    return int(created.json()["id"])


def worklist(runtime, site_id: int) -> dict[str, str]:
    query = Dataset()
    query.AccessionNumber = ""
    query.PatientID = ""
    step = Dataset()
    step.ScheduledStationAETitle = ""
    step.Modality = ""
    step.ScheduledProcedureStepStartDate = ""
    query.ScheduledProcedureStepSequence = [step]
    found = find_worklist(DatabaseWorklist(runtime.sessions), [site_id], query)
    return {
        str(ds.AccessionNumber): str(
            ds.ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartDate
        )
        for _item, ds in found
    }


def test_a_patient_is_registered_read_and_updated_with_versions(client, his, world):
    created = send(client, "POST", "/fhir/Patient", patient(), his)
    assert created.status_code == 201, created.text
    pid = created.json()["id"]
    assert created.headers["location"] == f"/fhir/Patient/{pid}/_history/1"
    assert created.headers["etag"] == 'W/"1"'
    read = client.get(f"/fhir/Patient/{pid}", headers=his)
    assert read.status_code == 200 and read.headers["content-type"].startswith(FHIR)
    body = read.json()
    assert body["identifier"][0]["system"] == BRIEY_IPP
    assert body["identifier"][0]["value"] == "IPP-77"
    assert (body["name"][0]["family"], body["birthDate"]) == ("Lefèvre", "1985-05-23")
    # The same identifier again: 409; with If-None-Exist, the patient as it is.
    outcome_of(send(client, "POST", "/fhir/Patient", patient(), his), 409, "conflict")
    again = send(
        client,
        "POST",
        "/fhir/Patient",
        patient(),
        his,
        **{"if-none-exist": f"identifier={BRIEY_IPP}|IPP-77"},
    )
    assert again.status_code == 200 and again.json()["id"] == pid
    changed = {**patient(family="Lefèvre-Martin"), "id": pid}
    updated = send(client, "PUT", f"/fhir/Patient/{pid}", changed, his, **{"if-match": 'W/"1"'})
    assert updated.status_code == 200, updated.text
    assert updated.headers["etag"] == 'W/"2"'
    assert updated.json()["name"][0]["family"] == "Lefèvre-Martin"
    stale = send(client, "PUT", f"/fhir/Patient/{pid}", changed, his, **{"if-match": 'W/"1"'})
    outcome_of(stale, 412, "conflict")


def test_an_order_enters_the_worklist_changes_and_is_cancelled(
    client, his, registered, runtime, world
):
    created = send(client, "POST", "/fhir/ServiceRequest", service_request(registered), his)
    assert created.status_code == 201, created.text
    ServiceRequest.model_validate(created.json())
    order_id = created.json()["id"]
    assert created.headers["location"] == f"/fhir/ServiceRequest/{order_id}/_history/1"
    with runtime.sessions() as db:
        record = db.get(ImagingOrderRecord, int(order_id))
        assert record is not None
        assert (record.status, record.priority, record.procedure_code) == (
            "SCHEDULED",
            "S",
            "24627-2",
        )
        assert record.procedure_coding_system == "LN"
        assert record.study_instance_uid == "1.2.250.1.59.77.1"
        assert record.requesting_physician_name == "Durand^Anne"
        assert [(s.step_id, s.modality) for s in record.steps] == [("ACC-F1", "CT")]
    assert worklist(runtime, world.briey.id) == {"ACC-F1": "20260307"}
    # A repeat with If-None-Exist changes nothing and answers the order.
    repeat = send(
        client,
        "POST",
        "/fhir/ServiceRequest",
        service_request(registered),
        his,
        **{"if-none-exist": f"identifier={BRIEY_ACC}|ACC-F1"},
    )
    assert repeat.status_code == 200 and repeat.json()["id"] == order_id
    assert repeat.headers["etag"] == 'W/"1"'
    outcome_of(
        send(client, "POST", "/fhir/ServiceRequest", service_request(registered), his),
        409,
        "conflict",
    )
    # Moved to the next day.
    moved = service_request(registered, id=order_id, occurrenceDateTime="2026-03-08T09:00:00+01:00")
    changed = send(
        client, "PUT", f"/fhir/ServiceRequest/{order_id}", moved, his, **{"if-match": 'W/"1"'}
    )
    assert changed.status_code == 200, changed.text
    assert changed.headers["etag"] == 'W/"2"'
    assert worklist(runtime, world.briey.id) == {"ACC-F1": "20260308"}
    # Cancelled as ORC CA does: the order and its step end, the worklist no longer shows it.
    revoked = {**moved, "status": "revoked"}
    stale = send(
        client, "PUT", f"/fhir/ServiceRequest/{order_id}", revoked, his, **{"if-match": 'W/"1"'}
    )
    outcome_of(stale, 412, "conflict")
    cancelled = send(client, "PUT", f"/fhir/ServiceRequest/{order_id}", revoked, his)
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "revoked"
    with runtime.sessions() as db:
        record = db.get(ImagingOrderRecord, int(order_id))
        assert record is not None and record.status == OrderStatus.CANCELLED.value
        steps = db.execute(select(ScheduledStepRecord.status)).scalars().all()
        assert steps == ["CANCELLED"]
        actions = (
            db.execute(select(AuditEvent.action).where(AuditEvent.patient_id == registered))
            .scalars()
            .all()
        )
    assert {"imaging_order.place", "imaging_order.update", "imaging_order.cancel"} <= set(actions)
    assert worklist(runtime, world.briey.id) == {}
    # An ended order changes no more.
    reopened = send(client, "PUT", f"/fhir/ServiceRequest/{order_id}", moved, his)
    outcome_of(reopened, 422, "business-rule")


def test_every_error_is_an_operation_outcome(client, his, registered):
    url = "/fhir/ServiceRequest"
    bad_json = send(client, "POST", url, b"{not json", his)
    outcome_of(bad_json, 400, "structure")
    not_object = send(client, "POST", url, b"[1, 2]", his)
    outcome_of(not_object, 400, "invalid")
    wrong_type = send(client, "POST", url, patient(), his)
    outcome_of(wrong_type, 400, "invalid")
    invalid = service_request(registered)
    invalid["code"] = {"coding": [{"system": 12}]}
    invalid["bogus"] = 1
    issues = outcome_of(send(client, "POST", url, invalid, his), 400, "value")
    paths = {issue["expression"][0] for issue in issues}
    assert "ServiceRequest.code.coding[0].system" in paths
    assert "ServiceRequest.bogus" in paths
    text = client.post(url, content=b"MSH|", headers={**his, "content-type": "text/plain"})
    outcome_of(text, 415, "not-supported")
    outcome_of(client.get("/fhir/ServiceRequest/999999", headers=his), 404, "not-found")
    outcome_of(client.get("/fhir/ServiceRequest/abc", headers=his), 404, "not-found")
    no_modality = service_request(registered, orderDetail=[])
    issues = outcome_of(send(client, "POST", url, no_modality, his), 422, "required")
    assert issues[0]["expression"] == ["ServiceRequest.orderDetail"]
    unknown = service_request(987654)
    issues = outcome_of(send(client, "POST", url, unknown, his), 422, "business-rule")
    assert issues[0]["expression"] == ["ServiceRequest.subject"]
    outcome_of(client.get("/fhir/ServiceRequest/1"), 401, "login")
    outcome_of(client.delete("/fhir/metadata", headers=his), 405, "not-supported")


def test_another_sites_account_learns_nothing_and_is_audited(
    client, his, metz_his, registered, runtime
):
    created = send(client, "POST", "/fhir/ServiceRequest", service_request(registered), his)
    order_id = created.json()["id"]
    # Reading or changing Briey's order or patient: as if they did not exist.
    outcome_of(client.get(f"/fhir/ServiceRequest/{order_id}", headers=metz_his), 404, "not-found")
    outcome_of(client.get(f"/fhir/Patient/{registered}", headers=metz_his), 404, "not-found")
    revoked = service_request(registered, id=order_id, status="revoked")
    outcome_of(
        send(client, "PUT", f"/fhir/ServiceRequest/{order_id}", revoked, metz_his),
        404,
        "not-found",
    )
    # Placing an order for Briey: refused by the policy.
    outcome_of(
        send(
            client, "POST", "/fhir/ServiceRequest", service_request(registered, "ACC-X"), metz_his
        ),
        403,
        "forbidden",
    )
    with runtime.sessions() as db:
        record = db.get(ImagingOrderRecord, int(order_id))
        assert record is not None and record.status == "SCHEDULED"
        refused = (
            db.execute(select(AuditEvent.action).where(AuditEvent.outcome == "refused"))
            .scalars()
            .all()
        )
    assert refused.count("imaging_order.place") == 4


def test_the_capability_statement_lists_what_the_services_serve(client, his):
    answer = client.get("/fhir/metadata", headers=his)
    assert answer.status_code == 200, answer.text
    statement = CapabilityStatement.model_validate(answer.json())
    assert statement.fhirVersion == "4.3.0"
    served = {r.type: r for r in statement.rest[0].resource}
    assert {"Patient", "ServiceRequest"} <= set(served)
    assert {i.code for i in served["ServiceRequest"].interaction} == {"read", "create", "update"}
    assert served["ServiceRequest"].conditionalCreate is True

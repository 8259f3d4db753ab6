"""The worklist items' JSON API: Briey's technologist schedules a CT by hand, the modality
worklist (C-FIND matching, in process) answers it, a change moves it, a cancel removes it;
bad input is problem+json; another site's technologist neither sees nor touches it."""

from __future__ import annotations

import pytest
from pydicom.dataset import Dataset
from sqlalchemy import select

from concilium.platform import audit, patients
from concilium.platform.db import transaction
from concilium.platform.tables import AuditEvent
from concilium.reading.tables import ImagingOrderRecord
from concilium.reading.worklist import find_worklist
from concilium.reading.worklist_source import DatabaseWorklist

API = "/api/v1/reading/worklist-items"
PROBLEM = "application/problem+json"


@pytest.fixture
def briey_patient(world) -> int:
    with transaction(world.runtime.sessions) as db:
        who = patients.Demographics("Lefèvre", "Hélène", sex="F")
        return patients.create_patient(db, audit.SYSTEM, world.briey.id, "IPP-5", who).id


def bearer(world, name: str, site) -> dict[str, str]:
    user = world.user(name, (site, "technologist"))
    return {"Authorization": f"Bearer {world.token(user, 'reading:worklist')}"}


def item(site_id: int, patient_id: int, **changes):
    return {
        "site_id": site_id,
        "patient_id": patient_id,
        "accession_number": "ACC-M1",
        "modality": "CT",
        "scheduled_at": "2026-03-07T09:30:00+01:00",
        "procedure": {"code": "ZCT01", "scheme": "99BRIEY", "meaning": "Scanner cérébral"},
        "station_ae_title": "BRIEY_CT",
        "priority": "urgent",
        **changes,
    }


def c_find(runtime, site_id: int, station: str = "BRIEY_CT") -> dict[str, str]:
    query = Dataset()
    query.AccessionNumber = ""
    query.PatientID = ""
    step = Dataset()
    step.ScheduledStationAETitle = station
    step.ScheduledProcedureStepStartDate = ""
    step.ScheduledProcedureStepStartTime = ""
    query.ScheduledProcedureStepSequence = [step]
    found = find_worklist(DatabaseWorklist(runtime.sessions), [site_id], query)
    return {
        str(ds.AccessionNumber): ds.ScheduledProcedureStepSequence[
            0
        ].ScheduledProcedureStepStartTime
        + "@"
        + str(ds.PatientID)
        for _item, ds in found
    }


def test_an_item_is_scheduled_answered_moved_and_cancelled(client, world, runtime, briey_patient):
    tech = bearer(world, "tech-briey", world.briey)
    created = client.post(API, json=item(world.briey.id, briey_patient), headers=tech)
    assert created.status_code == 201, created.text
    body = created.json()
    assert created.headers["location"] == f"{API}/{body['id']}"
    assert (body["accession_number"], body["step_id"], body["status"]) == (
        "ACC-M1",
        "ACC-M1",
        "SCHEDULED",
    )
    assert body["patient"] == {"id": briey_patient, "identifier": "IPP-5"}
    assert body["priority"] == "urgent"
    assert c_find(runtime, world.briey.id) == {"ACC-M1": "093000@IPP-5"}
    listed = client.get(API, headers=tech, params={"modality": "CT"})
    assert [i["id"] for i in listed.json()] == [body["id"]]
    again = client.post(API, json=item(world.briey.id, briey_patient), headers=tech)
    assert again.status_code == 409 and again.headers["content-type"] == PROBLEM

    moved = client.patch(
        f"{API}/{body['id']}",
        json={"scheduled_at": "2026-03-07T11:00:00+01:00", "station_ae_title": "BRIEY_CT2"},
        headers=tech,
    )
    assert moved.status_code == 200, moved.text
    assert c_find(runtime, world.briey.id) == {}
    assert c_find(runtime, world.briey.id, "BRIEY_CT2") == {"ACC-M1": "110000@IPP-5"}

    cancelled = client.delete(f"{API}/{body['id']}", headers=tech)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "CANCELLED"
    assert c_find(runtime, world.briey.id, "BRIEY_CT2") == {}
    with runtime.sessions() as db:
        order = db.execute(select(ImagingOrderRecord)).scalar_one()
        assert order.status == "CANCELLED"
        actions = set(
            db.execute(select(AuditEvent.action).where(AuditEvent.patient_id == briey_patient))
            .scalars()
            .all()
        )
    assert {
        "reading.worklist_item.create",
        "reading.worklist_item.update",
        "reading.worklist_item.cancel",
    } <= actions
    ended = client.delete(f"{API}/{body['id']}", headers=tech)
    assert ended.status_code == 409 and ended.headers["content-type"] == PROBLEM


def test_bad_items_are_problems_and_other_sites_see_nothing(client, world, runtime, briey_patient):
    tech = bearer(world, "tech-briey", world.briey)
    for bad in (
        item(world.briey.id, briey_patient, scheduled_at="2026-03-07T09:30:00"),  # no offset
        item(world.briey.id, briey_patient, accession_number="A\\B"),
        item(world.briey.id, briey_patient, modality="ct\x00"),
        {**item(world.briey.id, briey_patient), "surprise": 1},
    ):
        refused = client.post(API, json=bad, headers=tech)
        assert refused.status_code == 422, bad
        assert refused.headers["content-type"] == PROBLEM
    unknown = client.post(API, json=item(world.briey.id, 987654), headers=tech)
    assert unknown.status_code == 404 and unknown.headers["content-type"] == PROBLEM

    created = client.post(API, json=item(world.briey.id, briey_patient), headers=tech)
    item_id = created.json()["id"]
    metz = bearer(world, "tech-metz", world.metz)
    assert client.get(API, headers=metz).json() == []
    assert client.get(f"{API}/{item_id}", headers=metz).status_code == 404
    assert client.delete(f"{API}/{item_id}", headers=metz).status_code == 404
    placed = client.post(
        API, json=item(world.briey.id, briey_patient, accession_number="X"), headers=metz
    )
    assert placed.status_code == 403 and placed.headers["content-type"] == PROBLEM
    assert c_find(runtime, world.briey.id) == {"ACC-M1": "093000@IPP-5"}
    with runtime.sessions() as db:
        refusals = (
            db.execute(select(AuditEvent.action).where(AuditEvent.outcome == "refused"))
            .scalars()
            .all()
        )
    assert refusals.count("reading.worklist_item.manage") == 3

"""The modality worklist from the database: scheduled steps as worklist items, their start
in the site's local time (across summer time changes), and each answer audited."""

from __future__ import annotations

import datetime as dt

import pytest
from pydicom.dataset import Dataset
from sqlalchemy import select

from concilium.imaging import CallingNode
from concilium.platform import audit
from concilium.platform.db import transaction
from concilium.platform.policy import Principal
from concilium.platform.tables import AuditEvent, Site
from concilium.reading import senders
from concilium.reading.inbound import receive
from concilium.reading.worklist import StepStatus, WorklistFilter, find_worklist
from concilium.reading.worklist_source import WORKLIST_QUERY, DatabaseWorklist
from concilium.reading.worklist_store import scheduled_steps

from .hl7_orders import adt_a01, orm_o01


@pytest.fixture
def briey(world, runtime):
    """CH Briey with its hospital system registered and its patient admitted."""
    with transaction(runtime.sessions) as db:
        senders.add_sender(
            db, audit.SYSTEM, site_id=world.briey.id, application="HIS", facility="CHBRIEY"
        )
    send(runtime, adt_a01("ADT-1"))
    return world.briey


def send(runtime, raw: bytes) -> None:
    receipt = receive(runtime.sessions, raw, peer="127.0.0.1", now=runtime.now())
    assert b"MSA|AA|" in receipt.ack, receipt.ack


def order(runtime, accession: str, start: str, **fields: str) -> None:
    send(runtime, orm_o01(f"ORM-{accession}", accession=accession, start=start, **fields))


def node(site_id: int, title: str = "BRIEY_CT") -> CallingNode:
    principal = Principal(user_id=None, username=f"ae:{title}", roles={}, scopes=frozenset())
    return CallingNode(
        title,
        site_id,
        "127.0.0.1",
        allow_store=True,
        allow_query=True,
        principal=principal,
        actor=audit.Actor(None, f"ae:{title}", site_id=site_id),
    )


def query(**step_keys: str) -> Dataset:
    ds = Dataset()
    ds.PatientName = ""
    ds.AccessionNumber = ""
    step = Dataset()
    step.ScheduledProcedureStepStartDate = ""
    step.ScheduledProcedureStepStartTime = ""
    step.ScheduledStationAETitle = ""
    for keyword, value in step_keys.items():
        setattr(step, keyword, value)
    ds.ScheduledProcedureStepSequence = [step]
    return ds


def test_an_order_at_two_on_a_saturday_night_shows_at_two_local(runtime, briey):
    # Saturday 7 March 2026, 02:00 in Paris (UTC+1): 01:00 UTC in the database.
    order(runtime, "ACC-SAT", "20260307020000")
    source = DatabaseWorklist(runtime.sessions)
    [item] = source.candidates([briey.id], WorklistFilter())
    assert (item.step.start_date, item.step.start_time) == (dt.date(2026, 3, 7), dt.time(2, 0))
    assert item.step.start_date.weekday() == 5
    assert item.patient_name == "Lefèvre^Hélène"
    assert item.patient_id == "IPP001"
    assert item.patient_sex == "F"
    assert item.patient_birth_date == dt.date(1985, 5, 23)
    assert (item.accession_number, item.requested_procedure_id) == ("ACC-SAT", "RP-1")
    assert (item.step.step_id, item.step.station_ae_title) == ("SPS-1", "BRIEY_CT")
    assert item.step.modality == "CT"
    assert item.step.status is StepStatus.SCHEDULED
    assert item.priority == "STAT"  # TQ priority S
    assert item.referring_physician == "Durand^Anne^^DR"
    assert [c.value for c in item.requested_procedure_codes] == ["TDM-THX"]
    assert [c.value for c in item.step.protocol_codes] == ["P1"]

    found = find_worklist(source, [briey.id], query(ScheduledProcedureStepStartDate="20260307"))
    assert [i.accession_number for i, _ in found] == ["ACC-SAT"]
    assert found[0][1].ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartTime == (
        "020000"
    )
    assert (
        find_worklist(source, [briey.id], query(ScheduledProcedureStepStartDate="20260306")) == []
    )


def test_local_time_is_exact_across_the_summer_time_change(runtime, briey):
    # 29 March 2026: Paris goes from UTC+1 to UTC+2 at 02:00 local.
    order(runtime, "ACC-BEFORE", "20260329013000")
    order(runtime, "ACC-AFTER", "20260329033000", step="SPS-2")
    order(runtime, "ACC-SUMMER", "20260704003000", step="SPS-3")
    source = DatabaseWorklist(runtime.sessions)
    shown = {
        i.accession_number: (i.step.start_date, i.step.start_time)
        for i in source.candidates([briey.id], WorklistFilter())
    }
    assert shown == {
        "ACC-BEFORE": (dt.date(2026, 3, 29), dt.time(1, 30)),
        "ACC-AFTER": (dt.date(2026, 3, 29), dt.time(3, 30)),
        "ACC-SUMMER": (dt.date(2026, 7, 4), dt.time(0, 30)),
    }
    # 00:30 local on 4 July is 22:30 UTC on 3 July: the local date finds it.
    found = find_worklist(source, [briey.id], query(ScheduledProcedureStepStartDate="20260704"))
    assert [i.accession_number for i, _ in found] == ["ACC-SUMMER"]
    found = find_worklist(
        source,
        [briey.id],
        query(ScheduledProcedureStepStartDate="20260329", ScheduledProcedureStepStartTime="-0300"),
    )
    assert [i.accession_number for i, _ in found] == ["ACC-BEFORE"]


def test_the_start_is_shown_in_the_zone_of_the_site(runtime, briey):
    with transaction(runtime.sessions) as db:
        site = db.get(Site, briey.id)
        assert site is not None
        site.timezone = "Indian/Reunion"  # UTC+4, no summer time
    order(runtime, "ACC-RUN", "20260307230000+0100")
    source = DatabaseWorklist(runtime.sessions)
    [item] = source.candidates([briey.id], WorklistFilter(start_from=dt.date(2026, 3, 8)))
    assert (item.step.start_date, item.step.start_time) == (dt.date(2026, 3, 8), dt.time(2, 0))
    assert (
        list(source.candidates([briey.id], WorklistFilter(start_until=dt.date(2026, 3, 7)))) == []
    )


def test_a_time_without_offset_is_the_local_time_of_the_sending_site(runtime, briey):
    with transaction(runtime.sessions) as db:
        site = db.get(Site, briey.id)
        assert site is not None
        site.timezone = "Indian/Reunion"  # UTC+4, no summer time
    order(runtime, "ACC-LOCAL", "20260307020000")  # 02:00 at the site: 22:00 UTC the day before
    with transaction(runtime.sessions) as db:
        [step] = scheduled_steps(db, [briey.id])
    assert step.start == dt.datetime(2026, 3, 6, 22, 0, tzinfo=dt.UTC)
    [item] = DatabaseWorklist(runtime.sessions).candidates([briey.id], WorklistFilter())
    assert (item.step.start_date, item.step.start_time) == (dt.date(2026, 3, 7), dt.time(2, 0))


def test_an_order_without_a_study_uid_gets_one_that_it_keeps(runtime, briey):
    # A worklist item carries a Study Instance UID (PS3.4 K.6, Type 1): the HIS sent none.
    order(runtime, "ACC-NOUID", "20260307020000")
    source = DatabaseWorklist(runtime.sessions)
    [item] = source.candidates([briey.id], WorklistFilter())
    assert item.study_instance_uid.startswith("2.25.") and len(item.study_instance_uid) <= 64
    send(
        runtime, orm_o01("ORM-CHANGE", accession="ACC-NOUID", start="20260307030000", control="XO")
    )
    [changed] = source.candidates([briey.id], WorklistFilter())
    assert changed.study_instance_uid == item.study_instance_uid
    assert changed.step.start_time == dt.time(3, 0)


def test_coarse_filter_and_sites(runtime, world, briey):
    order(runtime, "ACC-CT", "20260307020000")
    order(runtime, "ACC-MR", "20260307030000", station="BRIEY_MR", modality="MR", step="SPS-9")
    source = DatabaseWorklist(runtime.sessions)
    by_station = source.candidates([briey.id], WorklistFilter(station_ae_titles=("BRIEY_MR",)))
    assert [i.accession_number for i in by_station] == ["ACC-MR"]
    assert list(source.candidates([world.metz.id], WorklistFilter())) == []
    # An exact accession number narrows the database search itself.
    by_accession = source.candidates([briey.id], WorklistFilter(accession_numbers=("ACC-CT",)))
    assert [i.accession_number for i in by_accession] == ["ACC-CT"]
    asked = query()
    asked.AccessionNumber = "ACC-MR"
    assert [i.accession_number for i, _ in find_worklist(source, [briey.id], asked)] == ["ACC-MR"]


def test_each_answer_is_audited_per_patient_without_patient_data_in_the_detail(
    runtime, world, briey
):
    order(runtime, "ACC-1", "20260307020000")
    order(runtime, "ACC-2", "20260307030000", step="SPS-2")
    source = DatabaseWorklist(runtime.sessions)
    items = list(source.candidates([briey.id], WorklistFilter()))
    source.disclosed(node(briey.id), [briey.id], items)
    source.disclosed(node(world.metz.id, "METZ_CT"), [world.metz.id], [])
    with transaction(runtime.sessions) as db:
        events = db.scalars(select(AuditEvent).where(AuditEvent.action == WORKLIST_QUERY)).all()
        shown, nothing = events
        assert shown.actor == "ae:BRIEY_CT"
        assert shown.site_id == briey.id
        assert shown.patient_id is not None
        assert "ACC-1" in shown.detail and "ACC-2" in shown.detail
        assert "Lef" not in shown.detail and "IPP001" not in shown.detail
        assert (nothing.actor, nothing.patient_id) == ("ae:METZ_CT", None)
        assert '"matches": 0' in nothing.detail

"""Orders routed to their reading group when stored, from the stored rota and rules: the
night, the weekend, midnight, the summer time change and a French public holiday; and
claims decided by one conditional UPDATE."""

from __future__ import annotations

import json
import threading

import pytest
from sqlalchemy import select

from concilium.platform import audit
from concilium.platform.db import transaction
from concilium.platform.tables import AuditEvent
from concilium.reading import groups
from concilium.reading.assignments import ROUTE, ClaimTaken, claim, release, route_order
from concilium.reading.tables import ImagingOrderRecord, ReadingAssignment

from .hl7_orders import orm_o01
from .reading_groups import Groups, on_call_groups
from .test_worklist_source import briey, order, send  # noqa: F401 - the fixture


@pytest.fixture
def rota(runtime, world, briey) -> Groups:  # noqa: F811 - the fixture
    return on_call_groups(runtime, world)


def group_of(runtime, accession: str) -> int | None:
    with transaction(runtime.sessions) as db:
        return db.execute(
            select(ReadingAssignment.group_id)
            .join(ImagingOrderRecord, ImagingOrderRecord.id == ReadingAssignment.order_id)
            .where(ImagingOrderRecord.accession_number == accession)
        ).scalar_one_or_none()


CASES = {
    "SAT-0200": ("20260307020000", True),  # Saturday 7 March 2026, 02:00 (the Friday night)
    "SAT-NOON": ("20260307120000", True),  # Saturday noon: the weekend
    "MIDNIGHT": ("20260311000000", True),  # midnight, Tuesday into Wednesday
    "DAY-0830": ("20260311083000", False),  # the night ends at 08:30
    "DAY-1829": ("20260311182959", False),
    "EVE-1830": ("20260311183000", True),  # and begins again at 18:30
    "FRI-1400": ("20260327140000", False),  # a Friday afternoon
    "HOLIDAY": ("20260714140000", True),  # 14 July 2026, a Tuesday: public holiday
    "HOL-EVE": ("20260713200000", True),  # its eve's evening
    "HOL-NEXT": ("20260715140000", False),  # the day after
}


def test_an_order_goes_to_the_group_on_call_at_its_scheduled_time(runtime, rota):
    for number, (accession, (start, _)) in enumerate(CASES.items()):
        order(runtime, accession, start, step=f"SPS-{number}")
    routed = {accession: group_of(runtime, accession) for accession in CASES}
    assert routed == {
        accession: rota.metz if on_call else rota.briey for accession, (_, on_call) in CASES.items()
    }


def test_the_summer_time_night_is_an_hour_shorter(runtime, world, briey):  # noqa: F811
    # Night of 28-29 March 2026 (Paris goes to UTC+2 at 02:00), a rota of nights only:
    # 08:15 CEST is still on call; 07:15 UTC is 09:15 CEST and no longer (though 08:15 in
    # winter time); 01:30 UTC is 03:30 CEST, on call.
    with transaction(runtime.sessions) as db:
        local = groups.add_group(
            db, audit.SYSTEM, name="Radiologie Briey", site_id=world.briey.id, local=True
        )
        metz = groups.add_group(db, audit.SYSTEM, name="Garde Metz", site_id=world.metz.id)
        groups.add_on_call(db, audit.SYSTEM, metz, "night")
        groups.add_rule(db, audit.SYSTEM, name="briey-garde", site_id=world.briey.id, group=metz)
    cases = {
        "DST-0815": ("20260329081500+0200", metz.id),
        "DST-0715Z": ("20260329071500+0000", local.id),
        "DST-0130Z": ("20260329013000+0000", metz.id),
    }
    for number, (accession, (start, _)) in enumerate(cases.items()):
        order(runtime, accession, start, step=f"SPS-{number}")
    assert {a: group_of(runtime, a) for a in cases} == {a: g for a, (_, g) in cases.items()}


def test_the_routing_is_audited_and_kept_when_the_order_changes(runtime, rota):
    order(runtime, "ACC-1", "20260307020000")
    # Rescheduled into the day: the order keeps its group until routed again by hand.
    send(runtime, orm_o01("ORM-XO", accession="ACC-1", start="20260309140000", control="XO"))
    assert group_of(runtime, "ACC-1") == rota.metz
    with transaction(runtime.sessions) as db:
        record = db.execute(select(ImagingOrderRecord)).scalar_one()
        assignment = route_order(db, audit.SYSTEM, record, again=True)
        assert assignment is not None
        assert (assignment.group_id, assignment.rule) == (rota.briey, "")
        details = db.execute(select(AuditEvent.detail).where(AuditEvent.action == ROUTE)).scalars()
        assert [json.loads(d)["group_id"] for d in details] == [rota.metz, rota.briey]


def test_without_a_local_group_an_unrouted_order_is_still_stored(runtime, world, briey):  # noqa: F811
    with transaction(runtime.sessions) as db:
        metz = groups.add_group(db, audit.SYSTEM, name="Garde Metz", site_id=world.metz.id)
        groups.add_on_call(db, audit.SYSTEM, metz, "night")
        groups.add_rule(db, audit.SYSTEM, name="briey-garde", site_id=world.briey.id, group=metz)
    order(runtime, "ACC-DAY", "20260311140000")
    order(runtime, "ACC-NIGHT", "20260311220000")
    assert group_of(runtime, "ACC-DAY") is None
    assert group_of(runtime, "ACC-NIGHT") == metz.id


def test_a_modality_rule_takes_only_its_modality(runtime, world, rota):
    with transaction(runtime.sessions) as db:
        nancy = groups.add_group(db, audit.SYSTEM, name="IRM Metz", site_id=world.metz.id)
        groups.add_rule(
            db,
            audit.SYSTEM,
            name="briey-irm",
            site_id=world.briey.id,
            group=nancy,
            modality="mr",
            priority=10,
            on_call_only=False,
        )
    order(runtime, "ACC-MR", "20260311140000", modality="MR", station="BRIEY_MR")
    order(runtime, "ACC-CT", "20260311140000", step="SPS-2")
    assert group_of(runtime, "ACC-MR") == nancy.id
    assert group_of(runtime, "ACC-CT") == rota.briey


def test_two_concurrent_claims_one_wins(runtime, world, rota, clock):
    order(runtime, "ACC-1", "20260307020000")
    with transaction(runtime.sessions) as db:
        assignment_id = db.execute(select(ReadingAssignment.id)).scalar_one()
    users = [world.user(f"radio{i}", (world.metz, "radiologist")) for i in (1, 2)]
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def attempt(user_id: int) -> None:
        try:
            with transaction(runtime.sessions) as db:
                barrier.wait(timeout=10)
                claim(db, assignment_id, user_id, clock())
            outcomes.append("won")
        except ClaimTaken:
            outcomes.append("taken")

    threads = [threading.Thread(target=attempt, args=(user.id,)) for user in users]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcomes) == ["taken", "won"]
    with transaction(runtime.sessions) as db:
        holder = db.execute(select(ReadingAssignment.claimed_by_id)).scalar_one()
        assert holder in {user.id for user in users}
        loser = next(user.id for user in users if user.id != holder)
        with pytest.raises(ClaimTaken):
            claim(db, assignment_id, loser, clock())
        claim(db, assignment_id, holder, clock())  # one's own claim again: no change
        release(db, assignment_id, holder)
        claim(db, assignment_id, loser, clock())
        assert db.execute(select(ReadingAssignment.claimed_by_id)).scalar_one() == loser

"""A STAT exam nobody claimed alerts the routed group's credentialed members, in the
application and by e-mail, once; a claimed or routine exam alerts nobody."""

from __future__ import annotations

from sqlalchemy import select

from concilium.platform import audit
from concilium.platform.db import transaction
from concilium.platform.tables import Notification, OutboxMail, User
from concilium.reading import groups
from concilium.reading.assignments import claim
from concilium.reading.escalation import STAT_DELAY, escalate_unclaimed
from concilium.reading.tables import ImagingOrderRecord, ReadingAssignment

from .reading_groups import on_call_groups
from .test_worklist_source import briey, order  # noqa: F401 - the fixture


def test_an_unclaimed_stat_exam_alerts_its_group_once(runtime, world, briey, clock):  # noqa: F811
    on_call_groups(runtime, world)
    garde = world.user("garde", (world.metz, "radiologist"))
    outsider = world.user("ailleurs", (world.metz, "radiologist"))
    with transaction(runtime.sessions) as db:
        db.get(User, garde.id).email = "garde@chr-metz.fr"
        group = groups.group_by_name(db, "Garde Metz")
        assert group is not None
        member = groups.add_member(db, audit.SYSTEM, group, garde.id)
        groups.add_credential(db, audit.SYSTEM, member, world.briey.id)
        groups.add_member(db, audit.SYSTEM, group, outsider.id)  # not credentialed for Briey
    order(runtime, "ACC-STAT", "20260307020000")  # priority S
    order(runtime, "ACC-CLAIMED", "20260307020000", step="SPS-2")
    with transaction(runtime.sessions) as db:
        claimed = db.execute(
            select(ReadingAssignment.id)
            .join(ImagingOrderRecord, ImagingOrderRecord.id == ReadingAssignment.order_id)
            .where(ImagingOrderRecord.accession_number == "ACC-CLAIMED")
        ).scalar_one()
        claim(db, claimed, garde.id, clock())
    with transaction(runtime.sessions) as db:
        assert escalate_unclaimed(db, runtime, clock()) == []  # not yet
    clock.advance(seconds=STAT_DELAY.total_seconds() + 1)
    with transaction(runtime.sessions) as db:
        alerted = escalate_unclaimed(db, runtime, clock())
    assert len(alerted) == 1 and alerted[0] != claimed
    with transaction(runtime.sessions) as db:
        assert escalate_unclaimed(db, runtime, clock()) == []  # once
        notices = db.execute(select(Notification.user_id, Notification.message)).all()
        mails = db.execute(select(OutboxMail.kind, OutboxMail.recipients)).all()
    assert [user for user, _ in notices] == [garde.id]
    assert "CH Briey" in notices[0][1] and "Lefèvre" not in notices[0][1]
    assert mails == [("reading.stat", ["garde@chr-metz.fr"])]


def test_the_process_escalates_in_one_transaction(runtime, world, briey, clock):  # noqa: F811
    from concilium.reading.process import ReadingProcess

    class NoArchive:
        def service(self, kind):  # type: ignore[no-untyped-def]
            raise LookupError(kind)

    on_call_groups(runtime, world)
    order(runtime, "ACC-STAT", "20260307020000")
    process = ReadingProcess(runtime, NoArchive())
    clock.advance(seconds=STAT_DELAY.total_seconds() + 1)
    [exam] = process.escalate()
    with transaction(runtime.sessions) as db:
        assert db.get(ReadingAssignment, exam).escalated_at is not None
    assert process.escalate() == []

"""The program switches of a session: kept in live's own table, still audited, and carried
over from the audit trail for the sessions that switched before the table existed."""

from __future__ import annotations

from datetime import timedelta

from alembic import command
from sqlalchemy import select

from concilium.live import lookup, program
from concilium.platform import audit
from concilium.platform.db import alembic_config, transaction
from concilium.platform.tables import AuditEvent
from concilium.services import SCHEMA

from .sessions import start_broadcast


def test_each_switch_is_kept_in_order_and_audited(world):
    coord = world.user("metz-coord", (world.metz, "coordinator"))
    actor, live = start_broadcast(world, coord, "Valve repair")
    now = world.runtime.now()
    with transaction(world.runtime.sessions) as db:
        live = lookup.get_session(db, live.id)
        program.record_switch(db, actor, live, 4242, now)
        program.record_switch(db, actor, live, None, now + timedelta(seconds=30))
        program.record_switch(db, actor, live, 7, now + timedelta(seconds=60))
    with world.runtime.sessions() as db:
        live = lookup.get_session(db, live.id)
        assert program.switches(db, live) == [
            (now, 4242),
            (now + timedelta(seconds=30), None),
            (now + timedelta(seconds=60), 7),
        ]
        audited = db.execute(
            select(AuditEvent.actor, AuditEvent.detail).where(AuditEvent.action == "live.program")
        ).all()
    assert audited == [("metz-coord", '{"feed": 4242}'), ("metz-coord", '{"feed": null}'),
                       ("metz-coord", '{"feed": 7}')]  # fmt: skip


def test_switches_audited_before_the_table_existed_are_carried_over(world, database_url):
    coord = world.user("metz-coord", (world.metz, "coordinator"))
    actor, live = start_broadcast(world, coord, "Valve repair")
    world.runtime.engine.dispose()
    command.downgrade(alembic_config(database_url, SCHEMA), "0008_live_recording_telestration")
    with transaction(world.runtime.sessions) as db:  # what the director's switches left
        for feed in (4242, None):
            audit.record(
                db, actor, "live.program", "success", object_kind="live_session",
                object_id=live.id, detail={"feed": feed},
            )  # fmt: skip
        audit.record(
            db, actor, "live.program", "refused", object_kind="live_session", object_id=live.id
        )
        switched = (AuditEvent.action == "live.program") & (AuditEvent.outcome == "success")
        when = list(db.execute(select(AuditEvent.at).where(switched)).scalars())
    world.runtime.engine.dispose()
    command.upgrade(alembic_config(database_url, SCHEMA), "head")
    with world.runtime.sessions() as db:
        live = lookup.get_session(db, live.id)
        assert program.switches(db, live) == [(when[0], 4242), (when[1], None)]

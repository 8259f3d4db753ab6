"""Reading groups of the tests: CH Briey's local group, and the on-call group of CHR Metz
that reads Briey's exams at night, on weekends and on public holidays."""

from __future__ import annotations

from dataclasses import dataclass

from concilium.platform import audit
from concilium.platform.db import transaction
from concilium.reading import groups


@dataclass(frozen=True)
class Groups:
    briey: int
    """CH Briey's local group."""
    metz: int
    """CHR Metz's on-call group."""


def on_call_groups(runtime, world) -> Groups:  # type: ignore[no-untyped-def]
    with transaction(runtime.sessions) as db:
        briey = groups.add_group(
            db, audit.SYSTEM, name="Radiologie Briey", site_id=world.briey.id, local=True
        )
        metz = groups.add_group(db, audit.SYSTEM, name="Garde Metz", site_id=world.metz.id)
        groups.add_on_call(db, audit.SYSTEM, metz, "night")
        groups.add_on_call(db, audit.SYSTEM, metz, "weekend")
        groups.add_on_call(db, audit.SYSTEM, metz, "holiday")
        groups.add_rule(db, audit.SYSTEM, name="briey-garde", site_id=world.briey.id, group=metz)
        return Groups(briey.id, metz.id)

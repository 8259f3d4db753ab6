"""The live service's part of the demonstration: a supervision session scheduled for the
next day, with its invitations. Loading twice adds nothing twice (found by its title)."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from concilium.live.invitations import invite
from concilium.live.lifecycle import create_session
from concilium.live.tables import LiveSession
from concilium.platform import accounts, audit, patients
from concilium.platform.demo import PATIENTS, SITES

__all__ = ["TITLE", "load"]

TITLE = "Démonstration : supervision d'une angioplastie coronaire"
ORGANISER = "cardiologue"
INVITED = (("radiologue-briey", "participant"), ("radiologue", "viewer"), ("interne", "viewer"))


def load(session: Session, now: datetime) -> bool:
    """Schedule the demo session if it is missing; True when it was added."""
    if session.execute(select(LiveSession.id).where(LiveSession.title == TITLE)).first():
        return False
    organiser = accounts.user_by_username(session, ORGANISER)
    if organiser is None:
        return False
    metz = accounts.site_by_finess(session, SITES[0][1])
    patient = patients.find_by_identifier(session, metz.id, PATIENTS[0][4])
    actor = audit.Actor(organiser.id, organiser.username, role="specialist", site_id=metz.id)
    live = create_session(
        session,
        actor,
        kind="supervision",
        title=TITLE,
        site_id=metz.id,
        scheduled_at=datetime.combine(now.date() + timedelta(days=1), time(13, 0), now.tzinfo),
        now=now,
        patient_id=patient.id if patient is not None else None,
    )
    for username, role in INVITED:
        user = accounts.user_by_username(session, username)
        if user is not None:
            invite(session, actor, live, user_id=user.id, role=role, now=now)
    return True

"""Telesurgery's part of the demonstration: a procedure planned between the two demo
hospitals, the surgeon at Metz's console, the robot at Briey. Loading twice adds nothing
twice (found by its title)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from concilium.platform import accounts, audit, patients
from concilium.platform.demo import PATIENTS, SITES
from concilium.telesurgery.procedures import create_procedure
from concilium.telesurgery.tables import Procedure

__all__ = ["TITLE", "load"]

TITLE = "Démonstration : angioplastie coronaire téléassistée"
SURGEON = "cardiologue"
ROBOT = "Simulateur de robot Concilium"


def load(session: Session, now: datetime) -> bool:
    """Plan the demo procedure if it is missing; True when it was added."""
    if session.execute(select(Procedure.id).where(Procedure.title == TITLE)).first():
        return False
    surgeon = accounts.user_by_username(session, SURGEON)
    if surgeon is None:
        return False
    metz = accounts.site_by_finess(session, SITES[0][1])
    briey = accounts.site_by_finess(session, SITES[1][1])
    patient = patients.find_by_identifier(session, metz.id, PATIENTS[0][4])
    if patient is None:
        return False
    create_procedure(
        session,
        audit.Actor(surgeon.id, surgeon.username, role="specialist", site_id=metz.id),
        title=TITLE,
        console_site_id=metz.id,
        robot_site_id=briey.id,
        surgeon_id=surgeon.id,
        robot_name=ROBOT,
        patient_id=patient.id,
        now=now,
    )
    return True

"""A live session's lifecycle: the pure decisions (its title, the patient's consent, its
status), then scheduling and going live on both databases."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from concilium.live import chat, lifecycle, lookup
from concilium.platform import audit, i18n, patients
from concilium.platform.db import transaction
from concilium.platform.errors import Conflict, InvalidInput
from concilium.platform.tables import AuditEvent

from .sessions import people_and_patient

# --- pure decisions ------------------------------------------------------------------------


def test_a_title_naming_the_patient_is_refused():
    names = ["Dupont", "Marie", "MTZ-1"]
    assert lifecycle.check_title("  TAVI   case  ", names) == "TAVI case"
    for title in ("TAVI for Dupont", "marie's valve", "Case MTZ-1 today"):
        with i18n.using_locale("en"), pytest.raises(InvalidInput, match="must not identify"):
            lifecycle.check_title(title, names)
    # A name inside another word is not the name.
    assert lifecycle.check_title("Dupontel technique", names) == "Dupontel technique"
    with i18n.using_locale("en"), pytest.raises(InvalidInput, match="3 to 200"):
        lifecycle.check_title("ab")


def test_broadcasting_or_recording_a_patient_needs_teaching_consent():
    refuse = lifecycle.broadcast_refusal
    assert refuse("broadcast", False, None, False) is None
    assert refuse("broadcast", False, 7, True) is None
    assert "cannot be broadcast" in (refuse("broadcast", False, 7, False) or "")
    assert "cannot be recorded" in (refuse("supervision", True, 7, False) or "")
    assert refuse("supervision", False, 7, False) is None
    assert refuse("conference", True, 7, True) is None
    assert "Choose supervision" in (refuse("party", False, None, False) or "")


def test_session_and_question_lifecycles():
    assert lifecycle.next_status("scheduled", "start") == "live"
    assert lifecycle.next_status("live", "end") == "ended"
    assert lifecycle.next_status("scheduled", "end") == "ended"
    for status, event in (("live", "start"), ("ended", "end"), ("ended", "start")):
        with pytest.raises(Conflict):
            lifecycle.next_status(status, event)
    move = chat.next_question_status
    assert move("submitted", "approve") == "approved"
    assert move("approved", "answer") == "answered"
    assert move("submitted", "merge") == "merged"
    for status, action in (
        ("answered", "reject"),
        ("rejected", "approve"),
        ("approved", "approve"),
    ):
        with pytest.raises(Conflict):
            move(status, action)


# --- on the database -----------------------------------------------------------------------


def test_a_broadcast_waits_for_the_patients_teaching_consent(world):
    doctor, _, patient_id = people_and_patient(world)
    now = world.runtime.now()
    actor = audit.Actor(doctor.id, doctor.username)
    with transaction(world.runtime.sessions) as db:
        with i18n.using_locale("en"), pytest.raises(InvalidInput, match="identify the patient"):
            lifecycle.create_session(
                db,
                actor,
                kind="broadcast",
                title="Valve for Dupont",
                site_id=world.metz.id,
                scheduled_at=now,
                now=now,
                patient_id=patient_id,
            )
        live = lifecycle.create_session(
            db,
            actor,
            kind="broadcast",
            title="Transcatheter valve, live",
            site_id=world.metz.id,
            scheduled_at=now,
            now=now,
            patient_id=patient_id,
        )
        session_id = live.id
    with world.runtime.sessions() as db:
        live = lookup.get_session(db, session_id)
        with i18n.using_locale("en"), pytest.raises(Conflict, match="not consented to teaching"):
            lifecycle.start(db, actor, live, now, teaching_consent=False)
        db.commit()  # the refusal is kept, as the web adapter does
    with transaction(world.runtime.sessions) as db:
        patient = patients.get_patient(db, patient_id)
        patients.record_consent(db, actor, patient, "teaching", "granted", world.metz.id)
        live = lookup.get_session(db, session_id)
        assert live.status == "scheduled"
        lifecycle.start(
            db, actor, live, now, teaching_consent=patients.has_consent(db, patient_id, "teaching")
        )
        assert live.status == "live" and live.janus_room_id == lifecycle.ROOM_ID_BASE + live.id
    with world.runtime.sessions() as db:
        outcomes = db.execute(
            select(AuditEvent.outcome).where(AuditEvent.action == "live.start")
        ).scalars()
        assert list(outcomes) == ["refused", "success"]

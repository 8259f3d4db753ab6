"""A haematology board with its members and meetings, a referring physician of a member
hospital and their patient, for the tests of cases."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from concilium.boards import case_files, case_store, meetings, registry
from concilium.boards.tables import BoardMeeting
from concilium.platform import audit, patients
from concilium.platform.db import transaction
from concilium.platform.tables import User

from .boards_world import OPERATOR, make_board

NOW = datetime(2027, 3, 15, 8, tzinfo=UTC)
"""A Monday: the board meets on Fridays 19 and 26 March, 2 April (14:00 Paris)."""
PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32

SUMMARY = case_store.CaseFields(
    question="Traitement de première ligne ?",
    diagnosis="Lymphome diffus à grandes cellules B",
    histology="DLBCL, CD20+",
    stage="Ann Arbor IIA",
    performance_status=1,
    history="aucun",
    current_treatment="aucun",
)


@dataclass
class CasesWorld:
    board_id: int
    other_board_id: int
    meetings: list[int]
    """The board's first three meetings, in time order."""
    referrer: User
    coordinator: User
    haematologist: User
    pathologist: User
    outsider: User
    """A member of another board of the same hospital."""
    patient_id: int


def actor(user: User) -> audit.Actor:
    return audit.Actor(user.id, user.username)


def build(world: Any, clock: Any) -> CasesWorld:
    clock.now = NOW
    runtime = world.runtime
    board = make_board(runtime, world.metz.id)
    other = make_board(runtime, world.metz.id, "rcp-digestive", name="RCP digestive")
    referrer = world.user("dr-ref", (world.briey, "referring_physician"), with_totp=True)
    coordinator = world.user("coord", (world.briey, "specialist"), with_totp=True)
    haematologist = world.user("dr-hemato", (world.metz, "specialist"), with_totp=True)
    pathologist = world.user("dr-path", (world.briey, "specialist"), with_totp=True)
    outsider = world.user("dr-digest", (world.metz, "specialist"), with_totp=True)
    with transaction(runtime.sessions) as db:
        found = registry.get_board(db, board.id)
        registry.add_site(db, OPERATOR, found, world.briey.id)
        for user, specialties, role in (
            (coordinator, {"haematology"}, "coordinator"),
            (haematologist, {"haematology"}, "member"),
            (pathologist, {"pathology"}, "facilitator"),
        ):
            registry.set_member(
                db, OPERATOR, found, db.get(User, user.id), frozenset(specialties), role
            )
        digestive = registry.get_board(db, other.id)
        registry.set_member(
            db, OPERATOR, digestive, db.get(User, outsider.id), frozenset({"surgery"})
        )
        meetings.generate_meetings(db, OPERATOR, found, NOW, 3)
        patient = patients.create_patient(
            db,
            actor(referrer),
            world.briey.id,
            "BRY-1",
            patients.Demographics("Lemoine", "Claire"),
        )
        rows = db.query(BoardMeeting).filter_by(board_id=board.id).order_by("starts_at").all()
        return CasesWorld(
            board.id,
            other.id,
            [row.id for row in rows],
            referrer,
            coordinator,
            haematologist,
            pathologist,
            outsider,
            patient.id,
        )


def consent(world: Any, cw: CasesWorld, decision: str = "granted") -> None:
    with transaction(world.runtime.sessions) as db:
        patients.record_consent(
            db,
            actor(cw.referrer),
            patients.get_patient(db, cw.patient_id),
            case_store.MDT_PRESENTATION,
            decision,
            world.briey.id,
        )


def draft(
    world: Any, cw: CasesWorld, fields: case_store.CaseFields = SUMMARY, document: bool = True
) -> int:
    with transaction(world.runtime.sessions) as db:
        board = registry.get_board(db, cw.board_id)
        case = case_store.create_draft(
            db, actor(cw.referrer), board, cw.patient_id, cw.referrer.id, fields, NOW
        )
        if document:
            case_files.add_document(
                db, actor(cw.referrer), case, "pathology_report", "cr-anapath.pdf", PDF, NOW
            )
        return case.id


def submitted(world: Any, cw: CasesWorld) -> int:
    case_id = draft(world, cw)
    with transaction(world.runtime.sessions) as db:
        case_store.submit(db, actor(cw.referrer), case_store.get_case(db, case_id), NOW)
    return case_id


def listed(world: Any, cw: CasesWorld, meeting: int = 0) -> int:
    case_id = submitted(world, cw)
    with transaction(world.runtime.sessions) as db:
        case_store.list_on_meeting(
            db,
            actor(cw.coordinator),
            case_store.get_case(db, case_id),
            case_store.get_meeting(db, cw.meetings[meeting]),
            NOW,
        )
    return case_id

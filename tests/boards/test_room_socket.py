"""The meeting room's websocket: members connect (their presence opens a stretch awaiting
validation), the facilitator hands the presenter role over, the presenter's view reaches the
others, a view from anyone else is refused on their socket only, a latecomer lands on the
current view, a study outside the case is refused; a member of another board is refused
and the refusal audited; a study opened by a participant is an audited view with its
patient; leaving ends the stretch."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from starlette.websockets import WebSocketDisconnect

from concilium.boards import attendance, case_store
from concilium.boards.tables import BoardAttendance, BoardCaseStudy
from concilium.platform.audit import AuditEvent
from concilium.platform.db import transaction
from concilium.platform.errors import Conflict

from .cases_world import actor
from .meeting_world import at, build_meeting, take_up
from .test_case_pages import signed_in

STUDY = "1.2.826.0.1.3680043.8.498.77"
SERIES = "1.2.826.0.1.3680043.8.498.78"


def view(index: int, center: float = 40, width: float = 400, study: str = STUDY) -> dict[str, Any]:
    return {
        "study": study,
        "series": SERIES,
        "index": index,
        "window": {"center": center, "width": width},
        "zoom": 1.5,
        "pan": {"x": 0, "y": 0},
        "measure": None,
    }


def next_of(socket: Any, kind: str) -> dict[str, Any]:
    """The next message of ``kind``, past the presence notices."""
    while True:
        message: dict[str, Any] = socket.receive_json()
        if message["type"] == kind:
            return message
        assert message["type"] == "attendance", message


@pytest.fixture
def meeting(app, world, clock):  # type: ignore[no-untyped-def]
    mw = build_meeting(world, clock)
    clock.now = at(1)
    take_up(world, mw, mw.cases[0], at(2))
    with transaction(world.runtime.sessions) as db:
        db.add(BoardCaseStudy(case_id=mw.cases[0], study_instance_uid=STUDY, modalities="CT"))
    clock.now = at(3)
    return mw


def test_the_presenter_drives_the_others_follow_and_a_latecomer_lands(app, world, meeting):
    cw = meeting.cw
    url = f"wss://testserver/boards/meetings/{meeting.meeting_id}/ws"
    facilitator = signed_in(app, world, cw.pathologist)
    presenter = signed_in(app, world, cw.haematologist)
    follower = signed_in(app, world, meeting.radiologist)
    with (
        facilitator.websocket_connect(url) as f,
        presenter.websocket_connect(url) as p,
        follower.websocket_connect(url) as r,
    ):
        hello = next_of(f, "hello")
        assert hello["runs_meeting"] and hello["room"]["presenter"] is None
        assert not next_of(p, "hello")["runs_meeting"]
        next_of(r, "hello")
        with transaction(world.runtime.sessions) as db:
            rows = db.scalars(select(BoardAttendance)).all()
            assert len(rows) == 3 and all(row.validated_by_id is None for row in rows)

        # Nobody presents yet: a view is refused.
        p.send_json({"type": "view", "view": view(3)})
        assert "presenter" in next_of(p, "error")["detail"]
        # Only the facilitator (or the presenter) hands over.
        r.send_json({"type": "hand_over", "to": meeting.radiologist.id})
        next_of(r, "error")
        f.send_json({"type": "hand_over", "to": cw.haematologist.id})
        for socket in (f, p, r):
            assert next_of(socket, "presenter")["presenter"] == cw.haematologist.id

        # A view from someone who is not the presenter: an error for them, nothing for others.
        r.send_json({"type": "view", "view": view(9, -600, 1500)})
        assert "presenter" in next_of(r, "error")["detail"]
        p.send_json({"type": "view", "view": view(5, 400, 1800), "sent_at": 12.5})
        for socket in (f, r):
            got = next_of(socket, "view")
            assert got["by"] == cw.haematologist.id and got["sent_at"] == 12.5
            assert got["view"]["index"] == 5 and got["view"]["window"]["width"] == 1800
        # A study that is not the case's.
        p.send_json({"type": "view", "view": view(6, study="1.2.3.4")})
        next_of(p, "error")

        late = signed_in(app, world, meeting.second_radiologist)
        with late.websocket_connect(url) as latecomer:
            room = next_of(latecomer, "hello")["room"]
            assert room["presenter"] == cw.haematologist.id
            assert room["view"]["index"] == 5 and room["view"]["window"]["center"] == 400
            # The presenter hands over to the latecomer, who then drives.
            p.send_json({"type": "hand_over", "to": meeting.second_radiologist.id})
            assert next_of(latecomer, "presenter")["presenter"] == meeting.second_radiologist.id
            latecomer.send_json({"type": "view", "view": view(7)})
            for socket in (f, p, r):
                assert next_of(socket, "presenter")["presenter"] == meeting.second_radiologist.id
                assert next_of(socket, "view")["view"]["index"] == 7
            p.send_json({"type": "view", "view": view(8)})
            next_of(p, "error")
        # Leaving the room ends the latecomer's stretch.
        assert next_of(f, "attendance")
        with transaction(world.runtime.sessions) as db:
            row = db.scalar(
                select(BoardAttendance).where(
                    BoardAttendance.user_id == meeting.second_radiologist.id
                )
            )
            assert row is not None and row.left_at is not None


def test_a_member_of_another_board_is_refused_and_audited(app, world, meeting):
    outsider = signed_in(app, world, meeting.cw.outsider)
    with (
        pytest.raises(WebSocketDisconnect) as refused,
        outsider.websocket_connect(f"wss://testserver/boards/meetings/{meeting.meeting_id}/ws"),
    ):
        pass
    assert refused.value.code == 1008
    anonymous = world.client(app)
    with (
        pytest.raises(WebSocketDisconnect),
        anonymous.websocket_connect(f"wss://testserver/boards/meetings/{meeting.meeting_id}/ws"),
    ):
        pass
    with transaction(world.runtime.sessions) as db:
        refusals = db.scalars(
            select(AuditEvent).where(
                AuditEvent.action == "board_case.read", AuditEvent.outcome == "refused"
            )
        ).all()
        assert {e.actor_id for e in refusals} == {meeting.cw.outsider.id, None}
        assert not db.scalars(select(BoardAttendance)).all()


def test_a_study_opened_in_the_room_is_an_audited_view_of_the_case(app, world, meeting):
    member = signed_in(app, world, meeting.radiologist)
    with member.websocket_connect(
        f"wss://testserver/boards/meetings/{meeting.meeting_id}/ws"
    ) as socket:
        next_of(socket, "hello")
        socket.send_json({"type": "opened", "study": "1.2.3"})
        next_of(socket, "error")
        socket.send_json({"type": "opened", "study": STUDY})
        socket.send_json({"type": "nonsense"})
        assert "unknown" in next_of(socket, "error")["detail"]
    with transaction(world.runtime.sessions) as db:
        views = db.scalars(
            select(AuditEvent).where(
                AuditEvent.action == "board_case.read",
                AuditEvent.actor_id == meeting.radiologist.id,
            )
        ).all()
        assert [e.patient_id for e in views] == [meeting.cw.patient_id]
        assert f"study {STUDY}" in str(views[0].detail)


def test_presence_from_the_room_awaits_validation_and_survives_a_reload(app, world, meeting):
    member = actor(meeting.radiologist)
    facilitator = actor(meeting.cw.pathologist)
    with transaction(world.runtime.sessions) as db:
        room = case_store.get_meeting(db, meeting.meeting_id)
        row = attendance.joined_room(db, member, room, at(3))
        assert row is not None and row.validated_by_id is None
        attendance.validate(db, facilitator, room, row.id, at(3))
        with pytest.raises(Conflict):
            attendance.validate(db, facilitator, room, row.id, at(3))
        attendance.left_room(db, member, room, at(4))
        # Back ten seconds later (a page reloaded): the same validated stretch goes on.
        again = attendance.joined_room(db, member, room, at(4) + timedelta(seconds=10))
        assert again is not None and again.id == row.id and again.left_at is None
        attendance.left_room(db, member, room, at(5))
        later = attendance.joined_room(db, member, room, at(7))
        assert later is not None and later.id != row.id and later.validated_by_id is None
        assert attendance.present_ids(db, room) == frozenset({meeting.radiologist.id})

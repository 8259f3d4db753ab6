"""A meeting's room as the database keeps it: the synchronised view (who presents, what
they show) and the studies the presenter may show.

The rules are :mod:`concilium.boards.view_sync`'s; this module loads a meeting's
:class:`~concilium.boards.view_sync.RoomView`, saves it after a change and tells which
studies may be shown: those attached to the case under discussion. Every process reads and
writes the same row, so a change made through one process is the state every latecomer
gets, whichever process serves them.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from concilium.boards import attendance, case_store, view_sync
from concilium.boards.tables import BoardMeeting, BoardMeetingView
from concilium.platform.errors import Conflict, InvalidInput
from concilium.platform.i18n import _

__all__ = ["TOPIC", "load", "save", "showable_studies"]

TOPIC = "boards.meeting_room"
"""Event bus topic of what every socket of a meeting is told: ``{"meeting": id,
"origin": socket token or "", "event": {...}}``."""


def _row(session: Session, meeting: BoardMeeting, lock: bool = False) -> BoardMeetingView | None:
    return session.get(BoardMeetingView, meeting.id, with_for_update=lock)


def load(session: Session, meeting: BoardMeeting, lock: bool = False) -> view_sync.RoomView:
    """The meeting's view as it stands (locked for the change to come with ``lock``)."""
    row = _row(session, meeting, lock)
    if row is None:
        return view_sync.RoomView()
    view = None
    if row.view is not None:
        try:
            view = view_sync.parse_view(row.view)
        except view_sync.ViewError:
            view = None
    return view_sync.RoomView(row.presenter_id, view, row.version)


def save(session: Session, meeting: BoardMeeting, room: view_sync.RoomView, now: datetime) -> None:
    """Keep ``room`` as the meeting's view."""
    row = _row(session, meeting)
    if row is None:
        row = BoardMeetingView(meeting_id=meeting.id)
        session.add(row)
    row.presenter_id = room.presenter_id
    row.view = None if room.view is None else room.view.to_json()
    row.version = room.version
    row.updated_at = now
    session.flush()


def showable_studies(session: Session, meeting: BoardMeeting) -> frozenset[str]:
    """The Study Instance UIDs attached to the case under discussion (none without one)."""
    case = attendance.under_discussion(session, meeting)
    if case is None:
        return frozenset()
    return frozenset(s.study_instance_uid for s in case_store.studies_of(session, case))


def check_showable(session: Session, meeting: BoardMeeting, study: str) -> None:
    """The presenter shows a study of the case under discussion, nothing else."""
    if attendance.under_discussion(session, meeting) is None:
        raise Conflict(_("No case is being discussed."))
    if study not in showable_studies(session, meeting):
        raise InvalidInput(_("Show a study of the case under discussion."))

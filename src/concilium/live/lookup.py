"""Finding live sessions: one by its id, those a list shows (of the reader's sites, or
that they are invited to), those showing a patient.

Who may see each is the policy's decision, on :func:`concilium.live.invitations.session_target`.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from concilium.live.tables import LiveSession
from concilium.platform.errors import NotFound
from concilium.platform.i18n import _

__all__ = [
    "find_session",
    "get_session",
    "list_sessions",
    "patient_sessions",
]


def find_session(db: Session, session_id: int) -> LiveSession | None:
    """The session of this id, if there is one."""
    return db.get(LiveSession, session_id)


def get_session(db: Session, session_id: int) -> LiveSession:
    """The session of this id; :class:`NotFound` otherwise."""
    live = find_session(db, session_id)
    if live is None:
        raise NotFound(_("No such live session."))
    return live


def list_sessions(
    db: Session, site_ids: frozenset[int], invited_ids: frozenset[str]
) -> list[LiveSession]:
    """Sessions of these sites, and sessions the caller is invited to, soonest first."""
    ids = [int(i) for i in invited_ids if i.isdigit()]
    query = select(LiveSession).where(LiveSession.site_id.in_(site_ids) | LiveSession.id.in_(ids))
    return list(db.execute(query.order_by(LiveSession.scheduled_at)).scalars())


def patient_sessions(db: Session, patient_id: int) -> list[LiveSession]:
    """The sessions showing this patient, newest first (the caller asks the policy about
    each with :func:`concilium.live.invitations.session_target`)."""
    query = select(LiveSession).where(LiveSession.patient_id == patient_id)
    return list(
        db.execute(query.order_by(LiveSession.scheduled_at.desc(), LiveSession.id.desc())).scalars()
    )

"""Live sessions on the Janus media server: rooms, credentials, cameras and their control.

What other services may call: a session is found by its id (:func:`find_session`,
:func:`get_session`), scheduled (:func:`create_session`), and its invitees managed
(:func:`invite`, :func:`role_of`); a person's invitations (:func:`invitations_of`) and a
patient's sessions (:func:`patient_sessions`) are read; the policy decides about it on
:func:`session_target` with the :class:`LiveAction` actions; it goes live and ends through
:class:`LiveSessions`, which brings everything that goes with each step. A
:class:`LiveSession` is read, never written, outside this package.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from concilium.platform.services import public_face

if TYPE_CHECKING:
    from concilium.live.actions import LiveAction
    from concilium.live.invitations import (
        RESOURCE_KIND,
        Invitation,
        invitations_of,
        invite,
        role_of,
        session_target,
    )
    from concilium.live.lifecycle import create_session
    from concilium.live.lookup import find_session, get_session, patient_sessions
    from concilium.live.process import LiveProcess
    from concilium.live.sessions import LiveSessions, MediaOutputs
    from concilium.live.tables import LiveSession

__all__ = [
    "RESOURCE_KIND",
    "Invitation",
    "LiveAction",
    "LiveProcess",
    "LiveSession",
    "LiveSessions",
    "MediaOutputs",
    "create_session",
    "find_session",
    "get_session",
    "invitations_of",
    "invite",
    "patient_sessions",
    "role_of",
    "session_target",
]

_MODULE_OF = {
    "RESOURCE_KIND": "concilium.live.invitations",
    "LiveAction": "concilium.live.actions",
    "LiveProcess": "concilium.live.process",
    "LiveSession": "concilium.live.tables",
    "LiveSessions": "concilium.live.sessions",
    "MediaOutputs": "concilium.live.sessions",
    "create_session": "concilium.live.lifecycle",
    "find_session": "concilium.live.lookup",
    "get_session": "concilium.live.lookup",
    "Invitation": "concilium.live.invitations",
    "invitations_of": "concilium.live.invitations",
    "invite": "concilium.live.invitations",
    "patient_sessions": "concilium.live.lookup",
    "role_of": "concilium.live.invitations",
    "session_target": "concilium.live.invitations",
}
"""The module each name of the public face comes from."""


__getattr__ = public_face(__name__, _MODULE_OF)

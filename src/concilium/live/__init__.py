"""Live sessions on the Janus media server: rooms, credentials, cameras and their control.

What other services may call: a session is found by its id (:func:`find_session`,
:func:`get_session`), scheduled (:func:`create_session`), and its invitees managed
(:func:`invite`, :func:`role_of`); the policy decides about it on :func:`session_target` with
the :class:`LiveAction` actions; it goes live and ends through :class:`LiveSessions`, which
brings everything that goes with each step. A :class:`LiveSession` is read, never written,
outside this package.
"""

from concilium.live.actions import LiveAction
from concilium.live.process import LiveProcess
from concilium.live.service import (
    RESOURCE_KIND,
    create_session,
    find_session,
    get_session,
    invite,
    role_of,
    session_target,
)
from concilium.live.sessions import LiveSessions, MediaOutputs
from concilium.live.tables import LiveSession

__all__ = [
    "RESOURCE_KIND",
    "LiveAction",
    "LiveProcess",
    "LiveSession",
    "LiveSessions",
    "MediaOutputs",
    "create_session",
    "find_session",
    "get_session",
    "invite",
    "role_of",
    "session_target",
]

"""What people may do in live sessions, as actions of the one policy.

Live sessions belong to the site that runs them; an invitation is a share of the session to
one person, and the session builds its target so that only the invitees whose role in the
session carries the action count as shared (see :func:`concilium.live.invitations.session_target`).
A session may show a patient, so the platform administrator is not granted by office.
"""

from __future__ import annotations

from concilium.platform.policy import ANY_ROLE, Action, Rule

_ORGANISERS = frozenset(
    {"admin", "coordinator", "specialist", "radiologist", "referring_physician"}
)
_DIRECTORS = frozenset({"coordinator", "specialist", "technologist", "engineer"})


class LiveAction:
    """The live service's actions; ``concilium.platform.policy.decide`` applies their rules."""

    LIVE_READ = Action(
        "live.read", Rule(ANY_ROLE, "live:read", via_share=True, platform_admin=False)
    )
    LIVE_MANAGE = Action("live.manage", Rule(_ORGANISERS, "live:manage", platform_admin=False))
    LIVE_JOIN = Action(
        "live.join", Rule(ANY_ROLE, "live:join", via_share=True, platform_admin=False)
    )
    LIVE_DIRECT = Action(
        "live.direct", Rule(_DIRECTORS, "live:direct", via_share=True, platform_admin=False)
    )
    LIVE_MODERATE = Action(
        "live.moderate",
        Rule(_ORGANISERS, "live:moderate", via_share=True, platform_admin=False),
    )
    # Chat and drawing are part of taking part: a token needs the same scope as joining.
    LIVE_CHAT = Action(
        "live.chat", Rule(ANY_ROLE, "live:join", via_share=True, platform_admin=False)
    )
    """Write in the session's chat: whoever may join it (a viewer too; questions go to the
    moderators, chat lines to everyone)."""
    LIVE_DRAW = Action(
        "live.draw", Rule(_DIRECTORS, "live:join", via_share=True, platform_admin=False)
    )
    """Draw on the picture: those who direct by their site role, and those whose role in the
    session sends media (director, presenter, participant; staff of the owning site who
    were not invited take part as participants). The target lists the latter as shared
    (:data:`concilium.live.invitations.ROLE_ACTIONS`)."""
    LIVE_PUBLISH = Action(
        "live.publish", Rule(_DIRECTORS, "live:join", via_share=True, platform_admin=False)
    )
    """Send a camera, a microphone or a screen into the session's room: those who direct by
    their site role, and those whose role in the session sends media, as for drawing; never
    a learner in a session showing a patient (:data:`concilium.live.invitations.WATCH_ONLY`):
    learners watch."""

"""What people may do with boards, as actions of the one policy.

A board (a multidisciplinary meeting, RCP) is run by one site, its organising site: that
site's administrators and coordinators manage it (schedule, quorum rules, members, member
sites, meetings) and see it. Its members, of whatever hospital, see the board, its members
and its meetings: the board's target lists them as those it is shared with
(:func:`concilium.boards.registry.board_target`), so a member of another board, or a
physician of the organising hospital who is not a member, is refused.

A board's cases hold patient data: administrators never see them (``platform_admin`` off,
``admin`` in no rule). A case is seen by its referring physician, the board's members and
the coordinators of the organising site (:func:`concilium.boards.case_store.case_target`);
it is prepared, submitted and withdrawn by its referring physician only; a board's agenda
is built by its coordinators and facilitators and the organising site's coordinators. A
case is submitted to a board by a physician of one of its member sites, or by a member.
A meeting is run by the board's facilitators only: they record attendance, take up a case
and validate its decision, with their second factor.
"""

from __future__ import annotations

from concilium.platform.policy import Action, Rule

_ORGANISERS = frozenset({"admin", "coordinator"})
_SITE_COORDINATORS = frozenset({"coordinator"})
_PHYSICIANS = frozenset({"referring_physician", "specialist", "radiologist"})


class BoardAction:
    """The boards' actions; ``concilium.platform.policy.decide`` applies their rules."""

    BOARD_MANAGE = Action("board.manage", Rule(_ORGANISERS, "boards:manage"))
    """Create a board at a site, edit it, its members, sites and quorum, plan its meetings."""
    BOARD_READ = Action("board.read", Rule(_ORGANISERS, "boards:read", via_share=True))
    """See a board: its members and its meetings; its members and its organisers."""
    CASE_SUBMIT = Action(
        "board_case.submit",
        Rule(_PHYSICIANS, "boards:write", via_share=True, platform_admin=False),
    )
    """Prepare a case for a board: physicians of its member sites, and its members."""
    CASE_READ = Action(
        "board_case.read",
        Rule(_SITE_COORDINATORS, "boards:read", via_share=True, platform_admin=False),
    )
    """See a case: its referring physician, the board's members, the organising site's
    coordinators."""
    CASE_EDIT = Action(
        "board_case.edit",
        Rule(frozenset(), "boards:write", via_share=True, platform_admin=False),
    )
    """Edit a draft, attach documents and studies, submit or withdraw: the referring
    physician."""
    AGENDA_MANAGE = Action(
        "board_agenda.manage",
        Rule(_SITE_COORDINATORS, "boards:write", via_share=True, platform_admin=False),
    )
    """Build a meeting's agenda (list, order, time, specialties), postpone, record without
    discussion: the board's coordinators and facilitators, the organising site's
    coordinators."""
    MEETING_RUN = Action(
        "board_meeting.run",
        Rule(frozenset(), "boards:write", via_share=True, platform_admin=False),
    )
    """Run a meeting: record and validate attendance, take up a case, validate a decision
    and sign its addenda: the board's facilitators."""
    STATISTICS_READ = Action(
        "board.statistics",
        Rule(_ORGANISERS, "boards:read", via_share=True),
    )
    """See a board's statistics (counts only, no patient): the board's coordinators and
    facilitators, the organising site's administrators and coordinators."""

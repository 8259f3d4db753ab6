"""What people may do with boards, as actions of the one policy.

A board (a multidisciplinary meeting, RCP) is run by one site, its organising site: that
site's administrators and coordinators manage it (schedule, quorum rules, members, member
sites, meetings) and see it. Its members, of whatever hospital, see the board, its members
and its meetings: the board's target lists them as those it is shared with
(:func:`concilium.boards.registry.board_target`), so a member of another board, or a
physician of the organising hospital who is not a member, is refused. A board itself holds no
patient data; its cases will, and will have actions of their own.
"""

from __future__ import annotations

from concilium.platform.policy import Action, Rule

_ORGANISERS = frozenset({"admin", "coordinator"})


class BoardAction:
    """The boards' actions; ``concilium.platform.policy.decide`` applies their rules."""

    BOARD_MANAGE = Action("board.manage", Rule(_ORGANISERS, "boards:manage"))
    """Create a board at a site, edit it, its members, sites and quorum, plan its meetings."""
    BOARD_READ = Action("board.read", Rule(_ORGANISERS, "boards:read", via_share=True))
    """See a board: its members and its meetings; its members and its organisers."""

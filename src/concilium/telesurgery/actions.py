"""What people and gateways may do with telesurgical procedures, as actions of the one policy.

A telesurgical procedure belongs to both its sites (console and robot). The surgeon is a
specialist; engineers enrol the gateways, issue keys and supervise the link. It treats a
patient, so the platform administrator is not granted by office.
"""

from __future__ import annotations

from concilium.platform.policy import Action, Rule

_TEAM = frozenset({"specialist", "engineer", "coordinator"})
_SUPERVISORS = frozenset({"engineer", "specialist"})


class TelesurgeryAction:
    """The telesurgery service's actions; ``concilium.platform.policy.decide`` applies them."""

    PROCEDURE_READ = Action("procedure.read", Rule(_TEAM, "telesurgery:read", platform_admin=False))
    PROCEDURE_MANAGE = Action(
        "procedure.manage", Rule(_TEAM, "telesurgery:manage", platform_admin=False)
    )
    PROCEDURE_START = Action(
        "procedure.start",
        Rule(frozenset({"specialist"}), "telesurgery:manage", platform_admin=False),
    )
    PROCEDURE_SUPERVISE = Action(
        "procedure.supervise", Rule(_SUPERVISORS, "telesurgery:read", platform_admin=False)
    )
    # Gateways report their timeline with a token of this scope held by an engineer account.
    PROCEDURE_INGEST = Action(
        "procedure.ingest",
        Rule(frozenset({"engineer"}), "telesurgery:gateway", platform_admin=False),
    )

"""The procedures a telesurgery request may touch: the one it names, authorised by the
policy on the very procedure (:func:`concilium.telesurgery.procedures.procedure_target`), the
ones a list may show, and the sites where a new one may be planned.
"""

from __future__ import annotations

from concilium.platform.errors import NotFound
from concilium.platform.i18n import _
from concilium.platform.policy import Action, Target, decide
from concilium.telesurgery import procedures
from concilium.telesurgery.actions import TelesurgeryAction
from concilium.telesurgery.tables import Procedure
from concilium.web.context import Ctx, record_refusal


def authorized_procedure(ctx: Ctx, procedure_id: int, action: Action) -> Procedure:
    """The procedure, if the caller may perform ``action`` on it (404 and 403 alike audited)."""
    procedure = ctx.db.get(Procedure, procedure_id)
    if procedure is None:
        target = Target(procedures.RESOURCE_KIND, str(procedure_id))
        record_refusal(ctx.db, ctx.actor, action, target, "no such procedure")
        raise NotFound(_("procedure %(id)s not found") % {"id": procedure_id})
    ctx.authorize(action, procedures.procedure_target(procedure))
    return procedure


def may(ctx: Ctx, procedure: Procedure, action: Action) -> bool:
    """Whether the caller may perform ``action`` on ``procedure`` (asked, not audited)."""
    return decide(ctx.principal, action, procedures.procedure_target(procedure)).allowed


def visible_procedures(ctx: Ctx) -> list[Procedure]:
    """The procedures the caller may read, newest first."""
    sites = ctx.visible_sites(TelesurgeryAction.PROCEDURE_READ)
    found = procedures.list_procedures(ctx.db, sites if sites is not None else frozenset())
    return [p for p in found if may(ctx, p, TelesurgeryAction.PROCEDURE_READ)]


def may_plan_at(ctx: Ctx, *site_ids: int) -> None:
    """Planning needs the right at both sites: each side commits its people and its robot."""
    for site in sorted(set(site_ids)):
        ctx.authorize(
            TelesurgeryAction.PROCEDURE_MANAGE,
            Target(procedures.RESOURCE_KIND, site_ids=frozenset({site})),
        )

"""The sessions a live request may touch: the one it names, authorised by the policy on
the very session (:func:`concilium.live.invitations.session_target`), and the ones a list may
show; and a new session, scheduled by whoever may organise at its site.
"""

from __future__ import annotations

from datetime import datetime

from concilium.live import invitations, lifecycle, lookup
from concilium.live.actions import LiveAction
from concilium.live.tables import LiveSession
from concilium.platform import accounts, patients, sharing
from concilium.platform.errors import NotFound
from concilium.platform.i18n import _
from concilium.platform.policy import Action, Decision, PlatformAction, Target, decide
from concilium.web.context import Ctx, record_refusal


def authorized_session(ctx: Ctx, session_id: int, action: Action) -> tuple[LiveSession, Decision]:
    """The session, if the caller may perform ``action`` on it (404 and 403 alike audited)."""
    live = lookup.find_session(ctx.db, session_id)
    if live is None:
        target = Target(invitations.RESOURCE_KIND, str(session_id))
        record_refusal(ctx.db, ctx.actor, action, target, "none")
        raise NotFound(_("live session %(id)s not found") % {"id": session_id})
    target = invitations.session_target(ctx.db, live, action, ctx.now)
    return live, ctx.authorize(action, target)


def end_transaction(ctx: Ctx) -> None:
    """End the request's transaction before awaiting the media plane or a camera.

    On SQLite every transaction holds the write lock from its start, and an async handler
    that awaited while holding it would stall every other request of the event loop. Nothing
    was written yet; committing (not rolling back) keeps the loaded objects usable without
    a reload that would open a new transaction.
    """
    ctx.db.commit()


def may(ctx: Ctx, live: LiveSession, action: Action) -> bool:
    """Whether the policy lets the caller perform ``action`` on ``live`` (not audited: for
    what a page offers)."""
    return decide(
        ctx.principal, action, invitations.session_target(ctx.db, live, action, ctx.now)
    ).allowed


def visible_sessions(ctx: Ctx) -> list[LiveSession]:
    """The sessions the caller may see: those of their sites and those they are invited to,
    each granted by ``decide``, soonest first."""
    sites = ctx.visible_sites(LiveAction.LIVE_READ) or frozenset()
    invited = sharing.shared_resource_ids(
        ctx.db, invitations.RESOURCE_KIND, ctx.user.id, frozenset(), ctx.now
    )
    found = lookup.list_sessions(ctx.db, sites, invited)
    return [s for s in found if may(ctx, s, LiveAction.LIVE_READ)]


def organiser_sites(ctx: Ctx) -> list[tuple[int, str]]:
    """Sites (id, name) where the caller may schedule a session."""
    allowed = ctx.visible_sites(LiveAction.LIVE_MANAGE) or frozenset()
    return [(s.id, s.name) for s in accounts.list_sites(ctx.db) if s.id in allowed]


def create_session(
    ctx: Ctx,
    *,
    kind: str,
    title: str,
    site_id: int,
    scheduled_at: datetime,
    patient_id: int | None,
    record: bool,
) -> LiveSession:
    """Schedule a session at ``site_id`` for a caller who may organise there (and may see
    the patient shown, if any); committed."""
    at_site = Target(invitations.RESOURCE_KIND, site_ids=frozenset({site_id}))
    ctx.authorize(LiveAction.LIVE_MANAGE, at_site)
    if patient_id is not None:
        # Showing a patient to others needs the right to see that patient oneself.
        patient = patients.get_patient(ctx.db, patient_id)
        ctx.authorize(
            PlatformAction.PATIENT_READ, patients.patient_target(ctx.db, patient, ctx.now)
        )
    live = lifecycle.create_session(
        ctx.db,
        ctx.actor,
        kind=kind,
        title=title,
        site_id=site_id,
        scheduled_at=scheduled_at,
        now=ctx.now,
        patient_id=patient_id,
        record=record,
    )
    ctx.commit()
    return live

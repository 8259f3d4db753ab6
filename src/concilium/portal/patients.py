"""Patients: search and registration, the patient page with identifiers, consent,
shares and merge."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import Response

from concilium.platform import directory, patients
from concilium.platform.accounts import active_users, site_names
from concilium.platform.errors import ConciliumError, InvalidInput
from concilium.platform.i18n import _
from concilium.platform.policy import PlatformAction, decide
from concilium.portal import flows
from concilium.portal.dashboard import patient_items
from concilium.portal.home import PROCEDURE_STATES, SESSION_KINDS, SESSION_ROLES
from concilium.web.context import Ctx, gate
from concilium.web.forms import Text, date_or_none, redirect_to, run_form_action
from concilium.web.rendering import render_page

router = APIRouter(include_in_schema=False)


# --- patients ----------------------------------------------------------------------------------


@router.get("/patients")
def patients_page(
    request: Request,
    ctx: Annotated[Ctx, gate(PlatformAction.PATIENT_READ)],
    q: Annotated[str, Query(max_length=100)] = "",
) -> Response:
    return _patients_view(request, ctx, q, "", {})


def _patients_view(
    request: Request, ctx: Ctx, q: str, error: str, form: dict[str, Any], status: int = 200
) -> Response:
    found = flows.search_patients(ctx, q, 100, 0)
    sites = site_names(ctx.db)
    writable = ctx.visible_sites(PlatformAction.PATIENT_WRITE)
    write_sites = [(i, n) for i, n in sites.items() if writable is None or i in writable]
    return render_page(
        request,
        "portal/patients.html",
        ctx,
        status,
        patients=found,
        q=q,
        sites=sites,
        write_sites=write_sites,
        error=error,
        form=form,
    )


@router.post("/patients")
def patients_create(
    request: Request,
    ctx: Annotated[Ctx, gate(PlatformAction.PATIENT_WRITE)],
    site_id: Annotated[int, Form()],
    identifier: Annotated[str, Form(max_length=64)],
    family_name: Annotated[str, Form(max_length=100)],
    given_name: Annotated[str, Form(max_length=100)],
    birth_date: Annotated[str, Form(max_length=10)] = "",
    sex: Annotated[str, Form(max_length=1)] = "U",
) -> Response:
    form = {
        "site_id": site_id,
        "identifier": identifier,
        "family_name": family_name,
        "given_name": given_name,
        "birth_date": birth_date,
        "sex": sex,
    }
    try:
        who = patients.Demographics(family_name, given_name, date_or_none(birth_date), sex)
        patient = flows.create_patient(ctx, site_id, identifier, who)
    except ConciliumError as exc:
        ctx.db.rollback()
        if exc.status == 403:
            raise
        return _patients_view(request, ctx, "", exc.detail, form, exc.status)
    return redirect_to(f"/patients/{patient.id}")


@router.get("/patients/{patient_id}")
def patient_page(
    request: Request, patient_id: int, ctx: Annotated[Ctx, gate(PlatformAction.PATIENT_READ)]
) -> Response:
    return _patient_view(request, ctx, patient_id, "")


def _patient_view(
    request: Request, ctx: Ctx, patient_id: int, error: str, status: int = 200
) -> Response:
    patient = flows.read_patient(ctx, patient_id)
    _patient, standing, history = flows.consents(ctx, patient_id)
    target = patients.patient_target(ctx.db, patient, ctx.now)
    can_share = decide(ctx.principal, PlatformAction.SHARE_MANAGE, target).allowed
    shares = flows.patient_shares(ctx, patient_id) if can_share else []
    sites = site_names(ctx.db)
    names = {u.id: u.full_name for u in active_users(ctx.db)}
    return render_page(
        request,
        "portal/patient.html",
        ctx,
        status,
        patient=patient,
        standing=standing,
        history=history,
        shares=shares,
        sites=sites,
        names=names,
        error=error,
        can_write=decide(ctx.principal, PlatformAction.PATIENT_WRITE, target).allowed,
        can_consent=decide(ctx.principal, PlatformAction.CONSENT_RECORD, target).allowed,
        can_share=can_share,
        can_merge=decide(ctx.principal, PlatformAction.PATIENT_MERGE, target).allowed,
        emergency=decide(ctx.principal, PlatformAction.PATIENT_READ, target).emergency,
        my_sites=[(s, sites[s]) for s in sorted(ctx.principal.roles) if s in sites],
        purposes=patients.PURPOSES,
        decisions=patients.DECISIONS,
        default_expiry=(ctx.now + timedelta(days=7)).date().isoformat(),
        items=patient_items(ctx, patient.id),
        session_kinds=SESSION_KINDS,
        session_roles=SESSION_ROLES,
        procedure_states=PROCEDURE_STATES,
    )


def _patient_action(request: Request, ctx: Ctx, patient_id: int, run: Any) -> Response:
    return run_form_action(
        ctx,
        run,
        lambda exc: _patient_view(request, ctx, patient_id, exc.detail, exc.status),
        f"/patients/{patient_id}",
    )


@router.post("/patients/{patient_id}/identifiers")
def patient_identifier(
    request: Request,
    patient_id: int,
    ctx: Annotated[Ctx, gate(PlatformAction.PATIENT_WRITE)],
    site_id: Annotated[int, Form()],
    value: Annotated[str, Form(max_length=64)],
) -> Response:
    return _patient_action(
        request, ctx, patient_id, lambda: flows.add_identifier(ctx, patient_id, site_id, value)
    )


@router.post("/patients/{patient_id}/consents")
def patient_consent(
    request: Request,
    patient_id: int,
    ctx: Annotated[Ctx, gate(PlatformAction.CONSENT_RECORD)],
    purpose: Annotated[str, Form(max_length=32)],
    decision: Annotated[str, Form(max_length=16)],
    site_id: Annotated[int, Form()],
    note: Text = "",
) -> Response:
    return _patient_action(
        request,
        ctx,
        patient_id,
        lambda: flows.record_consent(ctx, patient_id, purpose, decision, site_id, note),
    )


@router.post("/patients/{patient_id}/shares")
def patient_share(
    request: Request,
    patient_id: int,
    ctx: Annotated[Ctx, gate(PlatformAction.SHARE_MANAGE)],
    expires_on: Annotated[str, Form(max_length=10)],
    to_site_id: Annotated[str, Form(max_length=12)] = "",
    to_user_id: Annotated[str, Form(max_length=12)] = "",
    to_user: Annotated[str, Form(max_length=64)] = "",
    reason: Text = "",
) -> Response:
    def run() -> None:
        day = date_or_none(expires_on)
        if day is None:
            raise InvalidInput(_("Give the day the share ends."))
        user_id = int(to_user_id) if to_user_id.isdigit() else None
        if to_user.strip():
            user_id = directory.named(ctx.db, to_user).id
        flows.share_patient(
            ctx,
            patient_id,
            to_site_id=int(to_site_id) if to_site_id.isdigit() else None,
            to_user_id=user_id,
            expires_at=datetime.combine(day, time(23, 59), tzinfo=UTC),
            reason=reason,
        )

    return _patient_action(request, ctx, patient_id, run)


@router.post("/shares/{share_id}/revoke")
def share_revoke(share_id: int, ctx: Annotated[Ctx, gate(PlatformAction.SHARE_MANAGE)]) -> Response:
    share = flows.revoke_share(ctx, share_id)
    return redirect_to(f"/patients/{share.resource_id}")


@router.post("/patients/{patient_id}/merge")
def patient_merge(
    request: Request,
    patient_id: int,
    ctx: Annotated[Ctx, gate(PlatformAction.PATIENT_MERGE)],
    duplicate_id: Annotated[int, Form()],
) -> Response:
    return _patient_action(
        request, ctx, patient_id, lambda: flows.merge_patients(ctx, patient_id, duplicate_id)
    )

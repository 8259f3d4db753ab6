"""JSON API (``/api/v1``): the same use-cases as the pages, for scripts and other systems."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from pydantic import AwareDatetime

from concilium.platform import audit
from concilium.platform.account_links import IssuedLink
from concilium.platform.patients import Demographics
from concilium.platform.policy import PlatformAction
from concilium.platform.tables import Consent
from concilium.portal import flows
from concilium.portal.schemas import (
    AccountLinkOut,
    AlertOut,
    AuditEventOut,
    ConsentIn,
    ConsentOut,
    ConsentSummary,
    CreatedUserOut,
    DemographicsIn,
    EmergencyIn,
    EmergencyOut,
    IdentifierIn,
    IssuedTokenOut,
    MeOut,
    MergeIn,
    PatientIn,
    PatientOut,
    ResetLinkIn,
    RolesIn,
    ShareIn,
    ShareOut,
    SiteIn,
    SiteOut,
    TokenIn,
    TokenOut,
    UserIn,
    UserOut,
)
from concilium.web.context import Ctx, gate

router = APIRouter(prefix="/api/v1", tags=["platform"])

Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0)]


@router.get("/me")
def me(ctx: Annotated[Ctx, gate(PlatformAction.HOME)]) -> MeOut:
    ctx.authorize(PlatformAction.HOME)
    scopes = sorted(ctx.principal.scopes) if ctx.principal.scopes is not None else None
    return MeOut(user=UserOut.of(ctx.user), scopes=scopes)


@router.get("/sites")
def list_sites(ctx: Annotated[Ctx, gate(PlatformAction.SITE_LIST)]) -> list[SiteOut]:
    return [SiteOut.of(s) for s in flows.list_sites(ctx)]


@router.post("/sites", status_code=201)
def create_site(body: SiteIn, ctx: Annotated[Ctx, gate(PlatformAction.SITE_MANAGE)]) -> SiteOut:
    return SiteOut.of(flows.create_site(ctx, body.name, body.finess))


@router.get("/users")
def list_users(ctx: Annotated[Ctx, gate(PlatformAction.USER_READ)]) -> list[UserOut]:
    return [UserOut.of(u) for u in flows.list_users(ctx)]


def _link_out(issued: IssuedLink) -> AccountLinkOut:
    return AccountLinkOut(
        url=issued.url, purpose=issued.record.purpose, expires_at=issued.record.expires_at
    )


@router.post("/users", status_code=201)
def create_user(
    body: UserIn, ctx: Annotated[Ctx, gate(PlatformAction.USER_MANAGE)]
) -> CreatedUserOut:
    user, link = flows.create_user(
        ctx,
        username=body.username,
        full_name=body.full_name,
        roles=[(r.site_id, r.role) for r in body.roles],
        email=body.email,
        profession=body.profession,
        specialty=body.specialty,
        rpps=body.rpps,
    )
    return CreatedUserOut(**UserOut.of(user).model_dump(), setup_link=_link_out(link))


@router.post("/users/{user_id}/reset-link", status_code=201)
def reset_link(
    user_id: int, body: ResetLinkIn, ctx: Annotated[Ctx, gate(PlatformAction.USER_MANAGE)]
) -> AccountLinkOut:
    """A single-use link resetting the account's password and second factor."""
    return _link_out(flows.issue_reset_link(ctx, user_id, body.code))


@router.get("/users/{user_id}")
def read_user(user_id: int, ctx: Annotated[Ctx, gate(PlatformAction.USER_READ)]) -> UserOut:
    return UserOut.of(flows.read_user(ctx, user_id))


@router.put("/users/{user_id}/roles")
def set_roles(
    user_id: int, body: RolesIn, ctx: Annotated[Ctx, gate(PlatformAction.USER_MANAGE)]
) -> UserOut:
    return UserOut.of(flows.set_user_roles(ctx, user_id, [(r.site_id, r.role) for r in body.roles]))


@router.post("/users/{user_id}/disable")
def disable_user(user_id: int, ctx: Annotated[Ctx, gate(PlatformAction.USER_MANAGE)]) -> UserOut:
    return UserOut.of(flows.set_user_disabled(ctx, user_id, True))


@router.post("/users/{user_id}/enable")
def enable_user(user_id: int, ctx: Annotated[Ctx, gate(PlatformAction.USER_MANAGE)]) -> UserOut:
    return UserOut.of(flows.set_user_disabled(ctx, user_id, False))


@router.get("/tokens")
def list_tokens(ctx: Annotated[Ctx, gate(PlatformAction.TOKEN_MANAGE)]) -> list[TokenOut]:
    return [TokenOut.of(t) for t in flows.list_tokens(ctx)]


@router.post("/tokens", status_code=201)
def issue_token(
    body: TokenIn, ctx: Annotated[Ctx, gate(PlatformAction.TOKEN_MANAGE)]
) -> IssuedTokenOut:
    issued = flows.issue_token(ctx, body.name, body.scopes, body.days, body.user_id, body.code)
    return IssuedTokenOut(**TokenOut.of(issued.record).model_dump(), secret=issued.secret)


@router.delete("/tokens/{token_id}", status_code=204)
def revoke_token(token_id: str, ctx: Annotated[Ctx, gate(PlatformAction.TOKEN_MANAGE)]) -> Response:
    flows.revoke_token(ctx, token_id)
    return Response(status_code=204)


@router.get("/patients")
def search_patients(
    ctx: Annotated[Ctx, gate(PlatformAction.PATIENT_READ)],
    q: Annotated[str, Query(max_length=100)] = "",
    limit: Limit = 50,
    offset: Offset = 0,
) -> list[PatientOut]:
    return [PatientOut.of(p) for p in flows.search_patients(ctx, q, limit, offset)]


@router.post("/patients", status_code=201)
def create_patient(
    body: PatientIn, ctx: Annotated[Ctx, gate(PlatformAction.PATIENT_WRITE)]
) -> PatientOut:
    who = Demographics(body.family_name, body.given_name, body.birth_date, body.sex)
    return PatientOut.of(flows.create_patient(ctx, body.site_id, body.identifier, who))


@router.get("/patients/{patient_id}")
def read_patient(
    patient_id: int, ctx: Annotated[Ctx, gate(PlatformAction.PATIENT_READ)]
) -> PatientOut:
    return PatientOut.of(flows.read_patient(ctx, patient_id))


@router.put("/patients/{patient_id}")
def update_patient(
    patient_id: int, body: DemographicsIn, ctx: Annotated[Ctx, gate(PlatformAction.PATIENT_WRITE)]
) -> PatientOut:
    who = Demographics(body.family_name, body.given_name, body.birth_date, body.sex)
    return PatientOut.of(flows.update_patient(ctx, patient_id, who))


@router.post("/patients/{patient_id}/identifiers", status_code=201)
def add_identifier(
    patient_id: int, body: IdentifierIn, ctx: Annotated[Ctx, gate(PlatformAction.PATIENT_WRITE)]
) -> PatientOut:
    return PatientOut.of(flows.add_identifier(ctx, patient_id, body.site_id, body.value))


@router.post("/patients/{patient_id}/merge")
def merge_patient(
    patient_id: int, body: MergeIn, ctx: Annotated[Ctx, gate(PlatformAction.PATIENT_MERGE)]
) -> PatientOut:
    return PatientOut.of(flows.merge_patients(ctx, patient_id, body.duplicate_id))


def _consent_out(c: Consent) -> ConsentOut:
    return ConsentOut(
        id=c.id,
        purpose=c.purpose,
        decision=c.decision,
        site_id=c.site_id,
        recorded_by=c.recorded_by_id,
        recorded_at=c.recorded_at,
        note=c.note,
    )


@router.get("/patients/{patient_id}/consents")
def read_consents(
    patient_id: int, ctx: Annotated[Ctx, gate(PlatformAction.CONSENT_READ)]
) -> ConsentSummary:
    _patient, standing, history = flows.consents(ctx, patient_id)
    return ConsentSummary(standing=standing, history=[_consent_out(c) for c in history])


@router.post("/patients/{patient_id}/consents", status_code=201)
def record_consent(
    patient_id: int, body: ConsentIn, ctx: Annotated[Ctx, gate(PlatformAction.CONSENT_RECORD)]
) -> ConsentOut:
    consent = flows.record_consent(
        ctx, patient_id, body.purpose, body.decision, body.site_id, body.note
    )
    return _consent_out(consent)


@router.get("/patients/{patient_id}/shares")
def list_shares(
    patient_id: int, ctx: Annotated[Ctx, gate(PlatformAction.SHARE_MANAGE)]
) -> list[ShareOut]:
    return [ShareOut.of(s) for s in flows.patient_shares(ctx, patient_id)]


@router.post("/patients/{patient_id}/shares", status_code=201)
def share_patient(
    patient_id: int, body: ShareIn, ctx: Annotated[Ctx, gate(PlatformAction.SHARE_MANAGE)]
) -> ShareOut:
    share = flows.share_patient(
        ctx,
        patient_id,
        to_site_id=body.to_site_id,
        to_user_id=body.to_user_id,
        expires_at=body.expires_at,
        reason=body.reason,
    )
    return ShareOut.of(share)


@router.delete("/shares/{share_id}")
def revoke_share(share_id: int, ctx: Annotated[Ctx, gate(PlatformAction.SHARE_MANAGE)]) -> ShareOut:
    return ShareOut.of(flows.revoke_share(ctx, share_id))


@router.post("/emergency-access", status_code=201)
def emergency_access(
    body: EmergencyIn, ctx: Annotated[Ctx, gate(PlatformAction.EMERGENCY_REQUEST)]
) -> EmergencyOut:
    grant = flows.break_the_glass(ctx, body.site_id, body.identifier, body.justification)
    return EmergencyOut(grant_id=grant.id, patient_id=grant.patient_id, expires_at=grant.expires_at)


@router.get("/audit-events")
def audit_events(
    ctx: Annotated[Ctx, gate(PlatformAction.AUDIT_READ)],
    actor: Annotated[str, Query(max_length=64)] = "",
    action: Annotated[str, Query(max_length=64)] = "",
    outcome: Annotated[str, Query(max_length=24)] = "",
    patient_id: int | None = None,
    since: AwareDatetime | None = None,
    until: AwareDatetime | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[AuditEventOut]:
    criteria = audit.AuditFilter(actor, action, outcome, patient_id, since, until)
    return [AuditEventOut.of(e) for e in flows.search_audit(ctx, criteria, limit, offset)]


@router.get("/alerts")
def alerts(ctx: Annotated[Ctx, gate(PlatformAction.ALERT_MANAGE)]) -> list[AlertOut]:
    return [
        AlertOut(
            id=a.id, created_at=a.created_at, kind=a.kind, message=a.message, site_ids=a.site_ids
        )
        for a in flows.open_alerts(ctx)
    ]


@router.post("/alerts/{alert_id}/acknowledge", status_code=204)
def acknowledge(alert_id: int, ctx: Annotated[Ctx, gate(PlatformAction.ALERT_MANAGE)]) -> Response:
    flows.acknowledge_alert(ctx, alert_id)
    return Response(status_code=204)

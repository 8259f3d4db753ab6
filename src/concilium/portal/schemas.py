"""JSON shapes of the API (requests validated here answer 422 problem+json on bad input)."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from concilium.platform.tables import ApiToken, AuditEvent, Patient, Share, Site, User


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SiteIn(Strict):
    name: str = Field(min_length=1, max_length=200)
    finess: str = Field(min_length=9, max_length=9)


class SiteOut(BaseModel):
    id: int
    name: str
    finess: str
    active: bool

    @classmethod
    def of(cls, site: Site) -> SiteOut:
        return cls(id=site.id, name=site.name, finess=site.finess, active=site.active)


class RoleIn(Strict):
    site_id: int
    role: str


class UserIn(Strict):
    """A new account; its holder chooses the password through the set-up link returned."""

    username: str = Field(min_length=2, max_length=63)
    full_name: str = Field(min_length=1, max_length=200)
    roles: list[RoleIn]
    email: str = Field(default="", max_length=200)
    profession: str = Field(default="", max_length=100)
    specialty: str = Field(default="", max_length=100)
    rpps: str | None = Field(default=None, max_length=11)


class RolesIn(Strict):
    roles: list[RoleIn]


class UserOut(BaseModel):
    id: int
    username: str
    full_name: str
    email: str
    profession: str
    specialty: str
    rpps: str | None
    disabled: bool
    is_platform_admin: bool
    totp_enrolled: bool
    roles: list[RoleIn]

    @classmethod
    def of(cls, user: User) -> UserOut:
        return cls(
            id=user.id,
            username=user.username,
            full_name=user.full_name,
            email=user.email,
            profession=user.profession,
            specialty=user.specialty,
            rpps=user.rpps,
            disabled=user.disabled,
            is_platform_admin=user.is_platform_admin,
            totp_enrolled=bool(user.totp_secret),
            roles=[RoleIn(site_id=m.site_id, role=m.role) for m in user.memberships],
        )


class AccountLinkOut(BaseModel):
    """A set-up or reset link: shown once, hand it to the account's holder."""

    url: str
    purpose: str
    expires_at: datetime


class CreatedUserOut(UserOut):
    setup_link: AccountLinkOut
    """The link by which the holder sets their password and enrols their second factor."""


class ResetLinkIn(Strict):
    code: str = Field(max_length=12)
    """A current code of your own authenticator."""


class TokenIn(Strict):
    name: str = Field(min_length=1, max_length=100)
    scopes: list[str] = Field(min_length=1)
    days: int = Field(default=90, ge=1)
    user_id: int | None = None
    """Issue for another user (administrators); default: yourself."""
    code: str | None = Field(default=None, max_length=12)
    """A current code of your own authenticator: required to issue for another user."""


class TokenOut(BaseModel):
    id: str
    name: str
    user_id: int
    scopes: list[str]
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None

    @classmethod
    def of(cls, token: ApiToken) -> TokenOut:
        return cls(
            id=token.public_id,
            name=token.name,
            user_id=token.user_id,
            scopes=token.scopes,
            created_at=token.created_at,
            expires_at=token.expires_at,
            revoked_at=token.revoked_at,
            last_used_at=token.last_used_at,
        )


class IssuedTokenOut(TokenOut):
    secret: str
    """Shown once: store it now, it cannot be read again."""


class PatientIn(Strict):
    site_id: int
    identifier: str = Field(min_length=1, max_length=64)
    family_name: str = Field(min_length=1, max_length=100)
    given_name: str = Field(min_length=1, max_length=100)
    birth_date: date | None = None
    sex: str = "U"


class DemographicsIn(Strict):
    family_name: str = Field(min_length=1, max_length=100)
    given_name: str = Field(min_length=1, max_length=100)
    birth_date: date | None = None
    sex: str = "U"


class IdentifierIn(Strict):
    site_id: int
    value: str = Field(min_length=1, max_length=64)


class IdentifierOut(BaseModel):
    site_id: int
    value: str


class PatientOut(BaseModel):
    id: int
    family_name: str
    given_name: str
    birth_date: date | None
    sex: str
    identifiers: list[IdentifierOut]
    merged_into: int | None

    @classmethod
    def of(cls, patient: Patient) -> PatientOut:
        return cls(
            id=patient.id,
            family_name=patient.family_name,
            given_name=patient.given_name,
            birth_date=patient.birth_date,
            sex=patient.sex,
            identifiers=[
                IdentifierOut(site_id=i.site_id, value=i.value) for i in patient.identifiers
            ],
            merged_into=patient.merged_into_id,
        )


class MergeIn(Strict):
    duplicate_id: int


class ConsentIn(Strict):
    purpose: str
    decision: str
    site_id: int
    note: str = Field(default="", max_length=2000)


class ConsentOut(BaseModel):
    id: int
    purpose: str
    decision: str
    site_id: int
    recorded_by: int
    recorded_at: datetime
    note: str


class ConsentSummary(BaseModel):
    standing: dict[str, str]
    history: list[ConsentOut]


class ShareIn(Strict):
    to_site_id: int | None = None
    to_user_id: int | None = None
    expires_at: AwareDatetime
    reason: str = Field(default="", max_length=2000)


class ShareOut(BaseModel):
    id: int
    resource_kind: str
    resource_id: str
    to_site_id: int | None
    to_user_id: int | None
    granted_by: int
    reason: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None

    @classmethod
    def of(cls, share: Share) -> ShareOut:
        return cls(
            id=share.id,
            resource_kind=share.resource_kind,
            resource_id=share.resource_id,
            to_site_id=share.to_site_id,
            to_user_id=share.to_user_id,
            granted_by=share.granted_by_id,
            reason=share.reason,
            created_at=share.created_at,
            expires_at=share.expires_at,
            revoked_at=share.revoked_at,
        )


class EmergencyIn(Strict):
    site_id: int
    identifier: str = Field(min_length=1, max_length=64)
    justification: str = Field(min_length=1, max_length=2000)


class EmergencyOut(BaseModel):
    grant_id: int
    patient_id: int
    expires_at: datetime


class AuditEventOut(BaseModel):
    seq: int
    at: datetime
    actor: str
    role: str
    site_id: int | None
    patient_id: int | None
    action: str
    object_kind: str
    object_id: str
    outcome: str
    ip: str

    @classmethod
    def of(cls, e: AuditEvent) -> AuditEventOut:
        return cls(
            seq=e.seq,
            at=e.at,
            actor=e.actor,
            role=e.role,
            site_id=e.site_id,
            patient_id=e.patient_id,
            action=e.action,
            object_kind=e.object_kind,
            object_id=e.object_id,
            outcome=e.outcome,
            ip=e.ip,
        )


class AlertOut(BaseModel):
    id: int
    created_at: datetime
    kind: str
    message: str
    site_ids: list[int]


class MeOut(BaseModel):
    user: UserOut
    scopes: list[str] | None

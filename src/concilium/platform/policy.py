"""The one authorisation policy of Concilium.

Every access, from every adapter (HTTP, DICOM, HL7, OpenIGTLink), is decided here by
``decide``: a pure function of who asks (``Principal``), what they want to do (``Action``)
and on what (``Target``). Callers gather the facts (memberships, active shares, active
break-the-glass grants); this module holds the rules and nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

CLINICAL_ROLES = frozenset(
    {"radiologist", "referring_physician", "specialist", "coordinator", "technologist"}
)
"""Roles whose work needs patient data at their own site."""
EMERGENCY_ROLES = frozenset({"radiologist", "referring_physician", "specialist"})
"""Roles that may break the glass: physicians facing an emergency."""


class Action(StrEnum):
    """Everything a principal can ask to do; each route declares exactly one."""

    HOME = "home"
    SITE_LIST = "site.list"
    SITE_MANAGE = "site.manage"
    USER_READ = "user.read"
    USER_MANAGE = "user.manage"
    TOKEN_MANAGE = "token.manage"  # noqa: S105 - an action name
    PATIENT_READ = "patient.read"
    PATIENT_WRITE = "patient.write"
    PATIENT_MERGE = "patient.merge"
    CONSENT_READ = "consent.read"
    CONSENT_RECORD = "consent.record"
    SHARE_MANAGE = "share.manage"
    EMERGENCY_REQUEST = "emergency.request"
    AUDIT_READ = "audit.read"
    AUDIT_EXPORT = "audit.export"
    ALERT_MANAGE = "alert.manage"
    METRICS_READ = "metrics.read"
    STUDY_READ = "study.read"
    STUDY_STORE = "study.store"
    STUDY_DELETE = "study.delete"
    AE_MANAGE = "ae.manage"
    LIVE_READ = "live.read"
    LIVE_MANAGE = "live.manage"
    LIVE_JOIN = "live.join"
    LIVE_DIRECT = "live.direct"
    LIVE_MODERATE = "live.moderate"
    PROCEDURE_READ = "procedure.read"
    PROCEDURE_MANAGE = "procedure.manage"
    PROCEDURE_START = "procedure.start"
    PROCEDURE_SUPERVISE = "procedure.supervise"
    PROCEDURE_INGEST = "procedure.ingest"


@dataclass(frozen=True)
class Rule:
    """How one action is granted."""

    roles: frozenset[str]
    """Roles that grant the action at a site owning the target."""
    scope: str
    """Scope an API token needs for this action ("" when any valid token will do)."""
    any_site: bool = False
    """Granted by holding one of ``roles`` at any site (the target has no owner site)."""
    via_share: bool = False
    """An active share of the target to the principal or their site grants it."""
    via_emergency: bool = False
    """An active break-the-glass grant on the target's patient grants it."""
    self_service: bool = False
    """Granted when the target is the principal's own account."""
    platform_admin: bool = True
    """Platform administrators are granted it wherever the target lives."""


_ANY = frozenset({"*"})
_ADMIN = frozenset({"admin"})
_PATIENT_READERS = CLINICAL_ROLES | _ADMIN
_PATIENT_WRITERS = frozenset({"admin", "coordinator", "referring_physician"})
_CONSENT_RECORDERS = frozenset(
    {"admin", "coordinator", "referring_physician", "specialist", "radiologist"}
)
_STUDY_STORERS = frozenset({"technologist", "radiologist", "admin"})
_LIVE_ORGANISERS = frozenset(
    {"admin", "coordinator", "specialist", "radiologist", "referring_physician"}
)
_LIVE_DIRECTORS = frozenset({"coordinator", "specialist", "technologist", "engineer"})
_PROCEDURE_TEAM = frozenset({"specialist", "engineer", "coordinator"})
_PROCEDURE_SUPERVISORS = frozenset({"engineer", "specialist"})

RULES: Mapping[Action, Rule] = {
    Action.HOME: Rule(_ANY, "", any_site=True, self_service=True),
    Action.SITE_LIST: Rule(_ANY, "", any_site=True, self_service=True),
    Action.SITE_MANAGE: Rule(frozenset(), "admin"),
    Action.USER_READ: Rule(_ADMIN, "admin", self_service=True),
    Action.USER_MANAGE: Rule(_ADMIN, "admin"),
    Action.TOKEN_MANAGE: Rule(_ADMIN, "admin", self_service=True),
    # Patient data: granted by a role at the patient's sites, a share or a break-the-glass
    # grant, never by being a platform administrator (an IT role, not a clinical one).
    Action.PATIENT_READ: Rule(
        _PATIENT_READERS, "patients:read", via_share=True, via_emergency=True, platform_admin=False
    ),
    Action.PATIENT_WRITE: Rule(
        _PATIENT_WRITERS, "patients:write", via_emergency=True, platform_admin=False
    ),
    Action.PATIENT_MERGE: Rule(_ADMIN, "patients:write", platform_admin=False),
    Action.CONSENT_READ: Rule(
        _PATIENT_READERS, "patients:read", via_share=True, via_emergency=True, platform_admin=False
    ),
    Action.CONSENT_RECORD: Rule(
        _CONSENT_RECORDERS, "patients:write", via_emergency=True, platform_admin=False
    ),
    Action.SHARE_MANAGE: Rule(
        frozenset({"admin", "coordinator", "referring_physician", "radiologist", "specialist"}),
        "patients:write",
        platform_admin=False,
    ),
    Action.EMERGENCY_REQUEST: Rule(
        EMERGENCY_ROLES, "patients:read", any_site=True, platform_admin=False
    ),
    Action.AUDIT_READ: Rule(_ADMIN, "audit:read"),
    Action.AUDIT_EXPORT: Rule(frozenset(), "audit:read"),
    Action.ALERT_MANAGE: Rule(_ADMIN, "admin"),
    Action.METRICS_READ: Rule(frozenset({"engineer", "admin"}), "metrics", any_site=True),
    # Images are patient data: read like the patient record (role at the owning site, a share
    # of the study, break-the-glass on its patient), never by the platform administrator.
    Action.STUDY_READ: Rule(
        _PATIENT_READERS, "imaging:read", via_share=True, via_emergency=True, platform_admin=False
    ),
    # A study belongs to the site that sends it: storing into it needs a role there.
    Action.STUDY_STORE: Rule(_STUDY_STORERS, "imaging:write", platform_admin=False),
    Action.STUDY_DELETE: Rule(_ADMIN, "imaging:delete", platform_admin=False),
    Action.AE_MANAGE: Rule(_ADMIN, "admin"),
    # Live sessions belong to the site that runs them; an invitation is a share of the session
    # to one person, and the session builds its target so that only the invitees whose role
    # in the session carries the action count as shared (see concilium.live.service).
    # A session may show a patient, so the platform administrator is not granted by office.
    Action.LIVE_READ: Rule(_ANY, "live:read", via_share=True, platform_admin=False),
    Action.LIVE_MANAGE: Rule(_LIVE_ORGANISERS, "live:manage", platform_admin=False),
    Action.LIVE_JOIN: Rule(_ANY, "live:join", via_share=True, platform_admin=False),
    Action.LIVE_DIRECT: Rule(_LIVE_DIRECTORS, "live:direct", via_share=True, platform_admin=False),
    Action.LIVE_MODERATE: Rule(
        _LIVE_ORGANISERS, "live:moderate", via_share=True, platform_admin=False
    ),
    # A telesurgical procedure belongs to both its sites (console and robot). The surgeon is a
    # specialist; engineers enrol the gateways, issue keys and supervise the link. It treats a
    # patient, so the platform administrator is not granted by office.
    Action.PROCEDURE_READ: Rule(_PROCEDURE_TEAM, "telesurgery:read", platform_admin=False),
    Action.PROCEDURE_MANAGE: Rule(_PROCEDURE_TEAM, "telesurgery:manage", platform_admin=False),
    Action.PROCEDURE_START: Rule(
        frozenset({"specialist"}), "telesurgery:manage", platform_admin=False
    ),
    Action.PROCEDURE_SUPERVISE: Rule(
        _PROCEDURE_SUPERVISORS, "telesurgery:read", platform_admin=False
    ),
    # Gateways report their timeline with a token of this scope held by an engineer account.
    Action.PROCEDURE_INGEST: Rule(
        frozenset({"engineer"}), "telesurgery:gateway", platform_admin=False
    ),
}

TOKEN_SCOPES = frozenset(rule.scope for rule in RULES.values() if rule.scope)
"""Every scope an API token can carry."""


@dataclass(frozen=True)
class Principal:
    """Who is asking, with the facts the policy needs about them."""

    user_id: int
    username: str
    roles: Mapping[int, frozenset[str]]
    """Roles held, by site id."""
    is_platform_admin: bool = False
    scopes: frozenset[str] | None = None
    """Scopes of the API token used, or None for a browser session (no scope limit)."""
    emergency_patient_ids: frozenset[int] = frozenset()
    """Patients this principal holds an active break-the-glass grant on."""

    def sites_with(self, roles: frozenset[str]) -> frozenset[int]:
        if roles == _ANY:
            return frozenset(self.roles)
        return frozenset(site for site, held in self.roles.items() if held & roles)

    def primary_role(self, site_id: int | None = None) -> str:
        held = self.roles.get(site_id, frozenset()) if site_id is not None else frozenset()
        if not held:
            held = frozenset().union(*self.roles.values()) if self.roles else frozenset()
        return sorted(held)[0] if held else ("platform_admin" if self.is_platform_admin else "")


@dataclass(frozen=True)
class Target:
    """What is being accessed, with the facts the policy needs about it."""

    kind: str
    id: str = ""
    site_ids: frozenset[int] = frozenset()
    """Sites owning the target (a patient is owned by every site that identifies them)."""
    patient_id: int | None = None
    owner_user_id: int | None = None
    """The account the target is, or belongs to (user record, API token)."""
    shared_site_ids: frozenset[int] = frozenset()
    """Sites the target is actively shared with."""
    shared_user_ids: frozenset[int] = frozenset()
    """Users the target is actively shared with."""


NOTHING = Target(kind="none")
"""Target of actions that concern no particular object (home page, lists)."""


@dataclass(frozen=True)
class Decision:
    """The answer, and why; ``basis`` goes into the audit trail."""

    allowed: bool
    reason: str
    basis: str = ""
    """role, self, share, emergency or platform-admin."""
    rule_site_ids: frozenset[int] = field(default=frozenset())

    @property
    def emergency(self) -> bool:
        return self.basis == "emergency"


def has_scope(principal: Principal, rule: Rule) -> bool:
    """Browser sessions carry no scope limit; a token needs the rule's scope, if it has one."""
    return principal.scopes is None or not rule.scope or rule.scope in principal.scopes


def decide(principal: Principal | None, action: Action, target: Target = NOTHING) -> Decision:
    """Decide whether ``principal`` may perform ``action`` on ``target``."""
    if principal is None:
        return Decision(False, "authentication required")
    rule = RULES[action]
    if not has_scope(principal, rule):
        return Decision(False, f"token lacks scope {rule.scope!r}")
    if rule.self_service and target.owner_user_id == principal.user_id:
        return Decision(True, "own account", "self")
    if rule.self_service and target.kind == "none" and rule.any_site:
        return Decision(True, "signed in", "self")
    if principal.is_platform_admin and rule.platform_admin:
        return Decision(True, "platform administrator", "platform-admin")
    granting_sites = principal.sites_with(rule.roles)
    if rule.any_site and granting_sites:
        return Decision(True, "role held at a site", "role", granting_sites)
    if granting_sites & target.site_ids:
        return Decision(True, "role held at an owning site", "role", granting_sites)
    if rule.via_share and (
        principal.user_id in target.shared_user_ids
        or (principal.sites_with(_PATIENT_READERS) & target.shared_site_ids)
    ):
        return Decision(True, "shared with this site or person", "share")
    if (
        rule.via_emergency
        and target.patient_id is not None
        and target.patient_id in principal.emergency_patient_ids
    ):
        return Decision(True, "break-the-glass grant", "emergency")
    return Decision(False, f"{action.value} not permitted for this {target.kind}")


def visible_sites(principal: Principal, action: Action) -> frozenset[int] | None:
    """Sites whose objects ``principal`` may list for ``action``; None means every site.

    List queries filter with this, then add what is shared or emergency-granted, so that a
    list never shows what ``decide`` would refuse for one object.
    """
    rule = RULES[action]
    if not has_scope(principal, rule):
        return frozenset()
    if principal.is_platform_admin and rule.platform_admin:
        return None
    return principal.sites_with(rule.roles)

"""The one authorisation policy of Concilium.

Every access, from every adapter (HTTP, DICOM, HL7, OpenIGTLink), is decided here by
``decide``: a pure function of who asks (``Principal``), what they want to do (``Action``)
and on what (``Target``). Callers gather the facts (memberships, active shares, active
break-the-glass grants); every action carries the rule that grants it, declared as data
by the platform (:class:`PlatformAction`) and by each service beside its domain; this
module decides and does nothing else.

Who reads patient data. Only the clinical roles (``CLINICAL_ROLES``) read patients, their
consent and their images, at a site owning them, through a share or, for a physician,
through a break-the-glass grant (which reads and never writes). Administrators administer
and never read patient data: a platform administrator's office grants no patient action,
and a site's ``admin`` role is in none of the rules that read, write, record consent for or
share a patient. What a site administrator keeps on patients is identity vigilance
(``PATIENT_MERGE``): merging two records of one person moves identifiers and consent
decisions between records known at their sites, an act on identities that shows no
clinical content. A person who is both administrator and clinician holds both roles and
reads as the clinician.

Who administers whom. An account is managed (roles, disabling, API tokens, set-up and reset
links) only by who administers every site its rights reach (``Rule.whole_reach``); an
account whose rights reach every site, a platform administrator's, only by a platform
administrator. Nobody manages the rights of their own account (``Rule.others_only``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

CLINICAL_ROLES = frozenset(
    {"radiologist", "referring_physician", "specialist", "coordinator", "technologist"}
)
"""Roles whose work needs patient data at their own site."""
EMERGENCY_ROLES = frozenset({"radiologist", "referring_physician", "specialist"})
"""Roles that may break the glass: physicians facing an emergency."""


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
    """An active break-the-glass grant on the target's patient grants it. Only reading
    actions carry it: an emergency grant lets a physician read, and anything it would write
    (an identifier at their own site, a share, consent) would outlive the grant."""
    self_service: bool = False
    """Granted when the target is the principal's own account."""
    platform_admin: bool = True
    """Platform administrators are granted it wherever the target lives."""
    whole_reach: bool = False
    """Granted by one of ``roles`` only when held at every site the target reaches, never
    for a target reaching every site (an account is managed only by who administers all of
    it: a site administrator cannot act on an account that also holds rights elsewhere)."""
    others_only: bool = False
    """Never granted on the principal's own account (nobody grants themselves a role)."""


@dataclass(frozen=True)
class Action:
    """Something a principal can ask to do, with the rule that grants it; each route
    declares exactly one. The platform's actions are in :class:`PlatformAction`; each
    service declares its own beside its domain (``concilium.imaging.actions`` ...)."""

    value: str
    """Stable name, as the audit trail records it (``study.read``)."""
    rule: Rule = field(compare=False)
    """How it is granted."""

    def __post_init__(self) -> None:
        if not self.value or not self.value.replace(".", "").replace("_", "").isalnum():
            raise ValueError(f"an action is named like 'area.verb', got {self.value!r}")

    def __str__(self) -> str:
        return self.value


ANY_ROLE = frozenset({"*"})
"""Roles of a rule granted to whoever holds any role (at the owning site, or any site)."""
ADMIN = frozenset({"admin"})
PATIENT_READERS = CLINICAL_ROLES
"""Roles reading patient data (records, consent, images) at their own site: the clinical
roles, never the administrator's."""
PATIENT_WRITERS = frozenset({"coordinator", "referring_physician"})
"""Roles registering patients and keeping their identity and identifiers (admissions,
referrals); writing a record one may not read would be writing blind."""
CONSENT_RECORDERS = frozenset({"coordinator", "referring_physician", "specialist", "radiologist"})
"""Roles recording a patient's consent: the carers who ask the patient."""
SHARERS = frozenset({"coordinator", "referring_physician", "radiologist", "specialist"})
"""Roles sharing a patient's file or images with another site or person: a clinical
decision to disclose."""


class PlatformAction:
    """The platform's own actions: accounts, patients and consent, shares, audit."""

    HOME = Action("home", Rule(ANY_ROLE, "", any_site=True, self_service=True))
    SITE_LIST = Action("site.list", Rule(ANY_ROLE, "", any_site=True, self_service=True))
    SITE_MANAGE = Action("site.manage", Rule(frozenset(), "admin"))
    # The regional directory (``concilium.platform.directory``): whoever works at a site
    # finds the people of every hospital, to share with or invite them by their user name.
    PEOPLE_SEARCH = Action("people.search", Rule(ANY_ROLE, "", any_site=True))
    USER_READ = Action("user.read", Rule(ADMIN, "admin", self_service=True))
    USER_MANAGE = Action("user.manage", Rule(ADMIN, "admin", whole_reach=True, others_only=True))
    # Anyone manages their own tokens; another person's only who administers all they reach.
    TOKEN_MANAGE = Action("token.manage", Rule(ADMIN, "admin", self_service=True, whole_reach=True))
    # Patient data: granted by a role at the patient's sites, a share or a break-the-glass
    # grant, never by being a platform administrator (an IT role, not a clinical one).
    PATIENT_READ = Action(
        "patient.read",
        Rule(
            PATIENT_READERS,
            "patients:read",
            via_share=True,
            via_emergency=True,
            platform_admin=False,
        ),
    )
    # Writing needs a role at an owning site: a break-the-glass grant reads only, or the
    # physician could add an identifier at their own site and own the patient for good.
    PATIENT_WRITE = Action(
        "patient.write", Rule(PATIENT_WRITERS, "patients:write", platform_admin=False)
    )
    # Identity vigilance: an act on identities at the administrator's sites (see above).
    PATIENT_MERGE = Action("patient.merge", Rule(ADMIN, "patients:write", platform_admin=False))
    CONSENT_READ = Action(
        "consent.read",
        Rule(
            PATIENT_READERS,
            "patients:read",
            via_share=True,
            via_emergency=True,
            platform_admin=False,
        ),
    )
    CONSENT_RECORD = Action(
        "consent.record", Rule(CONSENT_RECORDERS, "patients:write", platform_admin=False)
    )
    SHARE_MANAGE = Action("share.manage", Rule(SHARERS, "patients:write", platform_admin=False))
    EMERGENCY_REQUEST = Action(
        "emergency.request",
        Rule(EMERGENCY_ROLES, "patients:read", any_site=True, platform_admin=False),
    )
    # One's own password and second factor; proven again by the password (and the code).
    CREDENTIALS_CHANGE = Action(
        "credentials.change", Rule(frozenset(), "", self_service=True, platform_admin=False)
    )
    NOTIFICATION_MANAGE = Action(
        "notification.manage", Rule(frozenset(), "", self_service=True, platform_admin=False)
    )
    AUDIT_READ = Action("audit.read", Rule(ADMIN, "audit:read"))
    AUDIT_EXPORT = Action("audit.export", Rule(frozenset(), "audit:read"))
    ALERT_MANAGE = Action("alert.manage", Rule(ADMIN, "admin"))
    OUTBOX_MANAGE = Action("outbox.manage", Rule(ADMIN, "admin"))
    METRICS_READ = Action(
        "metrics.read", Rule(frozenset({"engineer", "admin"}), "metrics", any_site=True)
    )


def actions_of(namespace: type) -> tuple[Action, ...]:
    """The actions a namespace class (``PlatformAction``, a service's) declares."""
    return tuple(v for v in vars(namespace).values() if isinstance(v, Action))


def token_scopes(actions: Iterable[Action]) -> frozenset[str]:
    """Every scope an API token can carry, given every action of the installation."""
    return frozenset(action.rule.scope for action in actions if action.rule.scope)


def scopes_within(principal: Principal, actions: Iterable[Action]) -> frozenset[str]:
    """The scopes a token of ``principal`` may carry: those of the actions their roles,
    their office or their own account can be granted. A token never carries more than its
    user (and acts, when used, with its user's rights of the moment)."""
    return frozenset(
        action.rule.scope
        for action in actions
        if action.rule.scope
        and (
            action.rule.self_service
            or (principal.is_platform_admin and action.rule.platform_admin)
            or principal.sites_with(action.rule.roles)
        )
    )


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
        if roles == ANY_ROLE:
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
    reaches_every_site: bool = False
    """The target carries rights at every site: a platform administrator's account, or a
    token of theirs."""


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
    rule = action.rule
    if not has_scope(principal, rule):
        return Decision(False, f"token lacks scope {rule.scope!r}")
    own = target.owner_user_id == principal.user_id
    if rule.others_only and own:
        return Decision(False, f"nobody may {action.value} for their own account")
    if rule.self_service and own:
        return Decision(True, "own account", "self")
    if rule.self_service and target.kind == "none" and rule.any_site:
        return Decision(True, "signed in", "self")
    if principal.is_platform_admin and rule.platform_admin:
        return Decision(True, "platform administrator", "platform-admin")
    granting_sites = principal.sites_with(rule.roles)
    if rule.whole_reach:
        if target.reaches_every_site or not target.site_ids <= granting_sites:
            return Decision(
                False, f"{action.value}: this {target.kind} reaches beyond the sites you administer"
            )
        if target.site_ids:
            return Decision(
                True, "role held at every site the target reaches", "role", granting_sites
            )
        return Decision(False, f"{action.value} not permitted for this {target.kind}")
    if rule.any_site and granting_sites:
        return Decision(True, "role held at a site", "role", granting_sites)
    if granting_sites & target.site_ids:
        return Decision(True, "role held at an owning site", "role", granting_sites)
    if rule.via_share and (
        principal.user_id in target.shared_user_ids
        or (principal.sites_with(PATIENT_READERS) & target.shared_site_ids)
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
    rule = action.rule
    if not has_scope(principal, rule):
        return frozenset()
    if principal.is_platform_admin and rule.platform_admin:
        return None
    return principal.sites_with(rule.roles)

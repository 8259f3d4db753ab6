"""How the platform's own pages plug into the process assembly."""

from __future__ import annotations

from pathlib import Path

from concilium.platform.db import MIGRATIONS_DIR
from concilium.platform.i18n import N_
from concilium.platform.policy import PlatformAction, actions_of
from concilium.platform.services import NavEntry, ServiceDescriptor

SERVICE = ServiceDescriptor(
    name="portal",
    summary="Sign-in, home, administration, patients and consent, emergency access, audit.",
    actions=actions_of(PlatformAction),
    tables="concilium.platform.tables",
    migrations=MIGRATIONS_DIR / "versions",
    routers=(
        "concilium.portal.ops:router",
        "concilium.portal.api:router",
        "concilium.portal.directory_api:router",
        "concilium.portal.signin:router",
        "concilium.portal.home:router",
        "concilium.portal.account:router",
        "concilium.portal.admin:router",
        "concilium.portal.patients:router",
        "concilium.portal.emergency:router",
        "concilium.portal.audit_log:router",
        "concilium.portal.outbox:router",
        "concilium.portal.fhir_metadata:router",
    ),
    documented_routers=(
        "concilium.portal.ops:router",
        "concilium.portal.api:router",
        "concilium.portal.directory_api:router",
    ),
    nav=(
        NavEntry(PlatformAction.HOME, "/", N_("Home"), 0),
        NavEntry(PlatformAction.PATIENT_READ, "/patients", N_("Patients"), 10),
        NavEntry(PlatformAction.EMERGENCY_REQUEST, "/emergency", N_("Emergency access"), 60),
        NavEntry(PlatformAction.USER_MANAGE, "/admin/users", N_("Users"), 70),
        NavEntry(PlatformAction.SITE_MANAGE, "/admin/sites", N_("Sites"), 80),
        NavEntry(PlatformAction.AUDIT_READ, "/audit", N_("Audit log"), 100),
        NavEntry(PlatformAction.OUTBOX_MANAGE, "/admin/outbox", N_("Outgoing mail"), 105),
        NavEntry(PlatformAction.TOKEN_MANAGE, "/tokens", N_("API tokens"), 110),
        NavEntry(PlatformAction.HOME, "/account", N_("Account"), 120),
    ),
    templates=Path(__file__).with_name("templates"),
    locale=Path(__file__).with_name("locale"),
    commands="concilium.portal.mail_commands:mail",
    runtime="concilium.portal.process:PlatformProcess",
    # Probes for load balancers (they disclose nothing), the sign-in page, and the page of
    # a set-up or reset link (its secret is the credential).
    public_paths=frozenset({"/healthz", "/readyz", "/login", "/account/setup/{secret}"}),
)

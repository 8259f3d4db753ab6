"""The e-mail telling a hospital's administrators that someone broke the glass on one of
its patients: who, when, until when, the justification they gave, and links to the audit
entries of that patient (and to the patient's file, for a reader who may open it)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from concilium.platform import accounts, notify, outbox, patients
from concilium.platform.policy import PlatformAction, decide
from concilium.platform.runtime import Runtime
from concilium.platform.tables import EmergencyGrant, Membership, OutboxMail, Patient, User

MAIL_TEMPLATES = notify.MailTemplates(Path(__file__).with_name("templates") / "mail")
"""The portal's messages (``templates/mail``), over the platform's layouts."""
KIND = "emergency.alert"


def reviewers(session: Session, site_ids: frozenset[int]) -> list[User]:
    """The active administrators of these sites, each once."""
    query = (
        select(User)
        .join(Membership, Membership.user_id == User.id)
        .where(Membership.site_id.in_(site_ids), Membership.role == "admin")
        .where(User.disabled.is_(False))
        .order_by(User.id)
        .distinct()
    )
    return list(session.execute(query).scalars())


def send_alerts(
    session: Session, runtime: Runtime, grant: EmergencyGrant, patient: Patient
) -> list[OutboxMail]:
    """Queue the alert to every administrator of the patient's hospitals who has an e-mail
    address, in the caller's transaction (sent only if the emergency access is kept)."""
    opener = session.get(User, grant.user_id)
    site_ids = frozenset(i.site_id for i in patient.identifiers)
    base = runtime.settings.public_url.rstrip("/")
    queued: list[OutboxMail] = []
    target = patients.patient_target(session, patient, grant.created_at)
    for reviewer in reviewers(session, site_ids):
        to = notify.recipient_of(session, reviewer)
        if to is None:
            continue
        principal = accounts.principal_for(session, reviewer, grant.created_at)
        readable = decide(principal, PlatformAction.PATIENT_READ, target)
        may_read = readable.allowed and not readable.emergency
        values = {
            "name": reviewer.full_name,
            "who": opener.full_name if opener is not None else str(grant.user_id),
            "username": opener.username if opener is not None else "",
            "at": grant.created_at,
            "until": grant.expires_at,
            "justification": grant.justification,
            "patient_number": patient.id,
            "patient_name": f"{patient.family_name.upper()} {patient.given_name}"
            if may_read
            else "",
            "patient_link": f"{base}/patients/{patient.id}" if may_read else "",
            "audit_link": f"{base}/audit?patient_id={patient.id}",
        }
        mail = MAIL_TEMPLATES.compose(KIND, to, "emergency", values)
        site_id = min(site_ids & frozenset(m.site_id for m in reviewer.memberships), default=None)
        queued.append(outbox.enqueue(session, runtime, mail, site_id=site_id))
    return queued

"""The audit trail as people read it: who by name, the patient by name for those who may
read them, studies and sessions by their description, actions in words, and repeated
retrievals of one study by one person told once with their count.

The trail itself keeps codes (``study.retrieve``, ``user/14``); this module only words them
for the audit page, through the services' public faces.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from concilium import imaging, live, telesurgery
from concilium.platform import patients
from concilium.platform.i18n import N_, gettext
from concilium.platform.policy import PlatformAction, Principal, decide
from concilium.platform.tables import AuditEvent, Patient, Site, User

GROUP_WINDOW = timedelta(minutes=10)
"""Retrievals of one study by one person this close together are one line."""
GROUPED_ACTIONS = frozenset({"study.retrieve", "study.read", "study.view"})
"""Actions a viewer repeats for every series or frame it loads."""

ACTION_LABELS = {
    "auth.login": N_("Signed in"),
    "auth.logout": N_("Signed out"),
    "auth.totp": N_("Second factor checked"),
    "auth.totp.enrol": N_("Set up a second factor"),
    "auth.password.change": N_("Changed their password"),
    "account.password": N_("Password set"),
    "account.reset_link": N_("Issued a reset link"),
    "account.notice": N_("Account notice sent"),
    "user.create": N_("Created an account"),
    "user.read": N_("Read an account"),
    "user.manage": N_("Managed an account"),
    "user.enable": N_("Enabled an account"),
    "user.disable": N_("Disabled an account"),
    "user.roles.update": N_("Changed roles"),
    "token.create": N_("Created an API token"),
    "token.issued": N_("API token issued"),
    "token.revoke": N_("Revoked an API token"),
    "token.manage": N_("Managed API tokens"),
    "site.create": N_("Added a hospital"),
    "site.manage": N_("Managed hospitals"),
    "site.list": N_("Listed hospitals"),
    "patient.read": N_("Opened a patient's file"),
    "patient.query": N_("Searched patients"),
    "patient.create": N_("Registered a patient"),
    "patient.update": N_("Updated a patient"),
    "patient.write": N_("Changed a patient's file"),
    "patient.identifier.create": N_("Added a hospital number"),
    "patient.merge": N_("Merged two patient files"),
    "consent.read": N_("Read consent"),
    "consent.record": N_("Recorded consent"),
    "consent.create": N_("Recorded consent"),
    "share.create": N_("Shared"),
    "share.revoke": N_("Revoked a share"),
    "share.manage": N_("Managed shares"),
    "emergency.request": N_("Asked for emergency access"),
    "emergency.open": N_("Opened emergency access"),
    "alert.acknowledge": N_("Acknowledged an alert"),
    "alert.manage": N_("Reviewed alerts"),
    "audit.query": N_("Searched the audit log"),
    "audit.read": N_("Read the audit log"),
    "audit.export": N_("Exported the audit log"),
    "notification.dismiss": N_("Dismissed a notification"),
    "notification.manage": N_("Managed notifications"),
    "mail.send": N_("Sent an e-mail"),
    "mail.test": N_("Sent a test e-mail"),
    "outbox.retry": N_("Retried an e-mail"),
    "outbox.cancel": N_("Cancelled an e-mail"),
    "outbox.manage": N_("Managed outgoing mail"),
    "study.query": N_("Searched studies"),
    "study.read": N_("Opened a study"),
    "study.view": N_("Viewed images"),
    "study.retrieve": N_("Retrieved images"),
    "study.store": N_("Stored images"),
    "study.received": N_("Received a study"),
    "study.export": N_("Exported a study for teaching"),
    "study.reject": N_("Rejected images"),
    "study.delete": N_("Deleted a study"),
    "study.deleted": N_("Study deleted"),
    "ae.manage": N_("Managed DICOM nodes"),
    "live.create": N_("Scheduled a live session"),
    "live.read": N_("Opened a live session"),
    "live.invite": N_("Invited to a live session"),
    "live.start": N_("Started a live session"),
    "live.end": N_("Ended a live session"),
    "live.reschedule": N_("Moved a live session"),
    "live.join": N_("Joined a live session"),
    "live.leave": N_("Left a live session"),
    "live.manage": N_("Managed a live session"),
    "live.chat": N_("Wrote in a live session"),
    "live.draw": N_("Drew on a live picture"),
    "live.moderate": N_("Moderated a live session"),
    "live.direct": N_("Directed a live session"),
    "live.direct.take": N_("Took the direction"),
    "live.direct.release": N_("Released the direction"),
    "live.program": N_("Changed the programme"),
    "live.ptz": N_("Moved a camera"),
    "live.camera.add": N_("Added a camera"),
    "live.source.add": N_("Added a source"),
    "live.hls.grant": N_("Watched a broadcast"),
    "live.recording.play": N_("Played a recording"),
    "live.recording.publish": N_("Published a recording"),
    "procedure.create": N_("Planned a procedure"),
    "procedure.read": N_("Opened a procedure"),
    "procedure.manage": N_("Managed a procedure"),
    "procedure.enrol": N_("Enrolled a gateway"),
    "procedure.issue_keys": N_("Issued link keys"),
    "procedure.qualify": N_("Qualified the link"),
    "procedure.start": N_("Started a procedure"),
    "procedure.supervise": N_("Supervised a procedure"),
    "procedure.ingest": N_("Procedure events received"),
    "procedure.video": N_("Linked a procedure's video"),
    "telesurgery.link_status": N_("Link status"),
}
"""What each action of the trail is called (others show their code)."""

ACTION_KINDS = {
    "auth.": N_("Sign-in and passwords"),
    "user.": N_("Accounts"),
    "patient.": N_("Patient files"),
    "consent.": N_("Consent"),
    "share.": N_("Shares"),
    "emergency.": N_("Emergency access"),
    "study.": N_("Images"),
    "live.": N_("Live sessions"),
    "procedure.": N_("Telesurgery"),
    "audit.": N_("Audit log"),
    "token.": N_("API tokens"),
}
"""The kinds of action the log is filtered by (the prefix of their codes)."""

OUTCOME_LABELS = {
    "success": N_("success"),
    "failure": N_("failure"),
    "refused": N_("refused"),
    "emergency-override": N_("emergency override"),
}
"""What each outcome of ``concilium.platform.audit.OUTCOMES`` is called."""


@dataclass
class Line:
    """One line of the audit page: an entry, or repeated retrievals told once."""

    event: AuditEvent
    who: str
    action: str
    thing: str
    """The object in words (a study's description, a session's title, a person's name)."""
    link: str
    """The page of the object, when there is one."""
    patient: str
    """The patient by name for those who may read them, else by number; "" when none."""
    first_at: datetime
    count: int = 1
    seqs: list[int] = field(default_factory=list)


def action_label(action: str) -> str:
    label = ACTION_LABELS.get(action)
    return gettext(label) if label else action


class _Words:
    """Names of the people, patients and objects of one page, each looked up once."""

    def __init__(self, db: Session, principal: Principal, now: datetime) -> None:
        self.db, self.principal, self.now = db, principal, now
        self._users: dict[int, str] = {}
        self._patients: dict[int, str] = {}
        self._objects: dict[tuple[str, str], tuple[str, str]] = {}

    def person(self, event: AuditEvent) -> str:
        if event.actor_id is None:
            return event.actor or "—"
        if event.actor_id not in self._users:
            user = self.db.get(User, event.actor_id)
            self._users[event.actor_id] = user.full_name if user else event.actor
        return self._users[event.actor_id]

    def patient(self, patient_id: int | None) -> str:
        if patient_id is None:
            return ""
        if patient_id not in self._patients:
            number = gettext("patient #%(number)s") % {"number": patient_id}
            found = self.db.get(Patient, patient_id)
            if found is not None:
                target = patients.patient_target(self.db, found, self.now)
                decision = decide(self.principal, PlatformAction.PATIENT_READ, target)
                # Reading the log is not breaking the glass: names only for their carers.
                if decision.allowed and not decision.emergency:
                    number = f"{found.family_name.upper()} {found.given_name}"
            self._patients[patient_id] = number
        return self._patients[patient_id]

    def thing(self, kind: str, ident: str) -> tuple[str, str]:
        """The object in words, and its page ("" when it has none)."""
        key = (kind, ident)
        if key not in self._objects:
            self._objects[key] = self._describe(kind, ident)
        return self._objects[key]

    def _describe(self, kind: str, ident: str) -> tuple[str, str]:
        if not kind or not ident:
            return "", ""  # a search, a sign-in: no one object
        if kind == imaging.STUDY_KIND and ident:
            study = imaging.study_by_uid(self.db, ident)
            if study is not None:
                text = study.study_description or gettext("Study without description")
                if study.study_date:
                    text += f" ({study.study_date:%d/%m/%Y})"
                return text, f"/imaging/studies/{ident}"
            return gettext("a deleted study"), ""
        if kind == live.RESOURCE_KIND and ident.isdigit():
            session = live.find_session(self.db, int(ident))
            if session is not None:
                return session.title, f"/live/{session.id}"
        if kind == telesurgery.RESOURCE_KIND and ident.isdigit():
            procedure = self.db.get(telesurgery.Procedure, int(ident))
            if procedure is not None:
                return procedure.title, f"/telesurgery/{procedure.id}"
        if kind == "user" and ident.isdigit():
            user = self.db.get(User, int(ident))
            if user is not None:
                return user.full_name, f"/admin/users/{user.id}"
        if kind == "site" and ident.isdigit():
            site = self.db.get(Site, int(ident))
            if site is not None:
                return site.name, ""
        if kind == "patient":
            return "", ""  # the patient column names them
        return (f"{kind} {ident}".strip(), "")


def lines(db: Session, principal: Principal, events: list[AuditEvent], now: datetime) -> list[Line]:
    """The page's entries in words, newest first, repeated retrievals grouped."""
    words = _Words(db, principal, now)
    found: list[Line] = []
    groups: dict[tuple[int, str, str, str], Line] = {}
    for event in events:
        key = (event.actor_id or 0, event.action, event.object_id, event.outcome)
        group = groups.get(key) if event.action in GROUPED_ACTIONS and event.actor_id else None
        if group is not None and group.first_at - event.at <= GROUP_WINDOW:
            group.count += 1
            group.first_at = event.at
            group.seqs.append(event.seq)
            continue
        thing, link = words.thing(event.object_kind, event.object_id)
        line = Line(
            event=event,
            who=words.person(event),
            action=action_label(event.action),
            thing=thing,
            link=link,
            patient=words.patient(event.patient_id),
            first_at=event.at,
            seqs=[event.seq],
        )
        found.append(line)
        if event.action in GROUPED_ACTIONS:
            groups[key] = line
    return found


def lines_patient(db: Session, principal: Principal, patient_id: str, now: datetime) -> str:
    """The patient the log is filtered by, in words ("" for none)."""
    if not patient_id.isdigit():
        return ""
    return _Words(db, principal, now).patient(int(patient_id))


def people(db: Session, site_ids: frozenset[int] | None) -> list[tuple[str, str]]:
    """The people the log may be filtered by: user name and full name, by name."""
    from concilium.platform.tables import Membership

    query = select(User.username, User.full_name)
    if site_ids is not None:
        members = select(Membership.user_id).where(Membership.site_id.in_(site_ids))
        query = query.where(User.id.in_(members))
    return [(u, n) for u, n in db.execute(query.order_by(User.full_name)).all()]

"""What a person's home page gathers from every service, through their public faces only:
the studies of their hospitals and those shared with them, the live sessions they are
invited to, their telesurgery procedures, and, for those who review them, the emergency
accesses to their hospitals' patients.

Each block is there for whoever the policy could ever grant its action (a block of nothing
says so); each item is one the policy lets this person read, and links to its page.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from pydicom.dataset import Dataset

from concilium import imaging, live, telesurgery
from concilium.platform import patients, sharing
from concilium.platform.policy import CLINICAL_ROLES, Action, PlatformAction, decide
from concilium.platform.tables import EmergencyGrant, User
from concilium.web.context import Ctx, may_attempt
from concilium.web.rendering import reader_zone

STUDY_DAYS = 90
"""How far back the home page looks for studies (by study date)."""
STUDIES_SHOWN = 8
"""Studies shown in each of "my studies" and "shared with me"."""
ALERT_DAYS = 7
"""How far back the home page shows emergency accesses."""
_STUDY_KEYS = (
    "StudyInstanceUID",
    "StudyDate",
    "StudyDescription",
    "ModalitiesInStudy",
    "PatientName",
)


@dataclass(frozen=True)
class StudyItem:
    uid: str
    day: date | None
    description: str
    modalities: str
    patient_name: str


@dataclass(frozen=True)
class SessionItem:
    id: int
    title: str
    kind: str
    status: str
    at: datetime
    role: str


@dataclass(frozen=True)
class ProcedureItem:
    id: int
    title: str
    status: str
    robot_name: str
    surgeon: bool


@dataclass(frozen=True)
class EmergencyItem:
    grant: EmergencyGrant
    who: str
    patient_id: int
    patient_name: str | None
    """The patient's name for those who may read the patient, else None."""


@dataclass
class Dashboard:
    """The blocks of one person's home page; None: the block is not for them."""

    my_studies: list[StudyItem] | None = None
    shared_studies: list[StudyItem] | None = None
    sessions_today: list[SessionItem] | None = None
    sessions_later: list[SessionItem] = field(default_factory=list)
    procedures: list[ProcedureItem] | None = None
    emergencies: list[EmergencyItem] | None = None


def dashboard(ctx: Ctx) -> Dashboard:
    board = Dashboard()
    if _holds_role_for(ctx, imaging.ImagingAction.STUDY_READ):
        board.my_studies, board.shared_studies = _studies(ctx)
    if may_attempt(ctx.principal, live.LiveAction.LIVE_READ):
        today, later = _sessions(ctx)
        # Carers are told they have none; others see the block only when invited.
        clinical = any(roles & CLINICAL_ROLES for roles in ctx.principal.roles.values())
        if clinical or today or later:
            board.sessions_today, board.sessions_later = today, later
    if _holds_role_for(ctx, telesurgery.TelesurgeryAction.PROCEDURE_READ):
        board.procedures = _procedures(ctx)
    if may_attempt(ctx.principal, PlatformAction.ALERT_MANAGE):
        board.emergencies = _emergencies(ctx)
    return board


def _holds_role_for(ctx: Ctx, action: Action) -> bool:
    """Whether the person holds, at one of their hospitals, a role the action is for (a
    share alone reaches single objects, found on their own pages)."""
    return may_attempt(ctx.principal, action) and bool(ctx.principal.sites_with(action.rule.roles))


def _day(text: Any) -> date | None:
    digits = re.sub(r"\D", "", str(text or ""))[:8]
    try:
        return datetime.strptime(digits, "%Y%m%d").date() if len(digits) == 8 else None
    except ValueError:
        return None


def _studies(ctx: Ctx) -> tuple[list[StudyItem], list[StudyItem]]:
    """The recent studies this person may read: of their own hospitals, and shared."""
    identifier = Dataset()
    identifier.QueryRetrieveLevel = "STUDY"
    for keyword in _STUDY_KEYS:
        setattr(identifier, keyword, "")
    first = (ctx.now - timedelta(days=STUDY_DAYS)).date()
    identifier.StudyDate = f"{first:%Y%m%d}-"
    try:
        matches = imaging.search(ctx.db, ctx.principal, ctx.actor, identifier, now=ctx.now)
    except (imaging.NotAuthorized, imaging.InvalidQuery):
        ctx.db.rollback()
        return [], []
    ctx.commit()  # the search's audit entry
    own_sites = frozenset(ctx.principal.roles)
    mine: list[StudyItem] = []
    shared: list[StudyItem] = []
    for match in reversed(matches):  # newest first
        uid = str(match.value("StudyInstanceUID"))
        study = imaging.study_by_uid(ctx.db, uid)
        if study is None:
            continue
        target = imaging.study_target(ctx.db, study, ctx.now)
        modalities = match.value("ModalitiesInStudy")
        item = StudyItem(
            uid=uid,
            day=_day(match.value("StudyDate")),
            description=str(match.value("StudyDescription") or ""),
            modalities=", ".join(modalities) if isinstance(modalities, list) else str(modalities),
            patient_name=str(match.value("PatientName") or "").replace("^", " ").strip(),
        )
        chosen = mine if target.site_ids & own_sites else shared
        if len(chosen) < STUDIES_SHOWN:
            chosen.append(item)
    return mine, shared


def _sessions(ctx: Ctx) -> tuple[list[SessionItem], list[SessionItem]]:
    """The sessions this person is invited to: live or due today, and later."""
    zone = reader_zone(ctx)
    today = ctx.now.astimezone(zone).date()
    since = datetime.combine(today, time(0, 0), tzinfo=zone)
    now_and_today: list[SessionItem] = []
    later: list[SessionItem] = []
    for invitation in live.invitations_of(ctx.db, ctx.user.id, ctx.now, since=since):
        session = invitation.session
        item = SessionItem(
            session.id,
            session.title,
            session.kind,
            session.status,
            session.scheduled_at,
            invitation.role,
        )
        due = session.scheduled_at.astimezone(zone).date()
        (now_and_today if session.status == "live" or due <= today else later).append(item)
    return now_and_today, later


def _procedures(ctx: Ctx) -> list[ProcedureItem]:
    read = telesurgery.TelesurgeryAction.PROCEDURE_READ
    return [
        ProcedureItem(p.id, p.title, p.status, p.robot_name, p.surgeon_id == ctx.user.id)
        for p in telesurgery.procedures_of(ctx.db, ctx.user.id)
        if decide(ctx.principal, read, telesurgery.procedure_target(p)).allowed
    ]


def _emergencies(ctx: Ctx) -> list[EmergencyItem]:
    """Emergency accesses of the last days to patients of the hospitals this person
    reviews alerts for; the patient named only to those who may read them."""
    sites = ctx.visible_sites(PlatformAction.ALERT_MANAGE)
    grants = sharing.emergency_grants(ctx.db, sites, ctx.now - timedelta(days=ALERT_DAYS))
    items: list[EmergencyItem] = []
    for grant in grants:
        person = ctx.db.get(User, grant.user_id)
        patient = patients.get_patient(ctx.db, grant.patient_id)
        target = patients.patient_target(ctx.db, patient, ctx.now)
        readable = decide(ctx.principal, PlatformAction.PATIENT_READ, target)
        name = (
            f"{patient.family_name.upper()} {patient.given_name}"
            if readable.allowed and not readable.emergency
            else None
        )
        who = person.full_name if person is not None else str(grant.user_id)
        items.append(EmergencyItem(grant, who, grant.patient_id, name))
    return items


@dataclass
class PatientItems:
    """What every service holds of one patient that the reader may open."""

    studies: list[StudyItem] = field(default_factory=list)
    sessions: list[SessionItem] = field(default_factory=list)
    procedures: list[ProcedureItem] = field(default_factory=list)


def patient_items(ctx: Ctx, patient_id: int) -> PatientItems:
    """The patient's studies, live sessions and procedures the reader may read, newest
    first, each through its service's public face and the policy."""
    items = PatientItems()
    try:
        matches = imaging.patient_studies(ctx.db, ctx.principal, ctx.actor, patient_id, now=ctx.now)
    except imaging.NotAuthorized:
        ctx.db.rollback()
        matches = []
    else:
        ctx.commit()  # the lookup's audit entry
    for match in reversed(matches):
        modalities = match.value("ModalitiesInStudy")
        items.studies.append(
            StudyItem(
                uid=str(match.value("StudyInstanceUID")),
                day=_day(match.value("StudyDate")),
                description=str(match.value("StudyDescription") or ""),
                modalities=", ".join(modalities)
                if isinstance(modalities, list)
                else str(modalities),
                patient_name="",
            )
        )
    read_live = live.LiveAction.LIVE_READ
    for session in live.patient_sessions(ctx.db, patient_id):
        target = live.session_target(ctx.db, session, read_live, ctx.now)
        if decide(ctx.principal, read_live, target).allowed:
            role = live.role_of(ctx.db, session, ctx.user.id) or ""
            items.sessions.append(
                SessionItem(
                    session.id,
                    session.title,
                    session.kind,
                    session.status,
                    session.scheduled_at,
                    role,
                )
            )
    read_procedure = telesurgery.TelesurgeryAction.PROCEDURE_READ
    for p in telesurgery.patient_procedures(ctx.db, patient_id):
        if decide(ctx.principal, read_procedure, telesurgery.procedure_target(p)).allowed:
            items.procedures.append(
                ProcedureItem(p.id, p.title, p.status, p.robot_name, p.surgeon_id == ctx.user.id)
            )
    return items

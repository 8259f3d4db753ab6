"""Telesurgical procedures on the platform: planning, gateway enrolment, key issue, link
qualification, the START decision and the procedure timeline.

This is domain logic: no web imports. The HTTP routes, the CLI and the gateways' reporter are
adapters that call these functions inside one transaction each. Whether a procedure may start
is the pure function :func:`may_start`; every act and every refusal is audited.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from concilium import live as live_service
from concilium.live import LiveSession, LiveSessions
from concilium.platform import audit, patients
from concilium.platform.errors import Conflict, InvalidInput, NotFound
from concilium.platform.i18n import N_, _, ngettext
from concilium.platform.policy import Target
from concilium.platform.tables import Membership, Site, User
from concilium.telesurgery.impairment import PROFILES, profile
from concilium.telesurgery.limits import MotionLimits
from concilium.telesurgery.link import ProcedureKeys, write_keys
from concilium.telesurgery.qualification import (
    QualificationReport,
    QualificationThresholds,
    qualify,
    write_report,
)
from concilium.telesurgery.safety import (
    DEFAULT_LINK_CLASS,
    SafetyState,
    SafetyThresholds,
    resolve_link_class,
)
from concilium.telesurgery.tables import (
    EnrolledGateway,
    IssuedKey,
    Procedure,
    QualificationRecord,
    TimelineEntry,
)

logger = logging.getLogger(__name__)

RESOURCE_KIND = "telesurgery_procedure"
"""Object kind of a procedure in policy targets and the audit trail."""
GATEWAY_ROLES = ("console", "robot")
TIMELINE_KINDS = frozenset({"transition", "alarm", "refusal"})
"""What a gateway may report; ``procedure`` entries are written by the platform only."""
STATUSES = ("planned", "started", "ended")
TOKEN_PREFIX = "tsg_"  # noqa: S105 - a prefix, not a secret


class StartRefused(Conflict):
    """START was refused; ``reasons`` says everything that is missing."""

    def __init__(self, reasons: Sequence[str]) -> None:
        listed = "; ".join(reasons)
        super().__init__(_("the procedure cannot start: %(reasons)s") % {"reasons": listed})
        self.reasons = list(reasons)


# --- thresholds ---------------------------------------------------------------------------


def effective_thresholds(
    sections: Mapping[str, Any] | None, link_class: str | None = None
) -> dict[str, Any]:
    """Validate a procedure's ``safety``, ``limits`` and ``qualification`` sections over the
    preset of its link class (``link_class``, or the one the sections name, or ``lan``) and
    fill in every value, so that the stored record says exactly what the gateways will
    apply, and which class it started from (``link_class``).

    Raises:
        InvalidInput: an unknown class, section or key, or an inconsistent value.
    """
    data = dict(sections or {})
    unknown = set(data) - {"link_class", "safety", "limits", "qualification"}
    if unknown:
        raise InvalidInput(
            ngettext(
                "unknown threshold section: %(names)s",
                "unknown threshold sections: %(names)s",
                len(unknown),
            )
            % {"names": ", ".join(sorted(unknown))}
        )
    try:
        if not isinstance(data.get("qualification", {}), Mapping):
            raise ValueError(_("section qualification must be a table of values"))
        resolved = resolve_link_class(data, link_class)
        safety = SafetyThresholds.from_mapping(resolved["safety"])
        limits = MotionLimits.from_mapping(resolved["limits"])
        qualification = qualification_thresholds(resolved)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(str(exc)) from exc
    limits_dict = asdict(limits)
    for corner in ("workspace_min_mm", "workspace_max_mm"):
        limits_dict[corner] = list(limits_dict[corner])
    return {
        "link_class": resolved["link_class"],
        "safety": asdict(safety),
        "limits": limits_dict,
        "qualification": asdict(qualification),
    }


def qualification_thresholds(sections: Mapping[str, Any]) -> QualificationThresholds:
    """The go/no-go criteria of a procedure; the longest outage defaults to the watchdog, as
    in the procedure file (a link outage longer than the watchdog means HOLD)."""
    section = dict(sections.get("qualification", {}))
    watchdog = sections.get("safety", {}).get("watchdog_ms")
    if watchdog is not None:
        section.setdefault("max_outage_ms", watchdog)
    return QualificationThresholds.from_mapping(section)


def link_class_of(procedure: Procedure) -> str:
    """The link class a procedure was planned for (those planned before classes existed
    were planned on the defaults, the ``lan`` class)."""
    return str(procedure.thresholds.get("link_class") or DEFAULT_LINK_CLASS)


# --- planning -----------------------------------------------------------------------------


def procedure_target(procedure: Procedure) -> Target:
    """The facts the policy needs: both sites own the procedure; it treats one patient."""
    return Target(
        kind=RESOURCE_KIND,
        id=str(procedure.id),
        site_ids=frozenset({procedure.console_site_id, procedure.robot_site_id}),
        patient_id=procedure.patient_id,
    )


def _roles_at(db: Session, user_id: int, site_id: int) -> set[str]:
    rows = db.execute(
        select(Membership.role).where(Membership.user_id == user_id, Membership.site_id == site_id)
    )
    return set(rows.scalars())


def create_procedure(
    db: Session,
    actor: audit.Actor,
    *,
    title: str,
    console_site_id: int,
    robot_site_id: int,
    surgeon_id: int,
    robot_name: str,
    patient_id: int,
    now: datetime,
    local_team_ids: Sequence[int] = (),
    thresholds: Mapping[str, Any] | None = None,
    link_class: str | None = None,
) -> Procedure:
    """Plan a procedure: its thresholds are those of ``link_class`` (or of the class the
    ``thresholds`` sections name, or ``lan``), overridden by ``thresholds``.

    Raises:
        InvalidInput: same site twice, a surgeon who is not a specialist at the console site,
            a local team member without a role at the robot site, a patient neither site
            identifies, or bad thresholds.
        NotFound: an unknown site, user or patient.
    """
    title = title.strip()
    robot_name = robot_name.strip()
    if not 1 <= len(title) <= 200:
        raise InvalidInput(_("the title is 1 to 200 characters"))
    if not 1 <= len(robot_name) <= 100:
        raise InvalidInput(_("the robot name is 1 to 100 characters"))
    if console_site_id == robot_site_id:
        raise InvalidInput(_("the console and the robot must be at two different sites"))
    for site_id in (console_site_id, robot_site_id):
        if db.get(Site, site_id) is None:
            raise NotFound(_("site %(site)s not found") % {"site": site_id})
    if db.get(User, surgeon_id) is None:
        raise NotFound(_("user %(user)s not found") % {"user": surgeon_id})
    if "specialist" not in _roles_at(db, surgeon_id, console_site_id):
        raise InvalidInput(_("the surgeon must hold the specialist role at the console site"))
    team = sorted(set(local_team_ids))
    for member in team:
        if db.get(User, member) is None:
            raise NotFound(_("user %(user)s not found") % {"user": member})
        if not _roles_at(db, member, robot_site_id):
            raise InvalidInput(
                _("local team member %(user)s holds no role at the robot site") % {"user": member}
            )
    patient = patients.get_patient(db, patient_id)
    if not {i.site_id for i in patient.identifiers} & {console_site_id, robot_site_id}:
        # A procedure can only treat a patient one of its two hospitals knows.
        raise InvalidInput(_("the patient is not identified at either site of the procedure"))
    procedure = Procedure(
        title=title,
        console_site_id=console_site_id,
        robot_site_id=robot_site_id,
        surgeon_id=surgeon_id,
        local_team_ids=team,
        robot_name=robot_name,
        patient_id=patient_id,
        thresholds=effective_thresholds(thresholds, link_class),
        status="planned",
        created_by_id=actor.user_id,
        created_at=now,
    )
    db.add(procedure)
    db.flush()
    audit.record(
        db,
        actor,
        "procedure.create",
        "success",
        object_kind=RESOURCE_KIND,
        object_id=procedure.id,
        patient_id=patient_id,
        detail={
            "console_site_id": console_site_id,
            "robot_site_id": robot_site_id,
            "link_class": procedure.thresholds["link_class"],
        },
    )
    _append(
        db,
        procedure,
        now,
        "platform",
        "procedure",
        "",
        f"planned (link class {procedure.thresholds['link_class']})",
    )
    return procedure


def get_procedure(db: Session, procedure_id: int) -> Procedure:
    """Raises:
    NotFound: no such procedure.
    """
    procedure = db.get(Procedure, procedure_id)
    if procedure is None:
        raise NotFound(f"procedure {procedure_id} not found")
    return procedure


def list_procedures(db: Session, site_ids: frozenset[int] | None) -> Sequence[Procedure]:
    """Procedures owned by one of ``site_ids`` (console or robot side); None means all."""
    query = select(Procedure).order_by(Procedure.created_at.desc(), Procedure.id.desc())
    if site_ids is not None:
        query = query.where(
            Procedure.console_site_id.in_(site_ids) | Procedure.robot_site_id.in_(site_ids)
        )
    return db.execute(query).scalars().all()


def procedures_of(db: Session, user_id: int) -> list[Procedure]:
    """The procedures not ended in which ``user_id`` operates: as the surgeon at the console,
    in the robot site's local team, or as who planned it; soonest planned first."""
    query = (
        select(Procedure)
        .where(Procedure.status != "ended")
        .order_by(Procedure.created_at, Procedure.id)
    )
    return [
        p
        for p in db.execute(query).scalars()
        if user_id in (p.surgeon_id, p.created_by_id) or user_id in (p.local_team_ids or [])
    ]


def patient_procedures(db: Session, patient_id: int) -> list[Procedure]:
    """The procedures of one patient, newest first (the caller asks the policy about each
    with :func:`procedure_target`)."""
    query = select(Procedure).where(Procedure.patient_id == patient_id)
    return list(
        db.execute(query.order_by(Procedure.created_at.desc(), Procedure.id.desc())).scalars()
    )


# --- gateways and keys --------------------------------------------------------------------


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def enrol_gateway(
    db: Session,
    actor: audit.Actor,
    procedure: Procedure,
    role: str,
    public_name: str,
    now: datetime,
) -> tuple[EnrolledGateway, str]:
    """Enrol (or re-enrol) the console or robot gateway; returns it with its enrolment token,
    shown once: only its hash is kept.

    Raises:
        InvalidInput: unknown role or empty public name.
        Conflict: the procedure has ended.
    """
    if role not in GATEWAY_ROLES:
        raise InvalidInput(_("a gateway is 'console' or 'robot', not %(role)r") % {"role": role})
    public_name = public_name.strip()
    if not 1 <= len(public_name) <= 255:
        raise InvalidInput(_("the public name (host:port of the link) is 1 to 255 characters"))
    if procedure.status == "ended":
        raise Conflict(_("the procedure has ended"))
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    gateway = db.execute(
        select(EnrolledGateway).where(
            EnrolledGateway.procedure_id == procedure.id, EnrolledGateway.role == role
        )
    ).scalar_one_or_none()
    if gateway is None:
        gateway = EnrolledGateway(procedure_id=procedure.id, role=role)
        db.add(gateway)
    gateway.site_id = procedure.console_site_id if role == "console" else procedure.robot_site_id
    gateway.public_name = public_name
    gateway.token_hash = _hash(token)
    gateway.enrolled_by_id = actor.user_id
    gateway.enrolled_at = now
    db.flush()
    audit.record(
        db,
        actor,
        "procedure.enrol",
        "success",
        object_kind=RESOURCE_KIND,
        object_id=procedure.id,
        patient_id=procedure.patient_id,
        site_id=gateway.site_id,
        detail={"gateway": role, "public_name": public_name},
    )
    return gateway, token


def gateways(db: Session, procedure: Procedure) -> dict[str, EnrolledGateway]:
    """The enrolled gateways, by role."""
    rows = db.execute(select(EnrolledGateway).where(EnrolledGateway.procedure_id == procedure.id))
    return {g.role: g for g in rows.scalars()}


def gateway_for_token(db: Session, procedure: Procedure, token: str) -> EnrolledGateway | None:
    """The gateway of ``procedure`` that holds ``token``, if any."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    found = db.execute(
        select(EnrolledGateway).where(EnrolledGateway.token_hash == _hash(token))
    ).scalar_one_or_none()
    if found is None or found.procedure_id != procedure.id:
        return None
    return found


def key_directory(data_dir: Path, procedure_id: int) -> Path:
    """Where the key files of a procedure are written for its gateways."""
    return data_dir / "telesurgery" / f"procedure-{procedure_id}" / "keys"


def active_key(db: Session, procedure: Procedure) -> IssuedKey | None:
    """The key set in force (the latest not revoked)."""
    return db.execute(
        select(IssuedKey)
        .where(IssuedKey.procedure_id == procedure.id, IssuedKey.revoked_at.is_(None))
        .order_by(IssuedKey.key_id.desc())
        .limit(1)
    ).scalar_one_or_none()


def issue_keys(
    db: Session, actor: audit.Actor, procedure: Procedure, directory: Path, now: datetime
) -> tuple[IssuedKey, dict[str, Path]]:
    """Generate a fresh key set, write one key file per gateway (mode 0600, the link's own
    JSON format) and revoke the previous set. The database keeps the key id only.

    Raises:
        Conflict: a gateway is not enrolled yet, or the procedure has ended.
    """
    enrolled = gateways(db, procedure)
    missing = [role for role in GATEWAY_ROLES if role not in enrolled]
    if missing:
        raise Conflict(_("enrol the %(roles)s gateway first") % {"roles": " and ".join(missing)})
    if procedure.status == "ended":
        raise Conflict(_("the procedure has ended"))
    highest = db.execute(
        select(func.max(IssuedKey.key_id)).where(IssuedKey.procedure_id == procedure.id)
    ).scalar_one()
    key_id = (highest or 0) + 1
    for previous in db.execute(
        select(IssuedKey).where(
            IssuedKey.procedure_id == procedure.id, IssuedKey.revoked_at.is_(None)
        )
    ).scalars():
        previous.revoked_at = now
    keys = ProcedureKeys.generate(f"procedure-{procedure.id}", key_id)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    paths = {role: directory / f"{role}-key{key_id}.json" for role in GATEWAY_ROLES}
    for path in paths.values():
        write_keys(keys, path)
    issued = IssuedKey(
        procedure_id=procedure.id, key_id=key_id, issued_by_id=actor.user_id, created_at=now
    )
    db.add(issued)
    db.flush()
    audit.record(
        db,
        actor,
        "procedure.issue_keys",
        "success",
        object_kind=RESOURCE_KIND,
        object_id=procedure.id,
        patient_id=procedure.patient_id,
        detail={"key_id": key_id},
    )
    return issued, paths


# --- qualification ------------------------------------------------------------------------


def run_qualification(
    procedure: Procedure,
    profile_name: str = "direct",
    duration_s: float = 10.0,
    *,
    rate_hz: float = 1000.0,
    bitrate_bps: float = 4_000_000.0,
    seed: int = 0,
    progress: Callable[[float], None] | None = None,
) -> QualificationReport:
    """Measure a link session (through a local proxy with ``profile_name``, or direct) and
    judge it against the procedure's own criteria and safety thresholds.

    Raises:
        InvalidInput: unknown profile.
    """
    if profile_name != "direct" and profile_name not in PROFILES:
        raise InvalidInput(_("unknown network profile %(name)r") % {"name": profile_name})
    chosen = None if profile_name == "direct" else profile(profile_name)
    criteria = qualification_thresholds(procedure.thresholds)
    safety = SafetyThresholds.from_mapping(procedure.thresholds.get("safety", {}))
    return qualify(
        chosen,
        criteria,
        duration_s,
        rate_hz,
        bitrate_bps,
        seed,
        progress,
        safety=safety,
        link_class=link_class_of(procedure),
    )


def record_qualification(
    db: Session,
    actor: audit.Actor,
    procedure: Procedure,
    report: QualificationReport,
    data_dir: Path,
    now: datetime,
) -> QualificationRecord:
    """Keep a qualification report with its procedure: JSON in the database, the HTML report
    in the data directory."""
    count = db.execute(
        select(func.count())
        .select_from(QualificationRecord)
        .where(QualificationRecord.procedure_id == procedure.id)
    ).scalar_one()
    relative = Path("telesurgery") / f"procedure-{procedure.id}" / f"qualification-{count + 1}"
    _, html_path = write_report(report, data_dir / relative)
    record = QualificationRecord(
        procedure_id=procedure.id,
        measured_at=now,
        passed=report.verdict.go,
        profile=report.profile,
        verdict=_json_safe(report.to_dict()),
        html_path=str(relative / html_path.name),
        recorded_by_id=actor.user_id,
    )
    db.add(record)
    db.flush()
    audit.record(
        db,
        actor,
        "procedure.qualify",
        "success",
        object_kind=RESOURCE_KIND,
        object_id=procedure.id,
        patient_id=procedure.patient_id,
        detail={"qualification": record.id, "go": report.verdict.go, "profile": report.profile},
    )
    _append(
        db,
        procedure,
        now,
        "platform",
        "procedure",
        "",
        f"link qualification {'GO' if report.verdict.go else 'NO-GO'} ({report.profile})",
    )
    return record


def _json_safe(value: Any) -> Any:
    # NaN and infinities are not JSON: an unmeasured value is stored as null.
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def qualifications(db: Session, procedure: Procedure) -> Sequence[QualificationRecord]:
    """The procedure's qualification reports, newest first."""
    return (
        db.execute(
            select(QualificationRecord)
            .where(QualificationRecord.procedure_id == procedure.id)
            .order_by(QualificationRecord.measured_at.desc(), QualificationRecord.id.desc())
        )
        .scalars()
        .all()
    )


# --- START --------------------------------------------------------------------------------


@dataclass(frozen=True)
class StartFacts:
    """What the START decision depends on, gathered from the database."""

    status: str
    """The procedure's status."""
    last_passing_qualification_at: datetime | None
    """When the most recent passing qualification was measured (None: never)."""
    consent: bool
    """Whether the patient's consent for telesurgery is recorded and stands."""
    key_issued: bool
    """Whether a key set is in force."""
    gateways: frozenset[str] = field(default_factory=frozenset)
    """Roles of the enrolled gateways."""


@dataclass(frozen=True)
class StartBlocker:
    """One reason START is refused, with the part of the procedure where it is fixed:
    ``status``, ``gateways``, ``keys``, ``qualification`` or ``consent``."""

    topic: str
    message: str
    """In English, with ``%(name)s`` placeholders for ``values``; marked for translation."""
    values: Mapping[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.message % dict(self.values)

    def translated(self) -> str:
        """The reason in the reader's language."""
        return _(self.message) % {name: _(value) for name, value in self.values.items()}


def start_blockers(facts: StartFacts, now: datetime, max_age: timedelta) -> list[StartBlocker]:
    """Every reason START is refused, each with where it is fixed; empty when it may start."""
    blockers: list[StartBlocker] = []
    if facts.status != "planned":
        blockers.append(
            StartBlocker(
                "status", N_("the procedure is %(status)s, not planned"), {"status": facts.status}
            )
        )
    missing = [role for role in GATEWAY_ROLES if role not in facts.gateways]
    if len(missing) == len(GATEWAY_ROLES):
        blockers.append(
            StartBlocker("gateways", N_("the console and robot gateway is not enrolled"))
        )
    elif "console" in missing:
        blockers.append(StartBlocker("gateways", N_("the console gateway is not enrolled")))
    elif "robot" in missing:
        blockers.append(StartBlocker("gateways", N_("the robot gateway is not enrolled")))
    if not facts.key_issued:
        blockers.append(StartBlocker("keys", N_("no link keys have been issued to the gateways")))
    passed = facts.last_passing_qualification_at
    if passed is None:
        blockers.append(StartBlocker("qualification", N_("no passing link qualification")))
    elif now - passed > max_age:
        hours = f"{max_age.total_seconds() / 3600:g}"
        blockers.append(
            StartBlocker(
                "qualification",
                N_("the last passing link qualification is older than %(hours)s h"),
                {"hours": hours},
            )
        )
    if not facts.consent:
        blockers.append(
            StartBlocker("consent", N_("the patient's consent for telesurgery is not recorded"))
        )
    return blockers


def may_start(facts: StartFacts, now: datetime, max_age: timedelta) -> list[str]:
    """Every reason START is refused, in English (as audited); an empty list means it may
    start."""
    return [str(b) for b in start_blockers(facts, now, max_age)]


def start_facts(db: Session, procedure: Procedure) -> StartFacts:
    """Gather the facts :func:`may_start` needs."""
    last_pass = db.execute(
        select(func.max(QualificationRecord.measured_at)).where(
            QualificationRecord.procedure_id == procedure.id,
            QualificationRecord.passed.is_(True),
        )
    ).scalar_one()
    return StartFacts(
        status=procedure.status,
        last_passing_qualification_at=last_pass,
        consent=patients.has_consent(db, procedure.patient_id, "telesurgery"),
        key_issued=active_key(db, procedure) is not None,
        gateways=frozenset(gateways(db, procedure)),
    )


def start(
    db: Session, actor: audit.Actor, procedure: Procedure, now: datetime, max_age: timedelta
) -> Procedure:
    """Start the procedure if :func:`may_start` allows it.

    Raises:
        StartRefused: with every reason; the refusal is audited in the caller's transaction,
            which the caller commits so that it stays in the trail.
    """
    reasons = may_start(start_facts(db, procedure), now, max_age)
    if reasons:
        audit.record(
            db,
            actor,
            "procedure.start",
            "refused",
            object_kind=RESOURCE_KIND,
            object_id=procedure.id,
            patient_id=procedure.patient_id,
            detail={"reasons": reasons},
        )
        refused = "START refused: " + "; ".join(reasons)
        _append(db, procedure, now, "platform", "refusal", "", refused)
        raise StartRefused(reasons)
    procedure.status = "started"
    procedure.started_at = now
    audit.record(
        db,
        actor,
        "procedure.start",
        "success",
        object_kind=RESOURCE_KIND,
        object_id=procedure.id,
        patient_id=procedure.patient_id,
    )
    _append(db, procedure, now, "platform", "procedure", "", "started")
    return procedure


# --- video (through the live service) -------------------------------------------------------

VIDEO_TITLE_PREFIX = "Telesurgery video: "


def video_session(db: Session, procedure: Procedure) -> LiveSession | None:
    """The live session carrying the procedure's video, if one is linked."""
    if procedure.live_session_id is None:
        return None
    return live_service.find_session(db, procedure.live_session_id)


def link_video(
    db: Session, actor: audit.Actor, procedure: Procedure, live: LiveSession, now: datetime
) -> LiveSession:
    """Link a live session to the procedure: its video is what the surgeon sees next to the
    link state. The surgeon is invited to watch it (the live service decides who may).

    Raises:
        Conflict: the live session has ended, or the procedure has.
    """
    if procedure.status == "ended":
        raise Conflict(_("the procedure has ended"))
    if live.status == "ended":
        raise Conflict(_("live session %(id)s has ended") % {"id": live.id})
    if live_service.role_of(db, live, procedure.surgeon_id) is None:
        live_service.invite(db, actor, live, user_id=procedure.surgeon_id, role="viewer", now=now)
    procedure.live_session_id = live.id
    audit.record(
        db,
        actor,
        "procedure.video",
        "success",
        object_kind=RESOURCE_KIND,
        object_id=procedure.id,
        patient_id=procedure.patient_id,
        detail={"live_session": live.id},
    )
    _append(db, procedure, now, "platform", "procedure", "", f"video: live session {live.id}")
    return live


async def open_video(
    db: Session, actor: audit.Actor, procedure: Procedure, now: datetime, sessions: LiveSessions
) -> LiveSession:
    """Create a supervision live session at the robot site, take it live through the live
    service's ``sessions`` (with everything going live brings there) and link it.

    Supervision without recording is care, not teaching: it needs no teaching consent
    (:func:`concilium.live.lifecycle.broadcast_refusal`). The session goes live committed; the
    link is left to the caller's transaction.

    Raises:
        Conflict: the procedure has ended (and no session is created).
    """
    if procedure.status == "ended":
        raise Conflict(_("the procedure has ended"))
    # The database is touched from worker threads: never on the event loop.
    live = await asyncio.to_thread(
        live_service.create_session,
        db,
        actor,
        kind="supervision",
        title=VIDEO_TITLE_PREFIX + procedure.title,
        site_id=procedure.robot_site_id,
        scheduled_at=now,
        now=now,
        patient_id=procedure.patient_id,
    )
    await sessions.start(db, actor, live, now)
    return await asyncio.to_thread(link_video, db, actor, procedure, live, now)


# --- timeline -----------------------------------------------------------------------------


@dataclass(frozen=True)
class TimelineEvent:
    """One event a gateway reports."""

    at: datetime
    """When it happened (the gateway's clock, UTC)."""
    kind: str
    """``transition``, ``alarm`` or ``refusal``."""
    state: str = ""
    """The safety state after a transition."""
    detail: str = ""
    """The reason, as the gateway logged it."""

    def __post_init__(self) -> None:
        if self.kind not in TIMELINE_KINDS:
            raise ValueError(f"kind must be one of {sorted(TIMELINE_KINDS)}, got {self.kind!r}")
        if self.kind == "transition" and self.state not in {s.value for s in SafetyState}:
            raise ValueError(f"a transition names a safety state, got {self.state!r}")
        if len(self.detail) > 2000:
            raise ValueError("detail is at most 2000 characters")


def _append(
    db: Session,
    procedure: Procedure,
    at: datetime,
    source: str,
    kind: str,
    state: str,
    detail: str,
) -> TimelineEntry:
    entry = TimelineEntry(
        procedure_id=procedure.id, at=at, source=source, kind=kind, state=state, detail=detail
    )
    db.add(entry)
    db.flush()
    return entry


def ingest(
    db: Session,
    actor: audit.Actor,
    procedure: Procedure,
    source: str,
    events: Sequence[TimelineEvent],
) -> list[TimelineEntry]:
    """Append what a gateway reports to the timeline, each entry audited.

    Raises:
        InvalidInput: unknown source.
        Conflict: the procedure has ended.
    """
    if source not in GATEWAY_ROLES:
        raise InvalidInput(f"the source is 'console' or 'robot', not {source!r}")
    if procedure.status == "ended":
        raise Conflict(_("the procedure has ended"))
    entries = []
    for event in events:
        entry = _append(db, procedure, event.at, source, event.kind, event.state, event.detail)
        audit.record(
            db,
            actor,
            f"procedure.{event.kind}",
            "success",
            object_kind=RESOURCE_KIND,
            object_id=procedure.id,
            patient_id=procedure.patient_id,
            detail={"source": source, "state": event.state, "reason": event.detail},
        )
        entries.append(entry)
    return entries


def timeline(db: Session, procedure: Procedure, after_id: int = 0) -> Sequence[TimelineEntry]:
    """Timeline entries after ``after_id``, in order."""
    return (
        db.execute(
            select(TimelineEntry)
            .where(TimelineEntry.procedure_id == procedure.id, TimelineEntry.id > after_id)
            .order_by(TimelineEntry.id)
        )
        .scalars()
        .all()
    )


def current_state(db: Session, procedure: Procedure) -> str:
    """The last safety state reported (DISENGAGED before any transition)."""
    state = db.execute(
        select(TimelineEntry.state)
        .where(TimelineEntry.procedure_id == procedure.id, TimelineEntry.kind == "transition")
        .order_by(TimelineEntry.id.desc())
        .limit(1)
    ).scalar_one_or_none()
    return state or SafetyState.DISENGAGED.value

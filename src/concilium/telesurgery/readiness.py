"""What a telesurgical procedure needs before it starts, and the START decision: gateway
enrolment, the link keys, the link qualifications kept with the procedure, and START.

This is domain logic: no web imports. Whether a procedure may start is the pure function
:func:`may_start`; every act and every refusal is audited and put in the procedure's timeline
(:func:`concilium.telesurgery.procedures.append_to_timeline`).
"""

from __future__ import annotations

import hashlib
import math
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from concilium.platform import audit, patients
from concilium.platform.errors import Conflict, InvalidInput
from concilium.platform.i18n import N_, _
from concilium.telesurgery.impairment import PROFILES, profile
from concilium.telesurgery.link import ProcedureKeys, write_keys
from concilium.telesurgery.procedures import (
    GATEWAY_ROLES,
    RESOURCE_KIND,
    append_to_timeline,
    link_class_of,
    qualification_thresholds,
)
from concilium.telesurgery.qualification import QualificationReport, qualify, write_report
from concilium.telesurgery.safety import SafetyThresholds
from concilium.telesurgery.tables import EnrolledGateway, IssuedKey, Procedure, QualificationRecord

TOKEN_PREFIX = "tsg_"  # noqa: S105 - a prefix, not a secret


class StartRefused(Conflict):
    """START was refused; ``reasons`` says everything that is missing."""

    def __init__(self, reasons: Sequence[str]) -> None:
        listed = "; ".join(reasons)
        super().__init__(_("the procedure cannot start: %(reasons)s") % {"reasons": listed})
        self.reasons = list(reasons)


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
    append_to_timeline(
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
        append_to_timeline(db, procedure, now, "platform", "refusal", "", refused)
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
    append_to_timeline(db, procedure, now, "platform", "procedure", "", "started")
    return procedure

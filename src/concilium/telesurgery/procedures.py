"""Telesurgical procedures on the platform: planning (with the thresholds the gateways will
apply), the lookups of procedures, and each procedure's timeline.

This is domain logic: no web imports. The HTTP routes, the CLI and the gateways' reporter are
adapters that call these functions inside one transaction each; every act is audited. What a
procedure needs before it starts (gateways, keys, link qualification) and the START decision
are in :mod:`concilium.telesurgery.readiness`; its video in :mod:`concilium.telesurgery.video`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from concilium.platform import audit, patients
from concilium.platform.errors import Conflict, InvalidInput, NotFound
from concilium.platform.i18n import _, ngettext
from concilium.platform.policy import Target
from concilium.platform.tables import Membership, Site, User
from concilium.telesurgery.limits import MotionLimits
from concilium.telesurgery.qualification import QualificationThresholds
from concilium.telesurgery.safety import (
    DEFAULT_LINK_CLASS,
    SafetyState,
    SafetyThresholds,
    resolve_link_class,
)
from concilium.telesurgery.tables import Procedure, TimelineEntry

logger = logging.getLogger(__name__)

RESOURCE_KIND = "telesurgery_procedure"
"""Object kind of a procedure in policy targets and the audit trail."""
GATEWAY_ROLES = ("console", "robot")
TIMELINE_KINDS = frozenset({"transition", "alarm", "refusal"})
"""What a gateway may report; ``procedure`` entries are written by the platform only."""
STATUSES = ("planned", "started", "ended")

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
    append_to_timeline(
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


def append_to_timeline(
    db: Session,
    procedure: Procedure,
    at: datetime,
    source: str,
    kind: str,
    state: str,
    detail: str,
) -> TimelineEntry:
    """Add one entry to the procedure's timeline, in the caller's transaction."""
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
        entry = append_to_timeline(
            db, procedure, event.at, source, event.kind, event.state, event.detail
        )
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

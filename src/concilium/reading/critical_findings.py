"""Critical and actionable findings (ACR levels: critical, urgent, non-urgent actionable),
and their communication to the referring physician.

The radiologist flags the finding in the report editor: its level and a line saying what
it is, kept with the draft (``reading_reports.finding_*``) and copied into each version
signed (``reading_report_versions.finding_*``), where it is part of the version's SHA-256
digest (the digest takes it only when a finding is flagged, so versions signed before
keep theirs).

When a preliminary or final version with a flag is signed, :func:`communicate` tells each
referring or requesting physician of the order (the accounts bearing their RPPS,
``reading_list.referrer_ids``) in the application and by e-mail (the platform's outbox:
the subject names no patient, the body gives the level, the site and the link to the
acknowledgement page), and records it: one :class:`CriticalFindingNotice` per physician,
with its time and channels. A physician already told of the same finding by an earlier
version of the report is not told again.

The physician acknowledges on that page (only they may: ``reading.finding.acknowledge``,
audited); the time is recorded. Left unacknowledged past the level's delay (settings
``critical_finding_ack_*``), :func:`escalate_unacknowledged` alerts the escalation
contacts of the ordering site, once: there is no department in the platform, so they are
the site's coordinators (``coordinator`` role at the order's site), who reach the
physician or their replacement by phone. It runs in ``ReadingProcess``'s periodic loop.

:func:`communication_lines` are the report's record ("communicated to Dr X on ... at ...,
acknowledged on ... at ..."), in the site's zone, on the report's pages and in the PDF of
the versions signed after the communication.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from concilium.config import Settings
from concilium.platform import audit, notifications
from concilium.platform.errors import InvalidInput
from concilium.platform.i18n import N_, _, show_date, show_time
from concilium.platform.notify import send_notice
from concilium.platform.runtime import Runtime
from concilium.platform.tables import Membership, Site, User
from concilium.reading.reading_list import referrer_ids
from concilium.reading.tables import (
    CriticalFindingNotice,
    ImagingOrderRecord,
    ReadingReport,
    ReadingReportVersion,
)

__all__ = [
    "ACKNOWLEDGE",
    "ESCALATE",
    "LEVELS",
    "MAX_FINDING",
    "NOTIFY",
    "acknowledge",
    "communicate",
    "communication_lines",
    "delay_of",
    "escalate_unacknowledged",
    "escalation_contacts",
    "flag_line",
    "notices_of",
    "save_flag",
]

LEVELS = {
    "critical": N_("Critical finding"),
    "urgent": N_("Urgent finding"),
    "actionable": N_("Non-urgent actionable finding"),
}
"""The ACR levels, as the pages name them."""
MAX_FINDING = 200
"""Characters at most in the finding's line."""
NOTICE_KIND = "reading_finding"
"""Audit object kind of a communication."""
NOTIFY, ACKNOWLEDGE, ESCALATE = (
    "reading.finding.notify",
    "reading.finding.acknowledge",
    "reading.finding.escalate",
)
"""Audit actions of the communication."""
IN_APP, EMAIL = "in_app", "email"
"""Channels of a communication."""

SUBJECT = N_("Finding to acknowledge in an imaging report")
TEXT = N_(
    "%(level)s in the report of exam %(accession)s (%(site)s). Please open the link to "
    "read it and acknowledge it."
)
IN_APP_TEXT = N_(
    "%(level)s in the report of exam %(accession)s (%(site)s), to acknowledge: %(link)s"
)
ESCALATION_SUBJECT = N_("Finding not acknowledged in an imaging report")
ESCALATION_TEXT = N_(
    "%(level)s in the report of exam %(accession)s (%(site)s) was communicated to "
    "%(name)s %(minutes)s minutes ago and has not been acknowledged. Please reach them or "
    "the physician replacing them."
)
COMMUNICATED = N_("Critical result communicated to Dr %(name)s on %(day)s at %(time)s")
ACKNOWLEDGED = N_("acknowledged on %(day)s at %(time)s")
NOT_ACKNOWLEDGED = N_("not acknowledged yet")


class _InReadersLanguage:
    """A message filled into an e-mail's text: translated when the text is written, in
    its recipient's language."""

    def __init__(self, message: str) -> None:
        self.message = message

    def __str__(self) -> str:
        return _(self.message)


def save_flag(report: ReadingReport, level: str, text: str) -> None:
    """Keep the finding flagged in the draft ("" level: none); the caller saved the draft."""
    text = " ".join(text.split())
    if level and level not in LEVELS:
        raise InvalidInput(_("Choose the level of the finding."))
    if level and not text:
        raise InvalidInput(_("Say in a line what the finding is."))
    if len(text) > MAX_FINDING:
        raise InvalidInput(_("The finding is at most %(n)d characters.") % {"n": MAX_FINDING})
    report.finding_level = level
    report.finding_text = text if level else ""


def delay_of(settings: Settings, level: str) -> timedelta:
    """How long the physician has to acknowledge a finding of ``level``."""
    seconds = {
        "critical": settings.critical_finding_ack_critical,
        "urgent": settings.critical_finding_ack_urgent,
    }.get(level, settings.critical_finding_ack_actionable)
    return timedelta(seconds=seconds)


def _link(runtime: Runtime, path: str) -> str:
    return f"{runtime.settings.public_url.rstrip('/')}{path}"


def _told_before(session: Session, version: ReadingReportVersion, user_id: int) -> bool:
    """Whether ``user_id`` was told of this same finding by an earlier version."""
    return (
        session.execute(
            select(CriticalFindingNotice.id)
            .join(ReadingReportVersion, ReadingReportVersion.id == CriticalFindingNotice.version_id)
            .where(
                CriticalFindingNotice.report_id == version.report_id,
                CriticalFindingNotice.recipient_id == user_id,
                ReadingReportVersion.finding_level == version.finding_level,
                ReadingReportVersion.finding_text == version.finding_text,
            )
        ).first()
        is not None
    )


def communicate(
    session: Session,
    runtime: Runtime,
    actor: audit.Actor,
    order: ImagingOrderRecord,
    version: ReadingReportVersion,
    now: datetime,
) -> list[CriticalFindingNotice]:
    """Tell the order's referring physicians of the version's flagged finding, in the
    signature's transaction; the communications recorded (none without a flag)."""
    if not version.finding_level:
        return []
    site = session.get(Site, order.site_id)
    values: dict[str, object] = {
        "level": _InReadersLanguage(LEVELS[version.finding_level]),
        "accession": order.accession_number,
        "site": site.name if site else "",
    }
    made: list[CriticalFindingNotice] = []
    for user_id in sorted(referrer_ids(session, order)):
        if _told_before(session, version, user_id):
            continue
        notice = CriticalFindingNotice(
            version_id=version.id,
            report_id=version.report_id,
            level=version.finding_level,
            recipient_id=user_id,
            notified_at=now,
            channels=[IN_APP],
            due_at=now + delay_of(runtime.settings, version.finding_level),
            escalated_to=[],
        )
        session.add(notice)
        session.flush()
        path = f"/reading/findings/{notice.id}"
        filled = {**values, "link": path}
        notifications.notify(session, user_id, "reading.finding", _(IN_APP_TEXT) % filled, now)
        user = session.get(User, user_id)
        if user is not None and user.email:
            try:
                send_notice(
                    session,
                    runtime,
                    user,
                    SUBJECT,
                    TEXT,
                    values=values,
                    link=_link(runtime, path),
                    link_label=N_("Read and acknowledge"),
                    kind="reading.finding",
                    site_id=order.site_id,
                )
                notice.channels = [IN_APP, EMAIL]
            except InvalidInput:
                pass
        audit.record(
            session,
            actor,
            NOTIFY,
            "success",
            object_kind=NOTICE_KIND,
            object_id=notice.id,
            patient_id=order.patient_id,
            site_id=order.site_id,
            detail={"level": notice.level, "channels": list(notice.channels), "to": user_id},
        )
        made.append(notice)
    session.flush()
    return made


def acknowledge(
    session: Session,
    actor: audit.Actor,
    order: ImagingOrderRecord,
    notice: CriticalFindingNotice,
    now: datetime,
) -> bool:
    """Record the physician's acknowledgement (the first one counts); whether it is new."""
    taken = session.execute(
        update(CriticalFindingNotice)
        .where(
            CriticalFindingNotice.id == notice.id, CriticalFindingNotice.acknowledged_at.is_(None)
        )
        .values(acknowledged_at=now)
        .execution_options(synchronize_session=False)
    )
    session.refresh(notice)
    new = getattr(taken, "rowcount", 0) == 1
    audit.record(
        session,
        actor,
        ACKNOWLEDGE,
        "success",
        object_kind=NOTICE_KIND,
        object_id=notice.id,
        patient_id=order.patient_id,
        site_id=order.site_id,
        detail={"level": notice.level, "again": not new},
    )
    return new


def escalation_contacts(session: Session, site_id: int) -> list[int]:
    """Who is alerted when a finding of a site's order is not acknowledged in time: the
    site's coordinators (active accounts)."""
    return sorted(
        session.scalars(
            select(User.id)
            .join(Membership, Membership.user_id == User.id)
            .where(
                Membership.site_id == site_id,
                Membership.role == "coordinator",
                User.disabled.is_(False),
            )
            .distinct()
        )
    )


def escalate_unacknowledged(session: Session, runtime: Runtime, now: datetime) -> list[int]:
    """Alert the escalation contacts of the findings not acknowledged by their due time;
    the communications escalated. Each is taken by a conditional UPDATE of
    ``escalated_at``, so it is escalated once. The caller commits."""
    due = session.scalars(
        select(CriticalFindingNotice.id).where(
            CriticalFindingNotice.acknowledged_at.is_(None),
            CriticalFindingNotice.escalated_at.is_(None),
            CriticalFindingNotice.due_at <= now,
        )
    ).all()
    escalated: list[int] = []
    for notice_id in due:
        taken = session.execute(
            update(CriticalFindingNotice)
            .where(
                CriticalFindingNotice.id == notice_id,
                CriticalFindingNotice.escalated_at.is_(None),
                CriticalFindingNotice.acknowledged_at.is_(None),
            )
            .values(escalated_at=now)
            .execution_options(synchronize_session=False)
        )
        if getattr(taken, "rowcount", 0) != 1:
            continue
        notice = session.get(CriticalFindingNotice, notice_id)
        report = session.get(ReadingReport, notice.report_id) if notice else None
        order = session.get(ImagingOrderRecord, report.order_id) if report else None
        if notice is None or order is None:  # pragma: no cover - kept by the foreign keys
            continue
        site = session.get(Site, order.site_id)
        recipient = session.get(User, notice.recipient_id)
        values: dict[str, object] = {
            "level": _InReadersLanguage(LEVELS.get(notice.level, notice.level)),
            "accession": order.accession_number,
            "site": site.name if site else "",
            "name": recipient.full_name if recipient else "",
            "minutes": int((now - notice.notified_at).total_seconds() // 60),
        }
        contacts = escalation_contacts(session, order.site_id)
        for user_id in contacts:
            notifications.notify(
                session, user_id, "reading.finding.escalate", _(ESCALATION_TEXT) % values, now
            )
            user = session.get(User, user_id)
            if user is None or not user.email:
                continue
            try:
                send_notice(
                    session,
                    runtime,
                    user,
                    ESCALATION_SUBJECT,
                    ESCALATION_TEXT,
                    values=values,
                    kind="reading.finding.escalate",
                    site_id=order.site_id,
                )
            except InvalidInput:
                continue
        notice.escalated_to = contacts
        audit.record(
            session,
            audit.SYSTEM,
            ESCALATE,
            "success",
            object_kind=NOTICE_KIND,
            object_id=notice_id,
            patient_id=order.patient_id,
            site_id=order.site_id,
            detail={"level": notice.level, "to": contacts},
        )
        escalated.append(notice_id)
    session.flush()
    return escalated


def notices_of(
    session: Session, report_id: int, before_version: int | None = None
) -> list[CriticalFindingNotice]:
    """The report's communications, oldest first (of the versions before
    ``before_version`` only, when given)."""
    query = (
        select(CriticalFindingNotice)
        .join(ReadingReportVersion, ReadingReportVersion.id == CriticalFindingNotice.version_id)
        .where(CriticalFindingNotice.report_id == report_id)
        .order_by(CriticalFindingNotice.notified_at, CriticalFindingNotice.id)
    )
    if before_version is not None:
        query = query.where(ReadingReportVersion.version < before_version)
    return list(session.scalars(query))


def communication_lines(
    session: Session, notices: list[CriticalFindingNotice], where: ZoneInfo
) -> list[str]:
    """Each communication as the report records it, in the zone ``where`` (the site's)."""
    lines = []
    for notice in notices:
        user = session.get(User, notice.recipient_id)
        line = _(COMMUNICATED) % {
            "name": user.full_name if user is not None else "?",
            "day": show_date(notice.notified_at, where),
            "time": show_time(notice.notified_at, where),
        }
        if notice.acknowledged_at is not None:
            line += ", " + _(ACKNOWLEDGED) % {
                "day": show_date(notice.acknowledged_at, where),
                "time": show_time(notice.acknowledged_at, where),
            }
        else:
            line += ", " + _(NOT_ACKNOWLEDGED)
        lines.append(line)
    return lines


def flag_line(version: ReadingReportVersion) -> str:
    """The flagged finding of a version as its pages and PDF show it ("" for none)."""
    if not version.finding_level:
        return ""
    return _("%(level)s: %(finding)s") % {
        "level": _(LEVELS[version.finding_level]),
        "finding": version.finding_text,
    }

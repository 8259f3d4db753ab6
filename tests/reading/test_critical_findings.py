"""Critical and actionable findings: the on-call radiologist flags a critical finding in
the report of a Briey CT and signs it; Dr Durand, the referring physician, is told in the
application and by e-mail (received by a real SMTP server), acknowledges on the page only
he may open, and the report records it in the site's zone; left unacknowledged, the
finding is escalated to Briey's coordinators after its delay, once, and never once
acknowledged."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from concilium.platform import i18n
from concilium.platform.db import transaction
from concilium.platform.i18n import using_locale
from concilium.platform.tables import AuditEvent, Notification, User
from concilium.reading import critical_findings, reports
from concilium.reading.process import ReadingProcess
from concilium.reading.tables import CriticalFindingNotice, ReadingReport, ReadingReportVersion
from concilium.services import LOCALE_FOLDERS
from mail_delivery import deliver, text_of

from .test_reports import FINDINGS_TEXT, IMPRESSION_TEXT, browser_of, pdf_text, referred, texts
from .test_worklist_source import briey, order  # noqa: F401 - the fixture
from .test_worklist_web import routed  # noqa: F401 - the fixture

__all__ = ["referred"]

FINDING = "Embolie pulmonaire segmentaire droite"


def _with_email(runtime, *usernames: str) -> None:
    with transaction(runtime.sessions) as db:
        for name in usernames:
            user = db.execute(select(User).where(User.username == name)).scalar_one()
            user.email = f"{name}@ch-briey.fr"


def _sign_flagged(app, world, clock, exam: int, level: str = "P") -> None:
    garde, csrf, user = browser_of(app, world, "garde")
    clock.advance(seconds=31)
    assert garde.post(f"/reading/exams/{exam}/claim", data={"csrf_token": csrf}).status_code == 303
    form = {
        "csrf_token": csrf,
        **texts(findings=FINDINGS_TEXT, impression=IMPRESSION_TEXT),
        "finding_level": "critical",
        "finding_text": FINDING,
    }
    bad = garde.post(f"/reading/exams/{exam}/report", data={**form, "finding_level": "grave"})
    assert bad.status_code == 422 and "level of the finding" in bad.text
    saved = garde.post(f"/reading/exams/{exam}/report", data=form)
    assert saved.status_code == 303, saved.text
    page = garde.get(f"/reading/exams/{exam}").text
    assert '<option value="critical" selected>' in page and FINDING in page
    signed = garde.post(
        f"/reading/exams/{exam}/report/sign",
        data={**form, "level": level, "code": world.code(user)},
    )
    assert signed.status_code == 303, signed.text


def test_a_critical_finding_is_communicated_acknowledged_and_recorded(
    app, world, runtime, clock, referred, tmp_path
):
    exam, durand, _radio = referred
    _with_email(runtime, "durand")
    _sign_flagged(app, world, clock, exam)
    signed_at = clock.now
    with runtime.sessions() as db:
        version = db.execute(select(ReadingReportVersion)).scalar_one()
        assert (version.finding_level, version.finding_text) == ("critical", FINDING)
        report = db.get(ReadingReport, version.report_id)
        assert reports.intact(db, report)
        (notice,) = db.execute(select(CriticalFindingNotice)).scalars()
        assert notice.recipient_id == durand.id and notice.channels == ["in_app", "email"]
        assert notice.notified_at == signed_at
        assert notice.due_at == signed_at + timedelta(minutes=30)
        notice_id, report_id = notice.id, report.id
        told = db.execute(
            select(Notification.message).where(
                Notification.user_id == durand.id, Notification.kind == "reading.finding"
            )
        ).scalar_one()
        assert f"/reading/findings/{notice_id}" in told and "ACC-SAT" in told
    # The finding is part of the signed digest: a changed flag shows.
    with transaction(runtime.sessions) as db:
        db.get(ReadingReportVersion, version.id).finding_text = "rien"
    with runtime.sessions() as db:
        assert not reports.intact(db, db.get(ReadingReport, report_id))
    with transaction(runtime.sessions) as db:
        db.get(ReadingReportVersion, version.id).finding_text = FINDING

    (mail,) = deliver(runtime)
    assert mail["To"].endswith("durand@ch-briey.fr>") or "durand@ch-briey.fr" in mail["To"]
    assert "LEFÈVRE" not in mail["Subject"] and "Hélène" not in mail["Subject"]
    body = text_of(mail)
    assert f"/reading/findings/{notice_id}" in body and "CH Briey" in body
    assert "Résultat critique dans le compte rendu de l'examen ACC-SAT (CH Briey)" in body
    assert "LEFÈVRE" not in body

    # Only Dr Durand opens and acknowledges it: others are refused, audited.
    clock.advance(seconds=31)
    garde, gcsrf, _ = browser_of(app, world, "garde")
    assert garde.get(f"/reading/findings/{notice_id}").status_code == 403
    refused = garde.post(f"/reading/findings/{notice_id}/acknowledge", data={"csrf_token": gcsrf})
    assert refused.status_code == 403
    radio, _rcsrf, _ = browser_of(app, world, "briey-radio")
    assert radio.get(f"/reading/findings/{notice_id}").status_code == 403
    with runtime.sessions() as db:
        assert db.get(CriticalFindingNotice, notice_id).acknowledged_at is None

    clock.advance(minutes=12)
    referrer, csrf, _ = browser_of(app, world, "durand", "fr")
    page = referrer.get(f"/reading/findings/{notice_id}")
    assert page.status_code == 200 and FINDING in page.text
    assert "Résultat critique" in page.text and "sans accusé de réception" in page.text
    done = referrer.post(f"/reading/findings/{notice_id}/acknowledge", data={"csrf_token": csrf})
    assert done.status_code == 303 and done.headers["location"] == f"/reading/reports/{report_id}"
    acknowledged_at = clock.now
    with runtime.sessions() as db:
        assert db.get(CriticalFindingNotice, notice_id).acknowledged_at == acknowledged_at
        events = db.execute(
            select(AuditEvent.action, AuditEvent.outcome, AuditEvent.patient_id).where(
                AuditEvent.action.like("reading.finding.%")
            )
        ).all()
    actions = [(a, o) for a, o, _ in events]
    assert ("reading.finding.notify", "success") in actions
    assert actions.count(("reading.finding.acknowledge", "refused")) >= 2
    assert ("reading.finding.acknowledge", "success") in actions
    assert ("reading.finding.read", "success") in actions
    assert all(p for a, o, p in events if o == "success")

    paris = ZoneInfo("Europe/Paris")
    line = (
        f"Résultat critique communiqué à Dr Durand le {signed_at.astimezone(paris):%d/%m/%Y} "
        f"à {signed_at.astimezone(paris):%H:%M}, accusé de réception le "
        f"{acknowledged_at.astimezone(paris):%d/%m/%Y} à {acknowledged_at.astimezone(paris):%H:%M}"
    )
    shown = referrer.get(f"/reading/reports/{report_id}")
    assert shown.status_code == 200 and line in shown.text
    assert "Résultat critique : " + FINDING in shown.text

    # The final version keeps the flag; Dr Durand is not told again of the same finding,
    # and its PDF records the communication.
    clock.advance(seconds=31)
    garde, gcsrf, garde_user = browser_of(app, world, "garde")
    clock.advance(seconds=31)
    final = {
        "csrf_token": gcsrf,
        **texts(findings=FINDINGS_TEXT, impression=IMPRESSION_TEXT),
        "finding_level": "critical",
        "finding_text": FINDING,
        "level": "F",
        "code": world.code(garde_user),
    }
    assert garde.post(f"/reading/exams/{exam}/report/sign", data=final).status_code == 303
    with runtime.sessions() as db:
        assert len(db.execute(select(CriticalFindingNotice)).all()) == 1
        last = db.execute(
            select(ReadingReportVersion).where(ReadingReportVersion.version == 2)
        ).scalar_one()
        assert last.finding_level == "critical"
        assert reports.intact(db, db.get(ReadingReport, report_id))
        pdf = last.pdf
    text = " ".join(pdf_text(pdf, tmp_path).split())
    assert line in text and FINDING in text


def test_an_unacknowledged_finding_is_escalated_once_after_its_delay(
    app, world, runtime, clock, referred
):
    exam = referred[0]
    world.user("coord", (world.briey, "coordinator"))
    world.user("metz-coord", (world.metz, "coordinator"))
    _with_email(runtime, "durand", "coord")
    _sign_flagged(app, world, clock, exam)
    with runtime.sessions() as db:
        notice = db.execute(select(CriticalFindingNotice)).scalar_one()
        due, notice_id = notice.due_at, notice.id
    deliver(runtime)  # Dr Durand's notice
    process = ReadingProcess.__new__(ReadingProcess)
    process.runtime, process.imaging = runtime, None

    clock.now = due - timedelta(seconds=1)
    with transaction(runtime.sessions) as db:
        assert critical_findings.escalate_unacknowledged(db, runtime, clock.now) == []
    clock.now = due
    process.escalate()  # the periodic loop's work
    with transaction(runtime.sessions) as db:
        assert critical_findings.escalate_unacknowledged(db, runtime, clock.now) == []  # once
        row = db.get(CriticalFindingNotice, notice_id)
        assert row.escalated_at == due
        coord = db.execute(select(User).where(User.username == "coord")).scalar_one()
        assert row.escalated_to == [coord.id]
        alerts = db.execute(
            select(Notification.user_id).where(Notification.kind == "reading.finding.escalate")
        ).scalars()
        assert list(alerts) == [coord.id]  # Briey's coordinator, not Metz's
        escalated = db.execute(
            select(AuditEvent.outcome).where(AuditEvent.action == critical_findings.ESCALATE)
        ).all()
        assert len(escalated) == 1
    (mail,) = deliver(runtime)
    assert "coord@ch-briey.fr" in mail["To"] and "LEFÈVRE" not in mail["Subject"]
    body = text_of(mail)
    assert "Résultat critique dans le compte rendu de l'examen ACC-SAT" in body
    assert "Durand" in body and "LEFÈVRE" not in body

    # Acknowledged before its delay: never escalated.
    with transaction(runtime.sessions) as db:
        row = db.get(CriticalFindingNotice, notice_id)
        row.escalated_at, row.acknowledged_at = None, due - timedelta(minutes=1)
    clock.advance(hours=5)
    with transaction(runtime.sessions) as db:
        assert critical_findings.escalate_unacknowledged(db, runtime, clock.now) == []
    assert deliver(runtime) == []


def test_the_communication_is_shown_in_the_site_zone_across_the_change_of_time(world, runtime):
    """Told at 00:30 on the night France moves to summer time (23:30 UTC the day before),
    acknowledged at 03:30 summer time (01:30 UTC)."""
    i18n.load_catalogues(LOCALE_FOLDERS)  # as the process assembly does
    durand = world.user("durand", (world.briey, "referring_physician"))
    notice = CriticalFindingNotice(
        recipient_id=durand.id,
        level="critical",
        notified_at=datetime(2026, 3, 28, 23, 30, tzinfo=UTC),
        acknowledged_at=datetime(2026, 3, 29, 1, 30, tzinfo=UTC),
    )
    with runtime.sessions() as db, using_locale("fr"):
        (line,) = critical_findings.communication_lines(db, [notice], ZoneInfo("Europe/Paris"))
        (utc,) = critical_findings.communication_lines(db, [notice], ZoneInfo("UTC"))
    assert line == (
        "Résultat critique communiqué à Dr Durand le 29/03/2026 à 00:30, "
        "accusé de réception le 29/03/2026 à 03:30"
    )
    assert "28/03/2026 à 23:30" in utc and "01:30" in utc

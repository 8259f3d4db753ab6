"""The report of an exam: the on-call radiologist of CHR Metz writes the report of a Briey
CT in its template, saves it, signs it preliminary then final with fresh codes of their
authenticator (a wrong code refused), after which it never changes and their grant ends;
Briey's radiologist adds a signed addendum; every version kept, chained and audited; the
referring physician reads it and its PDF (in French); the Encapsulated PDF is in the
study (QIDO-RS, WADO-RS); the results side gets it as an ``ImagingReport``."""

from __future__ import annotations

import json
import subprocess
from email.parser import BytesParser
from email.policy import HTTP
from io import BytesIO

import pydicom
import pytest
from sqlalchemy import select

from concilium.imaging import ImagingProcess
from concilium.platform.db import transaction
from concilium.platform.tables import AuditEvent, User
from concilium.reading import report_archive, reports, results
from concilium.reading.hl7v2_datatypes import HierarchicDesignator
from concilium.reading.oru import FINDINGS, IMPRESSIONS, Envelope, ResultStatus, build_oru_r01
from concilium.reading.report_templates import DEFAULTS, GENERIC, template_for
from concilium.reading.tables import (
    ImagingOrderRecord,
    OutboundMessage,
    ReadingAssignment,
    ReadingReport,
    ReadingReportVersion,
    ReportTemplateRecord,
)

from .test_worklist_source import briey, order  # noqa: F401 - the fixture
from .test_worklist_web import bearer, routed  # noqa: F401 - the fixture

RPPS = "10002000001"
FINDINGS_TEXT = "Embolie pulmonaire segmentaire lobaire inférieure droite."
IMPRESSION_TEXT = "Embolie pulmonaire droite, sans retentissement cardiaque."


def browser_of(app, world, username: str, language: str = "en"):
    with world.runtime.sessions() as db:
        user = db.execute(select(User).where(User.username == username)).scalar_one()
        db.expunge(user)
    browser = world.client(app)
    browser.headers["Accept-Language"] = language
    csrf = world.sign_in(browser, user)
    return browser, csrf, user


def pdf_text(content: bytes, tmp_path) -> str:
    path = tmp_path / "report.pdf"
    path.write_bytes(content)
    done = subprocess.run(
        ["pdftotext", "-enc", "UTF-8", str(path), "-"], capture_output=True, check=True, timeout=30
    )
    return done.stdout.decode()


@pytest.fixture
def referred(world, runtime, routed):  # noqa: F811 - the fixture
    """The routed exam, its order requested by Dr Durand of Briey (RPPS on the order)."""
    durand = world.user("durand", (world.briey, "referring_physician"), with_totp=True)
    briey_radio = world.user("briey-radio", (world.briey, "radiologist"), with_totp=True)
    with transaction(runtime.sessions) as db:
        db.get(User, durand.id).rpps = RPPS
        db.execute(select(ImagingOrderRecord)).scalar_one().referring_physician_id = RPPS
    return routed[1], durand, briey_radio


def texts(**values: str) -> dict[str, str]:
    return {f"s_{key}": value for key, value in values.items()}


def test_a_report_goes_draft_preliminary_final_then_addenda_only(
    app, world, runtime, clock, referred, tmp_path
):
    _flow(app, world, runtime, clock, referred[0], tmp_path)


def results_queued(runtime) -> list[tuple[str, str]]:
    """The ORU^R01 queued for the hospital system, in order: (OBR-25 result status, state)."""
    with runtime.sessions() as db:
        rows = db.execute(
            select(OutboundMessage)
            .where(OutboundMessage.kind == results.REPORT_KIND)
            .order_by(OutboundMessage.id)
        ).scalars()
        statuses = []
        for row in rows:
            obr = next(s for s in row.raw.decode().split("\r") if s.startswith("OBR|"))
            statuses.append((obr.split("|")[25], row.state))
        return statuses


def _flow(app, world, runtime, clock, exam, tmp_path) -> None:
    garde, csrf, garde_user = browser_of(app, world, "garde")
    page = garde.get(f"/reading/exams/{exam}")
    assert page.status_code == 200, page.text
    assert "Claim the exam to write its report." in page.text
    assert "No prior report." in page.text
    # Writing before claiming: refused, audited, nothing kept.
    form = {"csrf_token": csrf, **texts(findings=FINDINGS_TEXT)}
    refused = garde.post(f"/reading/exams/{exam}/report", data=form)
    assert refused.status_code == 409 and "Claim the exam first" in refused.text
    assert garde.post(f"/reading/exams/{exam}/claim", data={"csrf_token": csrf}).status_code == 303
    # The CT template's sections, coded where DICOM has a heading.
    page = garde.get(f"/reading/exams/{exam}").text
    assert 'name="s_technique"' in page and 'name="s_impression"' in page
    # Another reader of the group cannot write while garde holds it.
    garde2, csrf2, _ = browser_of(app, world, "garde2")
    other = garde2.post(f"/reading/exams/{exam}/report", data={**form, "csrf_token": csrf2})
    assert other.status_code == 409

    saved = garde.post(f"/reading/exams/{exam}/report", data=form)
    assert saved.status_code == 303, saved.text
    assert FINDINGS_TEXT in garde.get(f"/reading/exams/{exam}").text

    # Signing without the impression, then with a wrong code: refused.
    clock.advance(seconds=31)  # the sign-in used the current code
    sign = {**form, "level": "P", "code": world.code(garde_user)}
    assert garde.post(f"/reading/exams/{exam}/report/sign", data=sign).status_code == 422
    sign = {**form, **texts(impression=IMPRESSION_TEXT), "level": "P", "code": "000000"}
    wrong = garde.post(f"/reading/exams/{exam}/report/sign", data=sign)
    assert wrong.status_code == 403 and "authenticator" in wrong.text
    with runtime.sessions() as db:
        report = db.execute(select(ReadingReport)).scalar_one()
        assert report.status == reports.DRAFT
        assert db.execute(select(ReadingReportVersion)).first() is None

    sign["code"] = world.code(garde_user)
    assert garde.post(f"/reading/exams/{exam}/report/sign", data=sign).status_code == 303
    # A preliminary report is not signed twice; then final, with a fresh code.
    clock.advance(seconds=31)
    again = garde.post(
        f"/reading/exams/{exam}/report/sign", data={**sign, "code": world.code(garde_user)}
    )
    assert again.status_code == 409
    clock.advance(seconds=31)
    final = {**sign, "level": "F", "code": world.code(garde_user)}
    done = garde.post(f"/reading/exams/{exam}/report/sign", data=final)
    assert done.status_code == 303 and done.headers["location"] == "/reading"
    # Each signature queued its ORU^R01 with it (Briey's system has no results address
    # here: kept, visibly, as "no destination").
    assert results_queued(runtime) == [("P", "no_destination"), ("F", "no_destination")]

    # Final: the routed reader's grant has ended; nothing more is written.
    assert garde.get(f"/reading/exams/{exam}").status_code == 403
    assert garde.post(f"/reading/exams/{exam}/report", data=form).status_code == 403
    assert "ACC-SAT" not in garde.get("/reading").text

    # Briey's own radiologist adds an addendum, signed with their code.
    radio, rcsrf, radio_user = browser_of(app, world, "briey-radio")
    clock.advance(seconds=31)
    shown = radio.get(f"/reading/exams/{exam}")
    assert shown.status_code == 200
    assert IMPRESSION_TEXT in shown.text and 'action="/reading/exams/' in shown.text
    assert 'name="s_findings"' not in shown.text  # no editor once final
    addendum = {"csrf_token": rcsrf, "text": "Aucun épanchement pleural.", "code": "1"}
    assert radio.post(f"/reading/exams/{exam}/report/addenda", data=addendum).status_code == 403
    addendum["code"] = world.code(radio_user)
    assert radio.post(f"/reading/exams/{exam}/report/addenda", data=addendum).status_code == 303
    rewrite = {"csrf_token": rcsrf, **texts(findings="autre"), "level": "F", "code": "1"}
    assert radio.post(f"/reading/exams/{exam}/report/sign", data=rewrite).status_code == 409
    assert [status for status, _state in results_queued(runtime)] == ["P", "F", "C"]

    with runtime.sessions() as db:
        report = db.execute(select(ReadingReport)).scalar_one()
        versions = reports.versions_of(db, report)
        assert [(v.version, v.status) for v in versions] == [(1, "P"), (2, "F"), (3, "C")]
        assert versions[2].sections == versions[1].sections
        assert reports.intact(db, report)
        assert all(v.archived_at is not None for v in versions)
        results = reports.report_for_results(db, report.id, 3)
        report_id = report.id
        pdfs = [v.pdf for v in versions]
    assert results.status is ResultStatus.CORRECTED
    assert results.accession_number == "ACC-SAT" and results.pdf == pdfs[2]
    headings = [s.heading for s in results.sections]
    assert FINDINGS in headings and IMPRESSIONS in headings
    assert results.sections[-1].text == "Aucun épanchement pleural."
    envelope = Envelope(*(HierarchicDesignator(n) for n in ("CONCILIUM", "GHT", "HIS", "CHB")))
    oru = build_oru_r01(results, envelope, now=runtime.now())
    assert b"OBR|" in oru and b"|C|" in oru and b"ED|18748-4" in oru

    # A changed row shows.
    with transaction(runtime.sessions) as db:
        row = db.execute(select(ReadingReportVersion).where(ReadingReportVersion.version == 2))
        row.scalar_one().sections = [{"key": "findings", "text": "rien"}]
    with runtime.sessions() as db:
        assert not reports.intact(db, db.get(ReadingReport, report_id))

    # The referring physician reads it and its PDF, in French.
    referrer, _, _ = browser_of(app, world, "durand", "fr")
    page = referrer.get(f"/reading/reports/{report_id}")
    assert page.status_code == 200, page.text
    assert "Aucun épanchement pleural." in page.text and "LEFÈVRE Hélène" in page.text
    pdf = referrer.get(f"/reading/reports/{report_id}/versions/2/pdf")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    text = pdf_text(pdf.content, tmp_path)
    assert "Compte rendu d'imagerie" in text and "CH Briey" in text
    assert "LEFÈVRE Hélène" in text and "ACC-SAT" in text
    assert "Compte rendu définitif" in text and "Signé par Garde" in text
    assert "07/03/2026" in text  # the exam, in the site's zone
    addendum_text = pdf_text(pdfs[2], tmp_path)
    assert "Addendum" in addendum_text and "Aucun épanchement pleural." in addendum_text
    # Another site's radiologist: refused.
    autre = world.client(app)
    autre.headers.update(bearer(world, "autre"))
    assert autre.get(f"/reading/reports/{report_id}").status_code == 403
    assert autre.get(f"/reading/reports/{report_id}/versions/2/pdf").status_code == 403

    with runtime.sessions() as db:
        events = db.execute(
            select(AuditEvent.action, AuditEvent.outcome, AuditEvent.patient_id).where(
                AuditEvent.action.like("reading.report.%")
            )
        ).all()
    actions = [(a, o) for a, o, _ in events]
    assert ("reading.report.write", "refused") in actions
    assert actions.count(("reading.report.sign", "success")) == 2
    assert ("reading.report.sign", "refused") in actions
    assert ("reading.report.addendum", "success") in actions
    assert ("reading.report.save", "success") in actions
    assert ("reading.report.read", "success") in actions
    assert ("reading.report.read", "refused") in actions
    assert all(p for a, o, p in events if o == "success")


def _parts(response) -> list[bytes]:
    raw = b"Content-Type: " + response.headers["content-type"].encode() + b"\r\n\r\n"
    message = BytesParser(policy=HTTP).parsebytes(raw + response.content)
    return [part.get_payload(decode=True) for part in message.iter_parts()]


def test_the_signed_pdf_is_in_the_study_for_qido_and_wado(app, world, runtime, clock, referred):
    exam = referred[0]
    radio, csrf, user = browser_of(app, world, "briey-radio")
    clock.advance(seconds=31)
    assert radio.post(f"/reading/exams/{exam}/claim", data={"csrf_token": csrf}).status_code == 303
    form = {
        "csrf_token": csrf,
        **texts(findings=FINDINGS_TEXT, impression=IMPRESSION_TEXT),
        "level": "F",
        "code": world.code(user),
    }
    assert radio.post(f"/reading/exams/{exam}/report/sign", data=form).status_code == 303
    with runtime.sessions() as db:
        order_row = db.execute(select(ImagingOrderRecord)).scalar_one()
        version = db.execute(select(ReadingReportVersion)).scalar_one()
        uid, sop, pdf = order_row.study_instance_uid, version.sop_instance_uid, version.pdf
        assert version.archived_at is not None
    assert uid
    found = radio.get(
        f"/dicomweb/studies/{uid}/instances", headers={"Accept": "application/dicom+json"}
    )
    assert found.status_code == 200, found.text
    [instance] = found.json()
    assert instance["00080016"]["Value"] == [report_archive.ENCAPSULATED_PDF]
    assert instance["00080018"]["Value"] == [sop]
    studies = radio.get(
        "/dicomweb/studies",
        params={"StudyInstanceUID": uid},
        headers={"Accept": "application/dicom+json"},
    )
    [study] = studies.json()
    assert study["00080050"]["Value"] == ["ACC-SAT"]
    assert study["00100020"]["Value"] == ["IPP001"]
    assert "DOC" in study["00080061"]["Value"]
    series = instance["0020000E"]["Value"][0]
    got = radio.get(
        f"/dicomweb/studies/{uid}/series/{series}/instances/{sop}",
        headers={"Accept": 'multipart/related; type="application/dicom"'},
    )
    assert got.status_code == 200, got.text
    [part] = _parts(got)
    ds = pydicom.dcmread(BytesIO(part))
    assert ds.MIMETypeOfEncapsulatedDocument == "application/pdf"
    assert ds.EncapsulatedDocument[: ds.EncapsulatedDocumentLength] == pdf
    assert str(ds.StudyInstanceUID) == uid and ds.PatientID == "IPP001"
    # A version the archive did not acknowledge is offered again (the same instance).
    with transaction(runtime.sessions) as db:
        db.execute(select(ReadingReportVersion)).scalar_one().archived_at = None
    archive = app.state.assembly.service(ImagingProcess).archive
    assert report_archive.archive_pending(archive, runtime.sessions, runtime.now()) == 1
    with runtime.sessions() as db:
        assert db.execute(select(ReadingReportVersion)).scalar_one().archived_at is not None


def test_templates_by_procedure_code_then_modality_then_defaults(runtime, world, referred):
    with transaction(runtime.sessions) as db:
        order_row = db.execute(select(ImagingOrderRecord)).scalar_one()
        assert template_for(db, order_row) is DEFAULTS["CT"]
        db.add(
            ReportTemplateRecord(
                site_id=None,
                modality="CT",
                name="TDM commune",
                sections=[{"key": "findings", "title": "Findings", "code": FINDINGS.code}],
            )
        )
        db.add(
            ReportTemplateRecord(
                site_id=world.briey.id,
                procedure_code="TDM-THX",
                name="Angioscanner thoracique",
                sections=[
                    {"key": "indication", "title": "Indication", "code": "121109"},
                    {"key": "impression", "title": "Impression", "code": IMPRESSIONS.code},
                ],
            )
        )
        db.flush()
        chosen = template_for(db, order_row)
        assert chosen.name == "Angioscanner thoracique"
        assert [s.key for s in chosen.sections] == ["indication", "impression"]
        order_row.procedure_code = "AUTRE"
        assert template_for(db, order_row).name == "TDM commune"
        for step in order_row.steps:
            step.modality = "NM"
        assert template_for(db, order_row) is GENERIC


def test_the_prior_report_is_at_hand_for_the_next_exam(app, world, runtime, clock, referred):
    exam = referred[0]
    radio, csrf, user = browser_of(app, world, "briey-radio")
    clock.advance(seconds=31)
    assert radio.post(f"/reading/exams/{exam}/claim", data={"csrf_token": csrf}).status_code == 303
    form = {
        "csrf_token": csrf,
        **texts(findings=FINDINGS_TEXT, impression=IMPRESSION_TEXT),
        "level": "F",
        "code": world.code(user),
    }
    assert radio.post(f"/reading/exams/{exam}/report/sign", data=form).status_code == 303
    order(runtime, "ACC-2", "20260314020000", step="SPS-2")
    with runtime.sessions() as db:
        second = db.execute(
            select(ReadingAssignment.id)
            .join(ImagingOrderRecord, ImagingOrderRecord.id == ReadingAssignment.order_id)
            .where(ImagingOrderRecord.accession_number == "ACC-2")
        ).scalar_one()
    garde, _, _ = browser_of(app, world, "garde", "fr")
    page = garde.get(f"/reading/exams/{second}")
    assert page.status_code == 200, page.text
    assert "Compte rendu antérieur" in page.text and IMPRESSION_TEXT in page.text
    with runtime.sessions() as db:
        views = db.execute(
            select(AuditEvent.detail, AuditEvent.patient_id).where(
                AuditEvent.action == "reading.report.read", AuditEvent.actor == "garde"
            )
        ).all()
    details = [json.loads(d) if isinstance(d, str) else d for d, _ in views]
    assert [d["view"] for d in details] == ["prior"] and views[0][1]

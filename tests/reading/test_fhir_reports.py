"""FHIR R4 ``DiagnosticReport``: a Briey CT's report, signed final then with an addendum,
is read by its referring physician as a valid R4B resource (status, radiology category,
procedure code, patient, order, study, signer, impression, the signed PDF) and found by
its order or accession number; unsigned or out of reach, it does not exist (404
``OperationOutcome``); every read is audited; the capability statement names it."""

from __future__ import annotations

import base64

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.diagnosticreport import DiagnosticReport
from fhir.resources.R4B.operationoutcome import OperationOutcome
from sqlalchemy import select

from concilium.platform.tables import AuditEvent
from concilium.reading.tables import ImagingOrderRecord, ReadingReport, ReadingReportVersion

from .test_reports import IMPRESSION_TEXT, browser_of, referred, texts  # noqa: F401
from .test_worklist_source import briey, order  # noqa: F401 - the fixture
from .test_worklist_web import bearer, routed  # noqa: F401 - the fixture

ACCESSION = "urn:concilium:accession:540000049"


def _missing(response) -> None:
    assert response.status_code == 404, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    OperationOutcome.model_validate(response.json())
    assert response.json()["issue"][0]["code"] == "not-found"


def test_the_signed_report_reads_as_a_diagnostic_report(app, world, runtime, clock, referred):  # noqa: F811
    exam = referred[0]
    radio, csrf, user = browser_of(app, world, "briey-radio")
    durand, _, _ = browser_of(app, world, "durand")  # the referrer, signed in
    clock.advance(seconds=31)
    assert radio.post(f"/reading/exams/{exam}/claim", data={"csrf_token": csrf}).status_code == 303
    form = {"csrf_token": csrf, **texts(findings="Embolie.", impression=IMPRESSION_TEXT)}
    assert radio.post(f"/reading/exams/{exam}/report", data=form).status_code == 303
    with runtime.sessions() as db:
        report_id = db.execute(select(ReadingReport.id)).scalar_one()
        order_row = db.execute(select(ImagingOrderRecord)).scalar_one()
        order_id, uid = order_row.id, order_row.study_instance_uid
    # A draft is no resource yet, even for the site's radiologist.
    _missing(radio.get(f"/fhir/DiagnosticReport/{report_id}"))

    sign = {**form, "level": "F", "code": world.code(user)}
    assert radio.post(f"/reading/exams/{exam}/report/sign", data=sign).status_code == 303
    read = durand.get(f"/fhir/DiagnosticReport/{report_id}")
    assert read.status_code == 200, read.text
    assert read.headers["content-type"].startswith("application/fhir+json")
    assert read.headers["etag"] == 'W/"1"'
    body = read.json()
    resource = DiagnosticReport.model_validate(body)
    assert resource.status == "final"
    codes = {(c.system, c.code) for c in resource.category[0].coding}
    assert ("http://loinc.org", "LP29684-5") in codes
    assert ("http://terminology.hl7.org/CodeSystem/v2-0074", "RAD") in codes
    assert body["code"]["coding"][0]["code"] == order_row.procedure_code
    assert body["subject"] == {"reference": f"Patient/{order_row.patient_id}"}
    assert body["basedOn"] == [{"reference": f"ServiceRequest/{order_id}"}]
    assert body["identifier"][0] == {**body["identifier"][0], "system": ACCESSION}
    assert body["identifier"][0]["value"] == "ACC-SAT"
    assert resource.conclusion == IMPRESSION_TEXT
    assert body["resultsInterpreter"][0]["display"] == body["performer"][0]["display"]
    assert resource.issued is not None
    [form_pdf] = resource.presentedForm
    assert form_pdf.contentType == "application/pdf" and form_pdf.title
    with runtime.sessions() as db:
        signed_pdf = db.execute(select(ReadingReportVersion)).scalar_one().pdf
    assert base64.b64decode(body["presentedForm"][0]["data"]) == signed_pdf
    assert signed_pdf.startswith(b"%PDF")
    [study] = body["contained"]
    assert body["imagingStudy"] == [{"reference": "#study"}]
    assert study["resourceType"] == "ImagingStudy" and study["id"] == "study"
    assert study["identifier"][0]["value"] == "urn:oid:" + uid
    assert study["numberOfSeries"] == 1  # the report's Encapsulated PDF series
    assert study["subject"] == body["subject"]

    # An addendum: the report is "appended", its text added to the conclusion.
    clock.advance(seconds=31)
    addendum = {"csrf_token": csrf, "text": "Aucun épanchement.", "code": world.code(user)}
    assert radio.post(f"/reading/exams/{exam}/report/addenda", data=addendum).status_code == 303
    appended = durand.get(f"/fhir/DiagnosticReport/{report_id}").json()
    assert DiagnosticReport.model_validate(appended).status == "appended"
    assert appended["conclusion"].endswith("Aucun épanchement.")
    assert appended["meta"]["versionId"] == "2"

    # Found by its order and by its accession number.
    for params in (
        {"based-on": f"ServiceRequest/{order_id}"},
        {"identifier": f"{ACCESSION}|ACC-SAT"},
    ):
        found = durand.get("/fhir/DiagnosticReport", params=params)
        assert found.status_code == 200, found.text
        bundle = Bundle.model_validate(found.json())
        assert bundle.total == 1 and bundle.entry[0].resource.id == str(report_id)
        assert bundle.entry[0].fullUrl.endswith(f"/fhir/DiagnosticReport/{report_id}")
    assert durand.get("/fhir/DiagnosticReport").json()["total"] == 1  # no criteria
    nothing = durand.get("/fhir/DiagnosticReport", params={"identifier": f"{ACCESSION}|NONE"})
    assert Bundle.model_validate(nothing.json()).total == 0
    bad = durand.get("/fhir/DiagnosticReport", params={"subject": "Patient/1"})
    assert bad.status_code == 400
    OperationOutcome.model_validate(bad.json())

    # Another site's radiologist: it does not exist for them (refusal audited).
    autre = world.client(app)
    autre.headers.update(bearer(world, "autre"))
    _missing(autre.get(f"/fhir/DiagnosticReport/{report_id}"))
    assert (
        autre.get("/fhir/DiagnosticReport", params={"identifier": f"{ACCESSION}|ACC-SAT"}).json()[
            "total"
        ]
        == 0
    )
    _missing(durand.get("/fhir/DiagnosticReport/999999"))
    _missing(durand.get("/fhir/DiagnosticReport/abc"))

    with runtime.sessions() as db:
        events = db.execute(
            select(AuditEvent.outcome, AuditEvent.patient_id, AuditEvent.detail).where(
                AuditEvent.action == "reading.report.read"
            )
        ).all()
    fhir_reads = [(o, p) for o, p, d in events if '"fhir"' in (d or "")]
    assert len(fhir_reads) == 5 and all(p == order_row.patient_id for _, p in fhir_reads)
    assert any(o == "refused" for o, _, _ in events)

    statement = CapabilityStatement.model_validate(durand.get("/fhir/metadata").json())
    [entry] = [r for r in statement.rest[0].resource if r.type == "DiagnosticReport"]
    assert {i.code for i in entry.interaction} == {"read", "search-type"}

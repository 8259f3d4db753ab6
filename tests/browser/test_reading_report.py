"""The teleradiology circuit end to end, with outside clients only: Briey's hospital system
sends the admission and the order of a CT at 02:00 on a Saturday over MLLP (python-hl7's
``mllp_send``), the scanner finds it in its worklist (DCMTK ``findscu -W``) and sends the
images (``storescu``); the on-call radiologist of CHR Metz claims the exam in Chromium,
writes its report in the CT template and signs it final with a fresh code of their
authenticator; Briey's system (an MLLP listener here) receives the ORU^R01 with the report
text and the PDF; Dr Durand, who asked for the exam, is told in the application, reads the
signed report and opens its PDF, reads it as a FHIR ``DiagnosticReport``, and finds the
Encapsulated PDF in the study (QIDO-RS, WADO-RS). In French; the report page fits a phone."""

from __future__ import annotations

import asyncio
import base64
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import hl7  # type: ignore[import-untyped]
import pydicom
import pyotp
import pytest
from fhir.resources.R4B.diagnosticreport import DiagnosticReport

from concilium.imaging.synthetic import SyntheticPatient, SyntheticStudy, generate_ct_series
from concilium.reading.mllp import frame
from imaging.dcmtk import require_dcmtk, run
from reading.outbound_peer import His
from serving import RunningServer, free_port, running_server

from .browsing import signed_in_state

DESKTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}
MLLP_SEND = Path(sys.executable).parent / "mllp_send"
BRIEY = ("CH Briey", "540000049")
METZ = ("CHR Metz-Thionville", "570005165")
RPPS = "10002000001"
PID = "PID|1||IPP001^^^CHBRIEY^PI||Lefevre^Helene||19850523|F"
PV1 = f"PV1|1|E|URG^^^CHBRIEY|||||{RPPS}^Durand^Anne^^^DR"
START = "20260307020000"  # Saturday 7 March 2026, 02:00 in Paris
IMPRESSION = "Embolie pulmonaire droite, sans retentissement cardiaque."
ENCAPSULATED_PDF = "1.2.840.10008.5.1.4.1.1.104.1"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    """The served platform, delivering its outbound HL7 messages every 0.2 s."""
    with running_server(tmp_path, CONCILIUM_HL7_OUTBOUND_PERIOD="0.2") as running:
        yield running
    assert running.returncode in (0, -15)
    assert "Application shutdown complete" in running.log_path.read_text()


@pytest.fixture
def his() -> Iterator[His]:
    """Briey's hospital system receiving results: python-hl7's asyncio MLLP server, in a
    thread of its own (Playwright's synchronous API holds the main thread's loop)."""
    loop = asyncio.new_event_loop()
    listener = His(free_port())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(listener.start(), loop).result(timeout=10)
    try:
        yield listener
    finally:
        asyncio.run_coroutine_threadsafe(listener.stop(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


def until(found: Callable[[], Any], what: str, seconds: float = 30) -> Any:
    """``found()`` once it is truthy, polled until a deadline."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = found()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"no {what} within {seconds} s")


def message(kind: str, control_id: str, *segments: str) -> bytes:
    header = (
        f"MSH|^~\\&|HIS|CHBRIEY|CONCILIUM|GHT|20260307020000||{kind}|{control_id}|P|2.5.1"
        "||||||UNICODE UTF-8"
    )
    return "\r".join([header, *segments]).encode()


def order() -> bytes:
    orc = f"ORC|NW|PL-1^HIS|FL-1^RIS||SC||^^^{START}^^S||||||||||BRIEY_CT"
    obr = ["OBR", "1", "PL-1^HIS", "FL-1^RIS", "TDM-THX^Scanner thorax^LOCAL", *[""] * 13]
    obr += ["ACC-NUIT", "RP-1", "SPS-1", "", "", "", "CT", "", f"^^^{START}^^S"]
    return message("ORM^O01", "ORM-1", PID, PV1, orc, "|".join(obr))


def provision(server, tmp_path: Path, his_port: int) -> dict[str, str]:
    server.create_site(*BRIEY)
    server.create_site(*METZ)
    server.cli(
        "hl7", "node", "add", "--site", BRIEY[1], "--application", "HIS", "--facility", "CHBRIEY"
    )
    server.cli(
        "hl7", "node", "destination", "--application", "HIS", "--facility", "CHBRIEY",
        "--host", "127.0.0.1", "--port", str(his_port),
    )  # fmt: skip
    node = ("--host", "127.0.0.1", "--port", "104", "--query", "--site", BRIEY[1])
    server.cli("dicom", "ae", "add", "BRIEY_CT", *node)
    server.cli("reading", "group", "add", "--name", "Radiologie Briey", "--site", BRIEY[1])
    server.cli("reading", "group", "add", "--name", "Garde Metz", "--site", METZ[1])
    for kind in ("night", "weekend"):
        server.cli("reading", "oncall", "add", "--group", "Garde Metz", "--kind", kind)
    server.cli(
        "reading", "rule", "add", "--name", "garde", "--site", BRIEY[1], "--group", "Garde Metz"
    )
    keys = {
        "garde": server.create_user(
            "garde", f"radiologist@{METZ[1]}", password="garde-pass-1234", totp=True
        )
    }
    out = server.cli(
        "user",
        "create",
        "--username",
        "durand",
        "--full-name",
        "Anne Durand",
        "--role",
        f"referring_physician@{BRIEY[1]}",
        "--rpps",
        RPPS,
        "--password",
        "durand-pass-1234",
        "--with-totp",
    )
    found = re.search(r"authenticator key: (\w+)", out)
    assert found, out
    keys["durand"] = found.group(1)
    server.cli(
        "reading", "member", "add", "--group", "Garde Metz", "--user", "garde", "--site", BRIEY[1]
    )
    batch = tmp_path / "batch.hl7"
    batch.write_bytes(
        frame(message("ADT^A01^ADT_A01", "ADT-1", "EVN||20260307020000", PID, PV1)) + frame(order())
    )
    sent = subprocess.run(
        [str(MLLP_SEND), "-p", server.env["CONCILIUM_HL7_PORT"], "-f", str(batch), "127.0.0.1"],
        capture_output=True,
        timeout=60,
        check=True,
    )
    assert sent.stdout.count(b"MSA|AA|") == 2
    return keys


def scan(server, tmp_path: Path) -> str:
    """Briey's scanner: its worklist has the exam (``findscu -W``); it sends two images in
    the study the worklist names (``storescu``). The Study Instance UID."""
    port = server.env["CONCILIUM_DICOM_PORT"]
    out = tmp_path / "mwl"
    out.mkdir()
    args = ["findscu", "-W", "-aet", "BRIEY_CT", "-aec", "CONCILIUM", "-X", "-od", str(out)]
    for key in (
        "PatientID",
        "AccessionNumber",
        "StudyInstanceUID",
        "(0040,0100)[0].ScheduledProcedureStepStartDate=20260307",
        "(0040,0100)[0].ScheduledProcedureStepStartTime",
        "(0040,0100)[0].Modality",
    ):
        args += ["-k", key]
    found = run(*args, "127.0.0.1", port)
    assert found.returncode == 0, found.stdout + found.stderr
    [item] = [pydicom.dcmread(p) for p in out.glob("*.dcm")]
    assert (item.PatientID, item.AccessionNumber) == ("IPP001", "ACC-NUIT")
    step = item.ScheduledProcedureStepSequence[0]
    assert (step.ScheduledProcedureStepStartTime, step.Modality) == ("020000", "CT")
    study = SyntheticStudy(
        seed="nuit", patient=SyntheticPatient("LEFEVRE^HELENE", "IPP001", "19850523", "F")
    )
    files = generate_ct_series(tmp_path / "ct", 2, study=study, rows=16, columns=16)
    for path in files:  # as a modality does: the study, accession of the worklist item
        image = pydicom.dcmread(path)
        image.StudyInstanceUID = item.StudyInstanceUID
        image.AccessionNumber = item.AccessionNumber
        image.save_as(path)
    sent = run("storescu", "-aet", "BRIEY_CT", "-aec", "CONCILIUM", "127.0.0.1", port, *files)
    assert sent.returncode == 0, sent.stdout + sent.stderr
    return str(item.StudyInstanceUID)


def oru_received(his: His) -> hl7.Message | None:
    for raw in his.received:
        if b"|ORU^R01^ORU_R01|" in raw.split(b"\r", 1)[0]:
            return hl7.parse(raw.decode())
    return None


@pytest.mark.browser
def test_the_radiologist_signs_the_report_and_the_referrer_reads_it(
    server, his, browser, artifacts, tmp_path
):
    require_dcmtk()
    keys = provision(server, tmp_path, his.port)
    study_uid = scan(server, tmp_path)
    state = signed_in_state(browser, server.url, "garde", "garde-pass-1234", keys["garde"])
    context = browser.new_context(
        viewport=DESKTOP, base_url=server.url, storage_state=state, locale="fr-FR"
    )
    page = context.new_page()
    page.goto("/reading")
    page.locator("#worklist tbody tr").nth(0).get_by_role("button", name="Prendre").click()
    page.get_by_role("link", name="ACC-NUIT").click()
    assert page.get_by_role("heading", name="Compte rendu").is_visible()
    assert page.get_by_text("Aucun compte rendu antérieur.").is_visible()
    page.get_by_label("Indication").fill("Douleur thoracique, dyspnée.")
    page.get_by_label("Résultats").fill("Embolie pulmonaire segmentaire droite.")
    page.get_by_label("Conclusion").fill(IMPRESSION)
    page.get_by_role("button", name="Enregistrer le brouillon").click()
    assert page.get_by_label("Conclusion").input_value() == IMPRESSION
    # The sign-in used this time step's code: the next step's is the fresh one.
    fresh = pyotp.TOTP(keys["garde"]).at(time.time() + 30)
    page.get_by_label("Code de votre authentificateur, pour signer").fill(fresh)
    page.get_by_role("button", name="Signer en définitif").click()
    page.wait_for_url(re.compile(r".*/reading$"))
    # Read, and the grant is over: the exam left the worklist.
    assert page.get_by_text("Aucun examen à lire.").is_visible()
    assert page.get_by_text("ACC-NUIT").count() == 0
    context.close()

    # Briey's system receives the result: the report text and the PDF (OBX ED, base64).
    oru = until(lambda: oru_received(his), "ORU^R01")
    assert str(oru.segment("OBR")[18]) == "ACC-NUIT"
    assert str(oru.segment("OBR")[25]) == "F"
    observations = [(str(obx[2]), obx) for obx in oru.segments("OBX")]
    assert any(kind == "TX" and IMPRESSION in str(obx[5]) for kind, obx in observations)
    [ed] = [obx for kind, obx in observations if kind == "ED"]
    sent_pdf = base64.b64decode(str(ed[5]).rsplit("^", 1)[-1])
    assert sent_pdf.startswith(b"%PDF-")

    state = signed_in_state(browser, server.url, "durand", "durand-pass-1234", keys["durand"])
    context = browser.new_context(
        viewport=DESKTOP, base_url=server.url, storage_state=state, locale="fr-FR"
    )
    page = context.new_page()
    page.goto("/")
    notice = page.get_by_text(re.compile("Le compte rendu de l'examen ACC-NUIT"))
    found = re.search(r"/reading/reports/\d+", notice.inner_text())
    assert found, notice.inner_text()
    page.goto(found.group(0))
    assert page.get_by_role("heading", name="Compte rendu définitif").is_visible()
    assert page.get_by_text(IMPRESSION).is_visible()
    assert page.get_by_text(re.compile("signé par Garde le")).is_visible()
    href = page.get_by_role("link", name="Ouvrir le PDF").get_attribute("href")
    assert href
    pdf = context.request.get(href)
    assert pdf.status == 200 and pdf.body() == sent_pdf

    # The same report through FHIR, valid R4 (R4B models), with the signed PDF.
    search = context.request.get(
        "/fhir/DiagnosticReport",
        params={"identifier": f"urn:concilium:accession:{BRIEY[1]}|ACC-NUIT"},
    )
    assert search.status == 200, search.text()
    [entry] = search.json()["entry"]
    report = DiagnosticReport.model_validate(entry["resource"])
    assert report.status == "final" and report.conclusion == IMPRESSION
    assert base64.b64decode(entry["resource"]["presentedForm"][0]["data"]) == sent_pdf
    assert entry["resource"]["contained"][0]["identifier"][0]["value"] == f"urn:oid:{study_uid}"

    # The Encapsulated PDF is in the study beside the images (QIDO-RS, then WADO-RS).
    json_accept = {"Accept": "application/dicom+json"}
    found = context.request.get(
        f"/dicomweb/studies/{study_uid}/instances",
        params={"SOPClassUID": ENCAPSULATED_PDF},
        headers=json_accept,
    )
    assert found.status == 200, found.text()
    [instance] = found.json()
    series, sop = instance["0020000E"]["Value"][0], instance["00080018"]["Value"][0]
    got = context.request.get(
        f"/dicomweb/studies/{study_uid}/series/{series}/instances/{sop}",
        headers={"Accept": 'multipart/related; type="application/dicom"'},
    )
    assert got.status == 200 and sent_pdf in got.body()
    page.set_viewport_size(PHONE)
    page.screenshot(path=str(artifacts / "reading-report-phone.png"), full_page=True)
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0
    context.close()

"""The fiche RCP: written in French with the decision, kept with it, sent through the
outbox to the referring physician and the GP (received here by a real SMTP server,
aiosmtpd), its text read back with poppler's pdftotext; an addendum gets its own fiche."""

from __future__ import annotations

import subprocess

from concilium.boards import case_store, decisions, fiche
from concilium.platform.db import transaction
from concilium.platform.tables import User
from mail_delivery import attachment, deliver, text_of

from .cases_world import actor
from .meeting_world import arrive, at, build_meeting, take_up
from .test_case_pages import signed_in
from .test_decisions import FIELDS


def pdf_text(content: bytes, tmp_path) -> str:
    path = tmp_path / "fiche.pdf"
    path.write_bytes(content)
    out = subprocess.run(
        ["pdftotext", "-enc", "UTF-8", str(path), "-"], capture_output=True, check=True, timeout=30
    )
    return " ".join(out.stdout.decode().split())


def test_the_fiche_is_sent_to_the_referrer_and_the_gp_and_kept(app, world, clock, tmp_path):
    mw = build_meeting(world, clock)
    cw = mw.cw
    with transaction(world.runtime.sessions) as db:
        db.get(User, cw.referrer.id).email = "dr.ref@ch-briey.fr"
        case_store.get_case(db, mw.cases[0]).gp_email = "medecin.traitant@exemple.fr"
    for user in (cw.pathologist, cw.haematologist, mw.radiologist):
        arrive(world, mw, user, 0, at(1))
    take_up(world, mw, mw.cases[0], at(2))
    with transaction(world.runtime.sessions) as db:
        case = case_store.get_case(db, mw.cases[0])
        fields = decisions.DecisionFields(
            **{
                **FIELDS.__dict__,
                "referent_id": cw.referrer.id,
                "outside_guidelines": True,
                "justification": "Âge physiologique élevé, comorbidités",
            }
        )
        outcome = decisions.validate(db, actor(cw.pathologist), case, fields, at(10))
        assert outcome.decision is not None
        fiche.file_and_send(db, world.runtime, case, outcome.decision, [], at(10))
    clock.now = at(11)
    (message,) = deliver(world.runtime)
    assert sorted(a.strip() for a in message["To"].split(",")) == [
        "dr.ref@ch-briey.fr",
        "medecin.traitant@exemple.fr",
    ]
    assert "Lemoine" not in message["Subject"] and "RCP" in message["Subject"]
    assert f"dossier {mw.cases[0]}" in text_of(message)
    content = attachment(message, f"fiche-rcp-{mw.cases[0]}-v1.pdf")
    assert content.startswith(b"%PDF-") and b"DejaVu" in content
    text = pdf_text(content, tmp_path)
    for expected in (
        "Fiche de réunion de concertation pluridisciplinaire",
        "RCP régionale d'hématologie",
        "Réunion du vendredi 19 mars 2027",
        "LEMOINE Claire",
        "BRY-1",
        "Traitement de première ligne ?",
        "Lymphome diffus à grandes cellules B",
        "R-CHOP 6 cures puis TEP d'évaluation",
        "Référentiel régional LDGCB 2026",
        "Hors référentiel",
        "Âge physiologique élevé, comorbidités",
        "POLARIX-2",
        "Dr-Path — anatomopathologie",
        "Dr-Radio — radiologie",
        "Médecin référent du suivi Dr-Ref",
        "par Dr-Path le 19 mars 2027",
    ):
        assert expected in text, expected
    # Specialties are named in French, never by their codes.
    assert "pathology" not in text and "radiology" not in text
    # Kept with the decision, and served to who may read the case (an audited view).
    browser = signed_in(app, world, cw.haematologist)
    served = browser.get(f"/boards/cases/{mw.cases[0]}/fiche")
    assert served.status_code == 200 and served.content == content
    assert served.headers["content-type"] == "application/pdf"
    assert (
        signed_in(app, world, cw.outsider).get(f"/boards/cases/{mw.cases[0]}/fiche").status_code
        == 403
    )
    # An addendum gets a fiche of its own, which says what it corrects.
    with transaction(world.runtime.sessions) as db:
        case = case_store.get_case(db, mw.cases[0])
        earlier = decisions.decisions_of(db, case)
        row = decisions.add_addendum(
            db, actor(cw.pathologist), case, fields, "Essai clos au recrutement", at(30)
        )
        fiche.file_and_send(db, world.runtime, case, row, earlier, at(30))
    clock.now = at(31)
    (message,) = deliver(world.runtime)
    text = pdf_text(attachment(message, f"fiche-rcp-{mw.cases[0]}-v2.pdf"), tmp_path)
    assert "Addendum 1" in text and "Essai clos au recrutement" in text
    assert "Versions précédentes" in text

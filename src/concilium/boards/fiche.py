"""The fiche RCP: a decision of the board as a PDF, in French, and its sending.

The fiche holds the meeting's date, the board, the participants and the specialty each
counted for, the patient's identity, the question and the summary, the proposal, the
guideline used, the trial proposed, the justification when outside guidelines, the
referent physician and who validated it, when; an addendum's fiche also says what it
corrects. It is written with fpdf2 in DejaVu Sans, a font of the Debian package
``fonts-dejavu-core`` embedded in the file (accents included), never fetched at run time.

Each version's fiche is kept with the decision (``BoardDecision.fiche_pdf``) and sent by
the platform's outbox, in the same transaction, to the referring physician and to the
patient's general practitioner when the case records their address; the relay is the
installation's SMTP one, which may be the region's secure health messaging relay. The
mail's kind and subject name no patient.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from fpdf import FPDF
from fpdf.enums import XPos, YPos
from sqlalchemy.orm import Session

from concilium.boards import case_store, registry
from concilium.boards.specialties import specialty_label
from concilium.boards.tables import Board, BoardCase, BoardDecision, BoardMeeting
from concilium.platform import outbox, patients
from concilium.platform.i18n import _, show_date, show_datetime, using_locale, zone
from concilium.platform.mail import Attachment, Mail
from concilium.platform.runtime import Runtime
from concilium.platform.tables import User

FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
"""Where Debian's ``fonts-dejavu-core`` puts its fonts."""
MAIL_KIND = "boards.fiche"


def filename(case: BoardCase, decision: BoardDecision) -> str:
    return f"fiche-rcp-{case.id}-v{decision.version}.pdf"


def _name(session: Session, user_id: int) -> str:
    user = session.get(User, user_id)
    return user.full_name if user is not None else "?"


def render(
    session: Session,
    board: Board,
    meeting: BoardMeeting,
    case: BoardCase,
    decision: BoardDecision,
    earlier: Sequence[BoardDecision] = (),
) -> bytes:
    """The fiche of ``decision`` (a version of the case's decision), in French."""
    where = zone(board.timezone)
    patient = patients.get_patient(session, case.patient_id)
    with using_locale("fr"):
        pdf = FPDF(format="A4")
        pdf.set_title(_("Multidisciplinary meeting record"))
        pdf.set_creator("Concilium")
        pdf.set_creation_date(decision.signed_at)
        pdf.add_font("DejaVu", "", str(FONT_DIR / "DejaVuSans.ttf"))
        pdf.add_font("DejaVu", "B", str(FONT_DIR / "DejaVuSans-Bold.ttf"))
        pdf.set_auto_page_break(True, margin=15)
        pdf.add_page()
        pdf.set_font("DejaVu", "B", 15)
        pdf.multi_cell(
            0, 8, _("Multidisciplinary meeting record"), new_x=XPos.LMARGIN, new_y=YPos.NEXT
        )
        pdf.set_font("DejaVu", "", 11)
        pdf.multi_cell(0, 6, board.name, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.multi_cell(
            0,
            6,
            _("Meeting of %(day)s") % {"day": show_date(meeting.starts_at, where, "full")},
            new_x=XPos.LMARGIN,
            new_y=YPos.NEXT,
        )
        if decision.version > 1:
            pdf.multi_cell(
                0,
                6,
                _("Addendum %(number)s") % {"number": decision.version - 1},
                new_x=XPos.LMARGIN,
                new_y=YPos.NEXT,
            )
        pdf.ln(3)

        def section(title: str, text: str) -> None:
            if not text.strip():
                return
            pdf.set_font("DejaVu", "B", 11)
            pdf.multi_cell(0, 6, title, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
            pdf.set_font("DejaVu", "", 10)
            pdf.multi_cell(0, 5, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
            pdf.ln(2)

        born = (
            _("born %(day)s") % {"day": show_date(patient.birth_date, where, "short")}
            if patient.birth_date
            else ""
        )
        numbers = ", ".join(i.value for i in patient.identifiers)
        section(
            _("Patient"),
            " ".join(p for p in (patient.family_name.upper(), patient.given_name) if p)
            + (f", {born}" if born else "")
            + (f" ({numbers})" if numbers else ""),
        )
        section(_("Referring physician"), _name(session, case.referrer_id))
        section(
            _("Participants"),
            "\n".join(
                _name(session, int(str(p["user"])))
                + (f" — {specialty_label(str(p['specialty']))}" if p.get("specialty") else "")
                for p in decision.participants
            ),
        )
        section(_("Question asked of the board"), case.question)
        summary = [
            (_("Diagnosis"), case.diagnosis),
            (_("Histology"), case.histology),
            (_("Stage"), case.stage),
            (
                _("Performance status (WHO/ECOG)"),
                "" if case.performance_status is None else str(case.performance_status),
            ),
            (_("Relevant history"), case.history),
            (_("Current treatment"), case.current_treatment),
        ]
        section(_("Summary"), "\n".join(f"{k} : {v}" for k, v in summary if v))
        if decision.reason:
            section(_("Correction"), decision.reason)
        section(_("Proposal of the board (treatment plan)"), decision.proposal)
        section(_("Guideline or reference used"), decision.guideline)
        if decision.outside_guidelines:
            section(_("Outside guidelines"), decision.justification)
        section(_("Clinical trial proposed"), decision.trial)
        section(_("Further examinations"), decision.further_exams)
        if decision.represent:
            section(_("To be presented again"), _("yes"))
        section(_("Referent physician for the follow-up"), _name(session, decision.referent_id))
        section(
            _("Validation"),
            _("by %(name)s on %(when)s")
            % {
                "name": _name(session, decision.signed_by_id),
                "when": show_datetime(decision.signed_at, where, "long"),
            }
            + f"\nSHA-256 {decision.digest}",
        )
        if earlier:
            section(
                _("Earlier versions"),
                "\n".join(
                    f"{v.version} — {show_datetime(v.signed_at, where, 'short')} — {v.digest[:16]}"
                    for v in earlier
                ),
            )
        return bytes(pdf.output())


def file_and_send(
    session: Session,
    runtime: Runtime,
    case: BoardCase,
    decision: BoardDecision,
    earlier: Sequence[BoardDecision],
    now: datetime,
) -> bytes:
    """Write the fiche of ``decision``, keep it with it and queue it by e-mail to the
    referring physician and the general practitioner, in the caller's transaction."""
    board = registry.get_board(session, case.board_id)
    meeting = case_store.get_meeting(session, decision.meeting_id)
    content = render(session, board, meeting, case, decision, earlier)
    decision.fiche_pdf = content
    referrer = session.get(User, case.referrer_id)
    to = [a for a in ((referrer.email if referrer else ""), case.gp_email) if a.strip()]
    if to:
        with using_locale("fr"):
            subject = _("Multidisciplinary meeting record — %(board)s, %(day)s") % {
                "board": board.name,
                "day": show_date(meeting.starts_at, zone(board.timezone), "short"),
            }
            text = _(
                "The record of the board's decision on case %(number)s is attached "
                "(version %(version)s)."
            ) % {"number": case.id, "version": decision.version}
        mail = Mail(
            kind=MAIL_KIND,
            to=tuple(dict.fromkeys(to)),
            subject=subject,
            text=text,
            attachments=(Attachment(filename(case, decision), content, "application/pdf"),),
            language="fr",
        )
        outbox.enqueue(session, runtime, mail, site_id=board.site_id)
    session.flush()
    return content

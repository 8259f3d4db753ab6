"""The signed report as a PDF, in French: the site, the patient, the exam and its
accession number, the sections, the signer and the signing time in the site's zone, the
version (preliminary, final, addendum) with its digest, and the earlier versions.

Written with fpdf2 in DejaVu Sans, a font of the Debian package ``fonts-dejavu-core``
embedded in the file (accents included), never fetched at run time.
"""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

from fpdf import FPDF
from fpdf.enums import XPos, YPos
from sqlalchemy import select
from sqlalchemy.orm import Session

from concilium.platform import patients
from concilium.platform.i18n import N_, _, show_date, show_datetime, using_locale
from concilium.platform.tables import Site, User
from concilium.reading.critical_findings import communication_lines, flag_line, notices_of
from concilium.reading.groups import site_zone
from concilium.reading.tables import ImagingOrderRecord, ReadingReportVersion

__all__ = ["FONT_DIR", "STATUS_LABELS", "filename", "render"]

FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
"""Where Debian's ``fonts-dejavu-core`` puts its fonts."""
STATUS_LABELS = {
    "P": N_("Preliminary report"),
    "F": N_("Final report"),
    "C": N_("Addendum"),
}
"""What each result status is called."""


def filename(order: ImagingOrderRecord, version: ReadingReportVersion) -> str:
    return f"compte-rendu-{order.accession_number}-v{version.version}.pdf"


def _name(session: Session, user_id: int) -> str:
    user = session.get(User, user_id)
    return user.full_name if user is not None else "?"


def render(session: Session, order: ImagingOrderRecord, version: ReadingReportVersion) -> bytes:
    """The PDF of a signed version of the order's report, in French."""
    site = session.get(Site, order.site_id)
    where = site_zone(site) if site is not None else ZoneInfo("Europe/Paris")
    patient = patients.get_patient(session, order.patient_id)
    earlier = list(
        session.scalars(
            select(ReadingReportVersion)
            .where(
                ReadingReportVersion.report_id == version.report_id,
                ReadingReportVersion.version < version.version,
            )
            .order_by(ReadingReportVersion.version)
        )
    )
    with using_locale("fr"):
        pdf = FPDF(format="A4")
        pdf.set_title(_("Imaging report"))
        pdf.set_creator("Concilium")
        pdf.set_creation_date(version.signed_at)
        pdf.add_font("DejaVu", "", str(FONT_DIR / "DejaVuSans.ttf"))
        pdf.add_font("DejaVu", "B", str(FONT_DIR / "DejaVuSans-Bold.ttf"))
        pdf.set_auto_page_break(True, margin=15)
        pdf.add_page()

        def line(text: str, size: int = 11, bold: bool = False, height: int = 6) -> None:
            pdf.set_font("DejaVu", "B" if bold else "", size)
            pdf.multi_cell(0, height, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)

        def section(title: str, text: str) -> None:
            if not text.strip():
                return
            line(title, bold=True)
            line(text, 10, height=5)
            pdf.ln(2)

        line(_("Imaging report"), 15, bold=True, height=8)
        line(site.name if site is not None else "")
        line(_(STATUS_LABELS[version.status]) + " — " + _("version %(n)s") % {"n": version.version})
        pdf.ln(3)
        born = (
            _("born %(day)s") % {"day": show_date(patient.birth_date, where, "short")}
            if patient.birth_date
            else ""
        )
        numbers = ", ".join(i.value for i in patient.identifiers if i.site_id == order.site_id)
        section(
            _("Patient"),
            " ".join(p for p in (patient.family_name.upper(), patient.given_name) if p)
            + (f", {born}" if born else "")
            + (f" ({numbers})" if numbers else ""),
        )
        exam = order.procedure_description or order.procedure_code
        when = order.scheduled_at or order.created_at
        section(
            _("Exam"),
            f"{exam}\n"
            + _("Accession number %(number)s") % {"number": order.accession_number}
            + "\n"
            + _("Performed on %(day)s") % {"day": show_datetime(when, where, "short")},
        )
        referrer = order.requesting_physician_name or order.referring_physician_name
        section(_("Requested by"), " ".join(reversed(referrer.split("^")[:2])).strip())
        section(_("Finding to communicate"), flag_line(version))
        for part in version.sections:
            section(_(str(part.get("title", ""))), str(part.get("text", "")))
        for row in [*earlier, version]:
            if row.status == "C" and row.addendum:
                section(
                    _("Addendum of %(when)s")
                    % {"when": show_datetime(row.signed_at, where, "short")},
                    row.addendum,
                )
        told = notices_of(session, version.report_id, before_version=version.version)
        section(
            _("Communication of the finding"), "\n".join(communication_lines(session, told, where))
        )
        section(
            _("Signature"),
            _("Signed by %(name)s on %(when)s")
            % {
                "name": _name(session, version.signed_by_id),
                "when": show_datetime(version.signed_at, where, "long"),
            }
            + f"\nSHA-256 {version.digest}",
        )
        if earlier:
            section(
                _("Earlier versions"),
                "\n".join(
                    f"{v.version} — {_(STATUS_LABELS[v.status])} — "
                    f"{show_datetime(v.signed_at, where, 'short')} — {v.digest[:16]}"
                    for v in earlier
                ),
            )
        return bytes(pdf.output())

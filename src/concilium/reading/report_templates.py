"""Report templates per exam type, as data, in the spirit of IHE MRRT (Management of
Radiology Report Templates): the sections of a report in order, each coded by its DICOM
heading (CID 7001, the codes of :mod:`concilium.reading.oru`) where one exists, each
written as free text.

A site's own templates (table ``reading_report_templates``) win: one for the exam's
procedure code first, then one for its modality, then those for every site alike. Without
one, :data:`DEFAULTS` gives a template per modality (CT, MR, CR/DX, US) and
:data:`GENERIC` the rest.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from concilium.platform.i18n import N_
from concilium.reading.oru import (
    FINDINGS,
    IMPRESSIONS,
    INDICATIONS,
    PROCEDURE,
    RECOMMENDATIONS,
)
from concilium.reading.tables import ImagingOrderRecord, ReportTemplateRecord

__all__ = ["DEFAULTS", "GENERIC", "Section", "Template", "template_for"]


@dataclass(frozen=True)
class Section:
    """One section of a template."""

    key: str
    title: str
    """Its heading, an English message translated when shown."""
    code: str = ""
    """Its DICOM CID 7001 code (scheme DCM); empty for free text."""
    hint: str = ""
    """What to write, an English message shown as the field's placeholder."""

    def as_row(self) -> dict[str, str]:
        return {"key": self.key, "title": self.title, "code": self.code, "hint": self.hint}


@dataclass(frozen=True)
class Template:
    """The sections of a report for an exam type."""

    name: str
    sections: tuple[Section, ...]


def _standard(name: str, technique: str, findings: str) -> Template:
    return Template(
        name,
        (
            Section("indication", N_("Indication"), INDICATIONS.code, N_("Clinical question")),
            Section("technique", N_("Technique"), PROCEDURE.code, technique),
            Section("findings", N_("Findings"), FINDINGS.code, findings),
            Section("impression", N_("Impression"), IMPRESSIONS.code, N_("Conclusion")),
            Section("recommendations", N_("Recommendations"), RECOMMENDATIONS.code, ""),
        ),
    )


DEFAULTS: dict[str, Template] = {
    "CT": _standard(
        "CT",
        N_("Helical acquisition, with or without contrast injection, dose (DLP)"),
        N_("Findings by region"),
    ),
    "MR": _standard(
        "MR",
        N_("Field strength, sequences, contrast injection"),
        N_("Findings by sequence and region"),
    ),
    "CR": _standard("CR/DX", N_("Views"), N_("Findings")),
    "DX": _standard("CR/DX", N_("Views"), N_("Findings")),
    "US": _standard("US", N_("Probe, approach, conditions"), N_("Findings by organ")),
}
"""The default template of each modality."""
GENERIC = Template(
    "generic",
    (
        Section("indication", N_("Indication"), INDICATIONS.code, N_("Clinical question")),
        Section("findings", N_("Findings"), FINDINGS.code),
        Section("impression", N_("Impression"), IMPRESSIONS.code, N_("Conclusion")),
    ),
)
"""The template of any other exam."""


def _from_row(row: ReportTemplateRecord) -> Template:
    sections: list[Section] = []
    for item in row.sections:
        part: dict[str, Any] = dict(item)
        key = str(part.get("key", "")).strip()
        if key:
            sections.append(
                Section(
                    key,
                    str(part.get("title", key)),
                    str(part.get("code", "")),
                    str(part.get("hint", "")),
                )
            )
    return Template(row.name, tuple(sections)) if sections else GENERIC


def template_for(session: Session, order: ImagingOrderRecord) -> Template:
    """The template of an order's exam: the site's for its procedure code, then for its
    modality (the same for every site next), else the default of its modality."""
    modality = next((step.modality for step in order.steps if step.modality), "").upper()
    rows = session.scalars(
        select(ReportTemplateRecord).where(
            or_(
                ReportTemplateRecord.site_id == order.site_id,
                ReportTemplateRecord.site_id.is_(None),
            )
        )
    ).all()

    def rank(row: ReportTemplateRecord) -> int | None:
        if row.procedure_code and row.procedure_code == order.procedure_code:
            base = 0
        elif not row.procedure_code and row.modality and row.modality.upper() == modality:
            base = 1
        else:
            return None
        return base + (0 if row.site_id is not None else 2)

    ranked = sorted(((rank(r), r.id, r) for r in rows if rank(r) is not None), key=lambda t: t[:2])
    if ranked:
        return _from_row(ranked[0][2])
    return DEFAULTS.get(modality, GENERIC)

"""Names of the medical specialties a board counts, for the people who read them.

Specialties are stored as stable codes (``"radiology"``, see
:data:`concilium.boards.quorum.SPECIALTY_CODE`); pages, messages and the fiche show the
label named here, in the reader's language. A code nobody named is shown as it is.
``-`` and ``_`` in a code are the same for naming (``nuclear-medicine``,
``nuclear_medicine``).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from typing import Any

from concilium.platform.i18n import _, pgettext


def specialty_labels() -> dict[str, str]:
    """Every specialty code named, underscores between words, to its name in the current
    language. The one place naming them: add a code here, its label to the catalogues."""
    return {
        "anaesthesiology": pgettext("specialty", "Anaesthesiology"),
        "biology": pgettext("specialty", "Medical biology"),
        "breast_surgery": pgettext("specialty", "Breast surgery"),
        "cardiology": pgettext("specialty", "Cardiology"),
        "dermatology": pgettext("specialty", "Dermatology"),
        "digestive_surgery": pgettext("specialty", "Digestive surgery"),
        "endocrinology": pgettext("specialty", "Endocrinology"),
        "ent": pgettext("specialty", "Ear, nose and throat"),
        "gastroenterology": pgettext("specialty", "Gastroenterology"),
        "general_practice": pgettext("specialty", "General practice"),
        "genetics": pgettext("specialty", "Medical genetics"),
        "geriatrics": pgettext("specialty", "Geriatrics"),
        "gynaecological_surgery": pgettext("specialty", "Gynaecological surgery"),
        "gynaecology": pgettext("specialty", "Gynaecology"),
        "haematology": pgettext("specialty", "Haematology"),
        "hepatology": pgettext("specialty", "Hepatology"),
        "internal_medicine": pgettext("specialty", "Internal medicine"),
        "interventional_radiology": pgettext("specialty", "Interventional radiology"),
        "medical_oncology": pgettext("specialty", "Medical oncology"),
        "nephrology": pgettext("specialty", "Nephrology"),
        "neurology": pgettext("specialty", "Neurology"),
        "neurosurgery": pgettext("specialty", "Neurosurgery"),
        "nuclear_medicine": pgettext("specialty", "Nuclear medicine"),
        "oncology": pgettext("specialty", "Medical oncology"),
        "organ_specialist": pgettext("specialty", "Organ specialist"),
        "orthopaedic_surgery": pgettext("specialty", "Orthopaedic surgery"),
        "paediatrics": pgettext("specialty", "Paediatrics"),
        "palliative_care": pgettext("specialty", "Palliative care"),
        "pathology": pgettext("specialty", "Pathology"),
        "pharmacy": pgettext("specialty", "Pharmacy"),
        "psychiatry": pgettext("specialty", "Psychiatry"),
        "pulmonology": pgettext("specialty", "Pulmonology"),
        "radiology": pgettext("specialty", "Radiology"),
        "radiotherapy": pgettext("specialty", "Radiotherapy"),
        "surgery": pgettext("specialty", "Surgery"),
        "thoracic_surgery": pgettext("specialty", "Thoracic surgery"),
        "urology": pgettext("specialty", "Urology"),
    }


def specialty_label(code: str) -> str:
    """The specialty's name in the current language; the code itself when nobody named it."""
    return specialty_labels().get(code.replace("-", "_"), code)


def _collation(label: str) -> str:
    """Alphabetical order as people read it: accents and case do not put a word last."""
    return unicodedata.normalize("NFKD", label.casefold())


def specialties_text(codes: Iterable[str]) -> str:
    """Specialties as a person reads them: their labels, in alphabetical order, by commas."""
    return ", ".join(sorted((specialty_label(code) for code in codes), key=_collation))


def alternatives_text(codes: Iterable[str]) -> str:
    """Specialties any one of which will do, as a person reads them (``A or B``)."""
    return _(" or ").join(sorted((specialty_label(code) for code in codes), key=_collation))


def requirements_text(required: Iterable[Iterable[str]]) -> str:
    """A board's required specialties as a person reads them: ``Surgery, Medical oncology or
    Radiotherapy, Radiology``."""
    return ", ".join(alternatives_text(entry) for entry in required)


FOR_PAGES: dict[str, Any] = {
    "specialty_label": specialty_label,
    "specialties_text": specialties_text,
    "alternatives_text": alternatives_text,
    "specialty_labels": specialty_labels,
}
"""What a boards page needs to show specialties: given to every template it renders."""

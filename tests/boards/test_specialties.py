"""Specialty codes are shown by name, in the reader's language; a code nobody named is
shown as it is."""

import pytest

from concilium.boards.specialties import (
    alternatives_text,
    specialties_text,
    specialty_label,
    specialty_labels,
)
from concilium.platform import i18n
from concilium.platform.i18n import using_locale
from concilium.services import LOCALE_FOLDERS


@pytest.fixture(autouse=True)
def catalogues():
    i18n.load_catalogues(LOCALE_FOLDERS)


def test_a_known_code_is_named_in_french_and_in_english():
    with using_locale("fr"):
        assert specialty_label("pathology") == "anatomopathologie"
        assert specialty_label("nuclear-medicine") == "médecine nucléaire"
        assert specialty_label("nuclear_medicine") == "médecine nucléaire"
    with using_locale("en"):
        assert specialty_label("pathology") == "Pathology"
        assert specialty_label("radiotherapy") == "Radiotherapy"


def test_a_code_nobody_named_is_shown_as_it_is():
    with using_locale("fr"):
        assert specialty_label("xenobiology") == "xenobiology"
        assert specialties_text(["xenobiology", "radiology"]) == "radiologie, xenobiology"


def test_every_named_specialty_has_its_french_name():
    with using_locale("en"):
        english = specialty_labels()
    with using_locale("fr"):
        french = specialty_labels()
    assert english.keys() == french.keys()
    untranslated = [code for code in english if english[code] == french[code]]
    assert untranslated == []


def test_lists_are_in_alphabetical_order_whatever_the_accents():
    with using_locale("fr"):
        assert specialties_text({"urology", "haematology", "geriatrics"}) == (
            "gériatrie, hématologie, urologie"
        )
        assert alternatives_text({"radiotherapy", "oncology"}) == (
            "oncologie médicale ou radiothérapie"
        )

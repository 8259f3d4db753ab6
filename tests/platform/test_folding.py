"""One folding of text for every search by name."""

from __future__ import annotations

from concilium.imaging import value_matching
from concilium.platform import folding


def test_case_and_accents_fold_away() -> None:
    assert folding.folded("Hélène LEFÈVRE-Œuvrard") == "helene lefevre-œuvrard"
    assert folding.folded("STRAßE") == "strasse"
    assert folding.folded("İrem") == "irem"


def test_fuzzy_person_name_matching_folds_as_the_directory_does() -> None:
    assert value_matching.fuzzy_name_match("lefevre^hel", "LEFÈVRE^Hélène")
    assert value_matching.fuzzy_name_match("STRASSE", "Straße^Anna")
    assert not value_matching.fuzzy_name_match("lefevre^mar", "LEFÈVRE^Hélène")

"""In-memory value matching of PS3.4 C.2.2.2, the rules the SQL matching of the index follows."""

from __future__ import annotations

import pytest

from concilium.imaging import (
    InvalidQuery,
    KeyKind,
    datetime_range_matches,
    kind_of_vr,
    value_matches,
)


def test_kinds_follow_the_value_representation():
    assert kind_of_vr("PN") is KeyKind.PERSON_NAME
    assert kind_of_vr("DA") is KeyKind.DATE
    assert kind_of_vr("UI") is KeyKind.UID
    assert kind_of_vr("LO") is KeyKind.TEXT


@pytest.mark.parametrize(
    ("kind", "key", "candidate", "expected"),
    [
        (KeyKind.TEXT, "", "anything", True),
        (KeyKind.TEXT, "*", "", True),
        (KeyKind.TEXT, "AB", "", False),
        (KeyKind.TEXT, '""', "", True),
        (KeyKind.TEXT, '""', "AB", False),
        (KeyKind.TEXT, "A?C*", "ABCDEF", True),
        (KeyKind.TEXT, "a?c*", "ABCDEF", False),
        (KeyKind.TEXT, "A.C", "ABC", False),
        (KeyKind.TEXT, "AA2", ["AA1", "AA2"], True),
        (KeyKind.PERSON_NAME, "doe^john", "DOE^JOHN^^", True),
        (KeyKind.PERSON_NAME, "DOE*", "Doe^Jane", True),
        (KeyKind.UID, "1.2\\1.3", "1.3", True),
        (KeyKind.UID, "1.2\\1.3", "1.4", False),
        (KeyKind.DATE, "20240101-20240131", "20240115", True),
        (KeyKind.DATE, "-20231231", "20240115", False),
        (KeyKind.TIME, "1000-1030", "103059.5", True),
        (KeyKind.TIME, "1000-1030", "103100", False),
        (KeyKind.INTEGER, "3", "3", True),
    ],
)
def test_value_matches(kind, key, candidate, expected):
    assert value_matches(kind, key, candidate) is expected


def test_bad_keys_are_invalid_queries():
    with pytest.raises(InvalidQuery):
        value_matches(KeyKind.DATE, "2024-01-01", "20240101")
    with pytest.raises(InvalidQuery):
        value_matches(KeyKind.INTEGER, "three", "3")


def test_combined_date_and_time_range():
    assert datetime_range_matches("20240101-20240102", "2200-0600", "20240102", "0300")
    assert not datetime_range_matches("20240101-20240102", "2200-0600", "20240101", "0300")
    assert datetime_range_matches("20240101-", "2200-", "20250101", "0000")
    # Without a range, date and time match apart.
    assert datetime_range_matches("20240101", "0300", "20240101", "030000")

"""French public holidays, national and Alsace-Moselle, computed for any year."""

from __future__ import annotations

from datetime import date

import pytest

from concilium.platform import holidays
from concilium.platform.holidays import (
    ALSACE_MOSELLE,
    METROPOLITAN,
    easter_sunday,
    holiday_on,
    is_holiday,
)


@pytest.mark.parametrize(
    ("year", "easter"),
    [
        (2000, date(2000, 4, 23)),
        (2008, date(2008, 3, 23)),
        (2024, date(2024, 3, 31)),
        (2025, date(2025, 4, 20)),
        (2026, date(2026, 4, 5)),
        (2027, date(2027, 3, 28)),
        (2038, date(2038, 4, 25)),
        (1818, date(1818, 3, 22)),  # the earliest possible date
        (1943, date(1943, 4, 25)),  # the latest possible date
        (2285, date(2285, 3, 22)),
    ],
)
def test_easter_sunday_by_the_gregorian_computus(year, easter):
    assert easter_sunday(year) == easter
    assert easter.weekday() == 6


def test_the_eleven_national_days_of_2026():
    days = {h.code: h.day for h in holidays.holidays(2026)}
    assert days == {
        "new_year": date(2026, 1, 1),
        "easter_monday": date(2026, 4, 6),
        "labour_day": date(2026, 5, 1),
        "victory_1945": date(2026, 5, 8),
        "ascension": date(2026, 5, 14),
        "whit_monday": date(2026, 5, 25),
        "national_day": date(2026, 7, 14),
        "assumption": date(2026, 8, 15),
        "all_saints": date(2026, 11, 1),
        "armistice_1918": date(2026, 11, 11),
        "christmas": date(2026, 12, 25),
    }


def test_movable_days_of_2027():
    days = {h.code: h.day for h in holidays.holidays(2027)}
    assert days["easter_monday"] == date(2027, 3, 29)
    assert days["ascension"] == date(2027, 5, 6)
    assert days["whit_monday"] == date(2027, 5, 17)


def test_holidays_come_in_date_order_with_french_and_english_names():
    year = holidays.holidays(2026, ALSACE_MOSELLE)
    assert [h.day for h in year] == sorted(h.day for h in year)
    assert all(h.name_fr and h.name_en for h in year)
    assert holiday_on(date(2026, 7, 14)) == holidays.Holiday(
        date(2026, 7, 14), "national_day", "Fête nationale", "National Day"
    )


def test_alsace_moselle_adds_good_friday_and_st_stephen():
    assert not is_holiday(date(2026, 4, 3), METROPOLITAN)
    assert not is_holiday(date(2026, 12, 26), METROPOLITAN)
    good_friday = holiday_on(date(2026, 4, 3), ALSACE_MOSELLE)
    assert good_friday is not None and good_friday.code == "good_friday"
    assert good_friday.name_fr == "Vendredi saint"
    assert is_holiday(date(2027, 3, 26), ALSACE_MOSELLE)
    assert is_holiday(date(2026, 12, 26), ALSACE_MOSELLE)
    assert len(holidays.holidays(2026, ALSACE_MOSELLE)) == 13


@pytest.mark.parametrize(
    ("region", "day"),
    [
        ("FR-GP", date(2026, 5, 27)),
        ("FR-MQ", date(2026, 5, 22)),
        ("FR-GF", date(2026, 6, 10)),
        ("FR-RE", date(2026, 12, 20)),
        ("FR-YT", date(2026, 4, 27)),
    ],
)
def test_overseas_departments_add_the_abolition_of_slavery(region, day):
    holiday = holiday_on(day, region)
    assert holiday is not None and holiday.code == "abolition_of_slavery"
    assert not is_holiday(day, METROPOLITAN)
    assert not is_holiday(date(2026, 4, 3), region)


def test_two_holidays_on_one_day_are_both_named():
    # Easter 2008 was on 23 March: Ascension fell on Labour Day.
    first_of_may = [h for h in holidays.holidays(2008) if h.day == date(2008, 5, 1)]
    assert {h.code for h in first_of_may} == {"ascension", "labour_day"}
    assert is_holiday(date(2008, 5, 1))


def test_ordinary_days_are_not_holidays():
    assert not is_holiday(date(2026, 4, 5))  # Easter Sunday itself is no extra day off
    assert not is_holiday(date(2026, 5, 13))
    assert holiday_on(date(2026, 3, 2)) is None


def test_bad_region_and_year_are_refused():
    with pytest.raises(ValueError, match="unknown holiday region 'FR-57'"):
        is_holiday(date(2026, 1, 1), "FR-57")
    with pytest.raises(ValueError, match="between 1583 and 9999"):
        holidays.holidays(1200)
    with pytest.raises(ValueError, match="year must be an integer"):
        easter_sunday(True)

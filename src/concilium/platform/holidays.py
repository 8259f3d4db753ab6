"""French public holidays (jours fériés), computed for any year without a data file.

The eleven national days are those of the Code du travail, art. L3133-1. The three
departments of Alsace-Moselle (Bas-Rhin, Haut-Rhin, Moselle, hence CHR Metz-Thionville)
add Good Friday and 26 December under their local law (Code du travail, art. L3134-13).
The overseas departments add the commemoration of the abolition of slavery on the date
set for each of them (loi 83-550 and décret 83-1003, as amended).

The current law is applied to every year asked for: a holiday created or moved in the
past (8 May was not a public holiday from 1960 to 1981; Mayotte's day moved to 27 April
in 2019) is not reconstructed. Easter is computed by the anonymous Gregorian algorithm,
so years before the Gregorian reform (1583) are refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache

FIRST_YEAR = 1583
"""First year of the Gregorian computus."""
LAST_YEAR = 9999
"""Last year a :class:`datetime.date` can hold."""

METROPOLITAN = "FR"
"""The national days only."""
ALSACE_MOSELLE = "FR-ALSACE-MOSELLE"
"""Bas-Rhin, Haut-Rhin and Moselle: the national days, Good Friday and 26 December."""


@dataclass(frozen=True)
class Holiday:
    """One public holiday of one year."""

    day: date
    """The civil date."""
    code: str
    """Stable code, the same every year (``"easter_monday"``)."""
    name_fr: str
    """Name in French."""
    name_en: str
    """Name in English."""


# (code, month, day, French, English): fixed-date national days.
_FIXED_NATIONAL: tuple[tuple[str, int, int, str, str], ...] = (
    ("new_year", 1, 1, "Jour de l'an", "New Year's Day"),
    ("labour_day", 5, 1, "Fête du Travail", "Labour Day"),
    ("victory_1945", 5, 8, "Victoire 1945", "Victory in Europe Day"),
    ("national_day", 7, 14, "Fête nationale", "National Day"),
    ("assumption", 8, 15, "Assomption", "Assumption Day"),
    ("all_saints", 11, 1, "Toussaint", "All Saints' Day"),
    ("armistice_1918", 11, 11, "Armistice 1918", "Armistice Day"),
    ("christmas", 12, 25, "Noël", "Christmas Day"),
)

# (code, days after Easter Sunday, French, English): movable national days.
_MOVABLE_NATIONAL: tuple[tuple[str, int, str, str], ...] = (
    ("easter_monday", 1, "Lundi de Pâques", "Easter Monday"),
    ("ascension", 39, "Ascension", "Ascension Day"),
    ("whit_monday", 50, "Lundi de Pentecôte", "Whit Monday"),
)

_ABOLITION_FR = "Abolition de l'esclavage"
_ABOLITION_EN = "Abolition of slavery"

# Overseas departments (ISO 3166-2 codes) and the month and day of their abolition day.
_ABOLITION_DAYS: dict[str, tuple[int, int]] = {
    "FR-GP": (5, 27),  # Guadeloupe
    "FR-MQ": (5, 22),  # Martinique
    "FR-GF": (6, 10),  # Guyane
    "FR-RE": (12, 20),  # La Réunion
    "FR-YT": (4, 27),  # Mayotte
}

REGIONS: frozenset[str] = frozenset({METROPOLITAN, ALSACE_MOSELLE, *_ABOLITION_DAYS})
"""Region codes a site may be configured with."""


def easter_sunday(year: int) -> date:
    """Easter Sunday of ``year`` by the anonymous Gregorian algorithm (Meeus/Jones/Butcher)."""
    _check_year(year)
    golden = year % 19
    century, year_of_century = divmod(year, 100)
    leap_centuries, century_rest = divmod(century, 4)
    moon_correction = (century + 8) // 25
    sun_correction = (century - moon_correction + 1) // 3
    epact = (19 * golden + century - leap_centuries - sun_correction + 15) % 30
    leap_years, year_rest = divmod(year_of_century, 4)
    weekday_shift = (32 + 2 * century_rest + 2 * leap_years - epact - year_rest) % 7
    correction = (golden + 11 * epact + 22 * weekday_shift) // 451
    month, day = divmod(epact + weekday_shift - 7 * correction + 114, 31)
    return date(year, month, day + 1)


def holidays(year: int, region: str = METROPOLITAN) -> tuple[Holiday, ...]:
    """The public holidays of ``year`` in ``region``, in date order."""
    _check_year(year)
    _check_region(region)
    return _holidays(year, region)


def holiday_on(day: date, region: str = METROPOLITAN) -> Holiday | None:
    """The public holiday falling on ``day`` in ``region``, if there is one."""
    for holiday in holidays(day.year, region):
        if holiday.day == day:
            return holiday
    return None


def is_holiday(day: date, region: str = METROPOLITAN) -> bool:
    """Whether ``day`` is a public holiday in ``region``."""
    return holiday_on(day, region) is not None


def _check_year(year: int) -> None:
    if not isinstance(year, int) or isinstance(year, bool):
        raise ValueError(f"year must be an integer, got {year!r}")
    if not FIRST_YEAR <= year <= LAST_YEAR:
        raise ValueError(f"year must be between {FIRST_YEAR} and {LAST_YEAR}, got {year}")


def _check_region(region: str) -> None:
    if region not in REGIONS:
        raise ValueError(
            f"unknown holiday region {region!r}; known regions: {', '.join(sorted(REGIONS))}"
        )


@lru_cache(maxsize=256)
def _holidays(year: int, region: str) -> tuple[Holiday, ...]:
    easter = easter_sunday(year)
    days = [
        Holiday(date(year, month, day), code, fr, en)
        for code, month, day, fr, en in _FIXED_NATIONAL
    ]
    days += [
        Holiday(easter + timedelta(days=offset), code, fr, en)
        for code, offset, fr, en in _MOVABLE_NATIONAL
    ]
    if region == ALSACE_MOSELLE:
        days.append(
            Holiday(easter - timedelta(days=2), "good_friday", "Vendredi saint", "Good Friday")
        )
        days.append(Holiday(date(year, 12, 26), "st_stephen", "Saint-Étienne", "St Stephen's Day"))
    if region in _ABOLITION_DAYS:
        month, day = _ABOLITION_DAYS[region]
        days.append(
            Holiday(date(year, month, day), "abolition_of_slavery", _ABOLITION_FR, _ABOLITION_EN)
        )
    # Two holidays can share a date (Ascension on 1 or 8 May): both are kept, each with its
    # own name, and the day is a holiday once.
    return tuple(sorted(days, key=lambda holiday: (holiday.day, holiday.code)))

"""On-call rota: nights, weekends, holidays, midnight and daylight-saving changes."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from concilium.reading.rota import (
    FixedPeriod,
    HolidayShift,
    NightShift,
    Rota,
    WeekendShift,
)

PARIS = ZoneInfo("Europe/Paris")
WEEKNIGHTS = frozenset({0, 1, 2, 3, 4})
ROTA = Rota(
    (
        NightShift("NUIT", weekdays=WEEKNIGHTS),
        WeekendShift("WEEKEND"),
        HolidayShift("FERIE"),
    ),
    holidays=frozenset({date(2025, 7, 14), date(2025, 12, 25)}),
)


def paris(*args: int, fold: int = 0) -> datetime:
    return datetime(*args, tzinfo=PARIS, fold=fold)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("at", "groups"),
    [
        (paris(2025, 3, 11, 18, 29), ()),  # Tuesday, day time
        (paris(2025, 3, 11, 18, 30), ("NUIT",)),  # the night begins
        (paris(2025, 3, 11, 23, 59, 59), ("NUIT",)),
        (paris(2025, 3, 12, 0, 0), ("NUIT",)),  # midnight: still the night begun Tuesday
        (paris(2025, 3, 12, 8, 29, 59), ("NUIT",)),
        (paris(2025, 3, 12, 8, 30), ()),  # the night has ended
        (paris(2025, 3, 14, 23, 0), ("NUIT",)),  # Friday night
        (paris(2025, 3, 15, 8, 29), ("NUIT",)),  # Friday night ends Saturday morning...
        (paris(2025, 3, 15, 8, 30), ("WEEKEND",)),  # ...when the weekend begins
        (paris(2025, 3, 15, 23, 0), ("WEEKEND",)),  # no weeknight on Saturday
        (paris(2025, 3, 16, 0, 0), ("WEEKEND",)),
        (paris(2025, 3, 17, 8, 29), ("WEEKEND",)),  # Monday early morning
        (paris(2025, 3, 17, 8, 30), ()),
    ],
)
def test_groups_on_call_through_a_week(at: datetime, groups: tuple[str, ...]) -> None:
    assert ROTA.groups_on_call(at) == groups


def test_a_utc_instant_is_placed_in_paris_time() -> None:
    # 22:30 UTC on a March Tuesday is 23:30 in Paris: night.
    assert ROTA.groups_on_call(datetime(2025, 3, 11, 22, 30, tzinfo=UTC)) == ("NUIT",)
    # 17:15 UTC in July is 19:15 in Paris (summer time): night too.
    assert ROTA.groups_on_call(datetime(2025, 7, 8, 17, 15, tzinfo=UTC)) == ("NUIT",)
    assert ROTA.groups_on_call(datetime(2025, 7, 8, 16, 15, tzinfo=UTC)) == ()


def night_of(rota: Rota, day: date) -> timedelta:
    start = paris(day.year, day.month, day.day, 12)
    (period,) = [p for p in rota.periods(start, start + timedelta(hours=12)) if p.kind == "night"]
    return period.duration


def test_nights_last_fourteen_hours_except_across_the_clock_changes() -> None:
    every_night = Rota((NightShift("NUIT"),))

    assert night_of(every_night, date(2025, 3, 28)) == timedelta(hours=14)
    # Into the last Sunday of March (30 March 2025) clocks go 02:00 -> 03:00.
    assert night_of(every_night, date(2025, 3, 29)) == timedelta(hours=13)
    assert night_of(every_night, date(2025, 3, 30)) == timedelta(hours=14)
    # Into the last Sunday of October (26 October 2025) clocks go 03:00 -> 02:00.
    assert night_of(every_night, date(2025, 10, 25)) == timedelta(hours=15)
    assert night_of(every_night, date(2025, 10, 26)) == timedelta(hours=14)


def test_the_weekend_across_the_march_change_lasts_47_hours() -> None:
    (period,) = ROTA.on_call(paris(2025, 3, 30, 12))

    assert period.kind == "weekend"
    assert period.duration == timedelta(hours=47)
    assert period.start == paris(2025, 3, 29, 8, 30)
    assert period.end == paris(2025, 3, 31, 8, 30)


def test_both_occurrences_of_the_repeated_october_hour_are_on_call() -> None:
    every_night = Rota((NightShift("NUIT"),))
    first = datetime(2025, 10, 26, 0, 30, tzinfo=UTC)  # 02:30 CEST
    second = datetime(2025, 10, 26, 1, 30, tzinfo=UTC)  # 02:30 CET

    assert first.astimezone(PARIS).hour == second.astimezone(PARIS).hour == 2
    assert every_night.groups_on_call(first) == every_night.groups_on_call(second) == ("NUIT",)
    # 08:30 CET is 07:30 UTC: the night ends by the new clock.
    assert every_night.groups_on_call(datetime(2025, 10, 26, 7, 29, tzinfo=UTC)) == ("NUIT",)
    assert every_night.groups_on_call(datetime(2025, 10, 26, 7, 30, tzinfo=UTC)) == ()


def test_the_march_night_ends_at_0830_summer_time() -> None:
    every_night = Rota((NightShift("NUIT"),))

    assert every_night.groups_on_call(datetime(2025, 3, 30, 6, 29, tzinfo=UTC)) == ("NUIT",)
    assert every_night.groups_on_call(datetime(2025, 3, 30, 6, 30, tzinfo=UTC)) == ()


def test_a_shift_starting_in_the_spring_gap_starts_when_the_clock_resumes() -> None:
    rota = Rota((NightShift("GAP", start=time(2, 30), end=time(6, 0)),))

    (period,) = rota.on_call(paris(2025, 3, 30, 4))

    assert period.start == datetime(2025, 3, 30, 1, 30, tzinfo=UTC)  # 03:30 CEST
    assert period.duration == timedelta(hours=2, minutes=30)


@pytest.mark.parametrize(
    ("at", "groups"),
    [
        (paris(2025, 7, 13, 18, 29), ("WEEKEND",)),  # Sunday before Bastille Day
        (paris(2025, 7, 13, 18, 30), ("WEEKEND", "FERIE")),  # the eve's evening
        (paris(2025, 7, 14, 8, 30), ("FERIE",)),  # the weekend is over, the holiday is not
        (paris(2025, 7, 14, 12, 0), ("FERIE",)),  # the whole day
        (paris(2025, 7, 14, 18, 30), ("NUIT", "FERIE")),  # Monday night is also a weeknight
        (paris(2025, 7, 15, 8, 29), ("NUIT", "FERIE")),
        (paris(2025, 7, 15, 8, 30), ()),
        (paris(2025, 12, 24, 18, 30), ("NUIT", "FERIE")),
        (paris(2025, 12, 25, 15, 0), ("FERIE",)),
    ],
)
def test_public_holidays_cover_the_day_and_the_nights_around_it(
    at: datetime, groups: tuple[str, ...]
) -> None:
    assert ROTA.groups_on_call(at) == groups


def test_holidays_can_be_a_predicate() -> None:
    rota = Rota((HolidayShift("FERIE"),), holidays=lambda day: (day.month, day.day) == (5, 1))

    assert rota.groups_on_call(paris(2026, 5, 1, 12)) == ("FERIE",)
    assert rota.groups_on_call(paris(2026, 5, 2, 12)) == ()


def test_a_fixed_period_adds_a_group() -> None:
    rota = Rota(
        (
            NightShift("NUIT"),
            FixedPeriod("RENFORT", paris(2025, 3, 11, 20), paris(2025, 3, 12, 2)),
        )
    )

    assert rota.groups_on_call(paris(2025, 3, 11, 21)) == ("NUIT", "RENFORT")
    assert rota.groups_on_call(paris(2025, 3, 12, 2)) == ("NUIT",)


def test_periods_lists_a_week_in_order() -> None:
    periods = ROTA.periods(paris(2025, 3, 10, 8, 30), paris(2025, 3, 17))

    assert [(p.kind, p.start.astimezone(PARIS).day) for p in periods] == [
        ("night", 10),
        ("night", 11),
        ("night", 12),
        ("night", 13),
        ("night", 14),
        ("weekend", 15),
    ]


def test_bad_entries_and_naive_instants_are_refused() -> None:
    with pytest.raises(ValueError, match="group"):
        NightShift(" ")
    with pytest.raises(ValueError, match="weekdays"):
        NightShift("N", weekdays=frozenset({7}))
    with pytest.raises(ValueError, match="aware"):
        FixedPeriod("F", datetime(2025, 1, 1), datetime(2025, 1, 2))
    with pytest.raises(ValueError, match="end after"):
        FixedPeriod("F", paris(2025, 1, 2), paris(2025, 1, 1))
    with pytest.raises(ValueError, match="aware"):
        ROTA.groups_on_call(datetime(2025, 3, 11, 23))

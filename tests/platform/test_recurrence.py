"""Recurring local-time schedules: weekly, every N weeks, monthly; holidays; DST changes."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from concilium.platform.holidays import ALSACE_MOSELLE
from concilium.platform.recurrence import (
    Frequency,
    HolidayPolicy,
    Recurrence,
    local_instant,
    next_occurrence,
    occurrence_on,
    occurrences,
    scheduled_days,
)

PARIS = ZoneInfo("Europe/Paris")
FRIDAY, MONDAY, THURSDAY, TUESDAY, SUNDAY = 4, 0, 3, 1, 6


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def friday_board(**overrides) -> Recurrence:
    values = {
        "start": date(2026, 1, 1),
        "weekday": FRIDAY,
        "at": time(14, 0),
        "duration": timedelta(hours=2),
    }
    values.update(overrides)
    return Recurrence(**values)


def starts(rule: Recurrence, since: datetime, until: datetime) -> list[datetime]:
    return [o.start for o in occurrences(rule, since, until)]


def test_weekly_friday_at_14_paris_is_13_utc_in_winter_and_12_utc_in_summer():
    found = occurrences(friday_board(), utc(2026, 3, 20), utc(2026, 4, 11))
    assert [o.start for o in found] == [
        utc(2026, 3, 20, 13),
        utc(2026, 3, 27, 13),
        utc(2026, 4, 3, 12),
        utc(2026, 4, 10, 12),
    ]
    assert all(o.local_start.time() == time(14, 0) for o in found)
    assert all(o.end - o.start == timedelta(hours=2) for o in found)
    assert found[0].local_end == datetime(2026, 3, 20, 16, 0, tzinfo=PARIS)


def test_the_whole_year_keeps_its_wall_clock_time():
    found = occurrences(friday_board(holiday_region=None), utc(2026, 1, 1), utc(2027, 1, 1))
    assert len(found) == 52
    assert {o.local_start.time() for o in found} == {time(14, 0)}
    assert {o.start.hour for o in found} == {12, 13}


def test_first_occurrence_is_the_first_weekday_on_or_after_start():
    # 2026-01-01 is a Thursday.
    found = occurrences(friday_board(), utc(2025, 12, 1), utc(2026, 1, 9))
    assert [o.day for o in found] == [date(2026, 1, 2)]


def test_every_two_weeks_keeps_its_phase_whatever_the_window():
    rule = friday_board(interval=2)
    days = [o.day for o in occurrences(rule, utc(2026, 1, 1), utc(2026, 2, 14))]
    assert days == [date(2026, 1, 2), date(2026, 1, 16), date(2026, 1, 30), date(2026, 2, 13)]
    later = [o.day for o in occurrences(rule, utc(2026, 1, 20), utc(2026, 2, 14))]
    assert later == [date(2026, 1, 30), date(2026, 2, 13)]


def test_monthly_second_tuesday():
    rule = Recurrence(
        start=date(2026, 1, 1),
        weekday=TUESDAY,
        at=time(17, 30),
        duration=timedelta(minutes=90),
        frequency=Frequency.MONTHLY,
        week_of_month=2,
    )
    days = [o.day for o in occurrences(rule, utc(2026, 1, 1), utc(2026, 7, 1))]
    assert days == [
        date(2026, 1, 13),
        date(2026, 2, 10),
        date(2026, 3, 10),
        date(2026, 4, 14),
        date(2026, 5, 12),
        date(2026, 6, 9),
    ]


def test_monthly_last_weekday_every_three_months():
    rule = Recurrence(
        start=date(2026, 2, 1),
        weekday=THURSDAY,
        at=time(9),
        duration=timedelta(hours=1),
        frequency=Frequency.MONTHLY,
        interval=3,
        week_of_month=-1,
    )
    assert scheduled_days(rule, date(2026, 1, 1), date(2026, 12, 31)) == [
        date(2026, 2, 26),
        date(2026, 5, 28),
        date(2026, 8, 27),
        date(2026, 11, 26),
    ]


def last_sunday_at(at: time, duration: timedelta = timedelta(hours=1)) -> Recurrence:
    return Recurrence(
        start=date(2026, 1, 1),
        weekday=SUNDAY,
        at=at,
        duration=duration,
        frequency=Frequency.MONTHLY,
        week_of_month=-1,
        holiday_region=None,
    )


@pytest.mark.parametrize("day", [date(2026, 3, 29), date(2027, 3, 28)])
def test_a_time_in_the_spring_gap_takes_the_offset_before_the_gap(day):
    # 02:30 does not exist in Paris on the last Sunday of March: RFC 5545 3.3.5 reads it
    # with the winter offset (+01:00), which is 01:30 UTC, shown as 03:30 summer time.
    found = occurrences(last_sunday_at(time(2, 30)), utc(day.year, 3, 1), utc(day.year, 4, 1))
    assert len(found) == 1
    assert found[0].day == day
    assert found[0].start == datetime.combine(day, time(1, 30), tzinfo=UTC)
    assert found[0].local_start.time() == time(3, 30)
    assert found[0].local_start.utcoffset() == timedelta(hours=2)


@pytest.mark.parametrize("day", [date(2026, 10, 25), date(2027, 10, 31)])
def test_a_time_in_the_repeated_autumn_hour_is_its_first_occurrence(day):
    # 02:30 happens twice in Paris on the last Sunday of October: the first one, still in
    # summer time (+02:00), is 00:30 UTC; the second would have been 01:30 UTC.
    found = occurrences(last_sunday_at(time(2, 30)), utc(day.year, 10, 1), utc(day.year, 11, 1))
    assert len(found) == 1
    assert found[0].day == day
    assert found[0].start == datetime.combine(day, time(0, 30), tzinfo=UTC)
    assert found[0].local_start.utcoffset() == timedelta(hours=2)


def test_times_around_the_change_keep_their_own_offsets():
    day = date(2026, 3, 29)
    assert local_instant(day, time(1, 59), "Europe/Paris") == utc(2026, 3, 29, 0, 59)
    assert local_instant(day, time(3, 0), "Europe/Paris") == utc(2026, 3, 29, 1, 0)
    autumn = date(2026, 10, 25)
    assert local_instant(autumn, time(1, 59), "Europe/Paris") == utc(2026, 10, 24, 23, 59)
    assert local_instant(autumn, time(3, 0), "Europe/Paris") == utc(2026, 10, 25, 2, 0)
    # A fold=1 time asked for is still resolved by the documented rule.
    assert local_instant(autumn, time(2, 30, fold=1), "Europe/Paris") == utc(2026, 10, 25, 0, 30)


def test_the_end_is_the_elapsed_duration_across_a_clock_change():
    found = occurrences(
        last_sunday_at(time(1, 0), timedelta(hours=3)), utc(2026, 3, 1), utc(2026, 4, 1)
    )
    (night,) = found
    assert night.start == utc(2026, 3, 29, 0, 0)
    assert night.end == utc(2026, 3, 29, 3, 0)
    assert night.local_end.time() == time(5, 0)  # three hours later, one of them skipped


def test_other_time_zones_follow_their_own_rules():
    rule = friday_board(timezone="America/New_York", holiday_region=None)
    # US clocks go forward on the second Sunday of March (8 March 2026), three weeks before
    # Europe's: on 13 March New York is already on summer time and Paris is not.
    assert starts(rule, utc(2026, 3, 6), utc(2026, 3, 7)) == [utc(2026, 3, 6, 19)]
    assert starts(rule, utc(2026, 3, 13), utc(2026, 3, 14)) == [utc(2026, 3, 13, 18)]
    assert starts(friday_board(), utc(2026, 3, 13), utc(2026, 3, 14)) == [utc(2026, 3, 13, 13)]


def thursday_board(policy: HolidayPolicy, region: str = "FR") -> Recurrence:
    return Recurrence(
        start=date(2025, 1, 1),
        weekday=THURSDAY,
        at=time(14),
        duration=timedelta(hours=2),
        holiday_region=region,
        on_holiday=policy,
    )


ASCENSION_WEEK = (utc(2026, 5, 11), utc(2026, 5, 18))


@pytest.mark.parametrize(
    ("policy", "days"),
    [
        (HolidayPolicy.KEEP, [date(2026, 5, 14)]),
        (HolidayPolicy.SKIP, []),
        (HolidayPolicy.PREVIOUS_WORKING_DAY, [date(2026, 5, 13)]),
        (HolidayPolicy.NEXT_WORKING_DAY, [date(2026, 5, 15)]),
    ],
)
def test_a_meeting_on_ascension_thursday_follows_the_policy(policy, days):
    found = occurrences(thursday_board(policy), *ASCENSION_WEEK)
    assert [o.day for o in found] == days
    for occurrence in found:
        assert occurrence.scheduled_day == date(2026, 5, 14)
        assert occurrence.local_start.time() == time(14)
        moved = occurrence.day != occurrence.scheduled_day
        assert (occurrence.moved_for is not None) == moved
        if moved:
            assert occurrence.moved_for is not None
            assert occurrence.moved_for.code == "ascension"


def test_a_move_skips_weekends_and_the_regions_own_holidays():
    # Christmas 2025 is a Thursday; 26 December is a holiday in Alsace-Moselle only.
    window = (utc(2025, 12, 22), utc(2026, 1, 1))
    national = occurrences(thursday_board(HolidayPolicy.NEXT_WORKING_DAY), *window)
    assert [o.day for o in national] == [date(2025, 12, 26)]
    moselle = occurrences(thursday_board(HolidayPolicy.NEXT_WORKING_DAY, ALSACE_MOSELLE), *window)
    assert [o.day for o in moselle] == [date(2025, 12, 29)]


def test_good_friday_is_skipped_in_moselle_only():
    window = (utc(2026, 3, 30), utc(2026, 4, 6))
    assert [o.day for o in occurrences(friday_board(), *window)] == [date(2026, 4, 3)]
    assert occurrences(friday_board(holiday_region=ALSACE_MOSELLE), *window) == []


def test_a_moved_meeting_is_found_from_a_window_that_holds_only_its_new_day():
    rule = thursday_board(HolidayPolicy.PREVIOUS_WORKING_DAY)
    found = occurrences(rule, utc(2026, 5, 13), utc(2026, 5, 14))
    assert [o.day for o in found] == [date(2026, 5, 13)]


def test_until_and_exceptions_end_and_thin_the_series():
    rule = friday_board(until=date(2026, 1, 23), exceptions=frozenset({date(2026, 1, 9)}))
    days = [o.day for o in occurrences(rule, utc(2026, 1, 1), utc(2026, 3, 1))]
    assert days == [date(2026, 1, 2), date(2026, 1, 16), date(2026, 1, 23)]
    assert occurrence_on(rule, date(2026, 1, 9)) is None


def test_next_occurrence():
    rule = friday_board()
    meeting = next_occurrence(rule, utc(2026, 3, 27, 13))
    assert meeting is not None and meeting.start == utc(2026, 3, 27, 13)
    meeting = next_occurrence(rule, utc(2026, 3, 27, 13, 0, 1))
    assert meeting is not None and meeting.start == utc(2026, 4, 3, 12)
    assert next_occurrence(friday_board(until=date(2026, 3, 27)), utc(2026, 3, 28)) is None


def test_windows_must_be_aware_ordered_and_bounded():
    rule = friday_board()
    with pytest.raises(ValueError, match="since must be a datetime with a time zone"):
        occurrences(rule, datetime(2026, 1, 1), utc(2026, 2, 1))
    with pytest.raises(ValueError, match="is before since"):
        occurrences(rule, utc(2026, 2, 1), utc(2026, 1, 1))
    with pytest.raises(ValueError, match="at most 3660 days"):
        occurrences(rule, utc(2026, 1, 1), utc(2040, 1, 1))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"weekday": 7}, "weekday must be 0"),
        ({"at": time(14, tzinfo=UTC)}, "local time without a time zone"),
        ({"duration": timedelta(0)}, "duration must be a timedelta above zero"),
        ({"duration": timedelta(hours=25)}, "at most 24 h"),
        ({"timezone": "Europe/Metz"}, "unknown IANA time zone 'Europe/Metz'"),
        ({"interval": 0}, "interval must be 1 to 52"),
        ({"week_of_month": 2}, "monthly recurrence only"),
        ({"frequency": Frequency.MONTHLY}, "week_of_month must be 1 to 4 or -1"),
        ({"frequency": Frequency.MONTHLY, "week_of_month": 5}, "week_of_month must be"),
        ({"frequency": Frequency.MONTHLY, "week_of_month": 1, "interval": 13}, "1 to 12"),
        ({"frequency": "weekly"}, "frequency must be a Frequency"),
        ({"until": date(2025, 12, 31)}, "is before start"),
        ({"holiday_region": "FR-57"}, "unknown holiday region"),
        ({"on_holiday": "skip"}, "on_holiday must be a HolidayPolicy"),
        ({"exceptions": {date(2026, 1, 2)}}, "exceptions must be a frozenset of dates"),
        ({"start": datetime(2026, 1, 1)}, "start must be a date"),
    ],
)
def test_inconsistent_rules_are_refused_at_construction(overrides, message):
    with pytest.raises(ValueError, match=message):
        friday_board(**overrides)

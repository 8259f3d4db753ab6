"""Recurring meetings held at a local wall-clock time in an IANA time zone.

A :class:`Recurrence` says "every Friday at 14:00 Europe/Paris for 2 h", "every other
Tuesday", or "the 2nd Tuesday of every month", and what to do on a public holiday
(:mod:`concilium.platform.holidays`): hold the meeting anyway, skip it, or move it to the
nearest working day before or after. :func:`occurrences` turns a rule into meetings in a
window of time; every function is pure and every instant is passed in.

Local times are resolved as RFC 5545 section 3.3.5 resolves a DATE-TIME with a TZID, so an
occurrence computed here is the instant a calendar client computes from the invitation:

- a local time that does not exist (the hour skipped when clocks go forward, 02:00 to
  03:00 on the last Sunday of March in Europe/Paris) is read with the UTC offset in force
  before the gap: 02:30 becomes 01:30 UTC, shown as 03:30 summer time;
- a local time that happens twice (the hour repeated when clocks go back, 02:00 to 03:00
  on the last Sunday of October) is its first occurrence: 02:30 becomes 00:30 UTC.

The end of an occurrence is its start plus the duration in elapsed time, so a meeting
that spans a clock change still lasts its duration.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from concilium.platform import holidays
from concilium.platform.holidays import Holiday

MAX_HOLIDAY_SHIFT_DAYS = 14
"""Furthest a holiday may push an occurrence; no French calendar comes close."""


class Frequency(StrEnum):
    """How the meeting day is found."""

    WEEKLY = "weekly"
    """On ``weekday``, every ``interval`` weeks from the first such day on or after ``start``."""
    MONTHLY = "monthly"
    """On the ``week_of_month``-th ``weekday`` of every ``interval`` months."""


class HolidayPolicy(StrEnum):
    """What happens to an occurrence falling on a public holiday."""

    KEEP = "keep"
    """Hold the meeting anyway."""
    SKIP = "skip"
    """No meeting that time."""
    PREVIOUS_WORKING_DAY = "previous_working_day"
    """Move it to the nearest earlier weekday that is not a holiday."""
    NEXT_WORKING_DAY = "next_working_day"
    """Move it to the nearest later weekday that is not a holiday."""


@dataclass(frozen=True)
class Recurrence:
    """A recurring local-time schedule; refused at construction when inconsistent."""

    start: date
    """First day the series may take place on."""
    weekday: int
    """Day of the week, as :meth:`datetime.date.weekday` numbers them (0 is Monday)."""
    at: time
    """Local wall-clock start time, without a time zone."""
    duration: timedelta
    """Elapsed time from start to end."""
    timezone: str = "Europe/Paris"
    """IANA time zone the wall-clock time is read in."""
    frequency: Frequency = Frequency.WEEKLY
    """Weekly or monthly."""
    interval: int = 1
    """Every how many weeks (weekly) or months (monthly)."""
    week_of_month: int | None = None
    """Monthly only: 1 to 4 for the first to fourth ``weekday`` of the month, -1 for the last."""
    until: date | None = None
    """Last day the series may take place on (a moved occurrence may land after it)."""
    holiday_region: str | None = holidays.METROPOLITAN
    """Region whose public holidays apply (:data:`holidays.REGIONS`); None ignores holidays."""
    on_holiday: HolidayPolicy = HolidayPolicy.SKIP
    """What happens to an occurrence falling on a public holiday."""
    exceptions: frozenset[date] = field(default_factory=frozenset)
    """Days the rule gives on which there is exceptionally no meeting."""

    def __post_init__(self) -> None:
        if not isinstance(self.start, date) or isinstance(self.start, datetime):
            raise ValueError(f"start must be a date, got {self.start!r}")
        if not isinstance(self.weekday, int) or not 0 <= self.weekday <= 6:
            raise ValueError(f"weekday must be 0 (Monday) to 6 (Sunday), got {self.weekday!r}")
        if not isinstance(self.at, time) or self.at.tzinfo is not None:
            raise ValueError(f"at must be a local time without a time zone, got {self.at!r}")
        if not isinstance(self.duration, timedelta) or not (
            timedelta(0) < self.duration <= timedelta(hours=24)
        ):
            raise ValueError(
                f"duration must be a timedelta above zero and at most 24 h, got {self.duration!r}"
            )
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
            raise ValueError(f"unknown IANA time zone {self.timezone!r}") from exc
        if not isinstance(self.frequency, Frequency):
            raise ValueError(f"frequency must be a Frequency, got {self.frequency!r}")
        limit = 52 if self.frequency is Frequency.WEEKLY else 12
        if not isinstance(self.interval, int) or not 1 <= self.interval <= limit:
            raise ValueError(
                f"interval must be 1 to {limit} for a {self.frequency.value} recurrence, "
                f"got {self.interval!r}"
            )
        if self.frequency is Frequency.WEEKLY and self.week_of_month is not None:
            raise ValueError("week_of_month applies to a monthly recurrence only")
        if self.frequency is Frequency.MONTHLY and self.week_of_month not in (1, 2, 3, 4, -1):
            raise ValueError(
                f"week_of_month must be 1 to 4 or -1 (last) for a monthly recurrence, "
                f"got {self.week_of_month!r}"
            )
        if self.until is not None and self.until < self.start:
            raise ValueError(f"until ({self.until}) is before start ({self.start})")
        if self.holiday_region is not None and self.holiday_region not in holidays.REGIONS:
            raise ValueError(
                f"unknown holiday region {self.holiday_region!r}; known regions: "
                f"{', '.join(sorted(holidays.REGIONS))}"
            )
        if not isinstance(self.on_holiday, HolidayPolicy):
            raise ValueError(f"on_holiday must be a HolidayPolicy, got {self.on_holiday!r}")
        if not isinstance(self.exceptions, frozenset) or not all(
            isinstance(day, date) and not isinstance(day, datetime) for day in self.exceptions
        ):
            raise ValueError(f"exceptions must be a frozenset of dates, got {self.exceptions!r}")


@dataclass(frozen=True)
class Occurrence:
    """One meeting of a series."""

    scheduled_day: date
    """The day the rule gives; stable even when a holiday moves the meeting."""
    day: date
    """The local day the meeting takes place on."""
    start: datetime
    """Start instant, in UTC."""
    end: datetime
    """End instant, in UTC."""
    timezone: str
    """IANA time zone of the series."""
    moved_for: Holiday | None = None
    """The public holiday the meeting was moved away from, if it was."""

    @property
    def local_start(self) -> datetime:
        """Start as a wall-clock time in the series' time zone."""
        return self.start.astimezone(ZoneInfo(self.timezone))

    @property
    def local_end(self) -> datetime:
        """End as a wall-clock time in the series' time zone."""
        return self.end.astimezone(ZoneInfo(self.timezone))


MAX_WINDOW = timedelta(days=3660)
"""Longest window :func:`occurrences` expands at once (ten years)."""


def local_instant(day: date, at: time, timezone: str) -> datetime:
    """The UTC instant of wall-clock ``at`` on ``day`` in ``timezone``, per RFC 5545 3.3.5.

    A time in the spring gap is read with the offset before the gap; a time in the repeated
    autumn hour is its first occurrence. Both are what ``fold=0`` means to :mod:`zoneinfo`
    (PEP 495), which is why the combination below is enough.
    """
    return datetime.combine(day, at.replace(fold=0), tzinfo=ZoneInfo(timezone)).astimezone(UTC)


def scheduled_days(rule: Recurrence, first: date, last: date) -> list[date]:
    """The days the rule gives between ``first`` and ``last`` included, before holidays and
    exceptions are applied."""
    first = max(first, rule.start)
    if rule.until is not None:
        last = min(last, rule.until)
    if first > last:
        return []
    if rule.frequency is Frequency.WEEKLY:
        return _weekly_days(rule, first, last)
    return _monthly_days(rule, first, last)


def occurrence_on(rule: Recurrence, scheduled_day: date) -> Occurrence | None:
    """The meeting for a day the rule gives, after exceptions and the holiday policy; None
    when there is no meeting for that day."""
    if scheduled_day in rule.exceptions:
        return None
    day = scheduled_day
    moved_for: Holiday | None = None
    region = rule.holiday_region
    if region is not None and rule.on_holiday is not HolidayPolicy.KEEP:
        holiday = holidays.holiday_on(scheduled_day, region)
        if holiday is not None:
            if rule.on_holiday is HolidayPolicy.SKIP:
                return None
            step = -1 if rule.on_holiday is HolidayPolicy.PREVIOUS_WORKING_DAY else 1
            moved = _nearest_working_day(scheduled_day, step, region)
            if moved is None:
                return None
            day, moved_for = moved, holiday
    start = local_instant(day, rule.at, rule.timezone)
    return Occurrence(scheduled_day, day, start, start + rule.duration, rule.timezone, moved_for)


def occurrences(rule: Recurrence, since: datetime, until: datetime) -> list[Occurrence]:
    """The meetings whose start lies in ``[since, until)``, in time order."""
    _check_instant("since", since)
    _check_instant("until", until)
    if until < since:
        raise ValueError(f"until ({until.isoformat()}) is before since ({since.isoformat()})")
    if until - since > MAX_WINDOW:
        raise ValueError(f"the window may span at most {MAX_WINDOW.days} days")
    zone = ZoneInfo(rule.timezone)
    # A holiday can move a meeting across the window's edges: widen the days looked at.
    margin = timedelta(days=MAX_HOLIDAY_SHIFT_DAYS + 1)
    first = since.astimezone(zone).date() - margin
    last = until.astimezone(zone).date() + margin
    found = []
    for day in scheduled_days(rule, first, last):
        occurrence = occurrence_on(rule, day)
        if occurrence is not None and since <= occurrence.start < until:
            found.append(occurrence)
    return sorted(found, key=lambda occurrence: occurrence.start)


def next_occurrence(rule: Recurrence, after: datetime) -> Occurrence | None:
    """The first meeting starting at or after ``after``; None when the series has ended."""
    _check_instant("after", after)
    zone = ZoneInfo(rule.timezone)
    last_day = None
    if rule.until is not None:
        last_day = rule.until + timedelta(days=MAX_HOLIDAY_SHIFT_DAYS)
    since = after
    # Holidays and exceptions thin a series out, never for long: three years without a
    # meeting means every remaining day is an exception.
    for _ in range(36):
        if last_day is not None and since.astimezone(zone).date() > last_day:
            return None
        until = since + timedelta(days=31)
        found = occurrences(rule, since, until)
        if found:
            return found[0]
        since = until
    return None


def _check_instant(name: str, value: datetime) -> None:
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise ValueError(f"{name} must be a datetime with a time zone, got {value!r}")


def _weekly_days(rule: Recurrence, first: date, last: date) -> list[date]:
    anchor = rule.start + timedelta(days=(rule.weekday - rule.start.weekday()) % 7)
    step = 7 * rule.interval
    skipped = max(0, -(-(first - anchor).days // step))
    day = anchor + timedelta(days=skipped * step)
    days = []
    while day <= last:
        days.append(day)
        day += timedelta(days=step)
    return days


def _monthly_days(rule: Recurrence, first: date, last: date) -> list[date]:
    assert rule.week_of_month is not None
    origin = rule.start.year * 12 + rule.start.month - 1
    month = first.year * 12 + first.month - 1
    # Round up to the next month of the series (every ``interval`` months from ``start``).
    month += (origin - month) % rule.interval
    days = []
    while month <= last.year * 12 + last.month - 1:
        day = _nth_weekday(month // 12, month % 12 + 1, rule.weekday, rule.week_of_month)
        if first <= day <= last:
            days.append(day)
        month += rule.interval
    return days


def _nth_weekday(year: int, month: int, weekday: int, nth: int) -> date:
    if nth == -1:
        next_month = date(year + month // 12, month % 12 + 1, 1)
        last_day = next_month - timedelta(days=1)
        return last_day - timedelta(days=(last_day.weekday() - weekday) % 7)
    first_day = date(year, month, 1)
    return first_day + timedelta(days=(weekday - first_day.weekday()) % 7 + 7 * (nth - 1))


def _nearest_working_day(day: date, step: int, region: str) -> date | None:
    for shift in range(1, MAX_HOLIDAY_SHIFT_DAYS + 1):
        candidate = day + timedelta(days=step * shift)
        if candidate.weekday() < 5 and not holidays.is_holiday(candidate, region):
            return candidate
    return None

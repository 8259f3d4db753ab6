"""On-call rota of the reading groups, as data, and who is on call at an instant.

A rota lists recurring on-call periods per reading group: nights (e.g. 18:30 to 08:30 the
next morning), weekends (Saturday 08:30 to Monday 08:30), public holidays (the whole day
and the nights before and after it, evening of the eve to the morning after) and one-off
periods. Periods are defined in local wall-clock time of the rota's zone (Europe/Paris)
and turned into instants day by day with :mod:`zoneinfo`, so durations are exact across
daylight-saving changes: the night into the last Sunday of March lasts an hour less, the
night into the last Sunday of October an hour more.

A wall-clock time that does not exist (inside the spring gap) is read with the offset in
force before the change, i.e. an hour later on the new clock; one that happens twice (the
autumn repeat) is its first occurrence. Instants are compared in UTC, never as local
times.

Public holidays come from the caller, as a set of dates or a function of a date: the
calendar is not this module's business. Everything here is a pure function of its inputs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo

PARIS = ZoneInfo("Europe/Paris")
"""Zone of the rota unless said otherwise."""
EVENING = time(18, 30)
"""Usual start of the night shift."""
MORNING = time(8, 30)
"""Usual end of the night shift, start of the day."""
EVERY_DAY = frozenset(range(7))
"""Every weekday, Monday being 0 as in :meth:`datetime.date.weekday`."""
SATURDAY = 5
"""Weekday number of Saturday."""
MONDAY = 0
"""Weekday number of Monday."""

HolidayCalendar = Callable[[date], bool] | AbstractSet[date]
"""Public holidays: a set of dates or a predicate on dates."""


@dataclass(frozen=True)
class OnCallPeriod:
    """One concrete period during which a group is on call: ``start <= t < end``."""

    group: str
    """Reading group on call."""
    start: datetime
    """First instant, in UTC."""
    end: datetime
    """First instant after the period, in UTC."""
    kind: str
    """``night``, ``weekend``, ``holiday`` or ``fixed``."""

    def contains(self, at: datetime) -> bool:
        """Whether an aware instant falls within the period."""
        return self.start <= at.astimezone(UTC) < self.end

    @property
    def duration(self) -> timedelta:
        """Elapsed time from start to end (real time, not wall-clock time)."""
        return self.end - self.start


def _check_group(group: str) -> None:
    if not group or not group.strip():
        raise ValueError("an on-call entry needs a group")


def _instant(day: date, at: time, zone: tzinfo) -> datetime:
    return datetime.combine(day, at, tzinfo=zone).astimezone(UTC)


@dataclass(frozen=True)
class NightShift:
    """A night on call beginning on the given weekdays at ``start``, ending at ``end`` (the
    next day when ``end`` is not after ``start``)."""

    group: str
    """Reading group on call."""
    start: time = EVENING
    """Local time the night begins."""
    end: time = MORNING
    """Local time the night ends."""
    weekdays: frozenset[int] = EVERY_DAY
    """Weekdays on which the night begins (Monday 0 ... Sunday 6)."""

    def __post_init__(self) -> None:
        _check_group(self.group)
        if not self.weekdays or not self.weekdays <= EVERY_DAY:
            raise ValueError(f"weekdays must be among 0..6, got {sorted(self.weekdays)}")
        if self.start == self.end:
            raise ValueError("a night shift cannot end when it begins")

    @property
    def span_days(self) -> int:
        """Days between the local dates of start and end."""
        return 1 if self.end <= self.start else 0

    def periods_starting(
        self, day: date, zone: tzinfo, is_holiday: Callable[[date], bool]
    ) -> Iterator[OnCallPeriod]:
        """The period beginning on a local date, if any."""
        if day.weekday() in self.weekdays:
            end_day = day + timedelta(days=self.span_days)
            yield OnCallPeriod(
                self.group,
                _instant(day, self.start, zone),
                _instant(end_day, self.end, zone),
                "night",
            )


@dataclass(frozen=True)
class WeekendShift:
    """A weekend on call, by default Saturday 08:30 to Monday 08:30."""

    group: str
    """Reading group on call."""
    start_weekday: int = SATURDAY
    """Weekday it begins."""
    start: time = MORNING
    """Local time it begins."""
    end_weekday: int = MONDAY
    """Weekday it ends."""
    end: time = MORNING
    """Local time it ends."""

    def __post_init__(self) -> None:
        _check_group(self.group)
        for weekday in (self.start_weekday, self.end_weekday):
            if weekday not in EVERY_DAY:
                raise ValueError(f"weekdays are 0..6, got {weekday}")
        if self.start_weekday == self.end_weekday and self.end > self.start:
            raise ValueError("a weekend shift longer than a week is not a weekend")

    @property
    def span_days(self) -> int:
        """Days between the local dates of start and end."""
        return (self.end_weekday - self.start_weekday) % 7 or 7

    def periods_starting(
        self, day: date, zone: tzinfo, is_holiday: Callable[[date], bool]
    ) -> Iterator[OnCallPeriod]:
        """The period beginning on a local date, if any."""
        if day.weekday() == self.start_weekday:
            end_day = day + timedelta(days=self.span_days)
            yield OnCallPeriod(
                self.group,
                _instant(day, self.start, zone),
                _instant(end_day, self.end, zone),
                "weekend",
            )


@dataclass(frozen=True)
class HolidayShift:
    """Public holidays on call: from ``evening`` of the eve to ``morning`` after the day."""

    group: str
    """Reading group on call."""
    evening: time = EVENING
    """Local time on the eve the period begins."""
    morning: time = MORNING
    """Local time on the day after the holiday the period ends."""

    def __post_init__(self) -> None:
        _check_group(self.group)

    @property
    def span_days(self) -> int:
        """Days between the local dates of start and end: the eve to the day after."""
        return 2

    def periods_starting(
        self, day: date, zone: tzinfo, is_holiday: Callable[[date], bool]
    ) -> Iterator[OnCallPeriod]:
        """The period beginning on a local date: one when the next day is a holiday."""
        if is_holiday(day + timedelta(days=1)):
            yield OnCallPeriod(
                self.group,
                _instant(day, self.evening, zone),
                _instant(day + timedelta(days=2), self.morning, zone),
                "holiday",
            )


@dataclass(frozen=True)
class FixedPeriod:
    """A one-off period, e.g. a replacement or a reinforcement."""

    group: str
    """Reading group on call."""
    start: datetime
    """First instant (aware)."""
    end: datetime
    """First instant after the period (aware)."""

    def __post_init__(self) -> None:
        _check_group(self.group)
        if self.start.utcoffset() is None or self.end.utcoffset() is None:
            raise ValueError("a fixed period is given with aware datetimes")
        if self.end <= self.start:
            raise ValueError("a fixed period must end after it begins")

    def period(self) -> OnCallPeriod:
        """The period in UTC."""
        return OnCallPeriod(
            self.group, self.start.astimezone(UTC), self.end.astimezone(UTC), "fixed"
        )


RotaEntry = NightShift | WeekendShift | HolidayShift | FixedPeriod
"""One line of a rota."""


@dataclass(frozen=True)
class Rota:
    """The on-call rota of the reading groups."""

    entries: tuple[RotaEntry, ...]
    """Lines of the rota; their order is kept in what :meth:`on_call` returns."""
    zone: ZoneInfo = PARIS
    """Zone of the wall-clock times of the entries."""
    holidays: HolidayCalendar = field(default_factory=frozenset)
    """Public holidays (supplied by the holiday calendar)."""

    def is_holiday(self, day: date) -> bool:
        """Whether a local date is a public holiday."""
        if isinstance(self.holidays, AbstractSet):
            return day in self.holidays
        return bool(self.holidays(day))

    def periods(self, start: datetime, end: datetime) -> list[OnCallPeriod]:
        """Every period overlapping ``[start, end)``, by start then entry order."""
        _check_aware(start)
        _check_aware(end)
        first = start.astimezone(self.zone).date()
        last = end.astimezone(self.zone).date()
        found: list[tuple[datetime, int, OnCallPeriod]] = []
        for index, entry in enumerate(self.entries):
            for period in self._periods_of(entry, first, last):
                if period.start < end.astimezone(UTC) and start.astimezone(UTC) < period.end:
                    found.append((period.start, index, period))
        return [period for _, _, period in sorted(found, key=lambda item: item[:2])]

    def on_call(self, at: datetime) -> list[OnCallPeriod]:
        """The periods containing an aware instant, in entry order."""
        _check_aware(at)
        day = at.astimezone(self.zone).date()
        return [
            period
            for entry in self.entries
            for period in self._periods_of(entry, day, day)
            if period.contains(at)
        ]

    def groups_on_call(self, at: datetime) -> tuple[str, ...]:
        """The groups on call at an instant, each once, in entry order."""
        return tuple(dict.fromkeys(period.group for period in self.on_call(at)))

    def _periods_of(self, entry: RotaEntry, first: date, last: date) -> Iterator[OnCallPeriod]:
        if isinstance(entry, FixedPeriod):
            yield entry.period()
            return
        # A period begun up to span_days earlier can still be running on ``first``.
        day = first - timedelta(days=entry.span_days)
        while day <= last:
            yield from entry.periods_starting(day, self.zone, self.is_holiday)
            day += timedelta(days=1)


def _check_aware(at: datetime) -> None:
    if at.utcoffset() is None:
        raise ValueError("instants are given as aware datetimes")

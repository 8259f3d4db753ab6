"""A board's meetings from its recurrence, and which agenda cases would miss their quorum."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest

from concilium.boards.cases import Case, CaseStatus, Postpone, advance
from concilium.boards.quorum import SOLID_TUMOUR
from concilium.boards.schedule import (
    AgendaCase,
    BoardSchedule,
    InvitedMember,
    meeting_key,
    meetings,
    next_meeting,
    plan_agenda,
)
from concilium.platform.calendar_ics import event_uid
from concilium.platform.holidays import ALSACE_MOSELLE
from concilium.platform.recurrence import HolidayPolicy, Recurrence


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def digestive(**overrides) -> BoardSchedule:
    recurrence = {
        "start": date(2026, 1, 1),
        "weekday": 4,
        "at": time(14, 0),
        "duration": timedelta(hours=2),
        "holiday_region": ALSACE_MOSELLE,
    }
    recurrence.update(overrides)
    return BoardSchedule("rcp-digestive", Recurrence(**recurrence), SOLID_TUMOUR)


def test_meetings_follow_the_recurrence_and_the_regions_holidays():
    found = meetings(digestive(), utc(2026, 3, 23), utc(2026, 4, 20))
    # Good Friday (3 April) is a holiday in Moselle: no meeting that week.
    assert [m.key for m in found] == [
        "rcp-digestive.2026-03-27",
        "rcp-digestive.2026-04-10",
        "rcp-digestive.2026-04-17",
    ]
    assert [m.start for m in found] == [
        utc(2026, 3, 27, 13),
        utc(2026, 4, 10, 12),
        utc(2026, 4, 17, 12),
    ]
    assert all(m.end - m.start == timedelta(hours=2) for m in found)
    assert {m.board for m in found} == {"rcp-digestive"}


def test_a_moved_meeting_keeps_the_key_of_its_scheduled_day():
    schedule = digestive(on_holiday=HolidayPolicy.PREVIOUS_WORKING_DAY)
    (moved,) = meetings(schedule, utc(2026, 3, 30), utc(2026, 4, 5))
    assert moved.occurrence.day == date(2026, 4, 2)
    assert moved.key == meeting_key("rcp-digestive", date(2026, 4, 3))
    assert moved.start == utc(2026, 4, 2, 12)
    # The key can name the meeting in a calendar.
    assert event_uid("board-meeting", moved.key, "concilium.example.fr") == (
        "board-meeting-rcp-digestive.2026-04-03@concilium.example.fr"
    )


def test_a_postponed_case_goes_onto_the_next_meeting():
    schedule = digestive()
    (today,) = meetings(schedule, utc(2026, 3, 27), utc(2026, 3, 28))
    following = next_meeting(schedule, today.end)
    assert following is not None and following.key == "rcp-digestive.2026-04-10"
    step = advance(
        Case(CaseStatus.ON_AGENDA, today.key),
        Postpone("TEP en attente", following.key),
        today.end,
    )
    assert step.case == Case(CaseStatus.ON_AGENDA, "rcp-digestive.2026-04-10", 1)


def test_a_board_that_meets_no_more_has_no_next_meeting():
    assert next_meeting(digestive(until=date(2026, 3, 27)), utc(2026, 3, 28)) is None


START = utc(2026, 3, 27, 13)  # 14:00 in Paris
END = START + timedelta(hours=2)


def minutes(n: int) -> datetime:
    return START + timedelta(minutes=n)


def fs(*codes: str) -> frozenset[str]:
    return frozenset(codes)


MEMBERS = [
    InvitedMember("surgeon", fs("surgery")),
    InvitedMember("oncologist", fs("oncology"), leaves=minutes(60)),
    InvitedMember("radiologist", fs("radiology"), arrives=minutes(30)),
    InvitedMember("nuclear", fs("nuclear-medicine"), leaves=minutes(45)),
    InvitedMember("pathologist", fs("pathology")),
]


def test_the_agenda_is_laid_out_in_order_for_each_cases_minutes():
    cases = [AgendaCase("c1", 20), AgendaCase("c2", 15), AgendaCase("c3", 0)]
    plan = plan_agenda(START, END, SOLID_TUMOUR, cases, MEMBERS)
    assert [(p.case, p.start, p.end) for p in plan.cases] == [
        ("c1", minutes(0), minutes(20)),
        ("c2", minutes(20), minutes(35)),
        ("c3", minutes(35), minutes(35)),
    ]
    assert plan.overrun == timedelta(0)
    assert not any(p.overruns for p in plan.cases)


def test_cases_that_would_miss_their_quorum_are_named_with_what_they_lack():
    cases = [
        AgendaCase("before-radiologist", 20),  # 14:00-14:20
        AgendaCase("radiologist-arrives-during", 15),  # 14:20-14:35
        AgendaCase("with-nuclear-medicine", 5, fs("nuclear-medicine")),  # 14:35-14:40
        AgendaCase("nuclear-medicine-gone", 10, fs("nuclear-medicine")),  # 14:40-14:50
        AgendaCase("complete", 5),  # 14:50-14:55
        AgendaCase("oncologist-leaves", 10),  # 14:55-15:05
    ]
    plan = plan_agenda(START, END, SOLID_TUMOUR, cases, MEMBERS)
    missing = {p.case: p.quorum.missing_required for p in plan.missing_quorum}
    assert missing == {
        "before-radiologist": (fs("radiology"),),
        "radiologist-arrives-during": (fs("radiology"),),
        "nuclear-medicine-gone": (fs("nuclear-medicine"),),
        "oncologist-leaves": (fs("oncology", "radiotherapy"),),
    }
    by_case = {p.case: p for p in plan.cases}
    assert by_case["with-nuclear-medicine"].quorum.counted["nuclear"] == "nuclear-medicine"
    assert by_case["complete"].quorum.met


def test_an_agenda_longer_than_the_meeting_overruns():
    cases = [AgendaCase(f"c{i}", 30) for i in range(5)]  # 2 h 30 in a 2 h meeting
    plan = plan_agenda(START, END, SOLID_TUMOUR, cases, MEMBERS)
    assert plan.overrun == timedelta(minutes=30)
    assert [p.overruns for p in plan.cases] == [False, False, False, False, True]
    # Members with no departure time are taken to stay past the end.
    assert plan.cases[-1].quorum.present == fs("surgeon", "radiologist", "pathologist")


def test_bad_agenda_arguments_are_refused():
    with pytest.raises(ValueError, match="minutes of case c1 must be 0 to 240"):
        AgendaCase("c1", 300)
    with pytest.raises(ValueError, match="a case is on the agenda twice"):
        plan_agenda(START, END, SOLID_TUMOUR, [AgendaCase("c1", 5)] * 2, MEMBERS)
    with pytest.raises(ValueError, match="must be after start"):
        plan_agenda(END, START, SOLID_TUMOUR, [], MEMBERS)
    with pytest.raises(ValueError, match="start must be a datetime with a time zone"):
        plan_agenda(datetime(2026, 3, 27, 14), END, SOLID_TUMOUR, [], MEMBERS)
    with pytest.raises(ValueError, match="surgeon leaves before arriving"):
        InvitedMember("surgeon", fs("surgery"), arrives=minutes(10), leaves=minutes(5))
    with pytest.raises(ValueError, match="arrives must be a datetime with a time zone"):
        InvitedMember("surgeon", fs("surgery"), arrives=datetime(2026, 3, 27, 14))
    with pytest.raises(ValueError, match="specialty codes are lower-case"):
        AgendaCase("c1", 5, fs("Nuclear medicine"))
    with pytest.raises(ValueError, match="board must be a code"):
        BoardSchedule("RCP Digestive", digestive().recurrence)

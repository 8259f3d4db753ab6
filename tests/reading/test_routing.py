"""Routing exams to reading groups by rules and the on-call rota."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from concilium.reading.rota import HolidayShift, NightShift, Rota, WeekendShift
from concilium.reading.routing import (
    ExamFacts,
    NoRoute,
    RoutingRule,
    RoutingTable,
    explain_route,
    route,
)

PARIS = ZoneInfo("Europe/Paris")
ROTA = Rota(
    (NightShift("TELERAD-NUIT"), WeekendShift("TELERAD-WE"), HolidayShift("TELERAD-WE")),
    holidays=frozenset({date(2025, 5, 1)}),
)
TABLE = RoutingTable(
    rules=(
        RoutingRule("nord-ct-nuit", "CHU-NORD", "TELERAD-NUIT", modality="CT"),
        RoutingRule("nord-we", "CHU-NORD", "TELERAD-WE"),
        RoutingRule("sud-nuit", "CH-SUD", "TELERAD-NUIT"),
    ),
    local_groups={"CHU-NORD": "RADIO-NORD", "CH-SUD": "RADIO-SUD"},
)


def paris(*args: int) -> datetime:
    return datetime(*args, tzinfo=PARIS)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("exam", "at", "group"),
    [
        (ExamFacts("CHU-NORD", "CT"), paris(2025, 3, 11, 14, 0), "RADIO-NORD"),
        (ExamFacts("CHU-NORD", "CT"), paris(2025, 3, 11, 23, 0), "TELERAD-NUIT"),
        (ExamFacts("CHU-NORD", "CT"), paris(2025, 3, 12, 0, 0), "TELERAD-NUIT"),
        (ExamFacts("CHU-NORD", "ct"), paris(2025, 3, 12, 3, 0), "TELERAD-NUIT"),
        (ExamFacts("CHU-NORD", "MR"), paris(2025, 3, 11, 23, 0), "RADIO-NORD"),
        (ExamFacts("CHU-NORD", None), paris(2025, 3, 11, 23, 0), "RADIO-NORD"),
        (ExamFacts("CHU-NORD", "MR"), paris(2025, 3, 15, 14, 0), "TELERAD-WE"),
        (ExamFacts("CHU-NORD", "MR"), paris(2025, 5, 1, 14, 0), "TELERAD-WE"),
        (ExamFacts("CHU-NORD", "MR"), paris(2025, 5, 2, 14, 0), "RADIO-NORD"),
        (ExamFacts("CH-SUD", "MR"), paris(2025, 3, 11, 23, 0), "TELERAD-NUIT"),
        (ExamFacts("CH-SUD", "MR"), paris(2025, 3, 15, 14, 0), "RADIO-SUD"),
    ],
)
def test_exams_follow_the_rules_while_their_group_is_on_call(
    exam: ExamFacts, at: datetime, group: str
) -> None:
    assert route(exam, TABLE, ROTA, at) == group


def test_the_night_of_the_march_change_routes_by_real_time() -> None:
    # On 30 March 2025 the 13-hour night ends at 08:30 summer time (06:30 UTC).
    exam = ExamFacts("CH-SUD", "CT")

    assert route(exam, TABLE, ROTA, paris(2025, 3, 30, 7, 45)) == "TELERAD-NUIT"
    assert route(exam, TABLE, ROTA, paris(2025, 3, 30, 8, 45)) == "RADIO-SUD"


def test_explain_names_the_rule_and_the_groups_on_call() -> None:
    decision = explain_route(ExamFacts("CHU-NORD", "CT"), TABLE, ROTA, paris(2025, 3, 15, 23))

    # Saturday night: the weekend and night groups are both on call; the CT night rule
    # comes first in the table.
    assert decision.on_call == ("TELERAD-NUIT", "TELERAD-WE")
    assert decision.rule is not None and decision.rule.name == "nord-ct-nuit"
    assert decision.group == "TELERAD-NUIT"
    assert "nord-ct-nuit" in decision.reason


def test_the_lowest_priority_number_wins_whatever_the_order() -> None:
    table = RoutingTable(
        rules=(
            RoutingRule("late", "CHU-NORD", "TELERAD-NUIT", priority=50),
            RoutingRule("early", "CHU-NORD", "TELERAD-WE", priority=10),
        ),
        local_groups={},
    )

    decision = explain_route(ExamFacts("CHU-NORD"), table, ROTA, paris(2025, 3, 15, 23))

    assert decision.rule is not None and decision.rule.name == "early"


def test_a_rule_not_tied_to_the_rota_applies_at_any_time() -> None:
    table = RoutingTable(
        rules=(RoutingRule("irm", "CH-SUD", "NEURO", modality="MR", on_call_only=False),),
        local_groups={"CH-SUD": "RADIO-SUD"},
    )

    assert route(ExamFacts("CH-SUD", "MR"), table, ROTA, paris(2025, 3, 11, 10)) == "NEURO"
    assert route(ExamFacts("CH-SUD", "CT"), table, ROTA, paris(2025, 3, 11, 10)) == "RADIO-SUD"


def test_the_local_group_decision_has_no_rule() -> None:
    decision = explain_route(ExamFacts("CHU-NORD", "CT"), TABLE, ROTA, paris(2025, 3, 11, 14))

    assert decision.rule is None
    assert decision.on_call == ()
    assert "local group" in decision.reason


def test_a_site_without_rule_or_local_group_has_no_route() -> None:
    with pytest.raises(NoRoute):
        route(ExamFacts("CLINIQUE-EST", "CT"), TABLE, ROTA, paris(2025, 3, 11, 14))


def test_bad_tables_and_naive_instants_are_refused() -> None:
    with pytest.raises(ValueError, match="unique"):
        RoutingTable((RoutingRule("a", "S", "G"), RoutingRule("a", "S", "H")), {})
    with pytest.raises(ValueError, match="group"):
        RoutingRule("a", "S", "")
    with pytest.raises(ValueError, match="aware"):
        route(ExamFacts("CHU-NORD"), TABLE, ROTA, datetime(2025, 3, 11, 23))

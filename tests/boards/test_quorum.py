"""Quorum of a multidisciplinary meeting: distinct specialties, one physician one specialty,
board requirements, and attendance over time."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta

import pytest

from concilium.boards.quorum import (
    HAEMATOLOGY,
    SOLID_TUMOUR,
    Attendance,
    QuorumRules,
    assess,
    present_throughout,
    quorum_at,
    quorum_for_case,
)

THREE = QuorumRules()
T0 = datetime(2026, 3, 27, 13, 0, tzinfo=UTC)  # 14:00 in Paris


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def fs(*codes: str) -> frozenset[str]:
    return frozenset(codes)


def test_three_distinct_specialties_make_the_default_quorum():
    result = assess(THREE, {"p1": fs("surgery"), "p2": fs("oncology"), "p3": fs("radiology")})
    assert result.met
    assert result.specialties == fs("surgery", "oncology", "radiology")
    assert result.counted == {"p1": "surgery", "p2": "oncology", "p3": "radiology"}
    assert result.missing_required == ()
    assert result.more_needed == 0


def test_two_physicians_of_one_specialty_count_once():
    result = assess(THREE, {"p1": fs("radiology"), "p2": fs("radiology"), "p3": fs("surgery")})
    assert not result.met
    assert result.specialties == fs("radiology", "surgery")
    assert result.more_needed == 1
    assert result.uncounted == fs("p2")  # the same specialty, so the second one waits


def test_a_physician_holding_several_specialties_counts_for_one():
    result = assess(THREE, {"p1": fs("surgery", "oncology", "radiology")})
    assert not result.met
    assert len(result.counted) == 1
    assert result.more_needed == 2


def test_multi_specialty_physicians_are_assigned_to_cover_the_most_specialties():
    # Taken in order, p1 would count as oncology and leave p2 with nothing to count for;
    # the matching makes p1 the radiotherapist so both count.
    members = {"p1": fs("oncology", "radiotherapy"), "p2": fs("oncology"), "p3": fs("surgery")}
    result = assess(THREE, members)
    assert result.met
    assert result.counted == {"p1": "radiotherapy", "p2": "oncology", "p3": "surgery"}


def test_a_longer_chain_of_reassignments():
    members = {
        "a": fs("anatomy", "biology"),
        "b": fs("biology", "chemistry"),
        "c": fs("chemistry", "dermatology"),
        "d": fs("anatomy"),
    }
    result = assess(QuorumRules(min_specialties=4), members)
    assert result.met
    assert result.counted == {"d": "anatomy", "a": "biology", "b": "chemistry", "c": "dermatology"}


def test_solid_tumour_board_names_the_missing_specialty():
    members = {"p1": fs("surgery"), "p2": fs("oncology"), "p3": fs("pathology")}
    result = assess(SOLID_TUMOUR, members)
    assert not result.met
    assert result.specialties == fs("surgery", "oncology", "pathology")  # three, but...
    assert result.missing_required == (fs("radiology"),)
    assert result.more_needed == 1
    assert assess(SOLID_TUMOUR, {**members, "p4": fs("radiology")}).met


def test_a_requirement_may_accept_several_specialties():
    members = {"p1": fs("surgery"), "p2": fs("radiotherapy"), "p3": fs("radiology")}
    assert assess(SOLID_TUMOUR, members).met


def test_requirements_come_first_when_choosing_a_physicians_specialty():
    # p1 could count as gastroenterology or surgery: only surgery meets the board.
    members = {"p1": fs("gastroenterology", "surgery"), "p2": fs("oncology"), "p3": fs("radiology")}
    result = assess(SOLID_TUMOUR, members)
    assert result.met
    assert result.counted["p1"] == "surgery"


def test_one_physician_cannot_meet_two_requirements():
    result = assess(SOLID_TUMOUR, {"p1": fs("surgery", "radiology"), "p2": fs("oncology")})
    assert not result.met
    assert result.missing_required == (fs("radiology"),)
    assert result.more_needed == 1


def test_missing_requirements_and_missing_numbers_add_up():
    result = assess(QuorumRules(min_specialties=5, required=SOLID_TUMOUR.required), {})
    assert result.missing_required == SOLID_TUMOUR.required
    assert result.more_needed == 5
    result = assess(SOLID_TUMOUR, {"p1": fs("pathology"), "p2": fs("dermatology")})
    assert len(result.missing_required) == 3
    assert result.more_needed == 3  # three required specialties make the three as well


def test_haematology_needs_a_pathologist():
    members = {"p1": fs("haematology"), "p2": fs("radiology"), "p3": fs("oncology")}
    result = assess(HAEMATOLOGY, members)
    assert result.missing_required == (fs("pathology"),)
    assert assess(HAEMATOLOGY, {**members, "p4": fs("pathology")}).met


def test_staff_without_a_specialty_are_present_but_never_counted():
    members = {"p1": fs("surgery"), "p2": fs("oncology"), "nurse": fs()}
    result = assess(THREE, members)
    assert result.present == fs("p1", "p2", "nurse")
    assert "nurse" in result.uncounted
    assert not result.met


def test_requiring_adds_a_cases_specialties_without_double_counting():
    rules = SOLID_TUMOUR.requiring({"radiotherapy", "nuclear-medicine"})
    assert set(rules.required) == {
        fs("surgery"),
        fs("radiology"),
        fs("radiotherapy"),
        fs("nuclear-medicine"),
    }
    # A radiotherapist now meets what "oncology or radiotherapy" asked for.
    members = {
        "p1": fs("surgery"),
        "p2": fs("radiology"),
        "p3": fs("radiotherapy"),
        "p4": fs("nuclear-medicine"),
    }
    assert assess(rules, members).met
    assert not assess(rules, {k: v for k, v in members.items() if k != "p4"}).met
    assert SOLID_TUMOUR.requiring(()) == SOLID_TUMOUR


def brute_force(rules: QuorumRules, members: dict[str, frozenset[str]]) -> tuple[int, int]:
    """(requirements met, distinct specialties) of the best assignment, by trying them all."""
    people = sorted(members)
    best = (0, 0)
    for choice in itertools.product(*[[None, *sorted(members[p])] for p in people]):
        chosen = [s for s in choice if s is not None]
        if len(set(chosen)) != len(chosen):
            continue
        covered = set(chosen)
        met = sum(1 for r in rules.required if r & covered)
        best = max(best, (met, len(covered)))
    return best


def test_the_assignment_is_optimal_against_an_exhaustive_search():
    generator = random.Random(20260327)
    codes = ["surgery", "oncology", "radiotherapy", "radiology", "pathology", "nuclear"]
    for _ in range(300):
        members = {
            f"p{i}": frozenset(generator.sample(codes, generator.randint(0, 3)))
            for i in range(generator.randint(0, 6))
        }
        rules = generator.choice([THREE, SOLID_TUMOUR, QuorumRules(2, (fs("pathology"),))])
        result = assess(rules, members)
        covered = result.specialties
        assert len(set(result.counted.values())) == len(result.counted)
        assert all(result.counted[p] in members[p] for p in result.counted)
        met = sum(1 for r in rules.required if r & covered)
        assert (met, len(covered)) == brute_force(rules, members), members


# -- attendance over time ----------------------------------------------------------------


def board_meeting() -> list[Attendance]:
    return [
        Attendance("surgeon", fs("surgery"), at(0)),
        Attendance("oncologist", fs("oncology"), at(0), at(40)),  # leaves at 14:40
        Attendance("radiologist", fs("radiology"), at(0), at(20)),  # steps out 14:20...
        Attendance("radiologist", fs("radiology"), at(30)),  # ...and is back at 14:30
        Attendance("late-pathologist", fs("pathology"), at(15)),
        Attendance("coordinator", fs(), at(0)),
    ]


def test_quorum_at_an_instant_follows_arrivals_and_departures():
    meeting = board_meeting()
    assert quorum_at(SOLID_TUMOUR, meeting, at(10)).met
    gone = quorum_at(SOLID_TUMOUR, meeting, at(25))
    assert not gone.met and gone.missing_required == (fs("radiology"),)
    assert quorum_at(SOLID_TUMOUR, meeting, at(35)).met
    after = quorum_at(SOLID_TUMOUR, meeting, at(45))
    assert after.missing_required == (fs("oncology", "radiotherapy"),)
    assert after.specialties == fs("surgery", "radiology", "pathology")


def test_a_case_counts_only_those_present_through_its_whole_discussion():
    meeting = board_meeting()
    # 14:10-14:25: the radiologist stepped out during the discussion.
    result = quorum_for_case(SOLID_TUMOUR, meeting, at(10), at(25))
    assert result.missing_required == (fs("radiology"),)
    # 14:12-14:18: the pathologist arrived after the discussion began; still met without.
    result = quorum_for_case(SOLID_TUMOUR, meeting, at(12), at(18))
    assert result.met and "late-pathologist" not in result.present
    # 14:31-14:39: the radiologist is back for the whole case.
    assert quorum_for_case(SOLID_TUMOUR, meeting, at(31), at(39)).met


def test_leaving_at_the_decision_instant_is_leaving_before_it():
    meeting = board_meeting()
    result = quorum_for_case(SOLID_TUMOUR, meeting, at(30), at(40))
    assert "oncologist" not in result.present
    assert not result.met
    assert quorum_for_case(SOLID_TUMOUR, meeting, at(30), at(39)).met


def test_arriving_at_the_discussion_start_counts():
    assert "late-pathologist" in quorum_for_case(THREE, board_meeting(), at(15), at(20)).present


def test_rejoining_at_the_instant_one_left_is_no_absence():
    records = [
        Attendance("p1", fs("surgery"), at(0), at(10)),
        Attendance("p1", fs("surgery"), at(10), at(20)),
        Attendance("p1", fs("surgery"), at(15)),
    ]
    assert present_throughout(records, at(5), at(50)) == {"p1": fs("surgery")}


def test_attendance_records_are_checked():
    with pytest.raises(ValueError, match="joined must be a datetime with a time zone"):
        Attendance("p1", fs("surgery"), datetime(2026, 3, 27, 14))
    with pytest.raises(ValueError, match=r"p1 left .* before joining"):
        Attendance("p1", fs("surgery"), at(10), at(10))
    with pytest.raises(ValueError, match="specialty codes are lower-case"):
        Attendance("p1", fs("Radiology"), at(0))
    with pytest.raises(ValueError, match="person must be a non-empty identifier"):
        Attendance("", fs("surgery"), at(0))
    records = [Attendance("p1", fs("surgery"), at(0)), Attendance("p1", fs("oncology"), at(5))]
    with pytest.raises(ValueError, match="p1 has different specialties"):
        quorum_at(THREE, records, at(6))
    with pytest.raises(ValueError, match=r"end .* is before start"):
        quorum_for_case(THREE, board_meeting(), at(10), at(5))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_specialties": 0}, "min_specialties must be 1 to 30"),
        ({"min_specialties": True}, "min_specialties must be 1 to 30"),
        ({"required": (fs(),)}, "non-empty frozenset"),
        ({"required": ({"surgery"},)}, "non-empty frozenset"),
        ({"required": [fs("surgery")]}, "required must be a tuple"),
        ({"required": (fs("Surgery"),)}, "specialty codes are lower-case"),
        (
            {"required": (fs("oncology", "radiotherapy"), fs("radiotherapy"))},
            "share 'radiotherapy': make them disjoint",
        ),
    ],
)
def test_inconsistent_rules_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        QuorumRules(**kwargs)

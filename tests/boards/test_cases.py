"""The case state machine and the completeness check, without a server."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from concilium.boards.cases import (
    ACCEPTED_BY,
    FINAL_STATUSES,
    LISTED_STATUSES,
    BoardCharter,
    Case,
    CaseFacts,
    CaseStatus,
    CaseTransitionError,
    Decide,
    Discuss,
    Missing,
    Postpone,
    PutOnAgenda,
    RecordWithoutDiscussion,
    SendBack,
    Submit,
    Withdraw,
    advance,
    event_name,
    missing,
)
from concilium.boards.quorum import SOLID_TUMOUR, assess

S = CaseStatus
NOW = datetime(2026, 3, 27, 13, 0, tzinfo=UTC)

COMPLETE = CaseFacts(
    patient="patient-1",
    non_opposition_recorded=True,
    question="Chirurgie d'emblée ou traitement néoadjuvant ?",
    diagnosis="Adénocarcinome du rectum",
    histology="Adénocarcinome lieberkühnien",
    stage="cT3N1M0",
    performance_status=1,
    history="Diabète de type 2",
    current_treatment="Aucun",
    documents=("pathology_report", "imaging_report"),
)
QUORUM = assess(
    SOLID_TUMOUR,
    {"a": frozenset({"surgery"}), "b": frozenset({"oncology"}), "c": frozenset({"radiology"})},
)
NO_QUORUM = assess(SOLID_TUMOUR, {"a": frozenset({"surgery"}), "b": frozenset({"oncology"})})
RECORDING = BoardCharter(records_without_discussion=True)


def case_in(status: CaseStatus) -> Case:
    return Case(status, "meeting-1" if status in LISTED_STATUSES else None)


def test_a_case_goes_from_draft_to_decided():
    history = []
    case = Case()
    for event in (Submit(COMPLETE), PutOnAgenda("meeting-1"), Discuss(), Decide(QUORUM)):
        step = advance(case, event, NOW + timedelta(minutes=len(history)))
        history.append(step)
        case = step.case
    assert [step.case.status for step in history] == [
        S.SUBMITTED,
        S.ON_AGENDA,
        S.DISCUSSED,
        S.DECIDED,
    ]
    assert [step.previous for step in history] == [S.DRAFT, S.SUBMITTED, S.ON_AGENDA, S.DISCUSSED]
    assert [step.event for step in history] == ["submit", "put_on_agenda", "discuss", "decide"]
    assert case == Case(S.DECIDED, "meeting-1", 0)
    assert history[1].detail == "meeting-1"
    assert history[3].at == NOW + timedelta(minutes=3)


def test_an_incomplete_case_cannot_be_submitted_and_is_left_as_it_was():
    case = Case()
    facts = replace(COMPLETE, non_opposition_recorded=False, stage="  ")
    with pytest.raises(CaseTransitionError) as refused:
        advance(case, Submit(facts), NOW)
    assert refused.value.missing == ("non_opposition", "summary.stage")
    assert str(refused.value) == "the case is incomplete: non_opposition, summary.stage"
    assert refused.value.status is S.DRAFT and refused.value.event == "submit"
    assert case == Case()


def test_the_completeness_check_names_every_gap_in_a_fixed_order():
    assert missing(COMPLETE) == ()
    assert missing(CaseFacts()) == (
        "patient",
        "non_opposition",
        "question",
        "summary.diagnosis",
        "summary.histology",
        "summary.stage",
        "summary.performance_status",
        "summary.history",
        "summary.current_treatment",
        "documents",
    )
    assert missing(CaseFacts()) == tuple(code.value for code in Missing)


def test_a_performance_status_of_zero_is_given():
    assert missing(replace(COMPLETE, performance_status=0)) == ()
    assert missing(replace(COMPLETE, performance_status=None)) == ("summary.performance_status",)


def test_the_board_may_require_document_kinds():
    required = frozenset({"pathology_report", "endoscopy_report"})
    assert missing(COMPLETE, required) == ("document.endoscopy_report",)
    with pytest.raises(CaseTransitionError, match=r"document\.endoscopy_report"):
        advance(Case(), Submit(COMPLETE, required), NOW)


def test_case_facts_are_checked():
    with pytest.raises(ValueError, match="WHO/ECOG 0 to 4"):
        CaseFacts(performance_status=5)
    with pytest.raises(ValueError, match="documents must be a tuple of kinds"):
        CaseFacts(documents=("",))


def test_postponed_to_the_next_meeting_the_case_is_relisted_at_once():
    on_agenda = Case(S.ON_AGENDA, "meeting-1")
    step = advance(on_agenda, Postpone("IRM en attente", "meeting-2"), NOW)
    assert step.case == Case(S.ON_AGENDA, "meeting-2", 1)
    assert step.event == "postpone" and step.detail == "IRM en attente"
    again = advance(Case(S.DISCUSSED, "meeting-2", 1), Postpone("quorum", "meeting-3"), NOW)
    assert again.case == Case(S.ON_AGENDA, "meeting-3", 2)


def test_postponed_with_no_meeting_scheduled_the_case_waits_to_be_listed():
    step = advance(Case(S.ON_AGENDA, "meeting-1"), Postpone("plus de séance avant l'été"), NOW)
    assert step.case == Case(S.POSTPONED, None, 1)
    listed = advance(step.case, PutOnAgenda("meeting-9"), NOW)
    assert listed.case == Case(S.ON_AGENDA, "meeting-9", 1)


def test_a_case_cannot_be_postponed_onto_the_same_meeting():
    with pytest.raises(CaseTransitionError, match="postponed from meeting meeting-1 cannot go"):
        advance(Case(S.ON_AGENDA, "meeting-1"), Postpone("no time", "meeting-1"), NOW)


def test_a_decision_needs_the_quorum():
    with pytest.raises(CaseTransitionError) as refused:
        advance(Case(S.DISCUSSED, "meeting-1"), Decide(NO_QUORUM), NOW)
    assert str(refused.value) == (
        "the quorum is not met: 1 more specialty needed, including radiology"
    )


def test_recording_without_discussion_needs_the_charter():
    case = Case(S.ON_AGENDA, "meeting-1")
    with pytest.raises(CaseTransitionError, match="charter does not allow recording"):
        advance(case, RecordWithoutDiscussion("Thésaurus national de cancérologie digestive"), NOW)
    step = advance(case, RecordWithoutDiscussion("TNCD, chapitre 5"), NOW, RECORDING)
    assert step.case == Case(S.RECORDED, "meeting-1")
    assert step.detail == "TNCD, chapitre 5"


def test_sent_back_the_case_returns_to_its_author_off_the_agenda():
    step = advance(Case(S.ON_AGENDA, "meeting-1"), SendBack("compte rendu opératoire absent"), NOW)
    assert step.case == Case(S.DRAFT)


def test_events_must_carry_their_text():
    with pytest.raises(CaseTransitionError, match="a reason must be given"):
        advance(Case(S.SUBMITTED), Withdraw("  "), NOW)
    with pytest.raises(CaseTransitionError, match="a meeting must be given"):
        advance(Case(S.SUBMITTED), PutOnAgenda(""), NOW)
    with pytest.raises(CaseTransitionError, match="a guideline must be given"):
        advance(Case(S.ON_AGENDA, "m"), RecordWithoutDiscussion(""), NOW, RECORDING)
    with pytest.raises(ValueError, match="at must be a datetime with a time zone"):
        advance(Case(), Submit(COMPLETE), datetime(2026, 3, 27, 14))


def sample_events():
    return [
        Submit(COMPLETE),
        SendBack("incomplet"),
        PutOnAgenda("meeting-2"),
        Discuss(),
        Decide(QUORUM),
        Postpone("report", "meeting-2"),
        RecordWithoutDiscussion("référentiel"),
        Withdraw("décès"),
    ]


@pytest.mark.parametrize("status", list(CaseStatus))
@pytest.mark.parametrize("event", sample_events(), ids=event_name)
def test_every_state_accepts_exactly_the_events_of_the_table(status, event):
    case = case_in(status)
    if status in ACCEPTED_BY[type(event)]:
        step = advance(case, event, NOW, RECORDING)
        assert step.previous is status
        assert step.case.status is not status or event_name(event) == "postpone"
    else:
        with pytest.raises(CaseTransitionError) as refused:
            advance(case, event, NOW, RECORDING)
        name = event_name(event).replace("_", " ")
        assert str(refused.value).startswith(f"cannot {name} a case that is {status.value} (")
        assert refused.value.status is status


def test_final_states_accept_nothing_and_anything_else_can_be_withdrawn():
    for status in CaseStatus:
        accepting = {kind for kind, states in ACCEPTED_BY.items() if status in states}
        assert (not accepting) == (status in FINAL_STATUSES)
        assert (Withdraw in accepting) == (status not in FINAL_STATUSES)


def test_inconsistent_cases_are_refused():
    with pytest.raises(ValueError, match="a case on_agenda needs its meeting"):
        Case(S.ON_AGENDA)
    with pytest.raises(ValueError, match="a case draft belongs to no meeting"):
        Case(S.DRAFT, "meeting-1")
    with pytest.raises(ValueError, match="postponements must be a count"):
        Case(postponements=-1)
    with pytest.raises(ValueError, match="status must be a CaseStatus"):
        Case("draft")

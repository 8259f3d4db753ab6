"""Modality worklist matching and answers (PS3.4 K.6, C.2.2.2), without a network."""

from __future__ import annotations

import datetime as dt

import pytest
from pydicom.dataset import Dataset

from concilium.imaging import InvalidQuery
from concilium.reading.worklist import (
    InMemoryWorklist,
    WorklistFilter,
    answer,
    coarse_filter,
    find_worklist,
    item_dataset,
    matches,
)

from .worklist_items import items

DAY = dt.date(2026, 12, 12)
ITEMS = items(DAY)
BY_ID = {item.patient_id: item for item in ITEMS}


def query(step: dict[str, str] | None = None, **keys: str) -> Dataset:
    ds = Dataset()
    for keyword, value in keys.items():
        setattr(ds, keyword, value)
    if step is not None:
        item = Dataset()
        for keyword, value in step.items():
            setattr(item, keyword, value)
        ds.ScheduledProcedureStepSequence = [item]
    return ds


def found(identifier: Dataset, **options: bool) -> list[str]:
    return sorted(i.patient_id for i in ITEMS if matches(identifier, i, **options))


def test_single_value_matching_is_exact_and_case_sensitive_but_for_names():
    assert found(query(AccessionNumber="ACC0003")) == ["BR2002"]
    assert found(query(AccessionNumber="acc0003")) == []
    # Person names match without regard to case (C.2.2.2.1), trailing "^" ignored.
    assert found(query(PatientName="vivaldi^antonio^")) == ["AV35674"]
    assert found(query(PatientName="VIVALDI")) == []


def test_wildcards_and_universal_matching():
    assert found(query(PatientName="M*")) == ["BR2001", "BR2003"]
    assert found(query(PatientID="BR200?")) == ["BR2001", "BR2002", "BR2003", "BR2004", "BR2005"]
    assert found(query(PatientID="*")) == sorted(BY_ID)
    assert found(query(PatientID="")) == sorted(BY_ID)
    # Only * and ? are wildcards: brackets are characters.
    assert found(query(PatientID="BR[0-9]*")) == []


def test_an_unknown_value_matches_no_value_but_the_empty_value_key():
    # BR2004 has no birth date: it fails any birth date key (K.2.2.1.1.1)...
    assert "BR2004" not in found(query(PatientBirthDate="19000101-"))
    # ...but empty value matching (C.2.2.2.7) finds it.
    assert found(query(PatientBirthDate='""')) == ["BR2004"]


def test_date_and_time_ranges():
    assert found(query(step={"ScheduledProcedureStepStartDate": "20261213-"})) == ["BR2004"]
    assert "BR2004" not in found(query(step={"ScheduledProcedureStepStartDate": "-20261212"}))
    assert found(query(PatientBirthDate="19500101-19601231")) == ["BR2001", "BR2003"]
    # "1400" as an upper bound takes in 14:00:59 (the bound covers its precision).
    afternoon = query(step={"ScheduledProcedureStepStartTime": "1200-1400"})
    assert found(afternoon) == ["BR2001", "BR2002", "BR2005"]
    with pytest.raises(InvalidQuery):
        matches(query(step={"ScheduledProcedureStepStartDate": "2026-12-12"}), ITEMS[0])


def test_combined_date_and_time_range_when_negotiated():
    overnight = query(
        step={
            "ScheduledProcedureStepStartDate": "20261212-20261213",
            "ScheduledProcedureStepStartTime": "1300-0930",
        }
    )
    # From the 12th at 13:00 to the 13th at 09:30 (C.2.2.2.5)...
    assert found(overnight, combined_datetime=True) == ["BR2001", "BR2002", "BR2004"]
    # ...whereas apart, 13:00-09:30 is an empty range of times.
    assert found(overnight) == []


def test_list_of_uids():
    uids = "1.2.276.0.7230010.3.2.101\\1.2.276.0.7230010.3.2.105"
    assert found(query(StudyInstanceUID=uids)) == ["AV35674", "BR2004"]


def test_sequence_matching_on_the_scheduled_procedure_step():
    assert found(query(step={"ScheduledStationAETitle": "AA4"})) == ["BR2002", "BR2003"]
    assert found(query(step={"ScheduledStationAETitle": "AA4", "Modality": "MR"})) == ["BR2003"]
    assert found(query(step={})) == sorted(BY_ID)
    two_items = query(step={"Modality": "CT"})
    two_items.ScheduledProcedureStepSequence.append(Dataset())
    with pytest.raises(InvalidQuery):
        find_worklist(InMemoryWorklist({1: ITEMS}), [1], two_items)


def test_code_sequences_match_on_any_item():
    codes = Dataset()
    codes.CodeValue = "ZCT01"
    identifier = Dataset()
    identifier.RequestedProcedureCodeSequence = [codes]
    assert found(identifier) == ["AV35674", "BR2001"]


def test_fuzzy_semantic_matching_of_names_when_negotiated():
    assert found(query(PatientName="muller^helene"), fuzzy=True) == ["BR2001"]
    assert found(query(PatientName="muller^helene")) == []


def test_keys_the_item_does_not_hold_are_return_keys_only():
    identifier = query(PatientID="AV35674", MedicalAlerts="LATEX")
    assert found(identifier) == ["AV35674"]
    response = answer(identifier, BY_ID["AV35674"])
    assert "MedicalAlerts" in response and response.MedicalAlerts in (None, "")


def test_the_answer_has_exactly_the_keys_asked_for():
    identifier = query(
        step={"Modality": "", "ScheduledProcedureStepStartTime": ""},
        PatientName="",
        AdmissionID="",
        RequestedProcedureCodeSequence="",
    )
    identifier.RequestedProcedureCodeSequence = []
    response = answer(identifier, BY_ID["AV35674"])
    # The item has a non-ASCII code meaning: its character set comes too.
    assert {e.keyword for e in response} == {
        "SpecificCharacterSet",
        "PatientName",
        "RequestedProcedureCodeSequence",
        "AdmissionID",
        "ScheduledProcedureStepSequence",
    }
    assert response.AdmissionID == "ADM0001"
    # A sequence key without items is the whole sequence.
    assert response.RequestedProcedureCodeSequence[0].CodeValue == "ZCT01"
    step = response.ScheduledProcedureStepSequence[0]
    assert {e.keyword for e in step} == {"Modality", "ScheduledProcedureStepStartTime"}
    assert (step.Modality, step.ScheduledProcedureStepStartTime) == ("CT", "085607")
    # One empty item is the whole item too (K.2.2.1.2 note 4).
    whole = answer(query(step={}), BY_ID["BR2002"]).ScheduledProcedureStepSequence[0]
    assert whole.ScheduledStationAETitle == "AA4" and whole.ScheduledProcedureStepID == "SPS0003"


def test_a_sequence_the_item_does_not_hold_comes_back_empty():
    codes = Dataset()
    codes.CodeValue = ""
    identifier = Dataset()
    identifier.RequestedProcedureCodeSequence = [codes]
    response = answer(identifier, BY_ID["BR2002"])
    assert list(response.RequestedProcedureCodeSequence) == []


def test_character_set_is_the_items():
    non_ascii = answer(query(PatientID=""), BY_ID["BR2001"])
    assert non_ascii.SpecificCharacterSet == "ISO_IR 192"
    plain = answer(query(PatientID=""), BY_ID["BR2003"])
    assert "SpecificCharacterSet" not in plain
    asked = query(PatientID="", SpecificCharacterSet="ISO_IR 100")
    assert answer(asked, BY_ID["BR2003"]).SpecificCharacterSet in (None, "")
    assert answer(asked, BY_ID["BR2001"]).SpecificCharacterSet == "ISO_IR 192"


def test_item_dataset_holds_the_type_2_attributes_empty():
    ds = item_dataset(BY_ID["BR2004"])
    assert ds.PatientBirthDate == "" and ds.ReferringPhysicianName == ""
    assert list(ds.ReferencedStudySequence) == []
    assert "RequestedProcedureCodeSequence" not in ds  # Type 1C, no code given
    assert ds.ScheduledProcedureStepSequence[0].ScheduledProcedureStepStatus == "SCHEDULED"


def test_the_coarse_filter_keeps_every_match():
    identifier = query(
        step={
            "ScheduledStationAETitle": "AA2",
            "Modality": "CT\\CR",
            "ScheduledProcedureStepStartDate": "20261212-20261213",
        }
    )
    coarse = coarse_filter(identifier)
    assert coarse == WorklistFilter(("AA2",), ("CT", "CR"), DAY, DAY + dt.timedelta(days=1))
    wildcard = coarse_filter(query(step={"ScheduledStationAETitle": "AA*"}))
    assert wildcard.station_ae_titles is None
    by_accession = query(step={})
    by_accession.AccessionNumber = "ACC-1"
    assert coarse_filter(by_accession).accession_numbers == ("ACC-1",)
    by_accession.AccessionNumber = "ACC*"
    assert coarse_filter(by_accession).accession_numbers is None
    source = InMemoryWorklist({7: ITEMS})
    candidates = list(source.candidates([7], coarse))
    assert sorted(i.patient_id for i in candidates) == ["AV35674", "BR2001", "BR2004"]
    assert list(source.candidates([8], coarse)) == []
    narrower = query(step={"Modality": "CT", "ScheduledProcedureStepStartDate": "20261212"})
    assert len(list(source.candidates([7], coarse_filter(narrower)))) == 2
    matched = find_worklist(source, [7], identifier)
    assert sorted(i.patient_id for i, _ in matched) == ["AV35674", "BR2001", "BR2004"]

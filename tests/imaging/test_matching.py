"""Attribute matching (PS3.4 C.2.2.2): single value, wildcard, list of UID, range, person
names without regard to case, and fuzzy semantic matching of names."""

from __future__ import annotations

import pytest
from pydicom.dataset import Dataset

from concilium.imaging.matching import InvalidQuery, fuzzy_name_match
from concilium.imaging.query import find
from concilium.imaging.synthetic import SyntheticStudy, generate_ct_series
from concilium.platform import audit
from concilium.platform.db import transaction
from concilium.platform.policy import Principal

from .helpers import ingest_path, reader_query, sender_at


def test_query_matching_rules(archive, world, tmp_path, runtime):
    study = SyntheticStudy(seed="q")
    for path in generate_ct_series(tmp_path / "ct", 2, study=study, rows=32, columns=32):
        ingest_path(archive, sender_at(world.metz.id), path)
    reader = Principal(user_id=99, username="r", roles={world.metz.id: frozenset({"radiologist"})})

    def query(**keys):
        identifier = Dataset()
        identifier.QueryRetrieveLevel = keys.pop("level", "STUDY")
        for keyword, value in keys.items():
            setattr(identifier, keyword, value)
        with transaction(archive.sessions) as db:
            return find(db, reader, audit.SYSTEM, identifier, now=runtime.now())

    assert len(query(PatientName="doe^jane")) == 1  # PN ignores case
    assert len(query(PatientName="D?E*")) == 1
    assert query(AccessionNumber="acc-0001") == []  # other text is case-sensitive
    assert len(query(StudyDate="20261120")) == 1
    assert query(StudyDate="20261121-") == []
    assert len(query(StudyTime="0800-0830")) == 1  # an upper bound covers its precision
    assert len(query(StudyInstanceUID=f"1.2.3\\{study.study_instance_uid}")) == 1
    assert len(query(level="IMAGE", InstanceNumber="2")) == 1
    with (
        pytest.raises(InvalidQuery),
        pytest.warns(UserWarning, match="Invalid value for VR DA"),
    ):
        query(StudyDate="2026-11-20")
    with pytest.raises(InvalidQuery):
        query(level="FRAME")


def test_accented_names_match_without_regard_to_case(archive, world, tmp_path, runtime):
    from concilium.imaging.synthetic import SyntheticPatient

    study = SyntheticStudy(seed="accents", patient=SyntheticPatient("MÜLLER^HÉLÈNE", "IPP-9"))
    (path,) = generate_ct_series(tmp_path / "ct", 1, study=study, rows=32, columns=32)
    ingest_path(archive, sender_at(world.metz.id), path)
    reader = Principal(user_id=99, username="r", roles={world.metz.id: frozenset({"radiologist"})})
    (match,) = reader_query(archive, reader, runtime, PatientName="müller^hél*")
    assert str(match.PatientName) == "MÜLLER^HÉLÈNE"
    assert match.SpecificCharacterSet == "ISO_IR 192"
    assert reader_query(archive, reader, runtime, PatientName="muller*") == []


def test_fuzzy_name_matching_rules():
    assert fuzzy_name_match("muller^zoe", "MÜLLER^ZOÉ")
    assert fuzzy_name_match("m*ller", "Müller^Zoé") is False  # wildcards cover the whole name
    assert fuzzy_name_match("m*ller*", "Müller^Zoé")
    assert not fuzzy_name_match("martin", "Müller^Zoé")
    assert not fuzzy_name_match("muller^anne", "Müller^Zoé")

"""QIDO-RS (PS3.18 10.6) as a viewer sees it: matching, fuzzy names, ranges, return keys,
paging."""

from __future__ import annotations

from .clients import uids, value


def test_qido_matches_by_keyword_or_tag_with_wildcards(metz, accented):
    uid = accented[0].StudyInstanceUID
    by_keyword = metz.search_for_studies(search_filters={"PatientID": "MTZ-QIDO-1"})
    by_tag = metz.search_for_studies(search_filters={"00100020": "MTZ-QIDO-*"})
    assert [value(s, "0020000D") for s in by_keyword] == [uid]
    assert [value(s, "0020000D") for s in by_tag] == [uid]
    assert metz.search_for_studies(search_filters={"PatientID": "MTZ-QIDO-2"}) == []
    (study,) = by_keyword
    assert value(study, "00100010") == {"Alphabetic": "MÜLLER^ZOÉ"}
    assert value(study, "00201206") == 1  # NumberOfStudyRelatedSeries
    assert value(study, "00081190").endswith(f"/dicomweb/studies/{uid}")  # RetrieveURL


def test_qido_fuzzy_matching_ignores_case_and_accents(metz, accented):
    uid = accented[0].StudyInstanceUID
    plain = {"PatientName": "muller^zoe"}
    assert metz.search_for_studies(search_filters=plain) == []
    fuzzy = metz.search_for_studies(fuzzymatching=True, search_filters=plain)
    assert [value(s, "0020000D") for s in fuzzy] == [uid]
    prefix = metz.search_for_studies(fuzzymatching=True, search_filters={"PatientName": "mull"})
    assert [value(s, "0020000D") for s in prefix] == [uid]


def test_qido_date_ranges(metz, accented):
    uid = accented[0].StudyInstanceUID
    inside = metz.search_for_studies(
        search_filters={"StudyDate": "20261101-20261130", "PatientID": "MTZ-QIDO-1"}
    )
    assert [value(s, "0020000D") for s in inside] == [uid]
    open_ended = metz.search_for_studies(
        search_filters={"StudyDate": "20261120-", "PatientID": "MTZ-QIDO-1"}
    )
    assert len(open_ended) == 1
    outside = metz.search_for_studies(
        search_filters={"StudyDate": "20250101-20250131", "PatientID": "MTZ-QIDO-1"}
    )
    assert outside == []
    times = metz.search_for_studies(
        search_filters={"StudyTime": "0800-0900", "PatientID": "MTZ-QIDO-1"}
    )
    assert len(times) == 1


def test_qido_includefield_and_all(metz, accented):
    filters = {"PatientID": "MTZ-QIDO-1"}
    (default,) = metz.search_for_studies(search_filters=filters)
    assert "00080080" not in default  # InstitutionName is not a default attribute
    (one,) = metz.search_for_studies(search_filters=filters, fields=["InstitutionName"])
    assert value(one, "00080080") == "Concilium General Hospital"
    (everything,) = metz.search_for_studies(search_filters=filters, fields=["all"])
    assert value(everything, "00080080") == "Concilium General Hospital"
    assert value(everything, "00080062") == "1.2.840.10008.5.1.4.1.1.2"  # SOPClassesInStudy


def test_qido_series_and_instances_at_every_resource(metz, accented):
    uid = accented[0].StudyInstanceUID
    series_uid = accented[0].SeriesInstanceUID
    (series,) = metz.search_for_series(study_instance_uid=uid)
    assert value(series, "0020000E") == series_uid
    assert value(series, "00080060") == "CT"
    assert value(series, "00201209") == 4  # NumberOfSeriesRelatedInstances
    everywhere = metz.search_for_series(search_filters={"PatientID": "MTZ-QIDO-1"})
    assert [value(s, "0020000E") for s in everywhere] == [series_uid]
    in_series = metz.search_for_instances(study_instance_uid=uid, series_instance_uid=series_uid)
    in_study = metz.search_for_instances(study_instance_uid=uid)
    anywhere = metz.search_for_instances(search_filters={"PatientID": "MTZ-QIDO-1"})
    expected = sorted(d.SOPInstanceUID for d in accented)
    for found in (in_series, in_study, anywhere):
        assert sorted(value(i, "00080018") for i in found) == expected
    assert value(in_series[0], "00280010") == 32  # Rows


def test_qido_limit_and_offset_page_through_results(live, metz, accented):
    uid = accented[0].StudyInstanceUID
    every = [value(i, "00080018") for i in metz.search_for_instances(study_instance_uid=uid)]
    page = metz.search_for_instances(study_instance_uid=uid, limit=2, offset=1)
    assert [value(i, "00080018") for i in page] == every[1:3]
    response = metz._session.get(
        f"{live.url}/dicomweb/studies/{uid}/instances", params={"limit": 1}
    )
    assert "additional results" in response.headers["warning"]
    assert response.headers["content-type"] == "application/dicom+json"
    last = metz._session.get(
        f"{live.url}/dicomweb/studies/{uid}/instances",
        params={"limit": 1, "offset": len(every) - 1},
    )
    assert [value(i, "00080018") for i in last.json()] == every[-1:]
    assert "warning" not in last.headers


def test_qido_refuses_an_unknown_attribute(live, metz):
    response = metz._session.get(f"{live.url}/dicomweb/studies", params={"NoSuchThing": "1"})
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"


def test_qido_uid_list_matching(metz, accented, samples):
    wanted = [accented[0].StudyInstanceUID, uids(samples["ct"])[0]]
    found = metz.search_for_studies(search_filters={"StudyInstanceUID": ",".join(wanted)})
    assert sorted(value(s, "0020000D") for s in found) == sorted(wanted)

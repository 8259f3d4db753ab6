"""Who reaches which DICOMweb resource: studies of other sites do not exist until shared,
anonymous callers are refused, and every request leaves one audit entry."""

from __future__ import annotations

import pytest
import requests
from dicomweb_client import DICOMwebClient

from .clients import ct, read, uids, value


def test_another_sites_study_is_invisible_until_shared(live, metz, briey, tmp_path):
    paths = ct(tmp_path, "metz-private", count=2, patient_id="MTZ-PRIVATE")
    metz.store_instances(read(paths))
    study, series, instance = uids(paths[0])
    assert briey.search_for_studies(search_filters={"StudyInstanceUID": study}) == []
    assert briey.search_for_instances(study_instance_uid=study) == []
    assert briey.search_for_series(search_filters={"PatientID": "MTZ-PRIVATE"}) == []
    for attempt in (
        lambda: briey.retrieve_study(study),
        lambda: briey.retrieve_instance_metadata(study, series, instance),
        lambda: briey.retrieve_instance_frames(study, series, instance, [1]),
        lambda: briey.retrieve_instance_rendered(study, series, instance),
    ):
        with pytest.raises(requests.HTTPError) as hidden:
            attempt()
        assert hidden.value.response.status_code == 404
    # Briey cannot slip an instance into the Metz study either.
    (intruder,) = read(ct(tmp_path / "x", "metz-private", count=1))
    intruder.SOPInstanceUID = intruder.file_meta.MediaStorageSOPInstanceUID = "2.25.1234567"
    with pytest.raises(requests.HTTPError) as refused:
        briey.store_instances([intruder])
    assert refused.value.response.status_code == 403

    live.share_study_with_briey(study)
    (found,) = briey.search_for_studies(search_filters={"StudyInstanceUID": study})
    assert value(found, "00100020") == "MTZ-PRIVATE"
    assert len(briey.retrieve_study(study)) == 2


def test_each_request_leaves_one_audit_entry(live, metz, tmp_path):
    paths = ct(tmp_path, "audited", count=3)
    metz.store_instances(read(paths))
    study = uids(paths[0])[0]
    queries, retrievals = live.audit_count("study.query"), live.audit_count("study.retrieve")
    metz.search_for_instances(study_instance_uid=study)
    assert live.audit_count("study.query") == queries + 1
    assert len(metz.retrieve_study(study)) == 3
    assert live.audit_count("study.retrieve") == retrievals + 1


def test_anonymous_callers_get_401(live):
    anonymous = DICOMwebClient(f"{live.url}/dicomweb")
    with pytest.raises(requests.HTTPError) as refused:
        anonymous.search_for_studies()
    assert refused.value.response.status_code == 401

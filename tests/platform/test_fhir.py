"""The shared FHIR layer, without a server: resources read and validated with the element
of each problem, OperationOutcomes, If-Match versions, the capability statement."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.patient import Patient

from concilium.platform import i18n
from concilium.platform.errors import NotFound
from concilium.platform.fhir import (
    InvalidResource,
    PreconditionFailed,
    ResourceSupport,
    UnsupportedMediaType,
    capability_statement,
    check_media_type,
    expected_version,
    operation_outcome,
    read_resource,
    weak_etag,
)
from concilium.services import LOCALE_FOLDERS


def test_a_valid_resource_is_read():
    patient = read_resource(b'{"resourceType": "Patient", "birthDate": "1985-05-23"}', Patient)
    assert patient.birthDate.isoformat() == "1985-05-23"


@pytest.mark.parametrize(
    ("body", "code", "expression"),
    [
        (b"\xff\xfe", "structure", None),
        (b"{", "structure", None),
        (b"[" * 100_000 + b"]" * 100_000, "structure", None),
        (b'"Patient"', "invalid", None),
        (b'{"resourceType": "Observation"}', "invalid", "Patient"),
        (b'{"resourceType": "Patient", "birthDate": "23/05/1985"}', "value", "Patient.birthDate"),
        (b'{"resourceType": "Patient", "name": [{"given": 3}]}', "value", "Patient.name[0].given"),
        (b'{"resourceType": "Patient", "colour": "blue"}', "structure", "Patient.colour"),
    ],
)
def test_what_is_not_a_valid_resource_is_a_400_saying_where(body, code, expression):
    i18n.load_catalogues(LOCALE_FOLDERS)  # as the process assembly does; French by default
    with pytest.raises(InvalidResource) as refused:
        read_resource(body, Patient)
    assert refused.value.status == 400
    issue = refused.value.issues[0]
    assert issue.code == code
    if expression:
        assert issue.expression == expression
    outcome = operation_outcome(refused.value)
    OperationOutcome.model_validate(outcome)
    assert outcome["issue"][0]["details"]["text"] == "Ressource invalide"
    with i18n.using_locale("en"):
        assert operation_outcome(refused.value)["issue"][0]["details"]["text"] == "Invalid resource"


def test_every_platform_error_becomes_an_outcome_with_its_code():
    outcome = operation_outcome(NotFound("no such resource"))
    assert outcome["issue"][0]["code"] == "not-found"
    assert outcome["issue"][0]["diagnostics"] == "no such resource"


def test_media_types_and_versions():
    check_media_type("application/fhir+json; charset=utf-8")
    check_media_type("application/json")
    with pytest.raises(UnsupportedMediaType):
        check_media_type("application/xml")
    assert weak_etag(3) == 'W/"3"'
    expected_version(None, 3)
    expected_version('W/"3"', 3)
    expected_version('"3"', 3)
    for stale in ('W/"2"', "3", 'W/"x"', "*"):
        with pytest.raises(PreconditionFailed):
            expected_version(stale, 3)


def test_the_capability_statement_merges_what_services_register():
    statement = capability_statement(
        [
            ResourceSupport("Patient", ("read", "create"), conditional_create=True),
            ResourceSupport("Patient", ("read", "update")),
            ResourceSupport("CarePlan", ("read",)),
        ],
        software_version="1.0",
        now=datetime(2026, 12, 7, tzinfo=UTC),
    )
    parsed = CapabilityStatement.model_validate(statement)
    resources = {r.type: r for r in parsed.rest[0].resource}
    assert [i.code for i in resources["Patient"].interaction] == ["read", "create", "update"]
    assert resources["Patient"].conditionalCreate is True
    assert resources["Patient"].versioning == "versioned-update"
    assert list(resources) == ["CarePlan", "Patient"]
    with pytest.raises(ValueError):
        ResourceSupport("patient", ("read",))

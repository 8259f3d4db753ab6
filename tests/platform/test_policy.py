"""The authorisation policy, as a pure function: no server, no database."""

from __future__ import annotations

import pytest

from concilium.imaging.actions import ImagingAction
from concilium.platform.policy import (
    PlatformAction,
    Principal,
    Rule,
    Target,
    decide,
    scopes_within,
    visible_sites,
)
from concilium.services import ACTIONS
from concilium.telesurgery.actions import TelesurgeryAction

METZ, BRIEY, NANCY = 1, 2, 3


def person(roles, **kw):
    return Principal(
        user_id=10, username="p", roles={s: frozenset(r) for s, r in roles.items()}, **kw
    )


def patient_at(*sites, shared_sites=(), shared_users=(), pid=7):
    return Target(
        kind="patient",
        id=str(pid),
        site_ids=frozenset(sites),
        patient_id=pid,
        shared_site_ids=frozenset(shared_sites),
        shared_user_ids=frozenset(shared_users),
    )


def test_anonymous_is_refused_everything():
    for action in ACTIONS:
        assert not decide(None, action, patient_at(METZ)).allowed


def test_role_at_owning_site_grants():
    d = decide(person({METZ: {"radiologist"}}), PlatformAction.PATIENT_READ, patient_at(METZ))
    assert d.allowed and d.basis == "role"


def test_same_role_at_another_site_does_not():
    assert not decide(
        person({BRIEY: {"radiologist"}}), PlatformAction.PATIENT_READ, patient_at(METZ)
    ).allowed


def test_patient_known_at_two_sites_is_readable_from_both():
    target = patient_at(METZ, BRIEY)
    assert decide(person({BRIEY: {"coordinator"}}), PlatformAction.PATIENT_READ, target).allowed


@pytest.mark.parametrize("role", ["learner", "engineer"])
def test_non_clinical_roles_never_read_patients(role):
    assert not decide(person({METZ: {role}}), PlatformAction.PATIENT_READ, patient_at(METZ)).allowed


def test_share_to_site_grants_read_not_write():
    p = person({BRIEY: {"radiologist"}})
    target = patient_at(METZ, shared_sites=[BRIEY])
    assert decide(p, PlatformAction.PATIENT_READ, target).basis == "share"
    assert not decide(p, PlatformAction.PATIENT_WRITE, target).allowed
    assert not decide(p, PlatformAction.SHARE_MANAGE, target).allowed


def test_share_to_site_needs_a_clinical_role_there():
    p = person({BRIEY: {"learner"}})
    assert not decide(
        p, PlatformAction.PATIENT_READ, patient_at(METZ, shared_sites=[BRIEY])
    ).allowed


def test_share_to_person():
    p = person({NANCY: {"specialist"}})
    assert decide(p, PlatformAction.PATIENT_READ, patient_at(METZ, shared_users=[10])).allowed
    assert not decide(p, PlatformAction.PATIENT_READ, patient_at(METZ, shared_users=[11])).allowed


def test_break_the_glass_grants_that_patient_only_and_is_marked():
    p = person({BRIEY: {"specialist"}}, emergency_patient_ids=frozenset({7}))
    d = decide(p, PlatformAction.PATIENT_READ, patient_at(METZ, pid=7))
    assert d.allowed and d.emergency
    assert not decide(p, PlatformAction.PATIENT_READ, patient_at(METZ, pid=8)).allowed
    assert not decide(p, PlatformAction.PATIENT_MERGE, patient_at(METZ, pid=7)).allowed


def test_break_the_glass_reads_and_never_writes():
    p = person({BRIEY: {"referring_physician", "specialist"}}, emergency_patient_ids=frozenset({7}))
    target = patient_at(METZ, pid=7)
    assert decide(p, PlatformAction.CONSENT_READ, target).emergency
    for action in (
        PlatformAction.PATIENT_WRITE,
        PlatformAction.CONSENT_RECORD,
        PlatformAction.SHARE_MANAGE,
        PlatformAction.PATIENT_MERGE,
    ):
        assert not decide(p, action, target).allowed, action
    # Across every service: what an emergency grant opens is read, never written.
    granted = sorted(a.value for a in ACTIONS if a.rule.via_emergency)
    assert granted and all(name.endswith(".read") for name in granted), granted


def test_token_scopes_narrow_but_never_widen():
    admin_token = person({METZ: {"admin"}}, scopes=frozenset({"admin"}))
    assert decide(
        admin_token, PlatformAction.USER_MANAGE, Target("user", site_ids=frozenset({METZ}))
    ).allowed
    assert not decide(admin_token, PlatformAction.PATIENT_READ, patient_at(METZ)).allowed
    learner_token = person({METZ: {"learner"}}, scopes=frozenset({"patients:read", "admin"}))
    assert not decide(learner_token, PlatformAction.PATIENT_READ, patient_at(METZ)).allowed
    assert not decide(
        learner_token, PlatformAction.USER_MANAGE, Target("user", site_ids=frozenset({METZ}))
    ).allowed


def test_platform_admin_administers_but_reads_no_patient():
    it = person({}, is_platform_admin=True)
    assert decide(it, PlatformAction.SITE_MANAGE).allowed
    assert decide(
        it, PlatformAction.USER_MANAGE, Target("user", site_ids=frozenset({BRIEY}))
    ).allowed
    for action in (
        PlatformAction.PATIENT_READ,
        PlatformAction.CONSENT_READ,
        PlatformAction.EMERGENCY_REQUEST,
    ):
        assert not decide(it, action, patient_at(METZ)).allowed


def test_site_admin_only_administers_own_site():
    admin = person({METZ: {"admin"}})
    assert decide(
        admin, PlatformAction.USER_MANAGE, Target("user", site_ids=frozenset({METZ}))
    ).allowed
    assert not decide(
        admin, PlatformAction.USER_MANAGE, Target("user", site_ids=frozenset({BRIEY}))
    ).allowed
    assert not decide(admin, PlatformAction.SITE_MANAGE).allowed


def account_at(*sites, owner=11, everywhere=False):
    return Target(
        "user", site_ids=frozenset(sites), owner_user_id=owner, reaches_every_site=everywhere
    )


def test_an_account_is_managed_only_by_who_administers_all_it_reaches():
    metz_admin = person({METZ: {"admin"}})
    for action in (PlatformAction.USER_MANAGE, PlatformAction.TOKEN_MANAGE):
        assert decide(metz_admin, action, account_at(METZ)).allowed
        assert not decide(metz_admin, action, account_at(METZ, BRIEY)).allowed
        # The platform administrator, also administrator at Metz, reaches every site.
        assert not decide(metz_admin, action, account_at(METZ, everywhere=True)).allowed
        assert not decide(metz_admin, action, account_at()).allowed
        both = person({METZ: {"admin"}, BRIEY: {"admin"}})
        assert decide(both, action, account_at(METZ, BRIEY)).allowed
        it = person({}, is_platform_admin=True)
        assert decide(it, action, account_at(METZ, everywhere=True)).allowed


def test_nobody_manages_their_own_rights():
    assert not decide(
        person({METZ: {"admin"}}), PlatformAction.USER_MANAGE, account_at(METZ, owner=10)
    ).allowed
    assert not decide(
        person({}, is_platform_admin=True),
        PlatformAction.USER_MANAGE,
        account_at(METZ, owner=10, everywhere=True),
    ).allowed
    # Their own tokens, yes.
    assert decide(
        person({METZ: {"learner"}}), PlatformAction.TOKEN_MANAGE, account_at(METZ, owner=10)
    ).allowed


@pytest.mark.parametrize(
    "action",
    [
        PlatformAction.PATIENT_READ,
        PlatformAction.CONSENT_READ,
        PlatformAction.PATIENT_WRITE,
        PlatformAction.CONSENT_RECORD,
        PlatformAction.SHARE_MANAGE,
        ImagingAction.STUDY_READ,
    ],
)
def test_a_site_administrator_reads_and_writes_no_patient_data(action):
    target = study_at(METZ) if action is ImagingAction.STUDY_READ else patient_at(METZ)
    assert not decide(person({METZ: {"admin"}}), action, target).allowed
    assert not decide(person({METZ: {"admin"}}, scopes=None), action, target).allowed


def test_a_site_administrator_merges_duplicate_identities():
    assert decide(person({METZ: {"admin"}}), PlatformAction.PATIENT_MERGE, patient_at(METZ)).allowed
    assert not decide(
        person({METZ: {"coordinator"}}), PlatformAction.PATIENT_MERGE, patient_at(METZ)
    ).allowed


def test_a_token_never_carries_more_than_its_user():
    coordinator = scopes_within(person({METZ: {"coordinator"}}), ACTIONS)
    assert {"patients:read", "patients:write"} <= coordinator
    assert "audit:read" not in coordinator and "metrics" not in coordinator
    it = scopes_within(person({}, is_platform_admin=True), ACTIONS)
    assert "admin" in it and "audit:read" in it
    assert not {"patients:read", "imaging:read", "live:read"} & it


def test_own_account_and_tokens_are_self_service():
    p = person({METZ: {"learner"}})
    mine = Target("token", site_ids=frozenset({METZ}), owner_user_id=10)
    theirs = Target("token", site_ids=frozenset({METZ}), owner_user_id=11)
    assert decide(p, PlatformAction.TOKEN_MANAGE, mine).basis == "self"
    assert not decide(p, PlatformAction.TOKEN_MANAGE, theirs).allowed


def test_visible_sites_for_lists_match_decisions():
    p = person({METZ: {"radiologist"}, BRIEY: {"learner"}})
    assert visible_sites(p, PlatformAction.PATIENT_READ) == frozenset({METZ})
    assert visible_sites(person({}, is_platform_admin=True), PlatformAction.USER_READ) is None
    assert (
        visible_sites(person({}, is_platform_admin=True), PlatformAction.PATIENT_READ)
        == frozenset()
    )


def test_every_action_is_named_once():
    names = [action.value for action in ACTIONS]
    assert len(names) == len(set(names))
    assert all(isinstance(action.rule, Rule) for action in ACTIONS)


def study_at(site, shared_sites=(), pid=None):
    return Target(
        kind="study",
        id="1.2.3",
        site_ids=frozenset({site}),
        patient_id=pid,
        shared_site_ids=frozenset(shared_sites),
    )


def test_study_read_follows_patient_read_roles_shares_and_emergency():
    assert decide(person({METZ: {"radiologist"}}), ImagingAction.STUDY_READ, study_at(METZ)).allowed
    assert not decide(
        person({BRIEY: {"radiologist"}}), ImagingAction.STUDY_READ, study_at(METZ)
    ).allowed
    shared = decide(
        person({BRIEY: {"radiologist"}}), ImagingAction.STUDY_READ, study_at(METZ, [BRIEY])
    )
    assert shared.basis == "share"
    assert not decide(
        person({BRIEY: {"learner"}}), ImagingAction.STUDY_READ, study_at(METZ, [BRIEY])
    ).allowed
    glass = person({NANCY: {"specialist"}}, emergency_patient_ids=frozenset({7}))
    assert decide(glass, ImagingAction.STUDY_READ, study_at(METZ, pid=7)).emergency
    assert not decide(
        person({}, is_platform_admin=True), ImagingAction.STUDY_READ, study_at(METZ)
    ).allowed


def test_study_store_needs_a_storing_role_at_the_owning_site():
    for role in ("technologist", "radiologist", "admin"):
        assert decide(person({METZ: {role}}), ImagingAction.STUDY_STORE, study_at(METZ)).allowed
    assert not decide(
        person({METZ: {"coordinator"}}), ImagingAction.STUDY_STORE, study_at(METZ)
    ).allowed
    assert not decide(
        person({BRIEY: {"technologist"}}), ImagingAction.STUDY_STORE, study_at(METZ)
    ).allowed


def test_a_dicom_node_is_limited_by_its_scopes():
    store_only = person({METZ: {"technologist"}}, scopes=frozenset({"imaging:write"}))
    assert decide(store_only, ImagingAction.STUDY_STORE, study_at(METZ)).allowed
    assert not decide(store_only, ImagingAction.STUDY_READ, study_at(METZ)).allowed
    query = person({BRIEY: {"technologist"}}, scopes=frozenset({"imaging:read"}))
    assert decide(query, ImagingAction.STUDY_READ, study_at(METZ, [BRIEY])).allowed
    assert not decide(query, PlatformAction.PATIENT_READ, patient_at(BRIEY)).allowed


def test_only_a_site_administrator_deletes_studies_and_manages_nodes():
    assert decide(person({METZ: {"admin"}}), ImagingAction.STUDY_DELETE, study_at(METZ)).allowed
    assert not decide(
        person({METZ: {"radiologist"}}), ImagingAction.STUDY_DELETE, study_at(METZ)
    ).allowed
    ae = Target("ae", site_ids=frozenset({METZ}))
    assert decide(person({METZ: {"admin"}}), ImagingAction.AE_MANAGE, ae).allowed
    assert not decide(person({BRIEY: {"admin"}}), ImagingAction.AE_MANAGE, ae).allowed


def procedure_between(console, robot, pid=7):
    return Target(
        kind="telesurgery_procedure", id="1", site_ids=frozenset({console, robot}), patient_id=pid
    )


def test_a_procedure_belongs_to_both_its_sites_and_no_other():
    procedure = procedure_between(METZ, BRIEY)
    for site in (METZ, BRIEY):
        engineer = person({site: {"engineer"}})
        assert decide(engineer, TelesurgeryAction.PROCEDURE_READ, procedure).allowed
        assert decide(engineer, TelesurgeryAction.PROCEDURE_SUPERVISE, procedure).allowed
        assert decide(engineer, TelesurgeryAction.PROCEDURE_MANAGE, procedure).allowed
    elsewhere = person({NANCY: {"engineer", "specialist", "coordinator", "admin"}})
    for action in (
        TelesurgeryAction.PROCEDURE_READ,
        TelesurgeryAction.PROCEDURE_MANAGE,
        TelesurgeryAction.PROCEDURE_START,
        TelesurgeryAction.PROCEDURE_SUPERVISE,
        TelesurgeryAction.PROCEDURE_INGEST,
    ):
        assert not decide(elsewhere, action, procedure).allowed, action


def test_only_the_surgeon_role_starts_and_only_engineers_supervise_or_report():
    procedure = procedure_between(METZ, BRIEY)
    specialist = person({METZ: {"specialist"}})
    engineer = person({METZ: {"engineer"}})
    coordinator = person({BRIEY: {"coordinator"}})
    assert decide(specialist, TelesurgeryAction.PROCEDURE_START, procedure).allowed
    assert not decide(engineer, TelesurgeryAction.PROCEDURE_START, procedure).allowed
    assert not decide(coordinator, TelesurgeryAction.PROCEDURE_SUPERVISE, procedure).allowed
    assert decide(engineer, TelesurgeryAction.PROCEDURE_INGEST, procedure).allowed
    assert not decide(specialist, TelesurgeryAction.PROCEDURE_INGEST, procedure).allowed
    admin = person({}, is_platform_admin=True)
    assert not decide(admin, TelesurgeryAction.PROCEDURE_READ, procedure).allowed


def test_a_gateway_token_reports_the_timeline_and_nothing_else():
    procedure = procedure_between(METZ, BRIEY)
    gateway = person({BRIEY: {"engineer"}}, scopes=frozenset({"telesurgery:gateway"}))
    assert decide(gateway, TelesurgeryAction.PROCEDURE_INGEST, procedure).allowed
    assert not decide(gateway, TelesurgeryAction.PROCEDURE_READ, procedure).allowed
    assert not decide(gateway, TelesurgeryAction.PROCEDURE_MANAGE, procedure).allowed
    reader = person({BRIEY: {"engineer"}}, scopes=frozenset({"telesurgery:read"}))
    assert not decide(reader, TelesurgeryAction.PROCEDURE_INGEST, procedure).allowed

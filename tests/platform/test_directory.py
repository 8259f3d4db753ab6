"""The regional directory: people found by name, hospital and specialty, never the disabled."""

from __future__ import annotations

import pytest

from concilium.platform import accounts, audit, directory
from concilium.platform.accounts import RoleGrant
from concilium.platform.db import transaction
from concilium.platform.directory import PeopleQuery
from concilium.platform.errors import InvalidInput
from concilium.platform.tables import User


def person(world, username, full_name, *roles, specialty="", profession=""):
    with transaction(world.runtime.sessions) as db:
        return accounts.create_user(
            db,
            audit.SYSTEM,
            username=username,
            full_name=full_name,
            password=None,
            roles=[RoleGrant(s.id, r) for s, r in roles],
            specialty=specialty,
            profession=profession,
        )


@pytest.fixture
def region(world):
    person(world, "hlefevre", "Hélène Lefèvre", (world.metz, "radiologist"), specialty="Radiologie")
    person(
        world,
        "mdupont",
        "Marie Dupont",
        (world.briey, "specialist"),
        (world.metz, "specialist"),
        specialty="Cardiologie interventionnelle",
    )
    person(world, "pdupuis", "Paul Dupuis", (world.briey, "coordinator"), profession="Infirmier")
    gone = person(world, "adupond", "Anne Dupond", (world.metz, "radiologist"))
    with transaction(world.runtime.sessions) as db:
        db.get(User, gone.id).disabled = True
        closed = accounts.create_site(db, audit.SYSTEM, "Clinique fermée", "570000009")
        closed.active = False
        db.flush()
        accounts.create_user(
            db,
            audit.SYSTEM,
            username="jclos",
            full_name="Jean Dupré",
            password=None,
            roles=[RoleGrant(closed.id, "radiologist")],
        )
        closed_id = closed.id
    return world, closed_id


def names(world, **query):
    with world.runtime.sessions() as db:
        return [p.username for p in directory.search(db, PeopleQuery(**query))]


def test_words_in_any_order_case_and_accents(region):
    world, _closed = region
    assert names(world, text="helene") == ["hlefevre"]
    assert names(world, text="LEFÈVRE h") == ["hlefevre"]
    assert names(world, text="dupont marie") == ["mdupont"]
    assert names(world, text="pdup") == ["pdupuis"]


def test_disabled_accounts_and_closed_hospitals_are_never_found(region):
    world, closed = region
    assert names(world, text="dup") == ["mdupont", "pdupuis"]
    assert names(world, text="dup", site_id=closed) == []


def test_filters_by_hospital_and_specialty(region):
    world, _closed = region
    assert names(world, text="dup", site_id=world.metz.id) == ["mdupont"]
    assert names(world, site_id=world.briey.id) == ["mdupont", "pdupuis"]
    assert names(world, specialty="cardio") == ["mdupont"]
    # Without a specialty, the profession is what is searched.
    assert names(world, specialty="infirm") == ["pdupuis"]


def test_hospitals_listed_and_limit(region):
    world, _closed = region
    with world.runtime.sessions() as db:
        [marie] = directory.search(db, PeopleQuery(text="marie"))
    assert {h.name for h in marie.hospitals} == {"CHR Metz-Thionville", "CH Briey"}
    assert marie.specialty == "Cardiologie interventionnelle"
    assert len(names(world, limit=1)) == 1
    with pytest.raises(ValueError):
        PeopleQuery(limit=0)
    with pytest.raises(ValueError):
        PeopleQuery(limit=directory.MAX_RESULTS + 1)


def test_name_starting_with_the_words_comes_first(world):
    person(world, "zandupe", "Zoé Andupe", (world.metz, "radiologist"))
    person(world, "bdupe", "Bruno Dupe", (world.metz, "radiologist"))
    assert names(world, text="dupe") == ["bdupe", "zandupe"]


def test_named_resolves_a_user_name_or_says_who_is_missing(region):
    world, _closed = region
    with world.runtime.sessions() as db:
        assert directory.named(db, " mdupont ").full_name == "Marie Dupont"
        with pytest.raises(InvalidInput, match="adupond"):
            directory.named(db, "adupond")
        with pytest.raises(InvalidInput, match="personne"):
            directory.named(db, "personne")

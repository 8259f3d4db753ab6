"""``concilium boards``, as an administrator uses it, in French by default."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from concilium.cli import main
from concilium.platform import accounts, audit
from concilium.platform.accounts import RoleGrant
from concilium.platform.db import transaction


@pytest.fixture
def run(runtime, settings, monkeypatch):
    monkeypatch.setenv("CONCILIUM_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("CONCILIUM_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("CONCILIUM_LANG", "fr")
    runner = CliRunner()

    def invoke(*args: str, code: int = 0):
        result = runner.invoke(main, list(args), catch_exceptions=False)
        assert result.exit_code == code, result.output
        return result.output

    return invoke


def test_create_a_board_name_its_members_and_generate_its_meetings(run, runtime):
    with transaction(runtime.sessions) as db:
        site = accounts.create_site(db, audit.SYSTEM, "CHU Rennes", "350005179")
        accounts.create_user(
            db,
            audit.SYSTEM,
            username="dr-path",
            full_name="Dr Path",
            password="correct-horse-42",
            roles=[RoleGrant(site.id, "specialist")],
        )
    created = run(
        "boards", "create", "rcp-hemato", "--name", "RCP d'hématologie", "--type",
        "haematology", "--site", "350005179", "--weekday", "friday", "--at", "14:00",
        "--on-holiday", "keep",
    )  # fmt: skip
    assert "RCP rcp-hemato créée à CHU Rennes" in created
    listed = run("boards", "list")
    assert "rcp-hemato\t" in listed and "friday 14:00 Europe/Paris" in listed
    assert "min 3\thaematology, pathology" in listed
    added = run(
        "boards", "member", "add", "rcp-hemato", "dr-path", "--specialty", "pathology",
        "--role", "facilitator",
    )  # fmt: skip
    assert "dr-path est membre de rcp-hemato" in added
    first = run("boards", "meetings", "generate", "rcp-hemato", "--weeks", "3")
    assert "3 ajoutées, 0 déplacées, 0 annulées ; 3 réunions prévues" in first
    again = run("boards", "meetings", "generate", "rcp-hemato", "--weeks", "3")
    assert "0 ajoutées" in again
    meetings = run("boards", "meetings", "list", "rcp-hemato").splitlines()
    assert len(meetings) == 3 and all(line.startswith("rcp-hemato.") for line in meetings)
    assert all("\tplanned\t" in line for line in meetings)
    # Mistakes are said in French, and nothing is written.
    bad = run(
        "boards", "create", "Bad Code", "--name", "X", "--site", "350005179", "--weekday",
        "friday", "--at", "14:00", code=1,
    )  # fmt: skip
    assert "Le code est fait de lettres minuscules" in bad
    unknown = run("boards", "member", "add", "rcp-hemato", "nobody", "--specialty", "x", code=1)
    assert "aucun compte nobody" in unknown
    wrong = run("boards", "member", "add", "rcp-hemato", "dr-path", "--specialty", "Path!", code=1)
    assert "n'est pas un code de spécialité" in wrong
    assert run("boards", "list").count("\n") == 1


def test_the_help_is_in_french_by_default(run):
    assert "Réunions de concertation pluridisciplinaire" in run("boards", "--help")
    assert "Générer les réunions des prochaines semaines" in run("boards", "meetings", "--help")

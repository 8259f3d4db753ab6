"""The commands speak French, or English when the terminal's locale or CONCILIUM_LANG says so;
what scripts read (ids, tables, JSON, keys) is the same in every language."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from concilium.cli import main
from concilium.commands import terminal_language
from concilium.telesurgery.cli import telesurgery

UNSET = {"CONCILIUM_LANG": None, "LANGUAGE": None, "LC_ALL": None, "LC_MESSAGES": None}
FRENCH = {**UNSET, "LANG": "fr_FR.UTF-8"}
ENGLISH = {**UNSET, "LANG": "en_GB.UTF-8"}


@pytest.mark.parametrize(
    ("environ", "language"),
    [
        ({}, "fr"),
        ({"LANG": "C.UTF-8"}, "fr"),
        ({"LANG": "fr_FR.UTF-8"}, "fr"),
        ({"LANG": "en_US.UTF-8"}, "en"),
        ({"LANG": "fr_FR.UTF-8", "LC_ALL": "en_GB.UTF-8"}, "en"),
        ({"LANG": "en_GB.UTF-8", "LC_MESSAGES": "fr_FR.UTF-8"}, "fr"),
        ({"LANGUAGE": "fr:en", "LANG": "en_GB.UTF-8"}, "fr"),
        ({"LANG": "en_GB.UTF-8", "CONCILIUM_LANG": "fr"}, "fr"),
        ({"LANG": "fr_FR.UTF-8", "CONCILIUM_LANG": "en"}, "en"),
        ({"LANG": "", "LC_ALL": ""}, "fr"),
    ],
)
def test_the_language_rule(environ, language):
    assert terminal_language(environ) == language


@pytest.fixture
def run(tmp_path, monkeypatch):
    monkeypatch.setenv("CONCILIUM_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("CONCILIUM_DATABASE_URL", f"sqlite:///{tmp_path / 'var' / 'c.db'}")
    runner = CliRunner()

    def invoke(env, *args, code=0):
        result = runner.invoke(main, list(args), env=env, catch_exceptions=False)
        assert result.exit_code == code, result.output
        return result.output

    invoke(ENGLISH, "migrate")
    return invoke


def test_platform_commands_in_french_by_default_and_in_english(run):
    assert run(FRENCH, "site", "create", "--name", "CH Briey", "--finess", "540000049") == (
        "site 1 créé : CH Briey (540000049)\n"
    )
    created = run(
        ENGLISH, "site", "create", "--name", "CHR Metz-Thionville", "--finess", "570005165"
    )
    assert created == "site 2 created: CHR Metz-Thionville (570005165)\n"
    # A table is for scripts: the same in both languages.
    assert run(FRENCH, "site", "list") == run(ENGLISH, "site", "list")
    assert "1\t540000049\tCH Briey" in run(FRENCH, "site", "list")
    assert "aucun utilisateur 'personne'" in run(FRENCH, "user", "disable", "personne", code=1)
    assert "no user 'personne'" in run(ENGLISH, "user", "disable", "personne", code=1)
    assert "chaîne d'audit intacte" in run(FRENCH, "audit", "verify")
    assert "audit chain intact" in run({**FRENCH, "CONCILIUM_LANG": "en"}, "audit", "verify")


def test_imaging_commands_in_both_languages(run):
    assert run(FRENCH, "dicom", "stats") == "0 examen, 0 série, 0 instance, 0 octet\n"
    assert run(ENGLISH, "dicom", "stats") == "0 studies, 0 series, 0 instances, 0 bytes\n"
    run(FRENCH, "site", "create", "--name", "CH Briey", "--finess", "540000049")
    node = ("--host", "10.0.0.5", "--port", "104", "--site", "540000049")
    assert run(FRENCH, "dicom", "ae", "add", "BRIEY_CT", *node) == (
        "AE BRIEY_CT enregistrée pour CH Briey\n"
    )
    assert run(ENGLISH, "dicom", "ae", "add", "BRIEY_MR", *node) == (
        "AE BRIEY_MR registered for CH Briey\n"
    )
    assert run(FRENCH, "dicom", "ae", "list") == run(ENGLISH, "dicom", "ae", "list")
    assert run(FRENCH, "dicom", "ae", "tls", "BRIEY_CT", "on") == "AE BRIEY_CT est appelée en TLS\n"


def test_telesurgery_commands_in_both_languages(tmp_path):
    runner = CliRunner()
    keys = tmp_path / "keys.json"
    french = runner.invoke(
        telesurgery, ["generate-keys", "--procedure-id", "P", str(keys)], env=FRENCH
    )
    assert french.output == f"{keys} écrit\n"
    english = runner.invoke(
        telesurgery, ["generate-keys", "--procedure-id", "P", str(keys)], env=ENGLISH
    )
    assert english.output == f"wrote {keys}\n"
    classes = runner.invoke(telesurgery, ["link-classes"], env=FRENCH).output
    assert "lan: " in classes and "chien de garde" in classes and "watchdog" not in classes
    assert "watchdog" in runner.invoke(telesurgery, ["link-classes"], env=ENGLISH).output
    refused = runner.invoke(telesurgery, ["robot-simulator", "--bind", "nowhere"], env=FRENCH)
    assert refused.exit_code == 2 and "HÔTE:PORT attendu" in refused.output

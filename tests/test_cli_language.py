"""The commands speak French, or English when the terminal's locale or CONCILIUM_LANG says so;
what scripts read (ids, tables, JSON, keys) is the same in every language."""

from __future__ import annotations

import json
import re

import click
import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, text

from concilium.cli import main
from concilium.commands import Command, load_every_catalogue, terminal_language
from concilium.config import ROLES
from concilium.platform import i18n
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
        result = runner.invoke(
            main, list(args), env=env, prog_name="concilium", catch_exceptions=False
        )
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
    # A usage error shows the command's usage line in the terminal's language too.
    unfinished = ("site", "create", "--name", "CH Briey")
    assert run(FRENCH, *unfinished, code=2).startswith("Utilisation : concilium site create")
    assert run(ENGLISH, *unfinished, code=2).startswith("Usage: concilium site create")
    refused = run(FRENCH, "user", "disable", "personne", code=1)
    assert refused == "Erreur : aucun utilisateur 'personne'\n"
    assert run(ENGLISH, "user", "disable", "personne", code=1) == "Error: no user 'personne'\n"
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


def usage_error(env, *args):
    result = CliRunner().invoke(main, list(args), env=env, prog_name="concilium")
    assert result.exit_code == 2, result.output
    return result.output


def test_usage_errors_in_the_terminal_language(tmp_path):
    missing = usage_error(FRENCH, "site", "create", "--name", "CH Briey")
    assert missing == (
        "Utilisation : concilium site create [OPTIONS]\n"
        "Essayez 'concilium site create --help' pour obtenir de l'aide.\n\n"
        "Erreur : Option manquante '--finess'.\n"
    )
    assert usage_error(ENGLISH, "site", "create", "--name", "CH Briey") == (
        "Usage: concilium site create [OPTIONS]\n"
        "Try 'concilium site create --help' for help.\n\n"
        "Error: Missing option '--finess'.\n"
    )
    unknown = usage_error(FRENCH, "site", "create", "--nom", "CH Briey")
    assert unknown.endswith("Erreur : Option '--nom' inconnue. Vouliez-vous dire '--name' ?\n")
    assert usage_error(DEFAULT, "sitee").endswith(
        "Erreur : Commande 'sitee' inconnue. (Vouliez-vous dire : 'serve', 'site' ?)\n"
    )
    orbital = usage_error(FRENCH, "telesurgery", "qualify", "--link-class", "orbital")
    assert orbital.endswith(
        "Erreur : Valeur non valide pour '--link-class' : 'orbital' n'est pas l'une des "
        "valeurs 'lan', 'regional', 'intercontinental'.\n"
    )
    assert usage_error(ENGLISH, "telesurgery", "qualify", "--link-class", "orbital").endswith(
        "Error: Invalid value for '--link-class': 'orbital' is not one of 'lan', 'regional', "
        "'intercontinental'.\n"
    )
    short = usage_error(FRENCH, "telesurgery", "qualify", "--duration", "0")
    assert short.endswith(
        "Erreur : Valeur non valide pour '--duration' : 0.0 n'est pas dans l'intervalle x>=0.1.\n"
    )
    absent = tmp_path / "absent.toml"
    assert usage_error(FRENCH, "telesurgery", "qualify", "--thresholds", str(absent)).endswith(
        f"Erreur : Valeur non valide pour '--thresholds' : '{absent}' n'existe pas.\n"
    )
    extra = usage_error(FRENCH, "site", "list", "en", "trop")
    assert extra.endswith("Erreur : Arguments supplémentaires inattendus (en trop)\n")
    assert "Error" not in extra and "Try" not in extra and "Usage" not in extra


# --- help pages -----------------------------------------------------------------------------

DEFAULT = {**UNSET, "LANG": None}
"""No locale at all: French."""


def help_page(env, *args, group=main):
    result = CliRunner().invoke(
        group, [*args, "--help"], env=env, prog_name="concilium", catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())  # the same words however the lines wrap


@pytest.mark.parametrize("env", [DEFAULT, FRENCH])
def test_help_pages_are_in_french_by_default(env):
    top = help_page(env)
    assert top.startswith("Utilisation : concilium [OPTIONS] COMMAND")
    assert "Commandes: audit Le journal d'audit." in top
    assert "user Comptes et leurs rôles." in top
    assert "Afficher ce message et quitter." in top
    for english in ("Usage:", "Accounts and their roles", "Show this message", "Commands:"):
        assert english not in top
    node = help_page(env, "dicom", "ae", "add")
    assert "Enregistrer un nœud d'un établissement ; il agit pour cet établissement." in node
    assert "--store / --no-store Peut envoyer des images. [par défaut : store]" in node
    assert "--port INTEGER Port DICOM sur lequel l'archive l'appelle. [obligatoire]" in node
    for english in ("Register a node", "May send images", "default:", "required"):
        assert english not in node
    tls = help_page(env, "dicom", "ae", "tls")
    assert "Arguments: AE_TITLE Titre AE du nœud. {on|off} on : en TLS ; off : en TCP" in tls
    assert "Positional" not in tls
    qualify = help_page(env, "telesurgery", "qualify")
    assert "Mesurer une session de liaison et écrire un rapport go/no-go" in qualify
    assert "Profil réseau d'un proxy local entre les extrémités" in qualify
    assert "Measure a link session" not in qualify and "Network profile" not in qualify
    # A group lists its commands with their short help, translated too.
    assert "stats Examens, séries, instances et octets conservés par l'archive." in help_page(
        env, "dicom"
    )


def test_help_pages_in_english():
    for env in (ENGLISH, {**FRENCH, "CONCILIUM_LANG": "en"}):
        top = help_page(env)
        assert top.startswith("Usage: concilium [OPTIONS] COMMAND")
        assert "user Accounts and their roles." in top and "Show this message and exit." in top
        assert "Utilisation" not in top and "Comptes" not in top
        node = help_page(env, "dicom", "ae", "add")
        assert "Register a node of a site; it acts for that site." in node
        assert "--store / --no-store May send images. [default: store]" in node
        assert "--port INTEGER DICOM port at which the archive calls it. [required]" in node
        assert "nœud" not in node and "obligatoire" not in node
        tls = help_page(env, "dicom", "ae", "tls")
        assert "Positional arguments: AE_TITLE AE title of the node." in tls
        procedure = help_page(env, "procedure", "create", group=telesurgery)
        assert "Plan a procedure; prints its number." in procedure
        assert "Planifier" not in procedure
    assert "Planifier une intervention ; affiche son numéro." in help_page(
        FRENCH, "procedure", "create", group=telesurgery
    )


def test_the_roles_in_the_help_are_those_of_the_configuration():
    assert f"roles: {', '.join(ROLES)}." in help_page(ENGLISH, "user", "create")


def _commands(command, path=()):
    yield path, command
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            yield from _commands(sub, (*path, name))


OWN_MODULES = {
    "concilium.cli",
    "concilium.imaging.cli",
    "concilium.telesurgery.cli",
    "concilium.portal.mail_commands",
}
SAME_IN_FRENCH = {"Configuration.", "bit/s"}


def test_every_help_text_of_the_commands_is_translated():
    """Every command, option and argument says what it is for, and a help text left out of
    the catalogues (a docstring, a help= without N_) would show in English on a French
    terminal."""
    load_every_catalogue()
    seen = 0
    with i18n.using_locale("fr"):
        for path, command in _commands(main):
            if command.callback is None or command.callback.__module__ not in OWN_MODULES:
                continue
            assert isinstance(command, Command), path
            texts = [command.help] + [p.help for p in command.params]
            for text in texts:
                assert text, (path, "a command, option or argument without help")
                seen += 1
                assert text in SAME_IN_FRENCH or i18n.gettext(text) != text, (path, text)
    assert seen > 140


def test_what_audit_verify_finds_is_said_in_both_languages(run, tmp_path):
    run(FRENCH, "site", "create", "--name", "CH Briey", "--finess", "540000049")
    run(FRENCH, "site", "create", "--name", "CHR Metz-Thionville", "--finess", "570005165")
    run(FRENCH, "audit", "checkpoint")
    checkpoints = tmp_path / "var" / "audit" / "checkpoints.jsonl"
    checkpoints.write_text(re.sub(r'"seq":\d+', '"seq":1', checkpoints.read_text()))
    engine = create_engine(f"sqlite:///{tmp_path / 'var' / 'c.db'}")
    with engine.begin() as conn:
        conn.execute(text("DROP TRIGGER audit_events_no_update"))
        conn.execute(text("UPDATE audit_events SET actor = 'nobody' WHERE seq = 2"))
    engine.dispose()
    french = run(FRENCH, "audit", "verify", code=1)
    assert "entrée 2 : contenu modifié" in french
    altered = "la signature ne correspond pas : point de contrôle modifié"
    assert f"point de contrôle {checkpoints}:1 : {altered}" in french
    assert "content altered" not in french and "signature does not match" not in french
    english = run(ENGLISH, "audit", "verify", code=1)
    assert "entry 2: content altered" in english
    assert f"checkpoint {checkpoints}:1: signature does not match: checkpoint altered" in english


def test_why_a_qualification_is_no_go_is_said_in_both_languages(tmp_path):
    procedure = tmp_path / "procedure.toml"
    procedure.write_text("[qualification]\nrtt_p999_ms = 0.001\njitter_p99_ms = 100\n")
    runner = CliRunner()
    args = ["qualify", "--profile", "lan", "--duration", "0.3", "--rate", "200"]
    args += ["--bitrate", "100000", "--thresholds", str(procedure)]
    french = runner.invoke(telesurgery, [*args, "--out", str(tmp_path / "fr")], env=FRENCH)
    assert french.exit_code == 1, french.output
    assert re.search(r"- rtt_p999_ms \S+ dépasse la limite 0.001\n", french.output)
    assert "above the limit" not in french.output
    # The report keeps the reasons as written, for scripts: in English.
    kept = json.loads((tmp_path / "fr" / "qualification.json").read_text())
    assert any(
        r.startswith("rtt_p999_ms ") and "above the limit 0.001" in r for r in kept["reasons"]
    )
    english = runner.invoke(telesurgery, [*args, "--out", str(tmp_path / "en")], env=ENGLISH)
    assert english.exit_code == 1, english.output
    assert re.search(r"- rtt_p999_ms \S+ is above the limit 0.001\n", english.output)


def test_the_mail_commands_speak_the_terminal_language(run, monkeypatch):
    monkeypatch.delenv("CONCILIUM_SMTP_HOST", raising=False)
    french = run(FRENCH, "mail", "dispatch", "--once", code=1)
    assert "envoi de courriels est désactivé : renseignez CONCILIUM_SMTP_HOST" in french
    english = run(ENGLISH, "mail", "dispatch", "--once", code=1)
    assert "e-mail is off: set CONCILIUM_SMTP_HOST" in english
    assert "Courrier électronique sortant" in run(FRENCH, "mail", "--help")
    assert "Outgoing e-mail" in run(ENGLISH, "mail", "--help")

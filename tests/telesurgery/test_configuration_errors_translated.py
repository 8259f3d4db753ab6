"""The gateways' configuration errors (key files, motion limits, impairment profiles, link
classes, thresholds) are said in the current language: French for a French reader, the key
names of the configuration left as they are written in it."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from concilium.commands import load_every_catalogue
from concilium.platform import i18n
from concilium.telesurgery.cli import telesurgery
from concilium.telesurgery.impairment import ImpairmentProfile, profile
from concilium.telesurgery.limits import MotionLimits
from concilium.telesurgery.link import KeyFileError, ProcedureKeys, load_keys, write_keys
from concilium.telesurgery.qualification import QualificationThresholds
from concilium.telesurgery.safety import SafetyThresholds, resolve_link_class

FRENCH_TERMINAL = {
    "CONCILIUM_LANG": None,
    "LANGUAGE": None,
    "LC_ALL": None,
    "LC_MESSAGES": None,
    "LANG": "fr_FR.UTF-8",
}


@pytest.fixture(autouse=True)
def catalogues() -> None:
    load_every_catalogue()


def refusal(build, *args, **kwargs) -> str:
    with pytest.raises(ValueError) as info:
        build(*args, **kwargs)
    return str(info.value)


def test_configuration_errors_in_french():
    with i18n.using_locale("fr"):
        assert refusal(MotionLimits, max_rotation_deg=0) == (
            "max_rotation_deg doit être un nombre fini positif, reçu 0"
        )
        assert refusal(MotionLimits.from_mapping, {"max_jerk": 1}) == (
            "limite de mouvement inconnue : max_jerk"
        )
        assert refusal(SafetyThresholds.from_mapping, {"b": 1, "a": 2}) == (
            "seuils de sécurité inconnus : a, b"
        )
        assert refusal(SafetyThresholds, latency_warning_ms=300) == (
            "latency_warning_ms (300) doit être inférieur à latency_halt_ms (200.0)"
        )
        assert refusal(QualificationThresholds, max_loss=1.5) == (
            "max_loss est une fraction inférieure à 1, reçu 1.5"
        )
        assert refusal(profile, "mars") == (
            "profil 'mars' inconnu ; profils connus : lan, regional-500km, "
            "intercontinental-12000km, degraded"
        )
        assert refusal(ImpairmentProfile, "x", loss=2) == (
            "loss doit être une probabilité dans [0, 1], reçu 2"
        )
        assert refusal(resolve_link_class, {"link_class": "orbital"}) == (
            "classe de liaison 'orbital' inconnue ; classes connues : lan, regional, "
            "intercontinental"
        )


def test_the_same_errors_in_english():
    with i18n.using_locale("en"):
        assert refusal(MotionLimits, max_rotation_deg=0) == (
            "max_rotation_deg must be a positive finite number, got 0"
        )
        assert refusal(SafetyThresholds.from_mapping, {"b": 1}) == "unknown safety threshold: b"
        assert refusal(resolve_link_class, {"link_class": "orbital"}) == (
            "unknown link class 'orbital'; known: lan, regional, intercontinental"
        )


def test_key_file_errors_in_french(tmp_path):
    path = tmp_path / "keys.json"
    write_keys(ProcedureKeys.generate("P-1"), path)
    path.chmod(0o640)
    with i18n.using_locale("fr"), pytest.raises(KeyFileError) as info:
        load_keys(path)
    assert str(info.value) == (
        f"le fichier de clés {path} a le mode 0640 ; il doit être 0600 ou plus restrictif"
    )
    path.chmod(0o600)
    data = json.loads(path.read_text())
    data["robot_to_console"] = data["console_to_robot"]
    path.write_text(json.dumps(data))
    with i18n.using_locale("fr"), pytest.raises(KeyFileError) as info:
        load_keys(path)
    assert str(info.value) == (
        f"le fichier de clés {path} n'est pas valide : "
        "les deux sens doivent utiliser des clés différentes"
    )


def test_the_command_line_says_them_in_french_at_a_french_terminal(tmp_path):
    runner = CliRunner()
    procedure = tmp_path / "procedure.toml"
    procedure.write_text('link_class = "orbital"\n')
    result = runner.invoke(
        telesurgery, ["qualify", "--thresholds", str(procedure)], env=FRENCH_TERMINAL
    )
    assert result.exit_code == 1
    assert result.output == (
        "Erreur : classe de liaison 'orbital' inconnue ; classes connues : lan, regional, "
        "intercontinental\n"
    )
    procedure.write_text("[qualification]\nmax_loss = 0.01\nmax_gap_ms = 5\n")
    result = runner.invoke(
        telesurgery, ["qualify", "--thresholds", str(procedure)], env=FRENCH_TERMINAL
    )
    assert result.exit_code == 1
    assert result.output == "Erreur : seuil de qualification inconnu : max_gap_ms\n"
    keys = tmp_path / "keys.json"
    keys.write_text('{"procedure_id": "P-1"}')
    keys.chmod(0o600)
    result = runner.invoke(
        telesurgery,
        ["console-gateway", "--keys", str(keys), "--remote", "127.0.0.1:1"],
        env=FRENCH_TERMINAL,
    )
    assert result.exit_code == 1
    assert result.output == f"Erreur : le fichier de clés {keys} est mal formé : 'key_id'\n"
    # The English terminal reads the same refusals in English.
    result = runner.invoke(
        telesurgery,
        ["console-gateway", "--keys", str(keys), "--remote", "127.0.0.1:1"],
        env={**FRENCH_TERMINAL, "LANG": "en_GB.UTF-8"},
    )
    assert result.output == f"Error: key file {keys} is malformed: 'key_id'\n"


def test_motion_scaling_and_threshold_sections_in_french():
    from concilium.platform.errors import InvalidInput
    from concilium.telesurgery.motion import MotionScaling
    from concilium.telesurgery.procedures import effective_thresholds

    with i18n.using_locale("fr"):
        assert refusal(MotionScaling, 2.0) == "l'échelle doit être dans ]0, 1], reçu 2.0"
        with pytest.raises(InvalidInput) as info:
            effective_thresholds({"network": {}, "radio": {}})
        assert info.value.detail == "sections de seuils inconnues : network, radio"

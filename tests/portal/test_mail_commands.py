"""``concilium mail``: checking the relay's settings with a test message, and a worker
sending the outbox."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from concilium.cli import main
from concilium.config import Settings
from concilium.platform.db import transaction
from concilium.platform.mail import Mail
from concilium.platform.outbox import enqueue
from concilium.platform.runtime import Runtime
from serving import free_port
from smtp_peer import PASSWORD, USERNAME, Recorder, make_pki, smtp_server


@pytest.fixture
def relay_env(tmp_path, monkeypatch):
    pki = make_pki(tmp_path / "pki")
    port = free_port()
    for name, value in {
        "CONCILIUM_DATA_DIR": str(tmp_path / "var"),
        "CONCILIUM_SMTP_HOST": "127.0.0.1",
        "CONCILIUM_SMTP_PORT": str(port),
        "CONCILIUM_SMTP_USERNAME": USERNAME,
        "CONCILIUM_SMTP_PASSWORD": PASSWORD,
        "CONCILIUM_SMTP_CA_FILE": str(pki.ca_file),
        "CONCILIUM_MAIL_FROM": "Concilium CHR Metz <concilium@chr-metz.fr>",
        "CONCILIUM_LANG": "en",  # the commands' French is tested in test_cli_language.py
    }.items():
        monkeypatch.setenv(name, value)
    return port, pki


def test_a_test_message_goes_straight_through_the_relay(relay_env):
    port, pki = relay_env
    recorder = Recorder()
    with smtp_server(port, recorder, pki=pki, auth="PLAIN"):
        result = CliRunner().invoke(main, ["mail", "test", "--to", "it@chr-metz.fr"])
    assert result.exit_code == 0, result.output
    assert "sent to 127.0.0.1" in result.output
    [received] = recorder.received
    assert received.login == USERNAME and received.recipients == ["it@chr-metz.fr"]
    assert received.message["Subject"] == "Message d'essai de Concilium"


def test_a_wrong_password_is_reported_with_the_relays_code(relay_env, monkeypatch):
    port, pki = relay_env
    monkeypatch.setenv("CONCILIUM_SMTP_PASSWORD", "wrong")
    with smtp_server(port, Recorder(), pki=pki, auth="LOGIN"):
        result = CliRunner().invoke(main, ["mail", "test", "--to", "it@chr-metz.fr"])
    assert result.exit_code == 1
    assert "not sent: authentication refused: 535" in result.output


def test_a_worker_sends_what_is_due(tmp_path, database_url, monkeypatch):
    port, recorder = free_port(), Recorder()
    monkeypatch.setenv("CONCILIUM_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("CONCILIUM_DATABASE_URL", database_url)
    monkeypatch.setenv("CONCILIUM_LANG", "en")
    settings = Settings(data_dir=tmp_path / "var", database_url=database_url)
    runtime = Runtime.start(settings)
    try:
        with transaction(runtime.sessions) as db:
            enqueue(db, runtime, Mail("account.notice", ("a@chr-metz.fr",), "S", "T"))
    finally:
        runtime.close()
    off = CliRunner().invoke(main, ["mail", "dispatch", "--once"])
    assert off.exit_code == 1 and "e-mail is off" in off.output
    monkeypatch.setenv("CONCILIUM_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("CONCILIUM_SMTP_PORT", str(port))
    monkeypatch.setenv("CONCILIUM_SMTP_SECURITY", "none")
    monkeypatch.setenv("CONCILIUM_MAIL_FROM", "concilium@chr-metz.fr")
    with smtp_server(port, recorder):
        result = CliRunner().invoke(main, ["mail", "dispatch", "--once"])
    assert result.exit_code == 0, result.output
    assert "1 message tried" in result.output
    assert [r.recipients for r in recorder.received] == [["a@chr-metz.fr"]]

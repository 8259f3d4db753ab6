"""The ``concilium`` command, as an administrator uses it."""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from concilium.cli import main


@pytest.fixture
def run(tmp_path, database_url, monkeypatch):
    monkeypatch.setenv("CONCILIUM_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("CONCILIUM_DATABASE_URL", database_url)
    monkeypatch.setenv("CONCILIUM_LANG", "en")  # French is tested on its own
    runner = CliRunner()

    def invoke(*args, input=None, ok=True):
        result = runner.invoke(main, list(args), input=input, catch_exceptions=False)
        if ok:
            assert result.exit_code == 0, result.output
        return result

    return invoke


def test_help_lists_the_commands(run):
    out = run("--help").output
    for command in ("serve", "migrate", "user", "site", "token", "demo", "audit", "config"):
        assert command in out


def test_sites_users_tokens_and_audit(run):
    run("migrate")
    assert "created" in run("site", "create", "--name", "CH Briey", "--finess", "540000049").output
    bad = run("site", "create", "--name", "X", "--finess", "12", ok=False)
    assert bad.exit_code == 1 and "FINESS" in bad.output
    assert "CH Briey" in run("site", "list").output
    created = run(
        "user",
        "create",
        "--username",
        "marie",
        "--full-name",
        "Marie Curie",
        "--role",
        "radiologist@540000049",
        "--password",
        "radium-and-polonium-1",
        "--with-totp",
    )
    assert "otpauth://totp/Concilium:marie" in created.output
    # Without a password, the account's holder gets a set-up link to choose one.
    linked = run(
        "user",
        "create",
        "--username",
        "pierre",
        "--full-name",
        "Pierre Curie",
        "--role",
        "learner@540000049",
    )
    assert "created" in linked.output
    assert re.search(r"^https?://\S+/account/setup/\S+$", linked.output, re.MULTILINE)
    assert "Password" not in linked.output  # nothing asked, nothing chosen for them
    listing = run("user", "list").output
    assert "marie" in listing and "radiologist@" in listing
    assert "disabled" in run("user", "disable", "pierre").output
    # A token never carries more than its user: a radiologist has no use for metrics.
    beyond = run(
        "token", "create", "--user", "marie", "--name", "m", "--scope", "metrics", ok=False
    )
    assert beyond.exit_code == 1 and "no use for metrics" in beyond.output
    token = run("token", "create", "--user", "marie", "--name", "viewer", "--scope", "imaging:read")
    token_id = token.output.split()[1]
    assert token.output.strip().splitlines()[-1].startswith(f"cnc_{token_id}_")
    assert "revoked" in run("token", "revoke", token_id).output
    assert "intact" in run("audit", "verify").output


def test_audit_verify_fails_on_tampering(run, database_url, tmp_path):
    run("demo", "load")
    from sqlalchemy import create_engine

    engine = create_engine(database_url)
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("ALTER TABLE audit_events DISABLE TRIGGER USER"))
        else:
            conn.execute(text("DROP TRIGGER audit_events_no_update"))
        conn.execute(text("UPDATE audit_events SET actor = 'nobody' WHERE seq = 4"))
    engine.dispose()
    result = run("audit", "verify", ok=False)
    assert result.exit_code == 1
    assert "entry 4: content altered" in result.output


def test_audit_export_writes_fhir_and_syslog(run, tmp_path):
    run("demo", "load")
    out = tmp_path / "audit.ndjson"
    run("audit", "export", "--format", "fhir", "--output", str(out))
    lines = out.read_text().splitlines()
    assert lines and all(json.loads(line)["resourceType"] == "AuditEvent" for line in lines)
    syslog = run("audit", "export", "--format", "syslog").stdout
    assert syslog.startswith("<") and "concilium" in syslog


def test_demo_load_is_repeatable_and_prints_credentials(run):
    first = run("demo", "load").output
    second = run("demo", "load").output
    assert "admin" in first and "CH Briey" in first

    def accounts(output):
        return [line for line in output.splitlines() if "set-up link" not in line]

    def links(output):
        return re.findall(r"set-up link: (\S+)", output)

    # Same accounts, same passwords, nothing duplicated; accounts that need a second factor
    # get a fresh set-up link each time (the earlier one stops working).
    assert accounts(first) == accounts(second)
    assert len(links(first)) == len(links(second)) == 6
    assert not set(links(first)) & set(links(second))
    assert run("user", "list").output.count("\n") == 10


def test_config_show_masks_secrets(run, monkeypatch):
    monkeypatch.setenv("CONCILIUM_SECRET_KEY", "A" * 43)
    monkeypatch.setenv("CONCILIUM_DATABASE_URL", "postgresql://app:hunter2@db:5432/concilium")
    shown = json.loads(run("config", "show").output)
    assert shown["secret_key"] == "****"
    assert "hunter2" not in json.dumps(shown)
    assert shown["database_url"] == "postgresql://app:****@db:5432/concilium"


def test_config_file_and_bad_values(run, monkeypatch, tmp_path):
    toml = tmp_path / "concilium.toml"
    toml.write_text('session_idle_minutes = 15\nmfa_required_roles = ["admin"]\n')
    monkeypatch.setenv("CONCILIUM_CONFIG_FILE", str(toml))
    shown = json.loads(run("config", "show").output)
    assert shown["session_idle_minutes"] == 15 and shown["mfa_required_roles"] == ["admin"]
    monkeypatch.setenv("CONCILIUM_MFA_REQUIRED_ROLES", '["wizard"]')
    bad = run("config", "show", ok=False)
    assert bad.exit_code == 1 and "unknown roles" in bad.output


def test_a_relative_data_dir_is_made_absolute(run, monkeypatch, tmp_path):
    # Janus and ffmpeg are started with paths under the data dir: a relative one would be
    # read against their working directory, not Concilium's (as `make run`'s `./var` was).
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CONCILIUM_DATA_DIR", "var")
    shown = json.loads(run("config", "show").output)
    assert shown["data_dir"] == str(tmp_path.resolve() / "var")


def five_sites(run):
    """Five audit entries, cheaply."""
    run("migrate")
    for n in range(5):
        run("site", "create", "--name", f"CH {n}", "--finess", f"54000004{n}")


def cut_tail(database_url, keep):
    """Delete the newest entries and rewind the head, every trigger bypassed."""
    from sqlalchemy import create_engine

    engine = create_engine(database_url)
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("ALTER TABLE audit_events DISABLE TRIGGER ALL"))
            conn.execute(text("ALTER TABLE audit_head DISABLE TRIGGER ALL"))
        else:
            conn.execute(text("DROP TRIGGER audit_events_no_delete"))
            conn.execute(text("DROP TRIGGER audit_head_no_rewind"))
        conn.execute(text("DELETE FROM audit_events WHERE seq > :k"), {"k": keep})
        last = conn.execute(text("SELECT hash FROM audit_events WHERE seq = :k"), {"k": keep})
        conn.execute(
            text("UPDATE audit_head SET seq = :k, last_hash = :h"), {"k": keep, "h": last.scalar()}
        )
    engine.dispose()


def test_audit_verify_reports_a_cut_tail_from_the_checkpoints(run, database_url):
    five_sites(run)
    warned = run("audit", "verify")
    assert "no checkpoint of the chain yet" in warned.stderr
    taken = run("audit", "checkpoint").output
    seq = int(taken.split()[3])
    assert "intact" in run("audit", "verify").output
    assert "1 checkpoints agree" in run("audit", "verify").output
    cut_tail(database_url, keep=3)
    result = run("audit", "verify", ok=False)
    assert result.exit_code == 1
    assert f"attests entry {seq}" in result.stderr
    assert "the chain ends at entry 3: entries cut" in result.stderr


def test_audit_verify_reads_checkpoints_collected_by_syslog(run, database_url, tmp_path):
    from concilium.platform.audit_checkpoints import Checkpoint, to_syslog

    five_sites(run)
    run("audit", "checkpoint")
    data_dir_file = tmp_path / "var" / "audit" / "checkpoints.jsonl"
    collected = tmp_path / "collector.log"
    checkpoint = Checkpoint.from_json(data_dir_file.read_text())
    collected.write_text(to_syslog(checkpoint, "concilium-host") + "\n")
    data_dir_file.unlink()  # the data dir copy is gone with the tail
    cut_tail(database_url, keep=3)
    assert run("audit", "verify").exit_code == 0  # nothing left to compare with
    result = run("audit", "verify", "--checkpoints", str(collected), ok=False)
    assert result.exit_code == 1
    assert f"checkpoint {collected}:1: attests entry {checkpoint.seq}" in result.stderr


def test_audit_verify_reports_an_altered_checkpoint(run, tmp_path):
    five_sites(run)
    run("audit", "checkpoint")
    path = tmp_path / "var" / "audit" / "checkpoints.jsonl"
    path.write_text(re.sub(r'"seq":\d+', '"seq":2', path.read_text()))
    result = run("audit", "verify", ok=False)
    assert result.exit_code == 1
    assert f"checkpoint {path}:1: signature does not match" in result.stderr

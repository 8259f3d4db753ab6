"""``concilium hl7 node``: the senders of a site registered, listed and removed, in French
by default and in English."""

from __future__ import annotations

from click.testing import CliRunner
from sqlalchemy import select

from concilium.cli import main
from concilium.platform.db import make_engine, make_sessionmaker
from concilium.platform.tables import AuditEvent

UNSET = {"CONCILIUM_LANG": None, "LANGUAGE": None, "LC_ALL": None, "LC_MESSAGES": None}
FRENCH = {**UNSET, "LANG": "fr_FR.UTF-8"}
ENGLISH = {**UNSET, "LANG": "en_GB.UTF-8"}


def test_senders_are_added_listed_and_removed(tmp_path, monkeypatch, database_url):
    monkeypatch.setenv("CONCILIUM_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("CONCILIUM_DATABASE_URL", database_url)
    runner = CliRunner()

    def run(env: dict[str, str | None], *args: str, code: int = 0) -> str:
        result = runner.invoke(main, list(args), env=env, prog_name="concilium")
        assert result.exit_code == code, result.output
        return result.output

    run(ENGLISH, "site", "create", "--name", "CH Briey", "--finess", "540000049")
    add = ("hl7", "node", "add", "--site", "540000049")
    assert run(FRENCH, *add, "--application", "HIS", "--facility", "CHBRIEY") == (
        "Émetteur HL7 HIS de CHBRIEY enregistré pour CH Briey\n"
    )
    assert run(ENGLISH, *add, "--application", "RIS", "--facility", "CHBRIEY") == (
        "HL7 sender RIS of CHBRIEY registered for CH Briey\n"
    )
    listed = run(FRENCH, "hl7", "node", "list")
    assert listed == run(ENGLISH, "hl7", "node", "list")
    assert listed.splitlines() == [
        "HIS\tCHBRIEY\t540000049\tCH Briey",
        "RIS\tCHBRIEY\t540000049\tCH Briey",
    ]
    # The same pair twice, a bad name, an unknown site: clear refusals, nothing written.
    twice = run(ENGLISH, *add, "--application", "HIS", "--facility", "CHBRIEY", code=1)
    assert "already registered" in twice
    assert "MSH-3" in run(ENGLISH, *add, "--application", "H|S", "--facility", "X", code=1)
    unknown = ("hl7", "node", "add", "--site", "999999999", "--application", "A")
    assert "FINESS" in run(ENGLISH, *unknown, "--facility", "B", code=1)

    removed = run(FRENCH, "hl7", "node", "remove", "--application", "RIS", "--facility", "CHBRIEY")
    assert removed == "Émetteur HL7 RIS de CHBRIEY supprimé\n"
    assert run(ENGLISH, "hl7", "node", "list").splitlines() == ["HIS\tCHBRIEY\t540000049\tCH Briey"]
    gone = ("hl7", "node", "remove", "--application", "RIS", "--facility", "CHBRIEY")
    assert "no sender RIS of CHBRIEY" in run(ENGLISH, *gone, code=1)

    engine = make_engine(database_url)
    with make_sessionmaker(engine)() as db:
        actions = (
            db.execute(select(AuditEvent.action).where(AuditEvent.action.like("hl7.sender.%")))
            .scalars()
            .all()
        )
    engine.dispose()
    assert actions == ["hl7.sender.create", "hl7.sender.create", "hl7.sender.delete"]


def test_station_rules_are_added_listed_and_removed(tmp_path, monkeypatch):
    monkeypatch.setenv("CONCILIUM_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("CONCILIUM_DATABASE_URL", f"sqlite:///{tmp_path / 'var' / 'c.db'}")
    runner = CliRunner()

    def run(env: dict[str, str | None], *args: str, code: int = 0) -> str:
        result = runner.invoke(main, list(args), env=env, prog_name="concilium")
        assert result.exit_code == code, result.output
        return result.output

    run(ENGLISH, "migrate")
    run(ENGLISH, "site", "create", "--name", "CH Briey", "--finess", "540000049")
    add = ("hl7", "station", "add", "--site", "540000049")
    assert run(FRENCH, *add, "--modality", "ct", "--ae", "BRIEY_CT1") == (
        "Les étapes de CH Briey vont à BRIEY_CT1\n"
    )
    run(ENGLISH, *add, "--modality", "CT", "--procedure", "TDM-THX", "--ae", "BRIEY_CT2")
    assert "modality or a procedure code" in run(ENGLISH, *add, "--ae", "X", code=1)
    assert "already exists" in run(ENGLISH, *add, "--modality", "CT", "--ae", "Y", code=1)
    assert run(ENGLISH, "hl7", "station", "list").splitlines() == [
        "540000049\tCT\t*\tBRIEY_CT1",
        "540000049\tCT\tTDM-THX\tBRIEY_CT2",
    ]
    remove = ("hl7", "station", "remove", "--site", "540000049", "--modality", "CT")
    assert run(ENGLISH, *remove) == "Station rule removed\n"
    assert "no such station rule" in run(ENGLISH, *remove, code=1)
    assert run(ENGLISH, "hl7", "station", "list").splitlines() == [
        "540000049\tCT\tTDM-THX\tBRIEY_CT2"
    ]


def test_a_sender_gets_a_results_destination(tmp_path, monkeypatch):
    monkeypatch.setenv("CONCILIUM_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("CONCILIUM_DATABASE_URL", f"sqlite:///{tmp_path / 'var' / 'c.db'}")
    runner = CliRunner()

    def run(env: dict[str, str | None], *args: str, code: int = 0) -> str:
        result = runner.invoke(main, list(args), env=env, prog_name="concilium")
        assert result.exit_code == code, result.output
        return result.output

    run(ENGLISH, "migrate")
    run(ENGLISH, "site", "create", "--name", "CH Briey", "--finess", "540000049")
    add = ("hl7", "node", "add", "--site", "540000049", "--facility", "CHBRIEY")
    run(ENGLISH, *add, "--application", "HIS", "--results-host", "his.briey.example")
    run(ENGLISH, *add, "--application", "RIS")
    node = ("hl7", "node", "destination", "--application", "RIS", "--facility", "CHBRIEY")
    assert run(
        FRENCH, *node, "--host", "10.0.0.7", "--port", "2576", "--images-available", "oru"
    ) == ("Les résultats de RIS de CHBRIEY vont à 10.0.0.7:2576\n")
    assert "1-65535" in run(ENGLISH, *node, "--host", "10.0.0.7", "--port", "0", code=1)
    assert "sometimes" in run(
        ENGLISH, *node, "--host", "h", "--images-available", "sometimes", code=2
    )
    assert run(ENGLISH, "hl7", "node", "list").splitlines() == [
        "HIS\tCHBRIEY\t540000049\tCH Briey\this.briey.example:2575\tnone",
        "RIS\tCHBRIEY\t540000049\tCH Briey\t10.0.0.7:2576\toru",
    ]
    assert run(ENGLISH, *node, "--host", "") == "RIS of CHBRIEY receives no results\n"

"""``concilium reading``: groups, members, on-call lines and rules managed from the
terminal, in French by default; refusals clear and nothing half-written."""

from __future__ import annotations

from click.testing import CliRunner
from sqlalchemy import select

from concilium.cli import main
from concilium.platform.db import make_engine, make_sessionmaker
from concilium.reading.tables import ReadingCredential, ReadingOnCall

from .test_cli import ENGLISH, FRENCH


def test_groups_members_rota_and_rules_from_the_terminal(tmp_path, monkeypatch, database_url):
    monkeypatch.setenv("CONCILIUM_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("CONCILIUM_DATABASE_URL", database_url)
    runner = CliRunner()

    def run(env: dict[str, str | None], *args: str, code: int = 0) -> str:
        result = runner.invoke(main, list(args), env=env, prog_name="concilium")
        assert result.exit_code == code, result.output
        return result.output

    run(ENGLISH, "site", "create", "--name", "CH Briey", "--finess", "540000049")
    run(ENGLISH, "site", "create", "--name", "CHR Metz", "--finess", "570005165")
    group = ("reading", "group", "add")
    assert run(FRENCH, *group, "--name", "Radiologie Briey", "--site", "540000049", "--local") == (
        "Groupe de lecture Radiologie Briey créé pour CH Briey\n"
    )
    assert run(ENGLISH, *group, "--name", "Garde Metz", "--site", "570005165") == (
        "Reading group Garde Metz created for CHR Metz\n"
    )
    second_local = run(ENGLISH, *group, "--name", "B2", "--site", "540000049", "--local", code=1)
    assert "already has a local reading group" in second_local
    assert run(ENGLISH, "reading", "group", "list").splitlines() == [
        "Garde Metz\t570005165",
        "Radiologie Briey\t540000049\tlocal",
    ]

    run(
        ENGLISH,
        "user",
        "create",
        "--username",
        "dr.martin",
        "--full-name",
        "Dr Martin",
        "--role",
        "radiologist@570005165",
        "--password",
        "correct horse battery staple 42",
    )
    member = ("reading", "member", "add", "--group", "Garde Metz", "--user", "dr.martin")
    assert run(FRENCH, *member, "--site", "540000049") == "dr.martin lit dans Garde Metz\n"
    assert "already a member" in run(ENGLISH, *member, code=1)

    oncall = ("reading", "oncall", "add", "--group", "Garde Metz")
    assert run(FRENCH, *oncall, "--kind", "night") == "Période de garde ajoutée à Garde Metz\n"
    run(ENGLISH, *oncall, "--kind", "weekend")
    assert "HH:MM" in run(ENGLISH, *oncall, "--kind", "night", "--start", "25:00", code=1)
    fixed = ("--kind", "fixed", "--from", "2026-03-07T02:00", "--to", "2026-03-08T02:00+01:00")
    assert "ISO 8601" in run(ENGLISH, *oncall, *fixed, code=1)

    rule = ("reading", "rule", "add", "--name", "briey-garde", "--site", "540000049")
    assert run(FRENCH, *rule, "--group", "Garde Metz") == (
        "Les examens de CH Briey vont à Garde Metz\n"
    )
    assert "already exists" in run(ENGLISH, *rule, "--group", "Garde Metz", code=1)
    assert run(ENGLISH, "reading", "rule", "list").splitlines() == [
        "100\tbriey-garde\t540000049\t*\tGarde Metz"
    ]
    run(ENGLISH, "reading", "rule", "remove", "--name", "briey-garde")
    assert run(ENGLISH, "reading", "rule", "list") == ""
    unknown = ("reading", "route", "--site", "540000049", "--accession", "NOPE")
    assert "accession number" in run(ENGLISH, *unknown, code=1)

    engine = make_engine(database_url)
    with make_sessionmaker(engine)() as db:
        kinds = db.execute(select(ReadingOnCall.kind).order_by(ReadingOnCall.id)).scalars().all()
        credentials = db.execute(select(ReadingCredential.site_id)).scalars().all()
    engine.dispose()
    assert kinds == ["night", "weekend"]
    assert len(credentials) == 2  # Metz (the group's site) and Briey

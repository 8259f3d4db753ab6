"""The operator's commands: plan, list, enrol, issue keys and qualify a procedure."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from concilium.platform import audit, patients
from concilium.platform.db import transaction
from concilium.telesurgery.cli import telesurgery
from concilium.telesurgery.link import load_keys
from concilium.telesurgery.tables import Procedure, QualificationRecord

pytestmark = pytest.mark.timing


def test_an_operator_prepares_and_qualifies_a_procedure(world, tmp_path):
    surgeon = world.user("metz-surgeon", (world.metz, "specialist"))
    with transaction(world.runtime.sessions) as db:
        patient = patients.create_patient(
            db,
            audit.Actor(surgeon.id, surgeon.username),
            world.briey.id,
            "BRY-3",
            patients.Demographics("Petit", "Luc"),
        )
        patient_id = patient.id
    settings = world.runtime.settings
    env = {
        "CONCILIUM_DATA_DIR": str(settings.data_dir),
        "CONCILIUM_DATABASE_URL": settings.effective_database_url,
    }
    thresholds = tmp_path / "procedure.toml"
    thresholds.write_text("[qualification]\njitter_p99_ms = 100\nrtt_p999_ms = 1000\n")
    runner = CliRunner()

    def run(*args: str, code: int = 0) -> str:
        result = runner.invoke(telesurgery, list(args), env=env)
        assert result.exit_code == code, result.output
        return result.output

    procedure = run(
        "procedure", "create",
        "--title", "Remote biopsy",
        "--console-site", world.metz.finess,
        "--robot-site", world.briey.finess,
        "--surgeon", "metz-surgeon",
        "--robot", "Arm-3",
        "--patient", str(patient_id),
        "--thresholds", str(thresholds),
    ).strip()  # fmt: skip
    assert f"{procedure}\tplanned\tRemote biopsy" in run("procedure", "list")
    refused = run("issue-keys", "--procedure", procedure, code=1)
    assert "enrol the console and robot gateway first" in refused
    token = run("enrol", "--procedure", procedure, "--role", "robot", "--public-name", "h:1")
    assert token.startswith("tsg_")
    run("enrol", "--procedure", procedure, "--role", "console", "--public-name", "h:2")
    issued = run("issue-keys", "--procedure", procedure, "--out", str(tmp_path / "keys"))
    assert "key set 1" in issued
    robot_key = Path(issued.split("robot: ")[1].split()[0])
    assert stat.S_IMODE(robot_key.stat().st_mode) == 0o600
    assert load_keys(robot_key).procedure_id == f"procedure-{procedure}"

    qualified = run(
        "qualify", "--procedure", procedure, "--profile", "lan",
        "--duration", "0.6", "--rate", "200", "--bitrate", "1000000",
    )  # fmt: skip
    assert qualified.startswith(f"GO: kept with procedure {procedure}")
    with world.runtime.sessions() as db:
        record = db.execute(select(QualificationRecord)).scalar_one()
        assert record.passed and record.profile == "lan"
        # The procedure's own criteria were applied, not the defaults.
        assert record.verdict["thresholds"]["rtt_p999_ms"] == 1000
        assert (settings.data_dir / record.html_path).is_file()
    missing = run("qualify", "--procedure", "999", "--duration", "0.2", code=1)
    assert "procedure 999 not found" in missing

    far = run(
        "procedure", "create",
        "--title", "Remote biopsy from abroad",
        "--console-site", world.metz.finess,
        "--robot-site", world.briey.finess,
        "--surgeon", "metz-surgeon",
        "--robot", "Arm-3",
        "--patient", str(patient_id),
        "--thresholds", str(thresholds),
        "--link-class", "intercontinental",
    ).strip()  # fmt: skip
    with world.runtime.sessions() as db:
        recorded = db.get(Procedure, int(far)).thresholds
    assert recorded["link_class"] == "intercontinental"
    assert recorded["safety"]["command_freshness_ms"] == 250.0
    assert recorded["limits"]["max_velocity_mm_s"] == 120.0
    # The file's own values still apply over the class's.
    assert recorded["qualification"]["rtt_p999_ms"] == 1000
    thresholds.write_text('link_class = "lan"\n')
    conflict = run(
        "procedure", "create",
        "--title", "Remote biopsy",
        "--console-site", world.metz.finess,
        "--robot-site", world.briey.finess,
        "--surgeon", "metz-surgeon",
        "--robot", "Arm-3",
        "--patient", str(patient_id),
        "--thresholds", str(thresholds),
        "--link-class", "intercontinental",
        code=1,
    )  # fmt: skip
    assert "names link class 'lan', not 'intercontinental'" in conflict

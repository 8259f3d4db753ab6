"""``concilium dicom``, as an administrator uses it."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from concilium.cli import main
from concilium.imaging.synthetic import SyntheticStudy, generate_ct_series


@pytest.mark.usefixtures("english")
def test_register_nodes_import_and_export(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'var' / 'concilium.db'}"
    monkeypatch.setenv("CONCILIUM_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("CONCILIUM_DATABASE_URL", url)
    runner = CliRunner()

    def run(*args, ok=True):
        result = runner.invoke(main, list(args), catch_exceptions=False)
        if ok:
            assert result.exit_code == 0, result.output
        return result

    run("migrate")
    run("site", "create", "--name", "CH Briey", "--finess", "540000049")
    added = run(
        "dicom",
        "ae",
        "add",
        "BRIEY_CT",
        "--host",
        "10.0.0.5",
        "--port",
        "104",
        "--site",
        "540000049",
        "--query",
    )
    assert "BRIEY_CT registered" in added.output
    listed = run("dicom", "ae", "list").output
    assert "BRIEY_CT\t10.0.0.5:104" in listed and "store,query" in listed
    twice = run(
        "dicom",
        "ae",
        "add",
        "BRIEY_CT",
        "--host",
        "h",
        "--port",
        "104",
        "--site",
        "540000049",
        ok=False,
    )
    assert twice.exit_code == 1 and "already registered" in twice.output

    source = tmp_path / "in"
    files = generate_ct_series(source, 3, study=SyntheticStudy(seed="cli"), rows=32, columns=32)
    (source / "notes.txt").write_text("not DICOM")
    imported = run("dicom", "import", str(source), "--site", "540000049")
    assert "3 instances stored, 1 refused" in imported.output
    assert "3 instances" in run("dicom", "stats").output

    out = tmp_path / "out"
    run("dicom", "export", str(out))
    exported = sorted(out.rglob("*.dcm"))
    assert len(exported) == 3
    assert sorted(p.read_bytes() for p in exported) == sorted(f.read_bytes() for f in files)
    run("dicom", "ae", "remove", "BRIEY_CT")
    assert "BRIEY_CT" not in run("dicom", "ae", "list").output

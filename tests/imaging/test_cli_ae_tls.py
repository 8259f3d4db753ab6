"""``concilium dicom ae``: an administrator has a node called over TLS, and back."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from concilium.cli import main


@pytest.mark.usefixtures("english")
def test_a_node_is_registered_with_tls_and_switched_back_to_plain_tcp(tmp_path, monkeypatch):
    monkeypatch.setenv("CONCILIUM_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("CONCILIUM_DATABASE_URL", f"sqlite:///{tmp_path / 'var' / 'c.db'}")
    runner = CliRunner()

    def run(*args: str, ok: bool = True) -> str:
        result = runner.invoke(main, list(args), catch_exceptions=False)
        assert (result.exit_code == 0) is ok, result.output
        return result.output

    run("migrate")
    run("site", "create", "--name", "CH Briey", "--finess", "540000049")
    add = ("dicom", "ae", "add", "--port", "104", "--site", "540000049", "--move-destination")
    run(*add, "BRIEY_PACS", "--host", "pacs.briey.example", "--tls")
    run(*add, "BRIEY_WS", "--host", "10.0.0.7")
    listed = run("dicom", "ae", "list")
    assert "BRIEY_PACS\tpacs.briey.example:104\tsite 1\tstore,move-destination\ttls" in listed
    assert "BRIEY_WS\t10.0.0.7:104\tsite 1\tstore,move-destination\ttcp" in listed

    assert "BRIEY_PACS is called over plain TCP" in run("dicom", "ae", "tls", "BRIEY_PACS", "off")
    assert "BRIEY_WS is called over TLS" in run("dicom", "ae", "tls", "BRIEY_WS", "on")
    listed = run("dicom", "ae", "list")
    assert "BRIEY_PACS\tpacs.briey.example:104\tsite 1\tstore,move-destination\ttcp" in listed
    assert "BRIEY_WS\t10.0.0.7:104\tsite 1\tstore,move-destination\ttls" in listed

    assert "no AE title 'NOBODY'" in run("dicom", "ae", "tls", "NOBODY", "on", ok=False)
    assert "Invalid value" in run("dicom", "ae", "tls", "BRIEY_WS", "maybe", ok=False)

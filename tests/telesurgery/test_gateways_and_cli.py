"""Gateway helpers and the command line."""

from __future__ import annotations

import asyncio
import math

import pytest
from click.testing import CliRunner

from concilium.telesurgery import openigtlink as igtl
from concilium.telesurgery.cli import telesurgery
from concilium.telesurgery.gateways import position_to_transform
from concilium.telesurgery.link import load_keys


def test_position_quaternion_becomes_a_rotation_matrix():
    half = math.sqrt(0.5)
    # 90 degrees about z.
    transform = position_to_transform(
        igtl.Position(position=(1.0, 2.0, 3.0), quaternion=(0.0, 0.0, half, half))
    )
    assert transform.translation == (1.0, 2.0, 3.0)
    assert transform.rotation == pytest.approx((0, -1, 0, 1, 0, 0, 0, 0, 1), abs=1e-9)


def test_generate_keys_writes_a_private_key_file(tmp_path):
    path = tmp_path / "keys.json"
    result = CliRunner().invoke(telesurgery, ["generate-keys", "--procedure-id", "P-9", str(path)])
    assert result.exit_code == 0, result.output
    assert path.stat().st_mode & 0o777 == 0o600
    assert load_keys(path).procedure_id == "P-9"


def test_gateway_refuses_a_readable_key_file(tmp_path):
    path = tmp_path / "keys.json"
    CliRunner().invoke(telesurgery, ["generate-keys", "--procedure-id", "P", str(path)])
    path.chmod(0o640)
    result = CliRunner().invoke(
        telesurgery, ["robot-gateway", "--keys", str(path), "--robot", "127.0.0.1:1"]
    )
    assert result.exit_code != 0
    assert "must be 0600" in result.output


def test_bad_procedure_thresholds_are_reported(tmp_path):
    keys = tmp_path / "keys.json"
    CliRunner().invoke(telesurgery, ["generate-keys", "--procedure-id", "P", str(keys)])
    procedure = tmp_path / "procedure.toml"
    procedure.write_text("[safety]\nlatency_warning_ms = 300\n")
    result = CliRunner().invoke(
        telesurgery,
        [
            "robot-gateway",
            "--keys",
            str(keys),
            "--robot",
            "127.0.0.1:1",
            "--procedure",
            str(procedure),
        ],
    )
    assert result.exit_code != 0
    assert "latency_warning_ms (300) must be below latency_halt_ms" in result.output


def test_gateways_apply_the_link_class_of_the_option_or_the_file(tmp_path):
    keys = tmp_path / "keys.json"
    CliRunner().invoke(telesurgery, ["generate-keys", "--procedure-id", "P", str(keys)])
    procedure = tmp_path / "procedure.toml"
    # Within the defaults (200 ms halt), not within the intercontinental class's budget.
    procedure.write_text("[safety]\nlatency_halt_ms = 200\n")
    base = ["--keys", str(keys), "--procedure", str(procedure), "--link-class", "intercontinental"]
    for command in (
        ["robot-gateway", "--robot", "127.0.0.1:1"],
        ["console-gateway", "--remote", "127.0.0.1:1"],
    ):
        result = CliRunner().invoke(telesurgery, [*command, *base])
        assert result.exit_code != 0
        assert "command_freshness_ms (250.0) must not exceed latency_halt_ms (200" in result.output
    procedure.write_text('link_class = "regional"\n')
    result = CliRunner().invoke(telesurgery, ["robot-gateway", "--robot", "127.0.0.1:1", *base])
    assert result.exit_code != 0
    assert "names link class 'regional', not 'intercontinental'" in result.output


def test_link_classes_are_listed_with_their_values():
    result = CliRunner().invoke(telesurgery, ["link-classes"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert [line.split(":")[0] for line in lines[::2]] == ["lan", "regional", "intercontinental"]
    assert "freshness 250 ms, halt 300 ms" in lines[5]
    assert "profile intercontinental-12000km" in lines[5]


def test_addresses_are_validated():
    result = CliRunner().invoke(
        telesurgery, ["impair", "--listen", "nowhere", "--upstream", "1:2", "--profile", "lan"]
    )
    assert result.exit_code == 2
    assert "expected HOST:PORT" in result.output


def test_engage_before_the_link_is_up_is_answered_not_ready():
    from concilium.telesurgery.gateways import ConsoleGateway
    from concilium.telesurgery.link import ProcedureKeys

    async def scenario() -> igtl.Message:
        # Nobody listens on the remote port: no heartbeat exchange can complete.
        gateway = ConsoleGateway(ProcedureKeys.generate("P"), ("127.0.0.1", 9), igtl_port=0)
        await gateway.start()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", gateway.igtl_port)
            writer.write(igtl.pack(igtl.Message("CONTROL", igtl.String("ENGAGE"))))
            reply = await asyncio.wait_for(igtl.read_message(reader), 5)
            writer.close()
            return reply
        finally:
            await gateway.close()

    reply = asyncio.run(scenario())
    assert reply.content.code == igtl.StatusCode.NOT_READY
    assert reply.content.error_name == "LINK_NOT_READY"

"""MLLP framing, the listener against python-hl7's own client and mllp_send, and the
outbound client."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import hl7.client
import pytest

from concilium.reading.hl7v2 import Message, check_message_type, parse_message
from concilium.reading.hl7v2_ack import respond
from concilium.reading.mllp import (
    FrameAbandoned,
    FrameReceived,
    FrameTooLarge,
    JunkSkipped,
    MllpConnection,
    MllpDecoder,
    MllpError,
    MllpServer,
    MllpServerSettings,
    MllpTimeout,
    PeerInfo,
    frame,
    send_message,
)

NOW = datetime(2025, 3, 14, 8, 30, tzinfo=UTC)
MLLP_SEND = Path(sys.executable).parent / "mllp_send"


def adt(control_id: str = "C1", pid: str = "PID|1||42^^^CHU||Lefèvre^Hélène") -> bytes:
    header = (
        f"MSH|^~\\&|HIS|CHU|CONCILIUM|GHT|20250314093000||ADT^A08^ADT_A01|{control_id}|P|2.5.1"
        "||||||UNICODE UTF-8"
    )
    return f"{header}\r{pid}\r".encode()


async def accept_adt(message: Message) -> None:
    check_message_type(message, {"ADT": {"A08"}})
    message.require("PID").require(3, name="patient identifier list")


async def acknowledging(raw: bytes, peer: PeerInfo) -> bytes:
    return await respond(raw, accept_adt, now=NOW)


def run(
    scenario: Callable[[int], Awaitable[object]],
    handler: Callable[[bytes, PeerInfo], Awaitable[bytes]] = acknowledging,
    settings: MllpServerSettings | None = None,
) -> object:
    async def main() -> object:
        server = MllpServer(handler, port=0, settings=settings or MllpServerSettings())
        async with server:
            return await asyncio.wait_for(scenario(server.bound_port), timeout=20)

    return asyncio.run(main())


async def exchange(port: int, data: bytes) -> bytes:
    """Send raw bytes, return everything the server sends until it closes or goes quiet."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    received = b""
    while True:
        try:
            chunk = await asyncio.wait_for(reader.read(65536), timeout=0.5)
        except (TimeoutError, ConnectionResetError):
            break
        if not chunk:
            break
        received += chunk
    writer.close()
    return received


def acks(received: bytes) -> list[Message]:
    decoder = MllpDecoder(1 << 20)
    return [
        parse_message(event.payload)
        for event in decoder.feed(received)
        if isinstance(event, FrameReceived)
    ]


# Framing


def test_the_decoder_reassembles_frames_split_across_reads() -> None:
    decoder = MllpDecoder(1024)
    data = frame(b"MSH|one") + frame(b"MSH|two")

    events = [event for i in range(len(data)) for event in decoder.feed(data[i : i + 1])]

    assert events == [FrameReceived(b"MSH|one"), FrameReceived(b"MSH|two")]
    assert not decoder.in_frame


def test_the_decoder_reports_junk_oversize_and_abandoned_frames() -> None:
    decoder = MllpDecoder(8)

    events = decoder.feed(
        b"hello" + frame(b"MSH|0123456789") + b"\r\n" + b"\x0bMSH|cut" + frame(b"MSH|ok")
    )

    assert events == [
        JunkSkipped(5),
        FrameTooLarge(b"MSH|0123456789", 14),
        FrameAbandoned(7),
        FrameReceived(b"MSH|ok"),
    ]


def test_an_end_block_without_carriage_return_still_ends_the_frame() -> None:
    decoder = MllpDecoder(64)

    assert decoder.feed(b"\x0bMSH|a\x1c\x0bMSH|b\x1c\r") == [
        FrameReceived(b"MSH|a"),
        FrameReceived(b"MSH|b"),
    ]


# The listener against python-hl7's client and its mllp_send script


def test_python_hl7_client_gets_an_aa_from_the_listener() -> None:
    def send(port: int) -> bytes:
        with hl7.client.MLLPClient("127.0.0.1", port) as client:
            reply: bytes = client.send_message(adt("HL7PY-1"))
            return reply

    async def scenario(port: int) -> bytes:
        return await asyncio.to_thread(send, port)

    reply = run(scenario)

    assert isinstance(reply, bytes)
    (ack,) = acks(reply)
    assert ack.require("MSA").get(1) == "AA"
    assert ack.require("MSA").get(2) == "HL7PY-1"


def test_mllp_send_script_gets_an_ack_per_message(tmp_path: Path) -> None:
    messages = tmp_path / "messages.hl7"
    bad = adt("SEND-2", pid="PID|1||||Nom^Prénom")
    messages.write_bytes(frame(adt("SEND-1")) + frame(bad))

    async def scenario(port: int) -> bytes:
        process = await asyncio.create_subprocess_exec(
            str(MLLP_SEND), "-p", str(port), "-f", str(messages), "127.0.0.1",
            stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        output, _ = await process.communicate()
        assert process.returncode == 0
        return output

    output = run(scenario)

    assert isinstance(output, bytes)
    first, second = acks(output)
    assert (first.require("MSA").get(1), first.require("MSA").get(2)) == ("AA", "SEND-1")
    assert (second.require("MSA").get(1), second.require("MSA").get(2)) == ("AE", "SEND-2")
    assert second.require("ERR").get(2) == "PID"
    assert second.require("ERR").get(3) == "101"


def test_several_connections_are_served_at_once() -> None:
    active = 0
    most = 0

    async def slow(raw: bytes, peer: PeerInfo) -> bytes:
        nonlocal active, most
        active += 1
        most = max(most, active)
        await asyncio.sleep(0.1)
        active -= 1
        return await respond(raw, accept_adt, now=NOW)

    async def scenario(port: int) -> list[str]:
        replies = await asyncio.gather(
            *(send_message("127.0.0.1", port, adt(f"PAR-{n}")) for n in range(5))
        )
        return [ack.require("MSA").get(2) for ack in replies]

    assert run(scenario, handler=slow) == [f"PAR-{n}" for n in range(5)]
    assert most > 1


def test_junk_before_the_start_block_is_skipped_and_the_message_answered() -> None:
    async def scenario(port: int) -> bytes:
        return await exchange(port, b"GET / HTTP/1.0\r\n" + frame(adt("AFTER-JUNK")))

    reply = run(scenario)

    assert isinstance(reply, bytes)
    (ack,) = acks(reply)
    assert ack.require("MSA").get(2) == "AFTER-JUNK"


def test_an_oversized_message_is_rejected_and_the_connection_goes_on() -> None:
    big = adt("BIG", pid="PID|1||42||" + "x" * 5000)

    async def scenario(port: int) -> bytes:
        return await exchange(port, frame(big) + frame(adt("SMALL")))

    reply = run(scenario, settings=MllpServerSettings(max_message_bytes=2000))

    assert isinstance(reply, bytes)
    refused, accepted = acks(reply)
    assert (refused.require("MSA").get(1), refused.require("MSA").get(2)) == ("AR", "BIG")
    assert refused.require("ERR").get(3) == "207"
    assert "limit is 2000 bytes" in refused.require("ERR").get(8)
    assert accepted.require("MSA").get(1) == "AA"


def test_an_oversized_frame_without_msh_closes_the_connection_but_not_the_listener() -> None:
    async def scenario(port: int) -> tuple[bytes, str]:
        closed = await exchange(port, frame(b"\xff" * 5000))
        ack = await send_message("127.0.0.1", port, adt("NEXT"))
        return closed, ack.require("MSA").get(1)

    assert run(scenario, settings=MllpServerSettings(max_message_bytes=2000)) == (b"", "AA")


def test_a_frame_never_ended_is_dropped_and_the_listener_serves_others() -> None:
    async def scenario(port: int) -> tuple[bytes, str]:
        _reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"\x0b" + adt("NO-END"))
        await writer.drain()
        silent = await exchange(port, b"\x0b" + adt("NO-END-2"))
        writer.close()
        ack = await send_message("127.0.0.1", port, adt("NEXT"))
        return silent, ack.require("MSA").get(2)

    assert run(scenario) == (b"", "NEXT")


def test_an_idle_connection_is_closed() -> None:
    async def scenario(port: int) -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        data = await asyncio.wait_for(reader.read(), timeout=5)
        writer.close()
        return data

    assert run(scenario, settings=MllpServerSettings(idle_timeout_s=0.2)) == b""


def test_a_message_without_msh_gets_an_ar_with_an_empty_msa2() -> None:
    async def scenario(port: int) -> bytes:
        return await exchange(port, frame(b"PID|1||42"))

    reply = run(scenario)

    assert isinstance(reply, bytes)
    (ack,) = acks(reply)
    assert (ack.require("MSA").get(1), ack.require("MSA").get(2)) == ("AE", "")
    assert ack.require("ERR").get(3) == "100"


def test_a_failing_handler_answers_ar_207_and_the_listener_survives(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls = 0

    async def flaky(raw: bytes, peer: PeerInfo) -> bytes:
        nonlocal calls
        calls += 1
        if calls == 1:
            name = parse_message(raw).require("PID").get(5)
            raise RuntimeError(f"no bed for {name}")
        return await respond(raw, accept_adt, now=NOW)

    async def scenario(port: int) -> tuple[str, str, str]:
        first = await send_message("127.0.0.1", port, adt("FAIL"))
        second = await send_message("127.0.0.1", port, adt("OK"))
        err = first.require("ERR")
        return first.require("MSA").get(1), err.get(3), second.require("MSA").get(1)

    assert run(scenario, handler=flaky) == ("AR", "207", "AA")
    assert "RuntimeError" in caplog.text
    assert "Lefèvre" not in caplog.text


def test_respond_turns_a_failure_of_processing_into_ar_207() -> None:
    async def broken(message: Message) -> None:
        raise KeyError("patient")

    ack = parse_message(asyncio.run(respond(adt("X"), broken, now=NOW)))

    assert ack.require("MSA").get(1) == "AR"
    assert ack.require("ERR").get(3) == "207"
    assert "patient" not in ack.require("ERR").get(8)


# The outbound client


def test_the_client_returns_the_parsed_ack_and_reuses_its_connection() -> None:
    async def scenario(port: int) -> list[tuple[str, str]]:
        connection = await MllpConnection.open("127.0.0.1", port)
        async with connection:
            replies = [await connection.send(adt(f"OUT-{n}")) for n in range(3)]
        return [(a.require("MSA").get(1), a.require("MSA").get(2)) for a in replies]

    assert run(scenario) == [("AA", "OUT-0"), ("AA", "OUT-1"), ("AA", "OUT-2")]


def test_the_client_times_out_when_no_ack_comes() -> None:
    async def silent(raw: bytes, peer: PeerInfo) -> bytes:
        await asyncio.sleep(5)
        return b""

    async def scenario(port: int) -> None:
        with pytest.raises(MllpTimeout):
            await send_message("127.0.0.1", port, adt(), timeout=0.2)

    run(scenario, handler=silent)


def test_the_client_refuses_an_ack_for_another_message() -> None:
    async def wrong(raw: bytes, peer: PeerInfo) -> bytes:
        return await respond(adt("SOMEONE-ELSE"), accept_adt, now=NOW)

    async def scenario(port: int) -> None:
        with pytest.raises(MllpError, match="MSA-2"):
            await send_message("127.0.0.1", port, adt("MINE"))

    run(scenario, handler=wrong)


def test_the_client_reports_a_refused_connection() -> None:
    async def scenario() -> None:
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        server.close()
        await server.wait_closed()
        with pytest.raises(MllpError):
            await send_message("127.0.0.1", port, adt())

    asyncio.run(scenario())


def test_connections_above_the_limit_are_closed_and_the_others_served() -> None:
    async def scenario(port: int) -> tuple[bytes, str]:
        connection = await MllpConnection.open("127.0.0.1", port)
        async with connection:
            await connection.send(adt("FIRST"))
            refused = await exchange(port, frame(adt("SECOND")))
            ack = await connection.send(adt("THIRD"))
        return refused, ack.require("MSA").get(2)

    assert run(scenario, settings=MllpServerSettings(max_connections=1)) == (b"", "THIRD")

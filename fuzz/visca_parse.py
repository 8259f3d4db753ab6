"""Fuzz the VISCA over IP parser: datagram header, then the command or reply it carries.

Bad input raises only `ViscaParseError`; `peek_sequence` never raises.
"""

from __future__ import annotations

import contextlib
import sys

import atheris

with atheris.instrument_imports(include=["concilium"]):
    from concilium.live.visca import (
        Message,
        PayloadType,
        ViscaParseError,
        parse_command,
        parse_reply,
        peek_sequence,
    )


def test_one_input(data: bytes) -> None:
    peek_sequence(data)
    try:
        message = Message.parse(data)
    except ViscaParseError:
        message = None
    payloads = [data[8:], data]
    if message is not None:
        payloads.insert(0, message.payload)
        assert Message.parse(message.pack()) == message
    for payload in payloads:
        for parse in (parse_command, parse_reply):
            with contextlib.suppress(ViscaParseError):
                parse(payload)
    if message is not None and message.payload_type is PayloadType.VISCA_COMMAND:
        try:
            address, command = parse_command(message.payload)
        except ViscaParseError:
            return
        assert parse_command(command.payload(address)) == (address, command)


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()

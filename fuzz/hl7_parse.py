"""Fuzz the HL7 v2 inbound path: MLLP deframing, then `parse_message` and `peek_header`.

`parse_message` promises to raise only `HL7Error`; it turns any other exception into an
`HL7Error` 207 (application internal error) as a last resort, so such a wrapped error is
counted as a crash here: it is a failure the parser did not foresee. `peek_header` never
raises; the MLLP decoder never raises on received bytes.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["concilium"]):
    from concilium.reading.hl7v2 import parse_message, peek_header
    from concilium.reading.hl7v2_errors import ErrorCode, HL7Error
    from concilium.reading.mllp import FrameReceived, MllpDecoder


def test_one_input(data: bytes) -> None:
    payloads = [data]
    decoder = MllpDecoder(max_message_bytes=4096)
    for event in decoder.feed(data):
        if isinstance(event, FrameReceived):
            payloads.append(event.payload)
    for payload in payloads:
        peek_header(payload)
        try:
            parse_message(payload)
        except HL7Error as exc:
            if exc.code is ErrorCode.APPLICATION_INTERNAL_ERROR and exc.__cause__ is not None:
                raise AssertionError("parse_message failed on an unforeseen error") from exc


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()

"""Fuzz the OpenIGTLink framer: `read_message` on a TCP stream, and `unpack` on whole messages.

A stream of arbitrary bytes ends in `asyncio.IncompleteReadError` or an `OpenIGTLinkError`
(the module's only error type); a message read whole packs back to bytes that read the same
(its timestamp to the float's precision).
A stream's framing error (bad header, oversized body) ends the reading, as the server closes
the connection; any other error skips the one message whose bytes were consumed.
"""

from __future__ import annotations

import asyncio
import math
import sys
from dataclasses import replace

import atheris

with atheris.instrument_imports(include=["concilium"]):
    from concilium.telesurgery.openigtlink import (
        FramingError,
        HeaderError,
        OpenIGTLinkError,
        pack,
        read_message,
        unpack,
    )

_MAX_BODY = 1 << 16


async def _read_stream(data: bytes) -> int:
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    count = 0
    while True:
        try:
            await read_message(reader, _MAX_BODY)
        except asyncio.IncompleteReadError:
            return count
        except (FramingError, HeaderError):
            return count
        except OpenIGTLinkError:
            pass
        count += 1


def test_one_input(data: bytes) -> None:
    try:
        message = unpack(data, _MAX_BODY)
    except OpenIGTLinkError:
        pass
    else:
        again = unpack(pack(message), _MAX_BODY)
        # A timestamp is a float: at today's dates it holds a quarter of a microsecond.
        assert math.isclose(again.timestamp, message.timestamp, rel_tol=0, abs_tol=1e-6)
        assert replace(again, timestamp=message.timestamp) == message
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(_read_stream(data))
    finally:
        loop.close()


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()

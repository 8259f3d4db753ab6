"""Fuzz the telesurgery link's datagram decoder, `LinkSession.open`, and the heartbeat reply.

`open` never raises on bad input: every datagram becomes a `Datagram` or a `Dropped`. The
input is opened as received, and also with its header's fields and its payload sealed under
the session's keys, so the checks behind authentication (epochs, replay window, reordering,
freshness, clock estimation) see inputs that authenticate.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["concilium"]):
    from concilium.telesurgery.link import HEADER_SIZE, Datagram, Dropped, Kind, LinkSession

from seeds import fuzz_link_keys

KEYS = fuzz_link_keys()
_KINDS = list(Kind)


def test_one_input(data: bytes) -> None:
    robot = LinkSession(KEYS, "robot", epoch=2)
    console = LinkSession(KEYS, "console", epoch=1)
    provider = atheris.FuzzedDataProvider(data)
    now = provider.ConsumeIntInRange(0, 1 << 62)
    raw = provider.ConsumeBytes(provider.ConsumeIntInRange(0, 256))
    result = robot.open(raw, now)
    assert isinstance(result, Datagram | Dropped)
    # Authentic datagrams from a console whose fields the fuzzer chooses.
    while provider.remaining_bytes():
        kind = _KINDS[provider.ConsumeIntInRange(0, len(_KINDS) - 1)]
        console.epoch = provider.ConsumeIntInRange(0, (1 << 32) - 1)
        console._next_sequence = provider.ConsumeIntInRange(0, (1 << 64) - 1)
        sent = provider.ConsumeIntInRange(0, (1 << 64) - 1)
        payload = provider.ConsumeBytes(provider.ConsumeIntInRange(0, 64))
        arrived = provider.ConsumeIntInRange(0, 1 << 63)
        now = provider.ConsumeIntInRange(0, 1 << 63)
        sealed = console.seal(kind, payload, sent)
        result = robot.open(sealed, now, arrived)
        assert isinstance(result, Datagram | Dropped)
        if isinstance(result, Datagram):
            assert result.payload == payload
            if result.kind is Kind.HEARTBEAT_REPLY:
                robot.on_heartbeat_reply(result)
            robot.stats()
        assert len(sealed) >= HEADER_SIZE


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()

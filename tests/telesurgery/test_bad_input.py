"""Bad input is refused with the protocol's own error or dropped and counted, never a crash."""

from __future__ import annotations

import random

from concilium.telesurgery import openigtlink as igtl
from concilium.telesurgery.link import Datagram, Dropped, Kind, LinkSession, ProcedureKeys


def mutations(data: bytes, rng: random.Random, count: int) -> list[bytes]:
    out = []
    for _ in range(count):
        buf = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            if buf and rng.random() < 0.7:
                buf[rng.randrange(len(buf))] = rng.randrange(256)
            elif buf:
                del buf[rng.randrange(len(buf)) :]
        out.append(bytes(buf))
    out += [rng.randbytes(rng.randint(0, 200)) for _ in range(count)]
    return out


def test_openigtlink_decoder_only_raises_its_own_errors():
    rng = random.Random(5)
    samples = [
        igtl.pack(igtl.Message("M", igtl.Transform(translation=(1, 2, 3)))),
        igtl.pack(igtl.Message("M", igtl.String("ENGAGE"))),
        igtl.pack(
            igtl.Message("M", igtl.Status(message="x"), header_version=2, metadata={"a": "b"})
        ),
        igtl.pack(igtl.Message("M", igtl.Position())),
    ]
    outcomes = {"ok": 0, "refused": 0}
    for sample in samples:
        for data in mutations(sample, rng, 500):
            try:
                igtl.unpack(data)
                outcomes["ok"] += 1
            except igtl.OpenIGTLinkError:
                outcomes["refused"] += 1
    assert outcomes["refused"] > 3000


def test_link_session_drops_garbage_and_tampering_without_raising():
    rng = random.Random(6)
    keys = ProcedureKeys.generate("p")
    console = LinkSession(keys, "console")
    robot = LinkSession(keys, "robot")
    genuine = console.seal(Kind.TELEMETRY, b"payload", 1_000)
    results = [robot.open(data, 2_000) for data in mutations(genuine, rng, 1000)]
    accepted = [r for r in results if isinstance(r, Datagram)]
    assert all(r.payload == b"payload" for r in accepted), "a tampered payload got through"
    assert sum(isinstance(r, Dropped) for r in results) >= 1990
    assert sum(robot.drops.values()) == sum(isinstance(r, Dropped) for r in results)

"""Mutated and random inputs: the parser and readers raise HL7Error or nothing, and every
input gets a readable ACK."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime

import pytest

from concilium.reading.adt import read_adt
from concilium.reading.hl7v2 import Message, parse_message, peek_header
from concilium.reading.hl7v2_ack import respond
from concilium.reading.hl7v2_errors import HL7Error
from concilium.reading.orders import read_order_message

NOW = datetime(2025, 3, 14, 8, 30, tzinfo=UTC)
SEEDS = [
    (
        "MSH|^~\\&|HIS|CHU|CONCILIUM|GHT|20250314093000||ADT^A08^ADT_A01|A1|P|2.5.1"
        "||||||UNICODE UTF-8\r"
        "EVN|A08|20250314093000\r"
        "PID|1||8001234^^^CHU&1.2.250&ISO^PI||Lefèvre^Hélène^^^MME^^L||19850523|F|||"
        "1 rue X^^Lille^^59000\r"
        "PV1|1|O|RADIO^1^2|||||10002^Durand^Anne\r"
    ),
    (
        "MSH|^~\\&|HIS|CHU|CONCILIUM|GHT|20250314093000||ADT^A40^ADT_A39|A2|P|2.5\r"
        "PID|1||100^^^CHU^PI||Martin^Luc\rMRG|200^^^CHU^PI\r"
    ),
    (
        "MSH|^~\\&|RIS|CHU|CONCILIUM|GHT|20250314093000||ORM^O01|O1|P|2.3.1||||||8859/1\r"
        "PID|1||42^^^CHU||Nom^Prénom\r"
        "ORC|NW|PL-1^HIS|FL-1^RIS||SC||^^^20250315143000^^S||||||||||CT01\r"
        "OBR|1|PL-1|FL-1|TDM^Scanner^L^P1^Proto^L||||||||||||||ACC-1|RP-1|SPS-1||||CT\r"
        "ZDS|1.2.3^RIS^Application^DICOM\r"
    ),
    (
        "MSH|^~\\&|RIS|CHU|CONCILIUM|GHT|20250314093000||OMI^O23^OMI_O23|O2|P|2.5.1\r"
        "PID|1||42^^^CHU||Nom^Prénom\r"
        "ORC|XO|PL-1|FL-1||CM\rTQ1|1||||||20250316081500||A\r"
        "OBR|1|PL-1|FL-1|TDM^Scanner\r"
        "IPC|ACC-5|RP-5|1.2.3|SPS-5|CT|P1^Proto^L|S1|L1|CT01\r"
    ),
]
ALPHABET = b'|^~\\&\r\n\x0b\x1c\x00\xff\xc3\xa9MSHPIDOBRIPC0123456789."+- '


def mutate(data: bytes, rng: random.Random) -> bytes:
    buffer = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        choice = rng.randrange(7)
        position = rng.randrange(len(buffer) + 1)
        if choice == 0 and buffer:  # flip a byte
            buffer[min(position, len(buffer) - 1)] = rng.randrange(256)
        elif choice == 1:  # insert a delimiter or framing byte
            buffer[position:position] = bytes([rng.choice(ALPHABET)])
        elif choice == 2 and buffer:  # delete a run
            del buffer[position : position + rng.randint(1, 20)]
        elif choice == 3:  # truncate
            del buffer[position:]
        elif choice == 4:  # duplicate a run
            start = rng.randrange(len(buffer) + 1)
            buffer[position:position] = buffer[start : start + rng.randint(1, 40)]
        elif choice == 5:  # replace the field separator of MSH
            if len(buffer) > 3:
                buffer[3] = rng.choice(ALPHABET)
        else:  # swap two segments
            segments = bytes(buffer).split(b"\r")
            i, j = rng.randrange(len(segments)), rng.randrange(len(segments))
            segments[i], segments[j] = segments[j], segments[i]
            buffer = bytearray(b"\r".join(segments))
    return bytes(buffer)


def inputs(count: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    encoded = [s.encode("utf-8") for s in SEEDS] + [SEEDS[2].encode("iso8859-1")]
    cases = [rng.randbytes(rng.randint(0, 200)) for _ in range(count // 10)]
    cases += [b"MSH" + rng.randbytes(rng.randint(0, 60)) for _ in range(count // 10)]
    while len(cases) < count:
        cases.append(mutate(rng.choice(encoded), rng))
    return cases


def read_content(message: Message) -> None:
    code = message.header.message_type.code
    if code == "ADT":
        read_adt(message)
    elif code in ("ORM", "OMI"):
        read_order_message(message)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_mutated_messages_raise_only_hl7_errors(seed: int) -> None:
    accepted = refused = 0
    for raw in inputs(300, seed):
        try:
            read_content(parse_message(raw))
            accepted += 1
        except HL7Error as error:
            assert error.code and error.text
            refused += 1
        peek_header(raw)
    # The mutations keep enough valid messages to reach the content readers.
    assert accepted > 10 and refused > 100


def test_every_input_gets_an_ack_that_parses() -> None:
    async def process(message: Message) -> None:
        read_content(message)

    async def answer_all(cases: list[bytes]) -> list[bytes]:
        return [await respond(raw, process, now=NOW) for raw in cases]

    for ack in asyncio.run(answer_all(inputs(200, 4))):
        msa = parse_message(ack).require("MSA")
        assert msa.get(1) in ("AA", "AE", "AR")

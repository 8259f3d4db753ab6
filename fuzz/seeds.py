"""Seed corpora for the fuzzing harnesses: small, real, valid inputs of each format.

``python fuzz/seeds.py DIR`` writes one folder per harness under DIR (``DIR/dicom_ingest``,
``DIR/stow_multipart``...), each holding a few files the harness accepts as they are, for the
fuzzer to mutate from. Every seed is made by the code the platform itself uses to produce
that format (the synthetic study generator, the multipart writer, the OpenIGTLink and VISCA
packers, a link session's sealing), so the corpora follow the code when it changes.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

from concilium.imaging.multipart import OutgoingPart, write_multipart_related
from concilium.imaging.synthetic import SyntheticStudy, generate_ct_series, generate_xa_cine
from concilium.live import visca
from concilium.telesurgery import link, openigtlink

HARNESSES = (
    "dicom_ingest",
    "stow_multipart",
    "openigtlink_framing",
    "visca_parse",
    "link_datagram",
    "hl7_parse",
)

#: The boundary and Content-Type the multipart seeds are written with; the harness reads the
#: Content-Type from the first line of its input.
MULTIPART_BOUNDARY = "concilium-fuzz-boundary"

HL7_MESSAGES = (
    b"MSH|^~\\&|RIS|CHR METZ|CONCILIUM|CHR METZ|20261120101500||ORM^O01^ORM_O01|MSG0001|P|2.5.1"
    b"|||AL|NE||UNICODE UTF-8\r"
    b"PID|1||123456^^^CHR METZ^MR||DUPONT^JEAN||19700101|M\r"
    b"ORC|NW|ORD001|ACC-0001\r"
    b"OBR|1|ORD001|ACC-0001|CT^CT THORAX\r",
    b"MSH|^~\\&|PAS|CHR METZ|CONCILIUM|CHR METZ|20261120101500||ADT^A08^ADT_A01|MSG0002|P|2.4\r"
    b"EVN|A08|20261120101500\r"
    b"PID|1||654321^^^CHR METZ^MR||MARTIN^CLAIRE^^^^^L||19851224|F\r"
    b"PV1|1|I|CARDIO^101^1\r",
    b"MSH|^~\\&|RIS|CHR METZ|CONCILIUM|CHR METZ|20261120||ORU^R01|MSG0003|P|2.3\r"
    b"PID|1||777^^^CHR METZ^MR||DURAND^PAUL\r"
    b"OBR|1|ORD002|ACC-0002|XA^ANGIO\r"
    b"OBX|1|TX|REPORT||Normal coronary arteries\\X0D\\no stenosis||||||F\r",
)


def _dicom(target: Path) -> None:
    study = SyntheticStudy(seed="fuzz")
    with tempfile.TemporaryDirectory() as scratch:
        (ct,) = generate_ct_series(Path(scratch), 1, study=study, rows=16, columns=16)
        xa = generate_xa_cine(Path(scratch), 2, study=study, rows=16, columns=16)
        (target / "ct-16x16.dcm").write_bytes(ct.read_bytes())
        (target / "xa-cine-16x16.dcm").write_bytes(xa.read_bytes())


def _multipart(target: Path) -> None:
    study = SyntheticStudy(seed="fuzz-stow")
    with tempfile.TemporaryDirectory() as scratch:
        paths = generate_ct_series(Path(scratch), 2, study=study, rows=16, columns=16)
        content_type = f'multipart/related; type="application/dicom"; boundary={MULTIPART_BOUNDARY}'

        async def body(parts: list[OutgoingPart]) -> bytes:
            out = bytearray()
            async for chunk in write_multipart_related(parts, MULTIPART_BOUNDARY):
                out += chunk
            return bytes(out)

        for name, parts in (
            ("two-instances", [OutgoingPart("application/dicom", p) for p in paths]),
            ("one-json", [OutgoingPart("application/dicom+json", b'[{"00080005":{}}]')]),
        ):
            payload = asyncio.run(body(parts))
            (target / f"{name}.mime").write_bytes(content_type.encode() + b"\n" + payload)
            # The same body cut in chunks at seven places (see the harness).
            cut = content_type.encode() + b"\t" + bytes(range(7, 250, 35)) + b"\n" + payload
            (target / f"{name}-chunked.mime").write_bytes(cut)


def _openigtlink(target: Path) -> None:
    messages = {
        "transform-v1": openigtlink.Message(
            "Robot",
            openigtlink.Transform.from_matrix(
                [[1, 0, 0, 10.0], [0, 1, 0, -5.0], [0, 0, 1, 2.5], [0, 0, 0, 1]]
            ),
            timestamp=1_700_000_000.25,
        ),
        "position-v2-meta": openigtlink.Message(
            "Tool",
            openigtlink.Position((1.0, 2.0, 3.0), (0.0, 0.0, 0.0, 1.0)),
            header_version=2,
            message_id=7,
            metadata={"unit": "mm"},
        ),
        "status": openigtlink.status_message(
            "Robot", openigtlink.StatusCode.OK, "", "ready", 1_700_000_000.0
        ),
        "string": openigtlink.Message("Console", openigtlink.String("stop")),
    }
    for name, message in messages.items():
        (target / f"{name}.igtl").write_bytes(openigtlink.pack(message))


def _visca(target: Path) -> None:
    commands: dict[str, bytes] = {
        "drive": visca.PanTiltDrive(visca.Direction.UP_LEFT, 5, 7).payload(),
        "absolute": visca.PanTiltAbsolute(-1200, 300, 10, 10).payload(),
        "zoom-direct": visca.ZoomDirect(0x2000).payload(),
        "preset": visca.Preset(visca.PresetAction.RECALL, 3).payload(),
        "inquiry": visca.PanTiltPositionInquiry().payload(),
        "ack": visca.Ack(1).payload(),
        "completion": visca.Completion(1, visca.ZoomPositionInquiry.encode(0x1234)).payload(),
        "error": visca.ReplyError(visca.ErrorCode.SYNTAX_ERROR, 1).payload(),
    }
    for sequence, (name, payload) in enumerate(commands.items()):
        kind = (
            visca.PayloadType.VISCA_REPLY
            if name in ("ack", "completion", "error")
            else (
                visca.PayloadType.VISCA_INQUIRY
                if name == "inquiry"
                else visca.PayloadType.VISCA_COMMAND
            )
        )
        (target / f"{name}.visca").write_bytes(visca.Message(kind, sequence, payload).pack())


def _link(target: Path) -> None:
    # The harness opens with a robot session on these fixed keys, so the seeds authenticate.
    keys = fuzz_link_keys()
    console = link.LinkSession(keys, "console", epoch=1)
    robot = link.LinkSession(keys, "robot", epoch=2)
    now = 1_000_000_000
    (target / "heartbeat.link").write_bytes(console.seal(link.Kind.HEARTBEAT, b"", now))
    (target / "command.link").write_bytes(console.seal(link.Kind.COMMAND, b"\x01" * 24, now))
    (target / "telemetry.link").write_bytes(console.seal(link.Kind.TELEMETRY, b"\x02" * 40, now))
    reply = robot.seal(link.Kind.HEARTBEAT_REPLY, b"\0" * 8 + now.to_bytes(8, "big") * 2, now)
    (target / "heartbeat-reply-from-robot.link").write_bytes(reply)


def fuzz_link_keys() -> link.ProcedureKeys:
    """Fixed keys shared by the link seeds and harness (a fuzzing fixture, nothing secret)."""
    return link.ProcedureKeys("fuzz", 1, bytes(range(32)), bytes(range(32, 64)))


def _hl7(target: Path) -> None:
    for number, message in enumerate(HL7_MESSAGES):
        (target / f"message-{number}.hl7").write_bytes(message)
        (target / f"message-{number}.mllp").write_bytes(b"\x0b" + message + b"\x1c\r")


WRITERS = {
    "dicom_ingest": _dicom,
    "stow_multipart": _multipart,
    "openigtlink_framing": _openigtlink,
    "visca_parse": _visca,
    "link_datagram": _link,
    "hl7_parse": _hl7,
}


def write_seeds(root: Path, harness: str) -> Path:
    """Write the seed corpus of one harness under ``root / harness``; returns that folder."""
    target = root / harness
    target.mkdir(parents=True, exist_ok=True)
    WRITERS[harness](target)
    return target


if __name__ == "__main__":
    for name in HARNESSES:
        print(write_seeds(Path(sys.argv[1]), name))

"""OpenIGTLink codecs, CRC-64 and the stream framer, checked against pyigtl's bytes."""

from __future__ import annotations

import asyncio
import base64
import struct
from dataclasses import replace

import numpy as np
import pyigtl
import pytest
from pyigtl.messages import MessageBase

from concilium.telesurgery import openigtlink as igtl


def test_crc64_matches_the_ecma182_check_value():
    # CRC-64/ECMA-182 catalogue check value for "123456789".
    assert igtl.crc64(b"123456789") == 0x6C40DF5F0B497347
    assert igtl.crc64(b"") == 0


def test_crc64_matches_pyigtl_on_random_bodies():
    rng = np.random.default_rng(1)
    from pyigtl.messages import CRC64

    for size in (1, 7, 48, 1000):
        data = rng.bytes(size)
        assert igtl.crc64(data) == CRC64(data)


def _pyigtl_transform(header_version: int = 1) -> pyigtl.TransformMessage:
    matrix = np.array([[0, -1, 0, 10.5], [1, 0, 0, -2.25], [0, 0, 1, 3.0], [0, 0, 0, 1]])
    message = pyigtl.TransformMessage(matrix, device_name="MASTER", timestamp=1_700_000_000.5)
    message.header_version = header_version
    if header_version == 2:
        message.metadata = {"procedure": "P-1", "hand": "left"}
        message.message_id = 42
    return message


def test_unpacks_a_pyigtl_transform():
    message = igtl.unpack(_pyigtl_transform().pack())
    assert message.device_name == "MASTER"
    assert message.content == igtl.Transform(
        rotation=(0.0, -1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0), translation=(10.5, -2.25, 3.0)
    )
    assert message.timestamp == pytest.approx(1_700_000_000.5, abs=1e-6)


def test_unpacks_a_pyigtl_v3_transform_with_metadata():
    message = igtl.unpack(_pyigtl_transform(header_version=2).pack())
    assert message.header_version == 2
    assert message.message_id == 42
    assert message.metadata == {"procedure": "P-1", "hand": "left"}
    assert message.content.translation == (10.5, -2.25, 3.0)


@pytest.mark.parametrize("header_version", [1, 2])
def test_pyigtl_unpacks_our_transform(header_version):
    ours = igtl.Message(
        "TARGET",
        igtl.Transform(rotation=(0, 0, 1, 0, 1, 0, -1, 0, 0), translation=(1, 2, 3)),
        timestamp=1_700_000_123.25,
        header_version=header_version,
        metadata={"k": "v"} if header_version == 2 else {},
    )
    data = igtl.pack(ours)
    fields = MessageBase.parse_header(data[:58])
    theirs = MessageBase.create_message(fields["message_type"])
    theirs.unpack(fields, data[58:])
    np.testing.assert_allclose(
        theirs.matrix, [[0, 0, 1, 1], [0, 1, 0, 2], [-1, 0, 0, 3], [0, 0, 0, 1]]
    )
    assert theirs.device_name == "TARGET"
    assert theirs.timestamp == pytest.approx(1_700_000_123.25, abs=1e-6)
    if header_version == 2:
        assert theirs.metadata == {"k": "v"}
    # Same header fields and CRC as pyigtl would compute for the same body.
    assert struct.unpack(">Q", data[50:58])[0] == igtl.crc64(data[58:])


def test_string_round_trips_with_pyigtl_both_ways():
    theirs = pyigtl.StringMessage("CLUTCH ON", device_name="CONTROL")
    assert igtl.unpack(theirs.pack()).content == igtl.String("CLUTCH ON")
    data = igtl.pack(igtl.Message("CONTROL", igtl.String("ENGAGE")))
    fields = MessageBase.parse_header(data[:58])
    back = MessageBase.create_message(fields["message_type"])
    back.unpack(fields, data[58:])
    assert back.string == "ENGAGE"


def test_pyigtl_position_layout_is_refused_with_a_size_error():
    # pyigtl's POSITION carries POINT-like name, group and owner fields (152 bytes),
    # not the 28-byte v2 body.
    theirs = pyigtl.PositionMessage([1, 2, 3], [0, 0, 0, 1], device_name="TOOL")
    with pytest.raises(igtl.SizeError, match="POSITION body is 152 bytes"):
        igtl.unpack(theirs.pack())


@pytest.mark.parametrize(
    "content",
    [
        igtl.Position(position=(1.0, 2.0, 3.0), quaternion=(0.0, 0.0, 0.5, 0.75)),
        igtl.Status(code=igtl.StatusCode.NOT_READY, subcode=-3, error_name="HOLD", message="x"),
        igtl.String("héllo", encoding=igtl.IANA_UTF_8),
    ],
)
def test_contents_round_trip(content):
    assert igtl.unpack(igtl.pack(igtl.Message("D", content))).content == content


def test_position_short_forms_are_accepted():
    three = igtl.unpack_content("POSITION", struct.pack(">3f", 1, 2, 3))
    assert three == igtl.Position(position=(1.0, 2.0, 3.0))
    six = igtl.unpack_content("POSITION", struct.pack(">6f", 1, 2, 3, 0, 0, 0))
    assert six.quaternion == (0.0, 0.0, 0.0, 1.0)


def _corrupt_crc(data: bytes) -> bytes:
    return data[:50] + struct.pack(">Q", struct.unpack(">Q", data[50:58])[0] ^ 1) + data[58:]


def test_bad_crc_is_a_crc_mismatch_with_the_header_kept():
    data = _corrupt_crc(igtl.pack(igtl.Message("MASTER", igtl.Transform())))
    with pytest.raises(igtl.CrcMismatchError) as info:
        igtl.unpack(data)
    assert info.value.header is not None and info.value.header.device_name == "MASTER"
    assert info.value.status_code == igtl.StatusCode.CHECKSUM_ERROR


def test_wrong_transform_size_is_a_size_error():
    body = bytes(40)
    header = igtl.Header(1, "TRANSFORM", "M", 0.0, len(body), igtl.crc64(body))
    with pytest.raises(igtl.SizeError, match="expected 48"):
        igtl.unpack(igtl.pack_header(header) + body)


def test_truncated_body_is_a_size_error():
    data = igtl.pack(igtl.Message("M", igtl.Transform()))
    with pytest.raises(igtl.SizeError):
        igtl.unpack(data[:-4])


def test_string_length_mismatch_is_a_size_error():
    body = struct.pack(">HH", 3, 10) + b"abc"
    with pytest.raises(igtl.SizeError, match="announces 10"):
        igtl.unpack_content("STRING", body)


def test_unknown_type_is_refused():
    body = b"\x00" * 4
    header = igtl.Header(1, "IMAGE", "M", 0.0, len(body), igtl.crc64(body))
    with pytest.raises(igtl.UnknownTypeError) as info:
        igtl.unpack(igtl.pack_header(header) + body)
    assert info.value.status_code == igtl.StatusCode.UNKNOWN_INSTRUCTION


def test_non_finite_transform_is_refused():
    body = struct.pack(">12f", *([float("nan")] * 12))
    with pytest.raises(igtl.SizeError, match="non-finite"):
        igtl.unpack_content("TRANSFORM", body)


def test_metadata_sizes_beyond_the_body_are_refused():
    message = igtl.Message("M", igtl.Transform(), header_version=2, metadata={"a": "b"})
    data = bytearray(igtl.pack(message))
    struct.pack_into(">I", data, 58 + 4, 10_000)  # metadata body size
    body = bytes(data[58:])
    struct.pack_into(">Q", data, 50, igtl.crc64(body))
    with pytest.raises(igtl.SizeError, match="exceed"):
        igtl.unpack(bytes(data))


def test_absurd_body_size_is_a_framing_error():
    header = igtl.Header(1, "TRANSFORM", "M", 0.0, 1 << 40, 0)
    with pytest.raises(igtl.FramingError):
        igtl.unpack_header(igtl.pack_header(header))


def test_unknown_header_version_is_a_header_error():
    data = bytearray(igtl.pack(igtl.Message("M", igtl.Transform())))
    data[0:2] = b"\x00\x07"
    with pytest.raises(igtl.HeaderError, match="version 7"):
        igtl.unpack(bytes(data))


def test_framer_reads_split_and_coalesced_messages_and_stays_aligned():
    async def scenario() -> list[object]:
        reader = asyncio.StreamReader()
        first = _pyigtl_transform().pack()
        bad = _corrupt_crc(igtl.pack(igtl.Message("BAD", igtl.Transform())))
        last = igtl.pack(igtl.Message("LAST", igtl.String("ok")))
        stream = first + bad + last
        # Delivered in odd-sized pieces, as TCP may.
        for i in range(0, len(stream), 17):
            reader.feed_data(stream[i : i + 17])
        reader.feed_eof()
        results: list[object] = []
        while True:
            try:
                results.append(await igtl.read_message(reader))
            except igtl.OpenIGTLinkError as exc:
                results.append(exc)
            except asyncio.IncompleteReadError:
                return results

    results = asyncio.run(scenario())
    assert [type(r).__name__ for r in results] == ["Message", "CrcMismatchError", "Message"]
    assert results[2].device_name == "LAST"


def test_a_message_read_and_packed_again_keeps_its_timestamp_to_the_nanosecond():
    # Found by fuzz/openigtlink_framing.py: the fraction was rounded down both ways, so a
    # message read and packed again (a relay) lost a nanosecond at each hop.
    raw = base64.b64decode(
        "AAJQT1NJVElPTgAAAABUb29sAAAAAAAAAAAAAAAAAAAAAAAAAAAAIQAAAAAAAAAAADhCuhkZewnVDgAMAAoAAAAG"
        "AAAABz+AAABAAAAAQEAAAAAAAAAAAAAAAAAAAD+AAAAAAQAEAGoAAAACdW5pdG1t"
    )
    message = igtl.unpack(raw)
    assert igtl.unpack(igtl.pack(message)) == message
    for nanos in (0, 1, 503_539, 999_999_999, 123_456_789):
        stamped = replace(message, timestamp=1_700_000_000 + nanos / 1e9)
        assert (
            igtl.unpack(igtl.pack(igtl.unpack(igtl.pack(stamped)))).timestamp
            == igtl.unpack(igtl.pack(stamped)).timestamp
        )

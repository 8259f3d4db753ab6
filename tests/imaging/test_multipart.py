"""Streaming multipart/related parser and writer (RFC 2046 5.1, PS3.18 8.7.3, 10.5.1.2)."""

from __future__ import annotations

import asyncio
import base64
import email.parser
import email.policy
import hashlib
import os
from collections.abc import AsyncIterator, Iterable
from pathlib import Path

import pytest
from dicomweb_client.api import DICOMwebClient

from concilium.imaging.multipart import (
    BodyTooLarge,
    MultipartError,
    OutgoingPart,
    Part,
    PartTooLarge,
    boundary_from_content_type,
    multipart_content_type,
    new_boundary,
    parse_multipart_related,
    write_multipart_related,
)


async def _chunks(body: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


def _parse(body: bytes, boundary: str, tmp: Path, chunk: int = 7, **limits: int) -> list[Part]:
    async def run() -> list[Part]:
        return [
            part
            async for part in parse_multipart_related(
                _chunks(body, chunk), boundary, tmp_dir=tmp, **limits
            )
        ]

    return asyncio.run(run())


def _split_at(body: bytes, offset: int) -> AsyncIterator[bytes]:
    async def gen() -> AsyncIterator[bytes]:
        yield body[:offset]
        yield body[offset:]

    return gen()


def _collect(body_chunks: AsyncIterator[bytes], boundary: str, tmp: Path) -> list[bytes]:
    async def run() -> list[bytes]:
        out = []
        async for part in parse_multipart_related(body_chunks, boundary, tmp_dir=tmp):
            out.append(part.path.read_bytes())
            part.discard()
        return out

    return asyncio.run(run())


def test_body_from_dicomweb_client_encoder(tmp_path: Path) -> None:
    contents = [os.urandom(5000), b"", b"DICM" * 300]
    content_type = 'multipart/related; type="application/dicom"; boundary=0f3cf5c0-8f4c'
    body = DICOMwebClient._encode_multipart_message(contents, content_type)
    boundary = boundary_from_content_type(content_type)
    parts = _parse(body, boundary, tmp_path, chunk=1000)
    assert [p.path.read_bytes() for p in parts] == contents
    assert all(p.content_type == "application/dicom" for p in parts)
    small = [b"\r\n--0f3cf5c0", b"DICM\r\n"]
    small_body = DICOMwebClient._encode_multipart_message(small, content_type)
    for offset in range(len(small_body) + 1):
        assert _collect(_split_at(small_body, offset), boundary, tmp_path) == small, offset


def test_every_split_offset_gives_the_same_parts(tmp_path: Path) -> None:
    boundary = "b0undary"
    body = (
        b"preamble\r\n--b0undary\r\nContent-Type: application/dicom\r\n\r\n"
        b"first\r\n--b0und\r\n--b0undar"
        b"\r\n--b0undary  \r\nContent-Type: application/octet-stream\r\n"
        b"Content-Location: /frames/1\r\n\r\nsecond\r\n"
        b"\r\n--b0undary--\r\nepilogue"
    )
    expected = [b"first\r\n--b0und\r\n--b0undar", b"second\r\n"]
    for offset in range(len(body) + 1):
        assert _collect(_split_at(body, offset), boundary, tmp_path) == expected, offset
    for size in (1, 2, 3, 5, 64):
        assert _collect(_chunks(body, size), boundary, tmp_path) == expected
    assert list(tmp_path.iterdir()) == []


def test_each_part_is_hashed_as_it_is_written(tmp_path: Path) -> None:
    contents = [os.urandom(20_000), b"", b"\r\n--hash-", b"DICM" * 3000]
    body = b"".join(
        b"--hash-b\r\nContent-Type: application/dicom\r\n\r\n" + c + b"\r\n" for c in contents
    )
    body += b"--hash-b--\r\n"
    expected = [hashlib.sha256(c).hexdigest() for c in contents]
    for chunk in (3, 997, 1 << 16):
        parts = _parse(body, "hash-b", tmp_path, chunk=chunk)
        assert [p.path.read_bytes() for p in parts] == contents
        assert [p.sha256 for p in parts] == expected, chunk
        for p in parts:
            p.discard()


def test_part_headers_are_parsed(tmp_path: Path) -> None:
    body = (
        b"--xyz\r\nContent-Type: application/octet-stream; transfer-syntax=1.2.840.10008.1.2.1"
        b"\r\nContent-Location: http://h/frames/1\r\n\r\nabc\r\n--xyz--"
    )
    (part,) = _parse(body, "xyz", tmp_path)
    assert part.headers["content-location"] == "http://h/frames/1"
    assert part.content_type == "application/octet-stream"
    assert part.size == 3


def test_body_written_by_python_email_package(tmp_path: Path) -> None:
    from email.mime.application import MIMEApplication
    from email.mime.multipart import MIMEMultipart

    message = MIMEMultipart("related", type="application/dicom")
    payloads = [os.urandom(777), os.urandom(10)]
    for payload in payloads:
        # The email package rewrites line endings of raw 8-bit payloads, so let it use base64.
        message.attach(MIMEApplication(payload, "dicom"))
    raw = message.as_bytes(policy=email.policy.HTTP)
    head, _, body = raw.partition(b"\r\n\r\n")
    content_type = email.parser.BytesHeaderParser(policy=email.policy.HTTP).parsebytes(head)[
        "content-type"
    ]
    parts = _parse(body, boundary_from_content_type(str(content_type)), tmp_path, chunk=100)
    assert all(p.headers["content-transfer-encoding"] == "base64" for p in parts)
    assert [base64.b64decode(p.path.read_bytes()) for p in parts] == payloads


def test_writer_output_is_read_back_by_parser_and_email(tmp_path: Path) -> None:
    boundary = new_boundary()
    file_part = tmp_path / "instance.dcm"
    file_part.write_bytes(os.urandom(200_000))

    def generator() -> Iterable[bytes]:
        yield b"frame-"
        yield b"two"

    parts = [
        OutgoingPart("application/dicom", file_part, {"Content-Location": "/instances/1"}),
        OutgoingPart("application/octet-stream; transfer-syntax=*", generator()),
        OutgoingPart("application/json", b"{}"),
    ]

    async def body() -> bytes:
        return b"".join([c async for c in write_multipart_related(parts, boundary)])

    data = asyncio.run(body())
    got = _collect(_chunks(data, 4096), boundary, tmp_path)
    assert got == [file_part.read_bytes(), b"frame-two", b"{}"]

    header = multipart_content_type("application/dicom", boundary)
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {header}\r\n\r\n".encode() + data
    )
    payloads = [p.get_payload(decode=True) for p in message.iter_parts()]
    assert payloads == [file_part.read_bytes(), b"frame-two", b"{}"]


def test_part_size_limit(tmp_path: Path) -> None:
    body = b"--b\r\n\r\n" + b"x" * 5000 + b"\r\n--b--"
    with pytest.raises(PartTooLarge):
        _parse(body, "b", tmp_path, chunk=512, max_part_size=4096)
    assert list(tmp_path.iterdir()) == []


def test_body_size_limit(tmp_path: Path) -> None:
    body = b"--b\r\n\r\n" + b"x" * 5000 + b"\r\n--b--"
    with pytest.raises(BodyTooLarge):
        _parse(body, "b", tmp_path, chunk=512, max_body_size=1000)
    assert list(tmp_path.iterdir()) == []


def test_body_without_close_delimiter_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(MultipartError, match="close delimiter"):
        _parse(b"--b\r\n\r\npartial content", "b", tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_garbage_after_delimiter_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(MultipartError):
        _parse(b"--b junk\r\n\r\nx\r\n--b--", "b", tmp_path)


@pytest.mark.parametrize(
    "value",
    [
        "application/dicom",
        "multipart/related; type=application/dicom",
        "multipart/related; boundary=",
    ],
)
def test_bad_content_type_is_refused(value: str) -> None:
    with pytest.raises(MultipartError):
        boundary_from_content_type(value)


def test_quoted_boundary_parameter() -> None:
    value = 'Multipart/Related; type="application/dicom+xml"; boundary="a b;c"'
    assert boundary_from_content_type(value) == "a b;c"

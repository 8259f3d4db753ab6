"""Streaming ``multipart/related`` (RFC 2387 over RFC 2046 5.1) for DICOMweb.

STOW-RS requests (PS3.18 10.5.1.2) and WADO-RS responses (PS3.18 8.7.3) carry instances,
frames and bulk data as parts of a ``multipart/related`` body. The parser consumes body chunks
as they arrive and writes each part to a temporary file, so a request of many gigabytes never
sits in memory, and hashes it on the way (SHA-256, the address the archive stores it under),
so its bytes are never read again to be named; the writer produces a response the same way.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import tempfile
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

__all__ = [
    "BodyTooLarge",
    "MultipartError",
    "OutgoingPart",
    "Part",
    "PartTooLarge",
    "boundary_from_content_type",
    "multipart_content_type",
    "new_boundary",
    "parse_content_type",
    "parse_multipart_related",
    "write_multipart_related",
]

_CRLF = b"\r\n"
#: RFC 2046 5.1.1: a boundary is 1 to 70 ASCII characters; printable ones are taken beyond
#: its bchars (some senders quote a ``;``), nothing outside ASCII, which it must encode to.
_BOUNDARY = re.compile(r"[\x20-\x7e]{1,70}")
_MAX_HEADER_BYTES = 16 * 1024
_WRITE_CHUNK = 1 << 16


class MultipartError(ValueError):
    """The body is not a well-formed multipart message (HTTP 400)."""


class PartTooLarge(MultipartError):
    """One part exceeds the per-part size limit (HTTP 413)."""


class BodyTooLarge(MultipartError):
    """The whole body exceeds its size limit (HTTP 413)."""


@dataclass(slots=True)
class Part:
    """One received part, its content in a temporary file owned by the caller."""

    headers: dict[str, str]
    """Part headers, names lower-cased."""
    path: Path
    """Temporary file with the part's content; move it or call `discard`."""
    size: int
    """Content length in bytes."""
    sha256: str = ""
    """Lower-case hexadecimal SHA-256 of the content, computed as it was written."""

    @property
    def content_type(self) -> str | None:
        """Media type of the part (without parameters), lower-cased."""
        value = self.headers.get("content-type")
        return parse_content_type(value)[0] if value else None

    def discard(self) -> None:
        """Delete the temporary file."""
        self.path.unlink(missing_ok=True)


def parse_content_type(value: str) -> tuple[str, dict[str, str]]:
    """Split a Content-Type value into its media type and parameters (RFC 9110 8.3).

    Parameter names are lower-cased; quoted values are unquoted.
    """
    media_type, _, rest = value.partition(";")
    params: dict[str, str] = {}
    i = 0
    while i < len(rest):
        while i < len(rest) and rest[i] in " \t;":
            i += 1
        eq = rest.find("=", i)
        if eq < 0:
            break
        name = rest[i:eq].strip().lower()
        i = eq + 1
        if i < len(rest) and rest[i] == '"':
            i += 1
            chars: list[str] = []
            while i < len(rest) and rest[i] != '"':
                if rest[i] == "\\" and i + 1 < len(rest):
                    i += 1
                chars.append(rest[i])
                i += 1
            i += 1
            params[name] = "".join(chars)
        else:
            end = rest.find(";", i)
            end = len(rest) if end < 0 else end
            params[name] = rest[i:end].strip()
            i = end
    return media_type.strip().lower(), params


def boundary_from_content_type(value: str) -> str:
    """Boundary of a ``multipart/related`` Content-Type; `MultipartError` if absent or bad."""
    media_type, params = parse_content_type(value)
    if media_type != "multipart/related":
        raise MultipartError(f"expected multipart/related, got {media_type!r}")
    boundary = params.get("boundary", "")
    # RFC 2046 5.1.1: 1 to 70 characters, not ending with a space.
    if not _BOUNDARY.fullmatch(boundary) or boundary.endswith(" "):
        raise MultipartError("missing or invalid boundary parameter")
    return boundary


def _parse_headers(block: bytes) -> dict[str, str]:
    headers: dict[str, str] = {}
    last: str | None = None
    for line in block.split(_CRLF):
        if not line:
            continue
        if line[:1] in (b" ", b"\t") and last is not None:
            # Obsolete line folding (RFC 5322 2.2.3) still appears in the wild.
            headers[last] += " " + line.strip().decode("latin-1")
            continue
        name, sep, value = line.partition(b":")
        if not sep or not name.strip():
            raise MultipartError(f"malformed part header line: {line[:80]!r}")
        last = name.strip().decode("latin-1").lower()
        headers[last] = value.strip().decode("latin-1")
    return headers


class _PartSink:
    def __init__(self, tmp_dir: Path | None, max_size: int | None) -> None:
        fd, name = tempfile.mkstemp(dir=tmp_dir, prefix="part-", suffix=".bin")
        self.path = Path(name)
        self._file: BinaryIO = os.fdopen(fd, "wb")
        self._digest = hashlib.sha256()
        self.size = 0
        self._max = max_size

    def write(self, data: bytes | memoryview) -> None:
        if not data:
            return
        self.size += len(data)
        if self._max is not None and self.size > self._max:
            raise PartTooLarge(f"part exceeds {self._max} bytes")
        self._digest.update(data)
        self._file.write(data)

    def close(self) -> str:
        """Close the file; returns the SHA-256 of what was written."""
        self._file.close()
        return self._digest.hexdigest()

    def abort(self) -> None:
        self._file.close()
        self.path.unlink(missing_ok=True)


async def parse_multipart_related(
    chunks: AsyncIterable[bytes],
    boundary: str,
    *,
    tmp_dir: Path | str | None = None,
    max_part_size: int | None = None,
    max_body_size: int | None = None,
) -> AsyncIterator[Part]:
    """Yield the parts of a multipart body as each one is complete (RFC 2046 5.1.1).

    A delimiter may be split anywhere across chunks. The preamble and epilogue are ignored.
    On error the part being written is deleted; parts already yielded belong to the caller.
    Raises `MultipartError`, `PartTooLarge` or `BodyTooLarge`.
    """
    if not _BOUNDARY.fullmatch(boundary):
        raise MultipartError("invalid boundary")
    dash_boundary = b"--" + boundary.encode("ascii")
    delimiter = _CRLF + dash_boundary
    tmp = Path(tmp_dir) if tmp_dir is not None else None
    buffer = bytearray()
    received = 0
    # States: preamble -> after_delimiter -> headers -> body -> after_delimiter ... -> done
    state = "preamble"
    headers: dict[str, str] = {}
    sink: _PartSink | None = None
    try:
        async for chunk in chunks:
            received += len(chunk)
            if max_body_size is not None and received > max_body_size:
                raise BodyTooLarge(f"body exceeds {max_body_size} bytes")
            buffer += chunk
            while True:
                if state == "preamble":
                    # The first delimiter may open the body without a preceding CRLF.
                    if buffer.startswith(dash_boundary):
                        del buffer[: len(dash_boundary)]
                        state = "after_delimiter"
                        continue
                    index = buffer.find(delimiter)
                    if index < 0:
                        keep = len(delimiter) - 1
                        if len(buffer) > keep:
                            del buffer[: len(buffer) - keep]
                        break
                    del buffer[: index + len(delimiter)]
                    state = "after_delimiter"
                elif state == "after_delimiter":
                    if len(buffer) < 2:
                        break
                    if buffer[:2] == b"--":
                        state = "done"
                        buffer.clear()
                        break
                    end = buffer.find(_CRLF)
                    if end < 0:
                        if len(buffer) > 1024:
                            raise MultipartError("garbage after boundary delimiter")
                        break
                    # RFC 2046 allows transport padding (linear white space) here only.
                    if buffer[:end].strip(b" \t"):
                        raise MultipartError("garbage after boundary delimiter")
                    del buffer[: end + 2]
                    state = "headers"
                elif state == "headers":
                    if buffer.startswith(_CRLF):
                        header_end, block = 2, b""
                    else:
                        index = buffer.find(_CRLF + _CRLF)
                        if index < 0:
                            if len(buffer) > _MAX_HEADER_BYTES:
                                raise MultipartError("part headers too long")
                            break
                        header_end, block = index + 4, bytes(buffer[:index])
                    headers = _parse_headers(block)
                    del buffer[:header_end]
                    sink = _PartSink(tmp, max_part_size)
                    state = "body"
                elif state == "body":
                    assert sink is not None
                    index = buffer.find(delimiter)
                    if index < 0:
                        # Keep a tail that could be the start of a split delimiter.
                        safe = len(buffer) - (len(delimiter) - 1)
                        if safe > 0:
                            # A view, not a copy: parts are large and each byte is handled once.
                            with memoryview(buffer) as view:
                                sink.write(view[:safe])
                            del buffer[:safe]
                        break
                    with memoryview(buffer) as view:
                        sink.write(view[:index])
                    del buffer[: index + len(delimiter)]
                    sha256 = sink.close()
                    part = Part(headers=headers, path=sink.path, size=sink.size, sha256=sha256)
                    sink = None
                    state = "after_delimiter"
                    yield part
                else:  # done: the epilogue is ignored
                    buffer.clear()
                    break
        if state != "done":
            raise MultipartError("body ended before the close delimiter")
    finally:
        if sink is not None:
            sink.abort()


# --------------------------------------------------------------------------------------------
# Writing


@dataclass(slots=True)
class OutgoingPart:
    """A part of a response: content from memory, a file, or an iterator of chunks."""

    content_type: str
    """Value of the part's Content-Type header (with parameters, e.g. transfer-syntax)."""
    content: bytes | Path | Iterable[bytes] | AsyncIterable[bytes]
    """The bytes, a file streamed in chunks, or an (async) iterator of chunks."""
    headers: Mapping[str, str] = field(default_factory=dict)
    """Extra headers such as Content-Location (PS3.18 8.7.3.3)."""


def new_boundary() -> str:
    """A random boundary; 128 random bits make a collision with content negligible."""
    return "concilium-" + secrets.token_hex(16)


def multipart_content_type(part_type: str, boundary: str, **params: str) -> str:
    """Content-Type header of a multipart/related body (RFC 2387 3.1, PS3.18 8.7.3.2)."""
    extra = "".join(f'; {k.replace("_", "-")}="{v}"' for k, v in params.items())
    return f'multipart/related; type="{part_type}"; boundary={boundary}{extra}'


async def _content_chunks(
    content: bytes | Path | Iterable[bytes] | AsyncIterable[bytes],
) -> AsyncIterator[bytes]:
    if isinstance(content, bytes | bytearray | memoryview):
        yield bytes(content)
    elif isinstance(content, Path):
        with content.open("rb") as fh:
            while chunk := fh.read(_WRITE_CHUNK):
                yield chunk
    elif isinstance(content, AsyncIterable):
        async for chunk in content:
            yield chunk
    else:
        for chunk in content:
            yield chunk


async def write_multipart_related(
    parts: Iterable[OutgoingPart] | AsyncIterable[OutgoingPart], boundary: str
) -> AsyncIterator[bytes]:
    """Serialise parts as a multipart/related body, chunk by chunk (RFC 2046 5.1.1)."""
    dash_boundary = b"--" + boundary.encode("ascii")

    async def _parts() -> AsyncIterator[OutgoingPart]:
        if isinstance(parts, AsyncIterable):
            async for p in parts:
                yield p
        else:
            for p in parts:
                yield p

    first = True
    async for part in _parts():
        head = b"" if first else _CRLF
        first = False
        lines = [f"Content-Type: {part.content_type}"]
        lines += [f"{name}: {value}" for name, value in part.headers.items()]
        yield head + dash_boundary + _CRLF + "\r\n".join(lines).encode("latin-1") + _CRLF * 2
        async for chunk in _content_chunks(part.content):
            if chunk:
                yield chunk
    if first:
        # RFC 2046 requires at least one body part; an empty result is still well formed
        # for our parser, which accepts a close delimiter right away.
        yield dash_boundary + b"--" + _CRLF
    else:
        yield _CRLF + dash_boundary + b"--" + _CRLF

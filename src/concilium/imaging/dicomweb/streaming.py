"""Bodies streamed from stored files: multipart/related responses (PS3.18 8.7.3, RFC 2387)
whose parts are read ahead in a worker thread, with their Content-Length when every part's
length is known."""

from __future__ import annotations

import asyncio
import collections
import os
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path

from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from concilium.imaging import render
from concilium.imaging.multipart import (
    OutgoingPart,
    multipart_content_type,
    new_boundary,
    write_multipart_related,
)

__all__ = ["ReadAhead", "file_chunks", "multipart_response", "stored_file", "transcoded"]


def file_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            yield chunk


class _MultipartResponse(StreamingResponse):
    """A multipart/related body (PS3.18 8.7.3), streamed.

    When the length of every part is known the body goes with its Content-Length instead of
    chunked: a client then reads what arrives as it is, without parsing chunk framing, which
    for a study of a thousand instances is most of what the client has to do.
    """

    def __init__(
        self, parts: list[OutgoingPart], part_type: str, lengths: list[int] | None = None
    ) -> None:
        boundary = new_boundary()
        super().__init__(
            write_multipart_related(parts, boundary),
            media_type=None,
            headers={"content-type": multipart_content_type(part_type, boundary)},
        )
        in_memory = [p.content for p in parts if isinstance(p.content, bytes)]
        if lengths is None and len(in_memory) == len(parts):
            lengths = [len(content) for content in in_memory]
        self._framing = [OutgoingPart(p.content_type, b"", p.headers) for p in parts]
        self._boundary = boundary
        self._lengths = lengths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._lengths is not None:
            # The writer's own framing of the same parts without their content: the body's
            # length never depends on how the writer happens to lay out its delimiters.
            framing = write_multipart_related(self._framing, self._boundary)
            overhead = sum([len(chunk) async for chunk in framing])
            self.headers["content-length"] = str(overhead + sum(self._lengths))
        await super().__call__(scope, receive, send)


def multipart_response(
    parts: list[OutgoingPart], part_type: str, lengths: list[int] | None = None
) -> StreamingResponse:
    return _MultipartResponse(parts, part_type, lengths)


_READ_PIECE = 1 << 20
"""Largest piece of a stored file read at a time while sending it."""
_READ_BATCH = 4 << 20
"""Bytes read per trip to the worker thread, so that the trips cost little next to the reads."""
_WILL_NEED = 16
"""Stored files the kernel is asked to start reading ahead of the one being read: a disk
serves several requests at once much faster than the same requests one after another."""


_Piece = tuple[int, bytes, bool]
"""(part index, bytes, whether they end the part)."""


class ReadAhead:
    """Produces the contents of a response's parts in a worker thread, a batch of pieces
    ahead of what is being sent: the disk (or the decoder) and the socket work at the same
    time, and the event loop never waits for either. Parts are consumed in order, as the
    writer does.
    """

    def __init__(
        self, sources: Sequence[Callable[[], Iterator[bytes]]], files: Sequence[Path] = ()
    ) -> None:
        self._pieces = self._produce(sources, files)
        self._ready: collections.deque[_Piece] = collections.deque()
        self._ahead: asyncio.Future[list[_Piece]] | None = None
        self._exhausted = False

    @staticmethod
    def _produce(
        sources: Sequence[Callable[[], Iterator[bytes]]], files: Sequence[Path]
    ) -> Iterator[_Piece]:
        for path in files[:_WILL_NEED]:
            _will_need(path)
        for index, source in enumerate(sources):
            if index + _WILL_NEED < len(files):
                _will_need(files[index + _WILL_NEED])
            previous: bytes | None = None
            for piece in source():
                if previous is not None:
                    yield index, previous, False
                previous = piece
            yield index, previous or b"", True

    def _batch(self) -> list[_Piece]:
        batch: list[_Piece] = []
        size = 0
        for piece in self._pieces:
            batch.append(piece)
            size += len(piece[1])
            if size >= _READ_BATCH:
                break
        return batch

    def _read_ahead(self) -> None:
        if self._ahead is None and not self._exhausted:
            self._ahead = asyncio.get_running_loop().run_in_executor(None, self._batch)

    async def _next(self) -> _Piece | None:
        if not self._ready:
            self._read_ahead()
            if self._ahead is None:
                return None
            batch = await self._ahead
            self._ahead = None
            self._exhausted = not batch
            self._ready.extend(batch)
            self._read_ahead()
        return self._ready.popleft() if self._ready else None

    async def part(self, index: int) -> AsyncIterator[bytes]:
        """The content of part ``index``, once the parts before it have been read."""
        while (piece := await self._next()) is not None:
            at, data, last = piece
            if at != index:
                raise RuntimeError(f"part {index} read out of order (at {at})")
            if data:
                yield data
            if last:
                return
        raise RuntimeError(f"part {index} has no content")


def _will_need(path: Path) -> None:
    """Ask the kernel to read ``path`` into its cache in the background (a hint only)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return  # reading it will report the problem
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_WILLNEED)
    except OSError:
        pass
    finally:
        os.close(fd)


def stored_file(path: Path, length: int) -> Callable[[], Iterator[bytes]]:
    def read() -> Iterator[bytes]:
        sent = 0
        with path.open("rb", buffering=0) as fh:
            while piece := fh.read(_READ_PIECE):
                sent += len(piece)
                yield piece
        if sent != length:
            # The declared Content-Length is the index's: a file that differs cannot be sent.
            raise OSError(f"{path.name}: {sent} bytes stored, {length} indexed")

    return read


def transcoded(
    renderer: render.Renderer, path: Path, transfer_syntax: str
) -> Callable[[], Iterator[bytes]]:
    def produce() -> Iterator[bytes]:
        yield renderer.transcode(path, transfer_syntax)

    return produce

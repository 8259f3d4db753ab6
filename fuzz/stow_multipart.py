"""Fuzz the STOW-RS multipart parser: the Content-Type's boundary, then the body in chunks.

The input's first line is the request's Content-Type, the rest its body, cut into chunks at
places the fuzzer chooses (the bytes after a tab on the first line). Bad input raises only
`MultipartError` (and its subclasses `PartTooLarge`, `BodyTooLarge`); the parts yielded
are whole; when parsing fails, no temporary file of the part being written remains.
"""

from __future__ import annotations

import asyncio
import atexit
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["concilium.imaging.multipart"]):
    from concilium.imaging.multipart import (
        MultipartError,
        boundary_from_content_type,
        parse_multipart_related,
    )

_TMP = Path(tempfile.mkdtemp(prefix="concilium-fuzz-multipart-"))
atexit.register(shutil.rmtree, _TMP, True)


async def _chunks(body: bytes, cuts: list[int]) -> AsyncIterator[bytes]:
    start = 0
    for cut in sorted(cuts):
        yield body[start:cut]
        start = cut
    yield body[start:]


async def _parse(body: bytes, boundary: str, cuts: list[int]) -> None:
    async for part in parse_multipart_related(
        _chunks(body, cuts), boundary, tmp_dir=_TMP, max_part_size=8192, max_body_size=32768
    ):
        assert part.path.stat().st_size == part.size
        part.discard()


def test_one_input(data: bytes) -> None:
    head, _, body = data.partition(b"\n")
    head, _, cut_spec = head.partition(b"\t")
    provider = atheris.FuzzedDataProvider(cut_spec[:32])
    cuts = [provider.ConsumeIntInRange(0, len(body)) for _ in range(provider.remaining_bytes())]
    # Starlette decodes header values as Latin-1, as the HTTP layer hands them over.
    content_type = head.decode("latin-1")
    try:
        boundary = boundary_from_content_type(content_type)
        asyncio.run(_parse(body, boundary, cuts))
    except MultipartError:
        pass
    assert not any(_TMP.iterdir()), "a temporary part file remained"


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()

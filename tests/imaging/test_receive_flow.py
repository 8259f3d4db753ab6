"""The walk an adapter makes: STOW-RS body → parts → staged → validated → stored → metadata."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pydicom

from concilium.imaging.dicom_json import to_dicom_json
from concilium.imaging.dicomweb.stow import STOW_RS_FAILURE_REASON
from concilium.imaging.multipart import (
    OutgoingPart,
    new_boundary,
    parse_multipart_related,
    write_multipart_related,
)
from concilium.imaging.parsing import InvalidInstance, failure_reason, parse_instance
from concilium.imaging.storage import InstanceStore

from .stores import stage_stream


async def _file_chunks(path: Path) -> AsyncIterator[bytes]:
    with path.open("rb") as fh:
        while chunk := fh.read(65536):
            yield chunk


def test_stow_like_request_stores_valid_instances_and_reports_failures(
    ct_series: list[Path], tmp_path: Path
) -> None:
    store = InstanceStore(tmp_path / "store")
    truncated = tmp_path / "truncated.dcm"
    truncated.write_bytes(ct_series[1].read_bytes()[:-1000])
    boundary = new_boundary()
    sources = [*ct_series, truncated, ct_series[0]]  # the last one is a duplicate
    parts = [OutgoingPart("application/dicom", path) for path in sources]

    async def request_body() -> AsyncIterator[bytes]:
        async for chunk in write_multipart_related(parts, boundary):
            # Re-chunk as a network would, splitting delimiters at arbitrary places.
            for i in range(0, len(chunk), 50_000):
                yield chunk[i : i + 50_000]

    async def receive() -> tuple[list[str], list[int]]:
        stored, failures = [], []
        async for part in parse_multipart_related(
            request_body(), boundary, tmp_dir=store.root / "tmp", max_part_size=10**7
        ):
            try:
                staged = await stage_stream(store, _file_chunks(part.path))
            finally:
                part.discard()
            with staged:
                try:
                    parsed = parse_instance(staged.path)
                except InvalidInstance as exc:
                    failures.append(STOW_RS_FAILURE_REASON[failure_reason(exc)])
                    continue
                staged.commit()
                stored.append(parsed.record.instance.sop_instance_uid)
        return stored, failures

    stored, failures = asyncio.run(receive())
    assert failures == [0xC000]
    assert len(stored) == 5 and len(set(stored)) == 4
    stats = store.statistics()
    assert stats.count == 4
    assert stats.bytes == sum(p.stat().st_size for p in ct_series)
    assert list((store.root / "tmp").iterdir()) == []

    # Metadata for WADO-RS comes from the stored file without reading Pixel Data.
    address = next(iter(store.addresses()))
    header = pydicom.dcmread(store.path_of(address), defer_size=1024)
    metadata = to_dicom_json(header, bulk_data_uri_prefix="/bulk")
    assert metadata["7FE00010"]["BulkDataURI"] == "/bulk/7FE00010"
    assert len(json.dumps(metadata)) < 10_000

"""Writing to an `InstanceStore` in one call, as the storage tests do: staging then commit."""

from __future__ import annotations

import asyncio
import queue
from collections.abc import AsyncIterable, Iterable, Iterator
from pathlib import Path

from concilium.imaging.storage import READ_CHUNK_SIZE, InstanceStore, StagedObject, StoredObject


def store_iter(
    store: InstanceStore, chunks: Iterable[bytes], *, max_size: int | None = None
) -> StoredObject:
    """Store the concatenation of ``chunks`` durably and return its address."""
    return store.stage_iter(chunks, max_size=max_size).commit()


def store_bytes(store: InstanceStore, data: bytes) -> StoredObject:
    """Store a small object held in memory."""
    return store_iter(store, [data])


def store_file(
    store: InstanceStore, source: Path | str, *, max_size: int | None = None
) -> StoredObject:
    """Copy a file into the store without loading it whole."""
    with Path(source).open("rb") as fh:
        return store_iter(store, iter(lambda: fh.read(READ_CHUNK_SIZE), b""), max_size=max_size)


async def stage_stream(
    store: InstanceStore, chunks: AsyncIterable[bytes], *, max_size: int | None = None
) -> StagedObject:
    """`InstanceStore.stage_iter` fed from an asynchronous stream, writing in a worker thread;
    an exception of the stream reaches the writer, which leaves nothing behind."""
    handed: queue.SimpleQueue[bytes | BaseException | None] = queue.SimpleQueue()

    def pulled() -> Iterator[bytes]:
        while (item := handed.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item

    writing = asyncio.ensure_future(
        asyncio.to_thread(store.stage_iter, pulled(), max_size=max_size)
    )
    try:
        async for chunk in chunks:
            handed.put(chunk)
    except BaseException as exc:
        handed.put(exc)
        await asyncio.wait([writing])
        if not writing.cancelled():
            writing.exception()  # the stream's own exception, raised below
        raise
    handed.put(None)
    return await writing


async def store_stream(
    store: InstanceStore, chunks: AsyncIterable[bytes], *, max_size: int | None = None
) -> StoredObject:
    """Store an asynchronous stream of chunks durably and return its address."""
    staged = await stage_stream(store, chunks, max_size=max_size)
    try:
        return await asyncio.to_thread(staged.commit)
    finally:
        staged.discard()

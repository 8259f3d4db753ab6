"""A hospital system's results listener for the tests of the outbound queue: python-hl7's
asyncio MLLP server (``hl7.mllp.start_hl7_server``) answering each message with the next
scripted acknowledgment code (AA once the script is spent), or not at all (``None``)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable

import hl7.mllp  # type: ignore[import-untyped]

from concilium.reading.hl7v2 import peek_header
from concilium.reading.hl7v2_datatypes import HierarchicDesignator
from concilium.reading.oru import Envelope

ENVELOPE = Envelope(
    HierarchicDesignator("CONCILIUM"),
    HierarchicDesignator("540000049"),
    HierarchicDesignator("HIS"),
    HierarchicDesignator("CHBRIEY"),
)


class His:
    """The listener on ``port`` (127.0.0.1); ``received`` holds every message, raw."""

    def __init__(self, port: int, codes: Iterable[str | None] = ()) -> None:
        self.port = port
        self.codes = list(codes)
        self.received: list[bytes] = []
        self._server: asyncio.Server | None = None
        self._count = 0

    async def start(self) -> His:
        self._server = await hl7.mllp.start_hl7_server(
            self._client, "127.0.0.1", self.port, limit=1 << 22
        )
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> His:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def control_ids(self) -> list[str]:
        return [h.control_id if (h := peek_header(m)) else "" for m in self.received]

    async def _client(self, reader, writer) -> None:  # type: ignore[no-untyped-def]
        try:
            while True:
                block = await reader.readblock()
                self.received.append(block)
                code = self.codes.pop(0) if self.codes else "AA"
                if code is None:
                    continue
                self._count += 1
                header = peek_header(block)
                control = header.control_id if header else ""
                text = "" if code == "AA" else "Unknown accession number"
                ack = (
                    f"MSH|^~\\&|HIS|CHBRIEY|CONCILIUM|540000049|20260307020000||ACK^R01^ACK|"
                    f"A{self._count}|P|2.5.1\rMSA|{code}|{control}|{text}\r"
                )
                if code != "AA":
                    ack += "ERR||OBR^1^18|204|E||||Unknown accession number\r"
                writer.writeblock(ack.encode())
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

"""What the teleradiology service holds in a running process: the MLLP listener of the
hospital systems' messages, when ``hl7_port`` is not 0, and the modality worklist and MPPS
on the archive's DICOM listener (added to the process's `ImagingProcess` when built, before
it serves).

The listener runs on the server's event loop; each message is stored in a worker thread
(its database transaction is synchronous), at most ``hl7_workers`` at once, so a slow
message or a slow connection never holds the others. The acknowledgment is written only
after the transaction committed (``concilium.reading.inbound``).

While serving, every :data:`ESCALATION_PERIOD` the STAT exams left unclaimed are escalated
to their reading group (``concilium.reading.escalation``), in a worker thread, as are the
flagged findings the referring physician did not acknowledge in time
(``concilium.reading.critical_findings``), and the
signed reports the archive has not taken yet are offered to it again
(``concilium.reading.report_archive.archive_pending``).

Unless ``hl7_outbound`` is off, the queue of outbound messages is delivered
(``concilium.reading.outbound``); before each look for due messages, the orders whose
study became complete are announced (``concilium.reading.results``). A study received by
the archive of this process (its ``STUDY_RECEIVED`` events) wakes the delivery at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import anyio
from anyio import CapacityLimiter, to_thread

from concilium.imaging import STUDY_RECEIVED, ImagingProcess
from concilium.platform.db import transaction
from concilium.platform.runtime import Runtime
from concilium.platform.services import Processes
from concilium.reading.critical_findings import escalate_unacknowledged
from concilium.reading.escalation import escalate_unclaimed
from concilium.reading.inbound import receive
from concilium.reading.mllp import MllpServer, MllpServerSettings, PeerInfo
from concilium.reading.modality import mpps_service, worklist_service
from concilium.reading.mpps_store import DatabaseMpps
from concilium.reading.outbound import OutboundSender
from concilium.reading.report_archive import archive_pending
from concilium.reading.results import queue_images_available
from concilium.reading.worklist_source import DatabaseWorklist

__all__ = ["ESCALATION_PERIOD", "ReadingProcess"]

ESCALATION_PERIOD = 60.0
"""Seconds between two looks for unclaimed STAT exams."""
log = logging.getLogger(__name__)


class ReadingProcess:
    """The MLLP listener, with one ordered life (see ``ServiceRuntime``); the modality
    services on the archive's listener when the process has the archive."""

    def __init__(self, runtime: Runtime, built: Processes) -> None:
        self.runtime = runtime
        self.worklist = DatabaseWorklist(runtime.sessions)
        """The modality worklist, from the scheduled steps."""
        self.mpps = DatabaseMpps(runtime.sessions, runtime.now)
        """The performed procedure steps, updating the scheduled steps."""
        try:
            imaging = built.service(ImagingProcess)
        except LookupError:
            imaging = None  # a process without the archive serves no DICOM
        if imaging is not None:
            imaging.add_dimse_service(worklist_service(self.worklist))
            imaging.add_dimse_service(mpps_service(self.mpps))
        self.outbound = OutboundSender(
            runtime.sessions,
            runtime.settings,
            runtime.now,
            before_each_period=self.announce_complete_studies,
        )
        """The delivery of the outbound HL7 queue."""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._subscribed = False
        self.mllp: MllpServer | None = None
        """The HL7 listener, while the process serves it."""
        self._limiter: CapacityLimiter | None = None
        self.imaging = imaging
        """The archive's process, where signed reports are stored (None without it)."""

    def open(self) -> None:
        """Nothing to recover: every message is stored in its own transaction."""

    async def handle(self, raw: bytes, peer: PeerInfo) -> bytes:
        """Store one message (in a worker thread) and return its acknowledgment."""
        if self._limiter is None:
            self._limiter = CapacityLimiter(self.runtime.settings.hl7_workers)
        receipt = await to_thread.run_sync(
            partial(receive, self.runtime.sessions, raw, peer=str(peer), now=self.runtime.now()),
            limiter=self._limiter,
        )
        return receipt.ack

    @asynccontextmanager
    async def serve(self) -> AsyncIterator[None]:
        """Listen for MLLP connections for the life of the server, when configured."""
        settings = self.runtime.settings
        if settings.hl7_port:
            self.mllp = MllpServer(
                self.handle,
                host=settings.hl7_host,
                port=settings.hl7_port,
                settings=MllpServerSettings(max_message_bytes=settings.hl7_max_message_bytes),
                clock=self.runtime.now,
            )
            await self.mllp.start()
        loop = asyncio.get_running_loop()
        escalation = loop.create_task(self._escalate_forever())
        delivery = None
        if settings.hl7_outbound:
            delivery = loop.create_task(self.outbound.run_forever())
            self._loop = loop
            if not self._subscribed:
                self.runtime.bus.subscribe(STUDY_RECEIVED, self._study_received)
                self._subscribed = True
        try:
            yield
        finally:
            self._loop = None
            if delivery is not None:
                await self.outbound.stop(delivery)
            escalation.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await escalation
            if self.mllp is not None:
                await self.mllp.close()
                self.mllp = None

    def _study_received(self, _topic: str, _payload: dict[str, Any]) -> None:
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(self.outbound.wake)

    def announce_complete_studies(self) -> list[int]:
        """Queue the images-available messages of the orders whose study became complete,
        in one transaction; the orders announced."""
        with transaction(self.runtime.sessions) as db:
            return queue_images_available(db, self.runtime.settings, self.runtime.now())

    def escalate(self) -> list[int]:
        """Escalate the STAT exams left unclaimed, in one transaction; the exams alerted.
        Then the flagged findings not acknowledged in time, in another; and the signed
        reports the archive did not take yet are offered to it again."""
        with transaction(self.runtime.sessions) as db:
            alerted = escalate_unclaimed(db, self.runtime, self.runtime.now())
        with transaction(self.runtime.sessions) as db:
            escalate_unacknowledged(db, self.runtime, self.runtime.now())
        if self.imaging is not None:
            archive_pending(self.imaging.archive, self.runtime.sessions, self.runtime.now())
        return alerted

    async def _escalate_forever(self) -> None:
        while True:
            await anyio.sleep(ESCALATION_PERIOD)
            try:
                alerted = await to_thread.run_sync(self.escalate)
            except Exception as error:  # retried at the next period; no patient data logged
                log.error("escalation of unclaimed STAT exams failed: %s", type(error).__name__)
                continue
            if alerted:
                log.info("escalated %d unclaimed STAT exams", len(alerted))

    def close(self) -> None:
        """Nothing held beyond ``serve``."""

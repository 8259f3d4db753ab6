"""Delivery of the queued HL7 messages to the hospital systems over MLLP.

:class:`OutboundSender` runs in ``concilium serve`` (``ReadingProcess``, unless the setting
``hl7_outbound`` is off): every ``hl7_outbound_period`` seconds, or at once when woken, it
takes the due messages (the oldest pending one of each destination,
``concilium.reading.outbound_store.claim_due``), sends each on its own connection (framing
as ``concilium.reading.mllp``, ``hl7_outbound_timeout`` to connect and again for the
answer), and records the outcome in a transaction of its own. Destinations are served side
by side; the messages of one destination one after the other, in order.

A try is recorded as begun (``sending``, attempts counted) and committed before any byte
leaves, so a process stopped while sending leaves the row ``sending``: once its lease
(``hl7_outbound_lease``) ends, the next delivery takes it again. Log lines name message
IDs, destinations, codes and sizes, never content.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from anyio import to_thread
from sqlalchemy.orm import Session, sessionmaker

from concilium.config import Settings
from concilium.platform.db import transaction
from concilium.reading.hl7v2 import Message
from concilium.reading.mllp import MllpConnection, MllpError
from concilium.reading.outbound_store import (
    Claimed,
    claim_due,
    record_answer,
    record_failure,
)

__all__ = ["Delivery", "OutboundSender"]

log = logging.getLogger(__name__)

STOP_GRACE = 5.0
"""Seconds a stopping process waits for the tries under way."""


@dataclass(frozen=True)
class Delivery:
    """What one try came to."""

    message_id: int
    state: str
    """``sent``, ``failed``, ``queued`` (to be retried), or ``""`` when the row had been
    cancelled or taken again meanwhile."""
    ack_code: str = ""


class OutboundSender:
    """The delivery loop of the queue."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        settings: Settings,
        now: Callable[[], datetime],
        *,
        before_each_period: Callable[[], object] | None = None,
    ) -> None:
        self.sessions = sessions
        self.settings = settings
        self.now = now
        self.before_each_period = before_each_period
        """Called (in a worker thread) before each look for due messages: what queues
        messages on a schedule (complete studies) runs there."""
        self._wake = asyncio.Event()
        self._stopping = False

    def wake(self) -> None:
        """Look for due messages now (from the event loop's thread)."""
        self._wake.set()

    async def run_forever(self) -> None:
        """Deliver until cancelled, or until :meth:`stop` (after the round under way)."""
        period = self.settings.hl7_outbound_period
        self._stopping = False
        while not self._stopping:
            self._wake.clear()
            if self.before_each_period is not None:
                try:
                    await to_thread.run_sync(self.before_each_period)
                except Exception as error:  # tried again at the next period; no patient data
                    log.error("queueing scheduled HL7 messages failed: %s", type(error).__name__)
            try:
                while not self._stopping and await self.deliver_due():
                    pass
            except Exception as error:  # retried at the next period; no patient data logged
                log.error("outbound HL7 delivery failed: %s", type(error).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=period)

    async def stop(self, task: asyncio.Task[None], grace: float = STOP_GRACE) -> None:
        """End ``task`` (running :meth:`run_forever`): the tries under way are given
        ``grace`` seconds to get their answer recorded, then cancelled (a try cancelled
        after it began is taken again once its lease ends)."""
        self._stopping = True
        self._wake.set()
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout=grace)
        except TimeoutError:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def deliver_due(self) -> list[Delivery]:
        """One round: take the due messages, send them, record what came of each."""
        claimed = await to_thread.run_sync(self._claim)
        if not claimed:
            return []
        return list(await asyncio.gather(*(self._deliver(c) for c in claimed)))

    def _claim(self) -> list[Claimed]:
        with transaction(self.sessions) as db:
            return claim_due(db, self.now(), self.settings.hl7_outbound_lease)

    async def _deliver(self, claimed: Claimed) -> Delivery:
        timeout = self.settings.hl7_outbound_timeout
        peer = f"{claimed.host}:{claimed.port}"
        try:
            connection = await MllpConnection.open(claimed.host, claimed.port, timeout=timeout)
            async with connection:
                raw, ack = await connection.exchange(claimed.raw, timeout=timeout)
        except (MllpError, OSError, ValueError) as error:
            log.warning(
                "outbound HL7 message %d to %s, try %d: %s",
                claimed.id,
                peer,
                claimed.attempts,
                type(error).__name__,
            )
            return await to_thread.run_sync(self._failed, claimed, _describe(error))
        msa = ack.require("MSA")
        code = msa.get(1).strip().upper()
        refusal = "" if code in ("AA", "CA") else _ack_error(ack, code)
        log.info(
            "outbound HL7 message %d to %s, try %d: %s", claimed.id, peer, claimed.attempts, code
        )
        return await to_thread.run_sync(self._answered, claimed, code, raw, refusal, peer)

    def _failed(self, claimed: Claimed, error: str) -> Delivery:
        settings = self.settings
        with transaction(self.sessions) as db:
            row = record_failure(
                db,
                claimed,
                error=error,
                now=self.now(),
                retry=settings.hl7_outbound_retry,
                retry_max=settings.hl7_outbound_retry_max,
            )
            return Delivery(claimed.id, row.state if row else "")

    def _answered(self, claimed: Claimed, code: str, raw: bytes, error: str, peer: str) -> Delivery:
        settings = self.settings
        with transaction(self.sessions) as db:
            row = record_answer(
                db,
                claimed,
                ack_code=code,
                ack_raw=raw,
                error=error,
                now=self.now(),
                retry=settings.hl7_outbound_retry,
                retry_max=settings.hl7_outbound_retry_max,
                peer=peer,
            )
            return Delivery(claimed.id, row.state if row else "", code)


def _describe(error: Exception) -> str:
    """What went wrong, without the message (MLLP errors name the address and the cause)."""
    return f"{type(error).__name__}: {error}"[:500]


def _ack_error(ack: Message, code: str) -> str:
    """MSA-3 and ERR of a refusal, as the hospital system wrote them (kept, never logged)."""
    text = ack.require("MSA").get(3)
    err = ack.segment("ERR")
    detail = (err.get(8) or err.get(3)) if err is not None else ""
    return " — ".join(part for part in (code, text, detail) if part)[:2000]

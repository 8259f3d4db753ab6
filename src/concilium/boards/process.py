"""What the boards hold in a running process: the sockets of the meetings' rooms, and the
fan-out of what each room is told through the platform's event bus (Redis pub/sub between
processes when configured), so that a presenter served by one process drives the viewers
of participants served by another."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from concilium.boards.room import TOPIC
from concilium.platform.events import EventBus
from concilium.platform.runtime import Runtime
from concilium.platform.services import Processes

__all__ = ["BoardsProcess", "Listener", "RoomHub"]

log = logging.getLogger(__name__)

QUEUE_LIMIT = 256
"""Events waiting for one slow socket before it is dropped from the room."""


@dataclass(eq=False)
class Listener:
    """One socket of a meeting's room: what it is told waits in its queue, in order."""

    user_id: int
    token: str
    """Names the socket in the events it causes (it is not told its own views back)."""
    queue: asyncio.Queue[dict[str, Any] | None] = field(
        default_factory=lambda: asyncio.Queue(QUEUE_LIMIT)
    )
    loop: asyncio.AbstractEventLoop | None = None
    """The loop serving the socket (set when it joins the room)."""


class RoomHub:
    """The sockets of each meeting's room in this process, told every event published on
    the bus for their meeting, whichever process published it."""

    def __init__(self, bus: EventBus) -> None:
        self._bus = bus
        self._lock = threading.Lock()
        self._listeners: dict[int, list[Listener]] = defaultdict(list)
        bus.subscribe(TOPIC, self._on_event)

    def attach(self, meeting_id: int, listener: Listener) -> None:
        listener.loop = asyncio.get_running_loop()
        with self._lock:
            self._listeners[meeting_id].append(listener)

    def detach(self, meeting_id: int, listener: Listener) -> None:
        with self._lock:
            listeners = self._listeners.get(meeting_id, [])
            if listener in listeners:
                listeners.remove(listener)
            if not listeners:
                self._listeners.pop(meeting_id, None)

    def sockets_of(self, meeting_id: int, user_id: int) -> int:
        """How many sockets ``user_id`` has open on the meeting in this process."""
        with self._lock:
            listeners = list(self._listeners.get(meeting_id, []))
        return sum(1 for listener in listeners if listener.user_id == user_id)

    def publish(self, meeting_id: int, event: dict[str, Any], origin: str = "") -> None:
        """Tell every socket of the meeting, in every process (but ``origin``'s)."""
        self._bus.publish(TOPIC, {"meeting": meeting_id, "origin": origin, "event": event})

    def _on_event(self, topic: str, payload: dict[str, Any]) -> None:
        # Called on the publisher's thread (in process) or the bus listener's (Redis).
        try:
            meeting_id = int(payload["meeting"])
            origin = str(payload.get("origin", ""))
            event = dict(payload["event"])
        except (KeyError, TypeError, ValueError):
            log.warning("malformed meeting room event ignored")
            return
        with self._lock:
            listeners = list(self._listeners.get(meeting_id, []))
        for listener in listeners:
            loop = listener.loop
            if (origin and listener.token == origin) or loop is None or loop.is_closed():
                continue
            try:
                loop.call_soon_threadsafe(self._put, meeting_id, listener, event)
            except RuntimeError:  # the loop closed meanwhile
                continue

    def _put(self, meeting_id: int, listener: Listener, event: dict[str, Any]) -> None:
        try:
            listener.queue.put_nowait(event)
        except asyncio.QueueFull:
            log.warning("a meeting room socket fell behind and is dropped")
            self.detach(meeting_id, listener)
            while not listener.queue.empty():
                listener.queue.get_nowait()
            listener.queue.put_nowait(None)


class BoardsProcess:
    """The boards of one process, with one ordered life (see ``ServiceRuntime``)."""

    def __init__(self, runtime: Runtime, built: Processes) -> None:
        self.runtime = runtime
        self.rooms = RoomHub(runtime.bus)
        """The sockets of the meetings' rooms."""

    def open(self) -> None:
        """Nothing to recover: a room's state is in the database."""

    @asynccontextmanager
    async def serve(self) -> AsyncIterator[None]:
        yield

    def close(self) -> None:
        """Nothing to release."""

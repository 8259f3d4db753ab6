"""The live link status of each procedure: the samples the gateways report about once a second,
shared by every Concilium process through the event bus and shown on the procedure page."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from typing import Any

from concilium.platform.errors import InvalidInput
from concilium.platform.events import EventBus
from concilium.telesurgery.procedures import GATEWAY_ROLES

__all__ = ["STATUS_FIELDS", "STATUS_TOPIC", "LinkStatusBoard"]

logger = logging.getLogger(__name__)


STATUS_FIELDS = (
    "state",
    "latency_ms",
    "jitter_ms",
    "rtt_ms",
    "loss",
    "reordering",
    "command_rate_hz",
    "robot_position_mm",
)
"""What a gateway's status sample may carry."""
STATUS_TOPIC = "telesurgery.link_status"
"""Event bus topic of the samples, so that every Concilium process shows them."""


class LinkStatusBoard:
    """The latest link status of each procedure, as the gateways report it about once a
    second. Kept in memory: samples are frequent and only the latest matters; what must be
    kept (transitions, alarms) goes to the timeline.

    With an event bus, a sample ingested by one Concilium process is published and every
    process's board (this one included) takes it from the bus, so a supervision page served
    by any of them sees it; without one, the board is this process's only.

    A procedure's sample has each side's own view under ``sides`` (``console``, ``robot``)
    and, at the top, the robot gateway's: the side where the safety machine runs."""

    def __init__(self, bus: EventBus | None = None) -> None:
        self._lock = threading.Lock()
        self._latest: dict[int, tuple[int, dict[str, Any]]] = {}
        self._bus = bus
        if bus is not None:
            bus.subscribe(STATUS_TOPIC, self._on_event)

    def update(self, procedure_id: int, source: str, sample: Mapping[str, Any]) -> None:
        """Take a gateway's sample (unknown fields are ignored)."""
        if source not in GATEWAY_ROLES:
            raise InvalidInput(f"the source is 'console' or 'robot', not {source!r}")
        clean = {k: sample[k] for k in STATUS_FIELDS if k in sample}
        received_at = time.time()
        if self._bus is None:
            self._apply(procedure_id, source, clean, received_at)
            return
        event = {"procedure_id": procedure_id, "source": source, "sample": clean}
        self._bus.publish(STATUS_TOPIC, {**event, "at": received_at})

    def _on_event(self, topic: str, payload: dict[str, Any]) -> None:
        try:
            procedure_id = int(payload["procedure_id"])
            source = str(payload["source"])
            sample = payload["sample"]
            received_at = float(payload["at"])
        except (KeyError, TypeError, ValueError):
            logger.warning("malformed link status event ignored")
            return
        if source not in GATEWAY_ROLES or not isinstance(sample, dict):
            logger.warning("malformed link status event ignored")
            return
        clean = {k: sample[k] for k in STATUS_FIELDS if k in sample}
        self._apply(procedure_id, source, clean, received_at)

    def _apply(
        self, procedure_id: int, source: str, sample: dict[str, Any], received_at: float
    ) -> None:
        with self._lock:
            version, current = self._latest.get(procedure_id, (0, {}))
            merged = dict(current)
            if source == "robot":
                merged.update(sample)
            merged[f"{source}_seen"] = True
            sides = dict(merged.get("sides", {}))
            sides[source] = {**sample, "at": received_at}
            merged["sides"] = sides
            self._latest[procedure_id] = (version + 1, merged)

    def latest(self, procedure_id: int) -> tuple[int, dict[str, Any]]:
        """(version, sample); version 0 means nothing reported yet."""
        with self._lock:
            version, sample = self._latest.get(procedure_id, (0, {}))
            return version, dict(sample)

"""A gateway's report to the platform: the robot gateway's safety transitions (kept in the
procedure timeline and audited) and, about once a second, each gateway's view of the link
(shown on the supervision page, both sides, and on the surgeon's view). The platform knows
which side reports from the enrolment token.

The report never stands in the safety loop's way: transitions are queued by a hook and sent
by a task of their own; when the platform is unreachable they wait (bounded) and go with the
next attempt, and the gateway goes on driving the robot.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import urllib.error
import urllib.request
from collections import deque
from datetime import UTC, datetime
from typing import Any

from concilium.platform.i18n import _
from concilium.telesurgery.gateways import ConsoleGateway, RobotGateway
from concilium.telesurgery.link import Drop, SequenceCount, link_quality
from concilium.telesurgery.safety import Transition

logger = logging.getLogger(__name__)

MAX_PENDING = 10_000
"""Events kept while the platform is unreachable; the oldest go first beyond this."""
ALARM_DROPS = (
    Drop.AUTH_FAILED,
    Drop.UNKNOWN_KEY,
    Drop.MALFORMED,
    Drop.REPLAY,
    Drop.NEGATIVE_AGE,
)
"""Link drops that mean someone else is talking on the link, or that the link's clock cannot
be trusted (a command younger than possible): each new one raises an alarm."""


class TimelineReporter:
    """Posts a gateway's transitions, alarms, refusals and status to the platform."""

    def __init__(
        self,
        base_url: str,
        procedure_id: int,
        api_token: str,
        gateway_token: str,
        interval: float = 1.0,
    ) -> None:
        if interval <= 0:
            raise ValueError(
                _("%(name)s must be positive, got %(value)s")
                % {"name": "interval", "value": interval}
            )
        self.url = f"{base_url.rstrip('/')}/api/v1/telesurgery/procedures/{procedure_id}/timeline"
        self.headers = {
            "authorization": f"Bearer {api_token}",
            "x-gateway-token": gateway_token,
        }
        self.interval = interval
        self.pending: deque[dict[str, Any]] = deque(maxlen=MAX_PENDING)
        self.failures = 0
        """Reports the platform did not accept (logged, retried)."""
        self._gateway: RobotGateway | ConsoleGateway | None = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._last_commands = 0
        self._last_time: float | None = None
        self._last_count: SequenceCount | None = None
        self._seen: dict[str, int] = {}

    def attach(self, gateway: RobotGateway | ConsoleGateway) -> None:
        """Hook onto the gateway's transitions (the robot side has the safety machine)."""
        self._gateway = gateway
        if isinstance(gateway, RobotGateway):
            gateway.on_transition.append(self._on_transition)

    def _on_transition(self, transition: Transition) -> None:
        self._event("transition", transition.reason, transition.state.value)
        self._wake.set()

    def _event(self, kind: str, detail: str, state: str = "") -> None:
        self.pending.append(
            {
                "at": datetime.now(UTC).isoformat(),
                "kind": kind,
                "state": state,
                "detail": detail[:2000],
            }
        )

    def collect_counters(self) -> None:
        """Turn what the gateway counted since the last report into timeline events: an
        alarm for datagrams that failed authentication or were malformed or replayed and for
        commands younger than the link's clock allows, and a refusal for commands refused
        (for the robot's state or a motion limit)."""
        gateway = self._gateway
        if gateway is None:
            return
        counts = {f"drop:{reason.value}": gateway.session.drops[reason] for reason in ALARM_DROPS}
        counts.update(
            {name: n for name, n in gateway.counters.items() if name.startswith("refused_")}
        )
        alarms, refusals = [], []
        for name, count in sorted(counts.items()):
            new = count - self._seen.get(name, 0)
            self._seen[name] = count
            if new <= 0:
                continue
            if name.startswith("drop:"):
                alarms.append(f"{new} datagram(s) dropped: {name.removeprefix('drop:')}")
            else:
                refusals.append(f"{new} command(s) {name.replace('_', ' ')}")
        if alarms:
            self._event("alarm", "; ".join(alarms))
        if refusals:
            self._event("refusal", "; ".join(refusals))

    def status(self) -> dict[str, Any]:
        """The current link status sample of the attached gateway, as seen from its side:
        what it received (loss and reordering since the last sample, from sequence numbers),
        the round trip, and the command rate (executed on the robot side, sent on the
        console side)."""
        gateway = self._gateway
        if gateway is None:
            return {}
        robot_side = isinstance(gateway, RobotGateway)
        if isinstance(gateway, RobotGateway) and gateway.safety is None:
            return {}
        session = gateway.session
        loop_time = asyncio.get_running_loop().time()
        commands = gateway.counters["executed" if robot_side else "commands_sent"]
        rate = None
        if self._last_time is not None and loop_time > self._last_time:
            rate = (commands - self._last_commands) / (loop_time - self._last_time)
        self._last_commands, self._last_time = commands, loop_time
        count = session.sequence_count()
        quality = link_quality(self._last_count, count)
        self._last_count = count
        rtt = session.clock.rtt_ns
        sample: dict[str, Any] = {
            "rtt_ms": None if rtt is None else rtt / 1e6,
            "command_rate_hz": rate,
            "loss": None if quality is None else quality[0],
            "reordering": None if quality is None else quality[1],
        }
        if isinstance(gateway, RobotGateway) and gateway.safety is not None:
            sample.update(
                state=gateway.state.value,
                latency_ms=gateway.safety.smoothed_latency_ms,
                jitter_ms=session.jitter.jitter_ns / 1e6,
                robot_position_mm=list(gateway.measured) if gateway.measured else None,
            )
        return {k: v for k, v in sample.items() if v is not None}

    def _post(self, body: dict[str, Any]) -> int:
        request = urllib.request.Request(  # noqa: S310 - the operator's platform URL
            self.url,
            data=json.dumps(body).encode(),
            headers={**self.headers, "content-type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=5.0) as response:  # noqa: S310
                return int(response.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)

    async def send_once(self) -> bool:
        """Send what is pending and the status; True when the platform accepted it."""
        self.collect_counters()
        events = list(self.pending)
        body = {"events": events, "status": self.status()}
        try:
            # The standard library's client blocks: it runs beside the loop, never in it.
            status = await asyncio.to_thread(self._post, body)
        except OSError as exc:
            self.failures += 1
            logger.warning("timeline report failed: %s", exc)
            return False
        if status != 201:
            self.failures += 1
            logger.warning("timeline report refused with HTTP status %s", status)
            return False
        for _event in events:
            self.pending.popleft()
        return True

    async def run(self) -> None:
        """Report until cancelled: at once after a transition, else every ``interval``."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)
            self._wake.clear()
            await self.send_once()

    def start(self) -> None:
        """Run in the current event loop."""
        self._task = asyncio.get_running_loop().create_task(self.run())

    async def close(self) -> None:
        """Stop reporting."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

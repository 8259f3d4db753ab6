"""The two gateways: thin adapters between OpenIGTLink TCP peers and the UDP link.

Console gateway: an OpenIGTLink server for the master console. TRANSFORM/POSITION poses go
through motion scaling and the clutch and leave as COMMAND datagrams; STRING "ENGAGE",
"DISENGAGE", "CLUTCH ON", "CLUTCH OFF" are the console's controls. Telemetry and STATUS
from the robot side are passed to the console.

Robot gateway: receives COMMAND datagrams, runs them through the safety state machine and
the motion limits, and drives the robot controller as an OpenIGTLink client (TRANSFORM
"TARGET", STRING "SAFETY"). The link's clock estimate (the round trip its offset comes from)
and its clock alarms feed the safety state machine too. Every transition and refusal is
reported as a STATUS to the console; the controller's TRANSFORM "MEASURED" flows back as
TELEMETRY and its STRING "LOCAL" messages carry the local team's confirmations and takeovers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import Counter, deque
from collections.abc import Callable
from typing import Any

from concilium.telesurgery import devices
from concilium.telesurgery import openigtlink as igtl
from concilium.telesurgery.limits import MotionLimits, Rotation, Vector, check_command
from concilium.telesurgery.link import (
    ClockSample,
    Datagram,
    Drop,
    Dropped,
    Kind,
    LinkEndpoint,
    LinkSession,
    ProcedureKeys,
)
from concilium.telesurgery.motion import MotionMapper, MotionScaling
from concilium.telesurgery.safety import (
    SafetyState,
    SafetyStateMachine,
    SafetyThresholds,
    Transition,
    status_for,
    status_for_state,
)

logger = logging.getLogger(__name__)

REFUSAL_STATUS_INTERVAL = 0.1
"""Least time between two STATUS reports of commands refused for the robot's state."""
STATE_BEACON_INTERVAL = 1.0
"""Period of the STATUS repeating the current safety state to the console."""


def _status(code: igtl.StatusCode, name: str, text: str) -> igtl.Message:
    return igtl.status_message(devices.GATEWAY, code, name, text, timestamp=time.time())


def summarise_ns(samples: deque[int]) -> dict[str, float]:
    """p50, p99 and max of durations in nanoseconds, in milliseconds."""
    if not samples:
        return {}
    ordered = sorted(samples)
    last = len(ordered) - 1
    return {
        "p50": ordered[last // 2] / 1e6,
        "p99": ordered[last * 99 // 100] / 1e6,
        "max": ordered[last] / 1e6,
    }


MAX_WRITE_BUFFER = 1 << 20
"""Bytes queued for a TCP peer beyond which further messages to it are dropped."""


def write_bounded(writer: asyncio.StreamWriter, data: bytes, counters: Counter[str]) -> bool:
    """Write unless the peer has stopped reading; a stuck peer must not grow memory."""
    if writer.is_closing():
        return False
    if writer.transport.get_write_buffer_size() > MAX_WRITE_BUFFER:
        counters["peer_backlog_drops"] += 1
        return False
    writer.write(data)
    return True


def position_to_transform(position: igtl.Position) -> igtl.Transform:
    """Rotation matrix of a POSITION's quaternion (normalised) with its translation."""
    x, y, z, w = position.quaternion
    n = math.sqrt(x * x + y * y + z * z + w * w) or 1.0
    x, y, z, w = x / n, y / n, z / n, w / n
    rotation = (
        1 - 2 * (y * y + z * z),
        2 * (x * y - z * w),
        2 * (x * z + y * w),
        2 * (x * y + z * w),
        1 - 2 * (x * x + z * z),
        2 * (y * z - x * w),
        2 * (x * z - y * w),
        2 * (y * z + x * w),
        1 - 2 * (x * x + y * y),
    )
    return igtl.Transform(rotation=rotation, translation=position.position)


async def serve_igtl_connection(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    on_message: Callable[[igtl.Message], None],
    counters: Counter[str],
) -> None:
    """Read messages until the peer leaves; bad ones are answered with a STATUS and counted.

    A bad CRC, size or type consumed its announced body, so the stream is still aligned;
    an unreadable header or an absurd body size leaves nothing to resynchronise on, so the
    connection is closed after the STATUS.
    """
    try:
        while True:
            try:
                message = await igtl.read_message(reader)
            except igtl.OpenIGTLinkError as exc:
                counters[f"igtl_{type(exc).__name__}"] += 1
                device = exc.header.device_name if exc.header else devices.GATEWAY
                writer.write(
                    igtl.pack(
                        igtl.status_message(
                            device or devices.GATEWAY,
                            exc.status_code,
                            type(exc).__name__,
                            str(exc),
                            timestamp=time.time(),
                        )
                    )
                )
                if isinstance(exc, igtl.FramingError | igtl.HeaderError):
                    break
                continue
            try:
                on_message(message)
            except Exception:
                # A handler bug must not drop the connection to a console or a robot.
                logger.exception("handler failed on %s %r", message.type_name, message.device_name)
                counters["handler_error"] += 1
                writer.write(
                    igtl.pack(
                        _status(
                            igtl.StatusCode.UNKNOWN_ERROR,
                            "INTERNAL",
                            f"{message.type_name} not handled",
                        )
                    )
                )
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


class ConsoleGateway:
    """Master console (OpenIGTLink server) to UDP link."""

    def __init__(
        self,
        keys: ProcedureKeys,
        link_remote: tuple[str, int],
        link_local: tuple[str, int] = ("127.0.0.1", 0),
        igtl_host: str = "127.0.0.1",
        igtl_port: int = 18944,
        scaling: MotionScaling | None = None,
        freshness_ms: float = 150.0,
        heartbeat_interval: float = 0.01,
    ) -> None:
        self.session = LinkSession(keys, "console", freshness_ns=int(freshness_ms * 1e6))
        self.freshness_s = freshness_ms / 1000.0
        self._stale_reported_at = -math.inf
        self.link_remote = link_remote
        self.link_local = link_local
        self.igtl_host = igtl_host
        self.igtl_port = igtl_port
        self.heartbeat_interval = heartbeat_interval
        self.mapper = MotionMapper(scaling or MotionScaling())
        self.counters: Counter[str] = Counter()
        self.link: LinkEndpoint | None = None
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.statuses: deque[igtl.Status] = deque(maxlen=1000)
        self.forwarding_ns: deque[int] = deque(maxlen=100_000)
        """Time from a pose read off the console's stream to its datagram sent."""

    async def start(self) -> None:
        """Bind the link socket and the OpenIGTLink server."""
        self.link = await LinkEndpoint.start(
            self.session,
            self.on_datagram,
            local=self.link_local,
            remote=self.link_remote,
            heartbeat_interval=self.heartbeat_interval,
        )
        self._server = await asyncio.start_server(self._serve, self.igtl_host, self.igtl_port)
        self.igtl_port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        """Stop serving."""
        if self.link is not None:
            self.link.close()
        for writer in list(self._writers):
            writer.close()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            await serve_igtl_connection(
                reader, writer, lambda m: self.on_console_message(m, writer), self.counters
            )
        finally:
            self._writers.discard(writer)

    def _send_command(self, message: igtl.Message) -> None:
        assert self.link is not None
        self.link.send(Kind.COMMAND, igtl.pack(message))
        self.counters["commands_sent"] += 1

    def on_console_message(self, message: igtl.Message, writer: asyncio.StreamWriter) -> None:
        """Handle one message from the master console."""
        started = time.perf_counter_ns()
        content = message.content
        if isinstance(content, igtl.Position):
            content = position_to_transform(content)
        if isinstance(content, igtl.Transform):
            # The console and its gateway share a site clock: a pose the gateway only reads
            # after the freshness budget (a stalled process, a backed-up socket) is dropped
            # here, because the link would otherwise stamp it as new.
            age = time.time() - message.timestamp
            if message.timestamp and age > self.freshness_s:
                self.counters["stale_from_console"] += 1
                if time.monotonic() - self._stale_reported_at >= REFUSAL_STATUS_INTERVAL:
                    self._stale_reported_at = time.monotonic()
                    write_bounded(
                        writer,
                        igtl.pack(
                            _status(
                                igtl.StatusCode.TIME_OUT,
                                "STALE",
                                f"pose {age * 1000:.0f} ms old dropped "
                                f"(budget {self.freshness_s * 1000:g} ms)",
                            )
                        ),
                        self.counters,
                    )
                return
            target = self.mapper.update(content)
            if target is not None:
                stamp = message.timestamp or time.time()
                self._send_command(igtl.Message(devices.TARGET, target, timestamp=stamp))
                self.forwarding_ns.append(time.perf_counter_ns() - started)
            return
        if isinstance(content, igtl.String):
            text = content.text.strip().upper()
            if text in ("ENGAGE", "DISENGAGE"):
                self._send_command(
                    igtl.Message(devices.CONTROL, igtl.String(text), timestamp=time.time())
                )
                if text == "ENGAGE" and not self.session.clock.synchronised:
                    # The robot side refuses commands until a heartbeat exchange completed;
                    # say so rather than let the request vanish.
                    write_bounded(
                        writer,
                        igtl.pack(
                            _status(
                                igtl.StatusCode.NOT_READY,
                                "LINK_NOT_READY",
                                "no heartbeat exchange with the robot side yet; "
                                "ENGAGE may be dropped, retry",
                            )
                        ),
                        self.counters,
                    )
            elif text in ("CLUTCH ON", "CLUTCH OFF"):
                self.mapper.set_clutch(text == "CLUTCH ON")
            else:
                self.counters["unknown_control"] += 1
                writer.write(
                    igtl.pack(
                        _status(
                            igtl.StatusCode.UNKNOWN_INSTRUCTION,
                            "UNKNOWN_CONTROL",
                            f"unknown console control {content.text!r}",
                        )
                    )
                )
            return
        self.counters["ignored_from_console"] += 1

    def on_datagram(self, datagram: Datagram) -> None:
        """Pass telemetry and STATUS from the robot side to the console."""
        if datagram.kind not in (Kind.TELEMETRY, Kind.STATUS):
            self.counters["unexpected_kind"] += 1
            return
        try:
            message = igtl.unpack(datagram.payload)
        except igtl.OpenIGTLinkError:
            self.counters["malformed_from_robot"] += 1
            return
        if isinstance(message.content, igtl.Status):
            self.statuses.append(message.content)
        elif (
            isinstance(message.content, igtl.Transform) and message.device_name == devices.MEASURED
        ):
            self.mapper.observe_robot(message.content.translation)
        # Checked above; the bytes go to the console as the robot side framed them.
        data = datagram.payload
        for writer in list(self._writers):
            write_bounded(writer, data, self.counters)

    def stats(self) -> dict[str, Any]:
        """Counters of the gateway and its link."""
        return {
            "gateway": dict(self.counters),
            "forwarding_ms": summarise_ns(self.forwarding_ns),
            "link": self.session.stats(),
        }


class RobotGateway:
    """UDP link to safety, limits and the robot controller (OpenIGTLink client)."""

    def __init__(
        self,
        keys: ProcedureKeys,
        robot_host: str,
        robot_port: int,
        thresholds: SafetyThresholds | None = None,
        limits: MotionLimits | None = None,
        link_local: tuple[str, int] = ("127.0.0.1", 0),
        link_remote: tuple[str, int] | None = None,
        heartbeat_interval: float = 0.01,
    ) -> None:
        self.thresholds = thresholds or SafetyThresholds()
        self.limits = limits or MotionLimits()
        self.session = LinkSession(
            keys, "robot", freshness_ns=int(self.thresholds.command_freshness_ms * 1e6)
        )
        self.robot_host = robot_host
        self.robot_port = robot_port
        self.link_local = link_local
        self.link_remote = link_remote
        self.heartbeat_interval = heartbeat_interval
        self.counters: Counter[str] = Counter()
        self.link: LinkEndpoint | None = None
        self.safety: SafetyStateMachine | None = None
        self.refusals: deque[str] = deque(maxlen=1000)
        self.forwarding_ns: deque[int] = deque(maxlen=100_000)
        """Time from a command datagram's arrival to its TARGET written to the robot."""
        self.measured: Vector | None = None
        """The robot's last measured tool position."""
        self.on_transition: list[Callable[[Transition], None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._robot_writer: asyncio.StreamWriter | None = None
        self._robot_task: asyncio.Task[None] | None = None
        self._beacon_task: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._previous: tuple[Vector, float, Rotation] | None = None
        """The last executed command: position, sender's time, orientation."""
        self._last_state_refusal = -math.inf
        self._state_refusals_since_report = 0
        self._last_clock_alarm = -math.inf
        self._clock_alarms_since_report = 0

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Bind the link socket and connect to the robot controller (retrying)."""
        self._loop = asyncio.get_running_loop()
        self.safety = SafetyStateMachine(self.thresholds, now=self._loop.time())
        self.link = await LinkEndpoint.start(
            self.session,
            self.on_datagram,
            local=self.link_local,
            remote=self.link_remote,
            heartbeat_interval=self.heartbeat_interval,
            on_dropped=self.on_link_dropped,
            on_clock=self.on_clock_sample,
        )
        self._robot_task = self._loop.create_task(self._robot_connection())
        self._beacon_task = self._loop.create_task(self._state_beacon())

    async def close(self) -> None:
        """Stop."""
        if self._timer is not None:
            self._timer.cancel()
        if self._beacon_task is not None:
            self._beacon_task.cancel()
        if self._robot_task is not None:
            self._robot_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._robot_task
        if self.link is not None:
            self.link.close()

    @property
    def state(self) -> SafetyState:
        """Current safety state."""
        assert self.safety is not None
        return self.safety.state

    @property
    def robot_connected(self) -> bool:
        """Whether the robot controller connection is up."""
        return self._robot_writer is not None and not self._robot_writer.is_closing()

    def _now(self) -> float:
        assert self._loop is not None
        return self._loop.time()

    async def _robot_connection(self) -> None:
        while True:
            try:
                reader, writer = await asyncio.open_connection(self.robot_host, self.robot_port)
            except OSError:
                await asyncio.sleep(0.05)
                continue
            self._robot_writer = writer
            assert self.safety is not None
            self._send_robot(
                igtl.Message(devices.SAFETY, igtl.String(self.safety.state.value), time.time())
            )
            await serve_igtl_connection(reader, writer, self.on_robot_message, self.counters)
            self._robot_writer = None
            self.counters["robot_disconnects"] += 1
            self._apply(self.safety.robot_lost(self._now()))
            await asyncio.sleep(0.05)

    # -- the safety loop -----------------------------------------------------------------

    def _apply(self, transitions: list[Transition]) -> None:
        for transition in transitions:
            logger.info(
                "safety %s -> %s: %s",
                transition.previous.value,
                transition.state.value,
                transition.reason,
            )
            status = igtl.Message(devices.GATEWAY, status_for(transition), timestamp=time.time())
            self._send_console(status)
            self._send_robot(
                igtl.Message(devices.SAFETY, igtl.String(transition.state.value), time.time())
            )
            self._send_robot(status)
            for hook in self.on_transition:
                hook(transition)
            if transition.state not in (SafetyState.ENGAGED, SafetyState.DEGRADED):
                self._previous = None
        self._arm_timer()

    async def _state_beacon(self) -> None:
        # A transition's STATUS can be lost with the link; the console learns the current
        # state again within a second once the link is back.
        while True:
            await asyncio.sleep(STATE_BEACON_INTERVAL)
            if self.safety is not None:
                state = self.safety.state
                link = self.session
                rtt = link.clock.rtt_ns
                uncertainty = link.clock.uncertainty_ns(time.time_ns())
                text = (
                    f"state {state.value}; link one-way "
                    f"{(self.safety.smoothed_latency_ms or 0.0):.1f} ms, jitter "
                    f"{link.jitter.jitter_ns / 1e6:.1f} ms, RTT "
                    f"{'?' if rtt is None else f'{rtt / 1e6:.1f}'} ms, clock +-"
                    f"{'?' if uncertainty is None else f'{uncertainty / 1e6:.1f}'} ms"
                )
                self._send_console(_status(status_for_state(state), state.value, text))

    def _arm_timer(self) -> None:
        assert self.safety is not None and self._loop is not None
        deadline = self.safety.next_deadline()
        if self._timer is not None:
            # An earlier timer is kept: it re-arms itself when it finds the deadline moved,
            # which costs one timer per watchdog period instead of one per command.
            if deadline is not None and self._timer.when() <= deadline + 1e-4:
                return
            self._timer.cancel()
            self._timer = None
        if deadline is not None:
            # A hair past the deadline, so the watchdog sees the silence as expired.
            self._timer = self._loop.call_at(deadline + 1e-4, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        assert self.safety is not None
        self._apply(self.safety.tick(self._now()))
        self._arm_timer()

    def tick(self) -> None:
        """Let the state machine see the current time (the timer does this by itself)."""
        assert self.safety is not None
        self._apply(self.safety.tick(self._now()))

    def confirm_engage(self) -> None:
        """Local team confirmation (also reachable as STRING "LOCAL" CONFIRM_ENGAGE)."""
        assert self.safety is not None
        self._apply(self.safety.confirm_engage(self._now()))

    def local_takeover(self) -> None:
        """Local team takeover."""
        assert self.safety is not None
        self._apply(self.safety.local_takeover(self._now()))

    def local_release(self) -> None:
        """Local team hands back."""
        assert self.safety is not None
        self._apply(self.safety.local_release(self._now()))

    # -- inputs --------------------------------------------------------------------------

    def _send_console(self, message: igtl.Message) -> None:
        if self.link is not None:
            self.link.send(Kind.STATUS, igtl.pack(message))

    def _send_robot(self, message: igtl.Message) -> None:
        self._send_robot_bytes(igtl.pack(message))

    def _send_robot_bytes(self, data: bytes) -> None:
        writer = self._robot_writer
        if writer is not None:
            write_bounded(writer, data, self.counters)

    def _refuse(self, code: igtl.StatusCode, name: str, reason: str) -> None:
        self.counters[f"refused_{name.lower()}"] += 1
        self.refusals.append(reason)
        self._send_console(_status(code, name, reason))

    def on_datagram(self, datagram: Datagram) -> None:
        """Handle one authenticated, fresh datagram from the console gateway."""
        if datagram.kind is not Kind.COMMAND:
            self.counters["unexpected_kind"] += 1
            return
        try:
            message = igtl.unpack(datagram.payload)
        except igtl.OpenIGTLinkError as exc:
            self._refuse(exc.status_code, "MALFORMED", f"malformed command: {exc}")
            return
        assert self.safety is not None
        now = self._now()
        content = message.content
        if isinstance(content, igtl.String) and message.device_name == devices.CONTROL:
            if content.text == "ENGAGE":
                self._apply(self.safety.request_engage(now))
            elif content.text == "DISENGAGE":
                self._apply(self.safety.surgeon_disengage(now))
            else:
                self._refuse(igtl.StatusCode.UNKNOWN_INSTRUCTION, "UNKNOWN_CONTROL", content.text)
            return
        if not isinstance(content, igtl.Transform):
            self._refuse(
                igtl.StatusCode.UNKNOWN_INSTRUCTION,
                "UNSUPPORTED",
                f"{message.type_name} is not a motion command",
            )
            return
        # Link quality is judged on the network's latency (kernel arrival time); this
        # process's own delays are bounded by the freshness check and the watchdog instead.
        network_ns = datagram.network_latency_ns
        latency_ms = (network_ns if network_ns is not None else datagram.latency_ns or 0) / 1e6
        jitter_ms = self.session.jitter.jitter_ns / 1e6
        decision, transitions = self.safety.on_command(now, latency_ms, jitter_ms)
        self._apply(transitions)
        if not decision.execute:
            self._refuse_for_state(now, decision.reason)
            return
        # The console's own timestamp is the surgeon's timing; the link's reflects batching.
        sent_at = message.timestamp or datagram.sent_ns / 1e9
        previous = self._previous
        verdict = check_command(
            self.limits,
            content.translation,
            sent_at,
            previous[0] if previous else self.measured,
            previous[1] if previous else None,
            content.rotation,
            previous[2] if previous else None,
        )
        if not verdict.accepted:
            self._refuse(igtl.StatusCode.OVERFLOW, "LIMIT", verdict.reason)
            return
        if not self.robot_connected:
            self._refuse(igtl.StatusCode.NOT_PRESENT, "NO_ROBOT", "robot controller not connected")
            return
        self._previous = (content.translation, sent_at, content.rotation)
        self.counters["executed"] += 1
        if message.device_name == devices.TARGET and message.header_version == 1:
            # Already a checked TARGET in the robot's framing: pass the bytes on unchanged.
            self._send_robot_bytes(datagram.payload)
        else:
            self._send_robot(igtl.Message(devices.TARGET, content, timestamp=message.timestamp))
        # From the kernel's receipt of the datagram: includes waiting for this process.
        self.forwarding_ns.append(time.time_ns() - datagram.arrived_ns)

    def on_clock_sample(self, sample: ClockSample) -> None:
        """A heartbeat exchange completed: the safety state machine judges the round trip of
        the exchange the clock offset now comes from (not necessarily this one)."""
        best = self.session.clock.best()
        if self.safety is None or best is None:
            return
        self._apply(self.safety.on_clock(self._now(), best.rtt_ns / 1e6))

    def on_link_dropped(self, dropped: Dropped) -> None:
        """A datagram was dropped: a command with an impossible age is a clock alarm."""
        if dropped.reason is not Drop.NEGATIVE_AGE or self.safety is None:
            return
        now = self._now()
        detail = (
            f"command {-(dropped.age_ns or 0) / 1e6:.1f} ms younger than possible "
            f"(clock uncertainty +-{(dropped.uncertainty_ns or 0) / 1e6:.1f} ms)"
        )
        self._apply(self.safety.clock_alarm(now, detail))
        # Every command may raise it while the clocks disagree: report in batches.
        self._clock_alarms_since_report += 1
        if now - self._last_clock_alarm >= REFUSAL_STATUS_INTERVAL:
            count = self._clock_alarms_since_report
            self._last_clock_alarm = now
            self._clock_alarms_since_report = 0
            self.refusals.append(f"clock alarm: {detail}")
            self._send_console(
                _status(
                    igtl.StatusCode.UNKNOWN_ERROR,
                    "CLOCK_ALARM",
                    f"{count} command(s) dropped, {detail}",
                )
            )

    def _refuse_for_state(self, now: float, reason: str) -> None:
        # At 1 kHz a refusal per command would flood the console; report them in batches.
        self.counters["refused_state"] += 1
        self._state_refusals_since_report += 1
        if now - self._last_state_refusal >= REFUSAL_STATUS_INTERVAL:
            count = self._state_refusals_since_report
            self._last_state_refusal = now
            self._state_refusals_since_report = 0
            self.refusals.append(reason)
            self._send_console(
                _status(
                    igtl.StatusCode.NOT_READY, "REFUSED", f"{count} command(s) refused: {reason}"
                )
            )

    def on_robot_message(self, message: igtl.Message) -> None:
        """Handle one message from the robot controller."""
        content = message.content
        if isinstance(content, igtl.Transform) and message.device_name == devices.MEASURED:
            self.measured = content.translation
            if self.link is not None:
                self.link.send(Kind.TELEMETRY, igtl.pack(message))
            return
        if isinstance(content, igtl.String) and message.device_name == devices.LOCAL:
            action = content.text.strip().upper()
            if action == "CONFIRM_ENGAGE":
                self.confirm_engage()
            elif action == "TAKEOVER":
                self.local_takeover()
            elif action == "RELEASE":
                self.local_release()
            else:
                self.counters["unknown_local"] += 1
            return
        self.counters["ignored_from_robot"] += 1

    def stats(self) -> dict[str, Any]:
        """Counters, state and link estimates."""
        return {
            "state": self.state.value if self.safety else None,
            "gateway": dict(self.counters),
            "forwarding_ms": summarise_ns(self.forwarding_ns),
            "link": self.session.stats(),
        }

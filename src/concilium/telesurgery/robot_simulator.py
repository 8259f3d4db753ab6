"""A kinematic robot arm speaking OpenIGTLink over TCP, for tests and the demo.

The arm has three prismatic joints (x, y, z, millimetres) and a revolute wrist (yaw,
radians), each with position and velocity limits. It follows TRANSFORM "TARGET" commands
only while the gateway's last STRING "SAFETY" said ENGAGED or DEGRADED, and reports its
measured pose as TRANSFORM "MEASURED". The local team's panel is modelled by
:meth:`RobotSimulator.send_local`, which sends STRING "LOCAL" messages to the gateway.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import deque
from dataclasses import dataclass
from typing import TextIO

from concilium.telesurgery import devices
from concilium.telesurgery import openigtlink as igtl

logger = logging.getLogger(__name__)

DEFAULT_PORT = 18944
"""The port IANA registered for OpenIGTLink."""


FOLLOWING_STATES = frozenset({"ENGAGED", "DEGRADED"})


@dataclass(frozen=True)
class Joint:
    """One joint of the arm."""

    name: str
    """Joint name."""
    minimum: float
    """Lower position limit (mm or rad)."""
    maximum: float
    """Upper position limit (mm or rad)."""
    max_velocity: float
    """Velocity limit (mm/s or rad/s)."""

    def __post_init__(self) -> None:
        if self.minimum >= self.maximum:
            raise ValueError(f"joint {self.name}: minimum must be below maximum")
        if self.max_velocity <= 0:
            raise ValueError(f"joint {self.name}: max_velocity must be positive")


DEFAULT_JOINTS = (
    Joint("x", -200.0, 200.0, 400.0),
    Joint("y", -200.0, 200.0, 400.0),
    Joint("z", -200.0, 200.0, 400.0),
    Joint("yaw", -math.pi, math.pi, 6.0),
)


class KinematicArm:
    """Joint positions moving toward targets within position and velocity limits."""

    def __init__(self, joints: tuple[Joint, ...] = DEFAULT_JOINTS) -> None:
        if len(joints) != 4:
            raise ValueError("the arm has x, y, z and yaw joints")
        self.joints = joints
        self.positions = [0.0] * 4
        self.targets = [0.0] * 4

    def set_target(self, pose: igtl.Transform) -> None:
        """Aim at a tool pose (inverse kinematics of a cartesian arm with a yaw wrist)."""
        r = pose.rotation
        wanted = [*pose.translation, math.atan2(r[3], r[0])]
        self.targets = [
            min(max(v, j.minimum), j.maximum) for v, j in zip(wanted, self.joints, strict=True)
        ]

    def hold(self) -> None:
        """Stop where the arm is."""
        self.targets = list(self.positions)

    def step(self, dt: float) -> None:
        """Advance by ``dt`` seconds."""
        for i, joint in enumerate(self.joints):
            error = self.targets[i] - self.positions[i]
            limit = joint.max_velocity * dt
            self.positions[i] += max(-limit, min(limit, error))

    def pose(self) -> igtl.Transform:
        """Measured tool pose (forward kinematics)."""
        x, y, z, yaw = self.positions
        c, s = math.cos(yaw), math.sin(yaw)
        return igtl.Transform(
            rotation=(c, -s, 0.0, s, c, 0.0, 0.0, 0.0, 1.0), translation=(x, y, z)
        )


class RobotSimulator:
    """The robot controller: an OpenIGTLink TCP server in front of a :class:`KinematicArm`."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        arm: KinematicArm | None = None,
        telemetry_hz: float = 100.0,
        step_hz: float = 500.0,
    ) -> None:
        self.host = host
        self.port = port
        self.arm = arm or KinematicArm()
        self.telemetry_hz = telemetry_hz
        self.step_hz = step_hz
        self.safety_state = "DISENGAGED"
        # Bounded: the demo simulator runs for hours at 1 kHz.
        self.executed: deque[igtl.Transform] = deque(maxlen=100_000)
        """Targets followed, in order of arrival."""
        self.executed_ages: deque[float] = deque(maxlen=100_000)
        """Age of each followed target on arrival, from its timestamp (seconds)."""
        self.ignored_targets = 0
        self.malformed = 0
        self.statuses: deque[igtl.Status] = deque(maxlen=1000)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Listen and start the control loop."""
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        self._tasks.append(asyncio.get_running_loop().create_task(self._control_loop()))

    async def close(self) -> None:
        """Stop serving."""
        for task in self._tasks:
            task.cancel()
        for writer in list(self._writers):
            writer.close()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)

    @property
    def connected(self) -> bool:
        """Whether a gateway is connected."""
        return bool(self._writers)

    def send_local(self, text: str) -> None:
        """The local team's panel: CONFIRM_ENGAGE, TAKEOVER or RELEASE."""
        self._broadcast(igtl.Message(devices.LOCAL, igtl.String(text), timestamp=time.time()))

    def _broadcast(self, message: igtl.Message) -> None:
        data = igtl.pack(message)
        for writer in list(self._writers):
            if not writer.is_closing():
                writer.write(data)

    def handle(self, message: igtl.Message) -> None:
        """Apply one message from the gateway."""
        content = message.content
        if isinstance(content, igtl.String) and message.device_name == devices.SAFETY:
            self.safety_state = content.text
            if content.text not in FOLLOWING_STATES:
                self.arm.hold()
        elif isinstance(content, igtl.Transform) and message.device_name == devices.TARGET:
            if self.safety_state not in FOLLOWING_STATES:
                # The gateway is the safety authority, but the controller double-checks.
                self.ignored_targets += 1
                return
            self.executed.append(content)
            if message.timestamp:
                self.executed_ages.append(time.time() - message.timestamp)
            self.arm.set_target(content)
        elif isinstance(content, igtl.Status):
            self.statuses.append(content)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while True:
                try:
                    message = await igtl.read_message(reader)
                except (igtl.FramingError, igtl.HeaderError):
                    self.malformed += 1
                    break
                except igtl.OpenIGTLinkError as exc:
                    self.malformed += 1
                    device = exc.header.device_name if exc.header else ""
                    writer.write(
                        igtl.pack(
                            igtl.status_message(
                                device, exc.status_code, type(exc).__name__, str(exc)
                            )
                        )
                    )
                    continue
                self.handle(message)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._writers.discard(writer)
            self.arm.hold()
            writer.close()

    async def _control_loop(self) -> None:
        period = 1.0 / self.step_hz
        telemetry_period = 1.0 / self.telemetry_hz
        last = time.monotonic()
        next_telemetry = last
        while True:
            await asyncio.sleep(period)
            now = time.monotonic()
            self.arm.step(now - last)
            last = now
            if now >= next_telemetry:
                next_telemetry = now + telemetry_period
                self._broadcast(
                    igtl.Message(devices.MEASURED, self.arm.pose(), timestamp=time.time())
                )


LOCAL_ACTIONS = ("CONFIRM_ENGAGE", "TAKEOVER", "RELEASE")
"""What the local team's panel can send."""


async def serve(
    host: str, port: int, telemetry_hz: float = 100.0, panel: TextIO | None = None
) -> None:
    """Run a simulator until cancelled; ``panel`` lines are the local team's actions."""
    simulator = RobotSimulator(host=host, port=port, telemetry_hz=telemetry_hz)
    await simulator.start()
    logger.info("robot simulator listening on %s:%d", host, simulator.port)
    try:
        if panel is None:
            await asyncio.Event().wait()
            return
        loop = asyncio.get_running_loop()
        while True:
            line = await loop.run_in_executor(None, panel.readline)
            if not line:
                await asyncio.Event().wait()
            action = line.strip().upper().replace(" ", "_")
            if action in LOCAL_ACTIONS:
                simulator.send_local(action)
            elif action:
                logger.warning(
                    "panel: unknown action %r (use %s)", action, ", ".join(LOCAL_ACTIONS)
                )
    finally:
        await simulator.close()

"""Test helpers: an asyncio loop in a background thread and a full console-to-robot rig.

pyigtl is a blocking, threaded peer, so the gateways run on a loop in another thread and the
tests drive pyigtl from the main thread, waiting for conditions with generous deadlines.
"""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import numpy as np
import pyigtl

from concilium.telesurgery.gateways import ConsoleGateway, RobotGateway
from concilium.telesurgery.impairment import ImpairmentProfile, ImpairmentProxy
from concilium.telesurgery.limits import MotionLimits
from concilium.telesurgery.link import ProcedureKeys
from concilium.telesurgery.robot_simulator import RobotSimulator
from concilium.telesurgery.safety import SafetyThresholds
from serving import free_port

T = TypeVar("T")


class LoopThread:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        async def wrapper() -> T:
            return fn(*args)

        return self.run(wrapper())

    def stop(self) -> None:
        async def cancel_all() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        self.run(cancel_all())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


def wait_for(
    predicate: Callable[[], bool], timeout: float = 5.0, what: str | Callable[[], str] = ""
) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            detail = what() if callable(what) else what
            raise AssertionError(f"timed out waiting for {detail or predicate}")
        time.sleep(0.005)


def transform_message(x: float, y: float = 0.0, z: float = 0.0) -> pyigtl.TransformMessage:
    matrix = np.eye(4)
    matrix[0:3, 3] = (x, y, z)
    return pyigtl.TransformMessage(matrix, device_name="MASTER")


class Streamer:
    """The master console's hand: pyigtl-built poses at a steady rate.

    By default the poses are written by a task on the gateways' loop, over a TCP connection
    of their own: pyigtl's client thread polls with a 10 ms timeout and, with the GIL shared
    by four threads on a loaded machine, can hold messages back for hundreds of ms. With
    ``via_client`` they go through the pyigtl client instead.
    """

    def __init__(self, rig: Rig, rate_hz: float = 200.0, via_client: bool = False) -> None:
        self.rig = rig
        self.period = 1.0 / rate_hz
        self.via_client = via_client
        self.x = 0.0
        self.step = 0.01
        self.sent: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run_thread, daemon=True)
        self._task: asyncio.Task[None] | None = None
        self._writer: asyncio.StreamWriter | None = None

    def start(self) -> Streamer:
        if self.via_client:
            self._thread.start()
        else:
            self.rig.loop.run(self._open())
        return self

    def _next(self) -> pyigtl.TransformMessage:
        self.x = round(self.x + self.step, 4)
        if self.x > 100:
            self.step = -abs(self.step)
        self.sent.append(self.x)
        return transform_message(self.x)

    async def _open(self) -> None:
        _, self._writer = await asyncio.open_connection("127.0.0.1", self.rig.console.igtl_port)
        self._task = asyncio.get_running_loop().create_task(self._run_task())

    async def _run_task(self) -> None:
        assert self._writer is not None
        while True:
            self._writer.write(self._next().pack())
            await asyncio.sleep(self.period)

    def _run_thread(self) -> None:
        while not self._stop.is_set():
            self.rig.client.send_message(self._next(), wait=False)
            time.sleep(self.period)

    def stop(self) -> None:
        if self.via_client:
            self._stop.set()
            self._thread.join(2)
            return

        async def close() -> None:
            if self._task is not None:
                self._task.cancel()
            if self._writer is not None:
                self._writer.close()

        self.rig.loop.run(close())


RIG_THRESHOLDS = SafetyThresholds(
    watchdog_ms=300.0,
    latency_warning_ms=250.0,
    latency_halt_ms=500.0,
    jitter_warning_ms=30.0,
    command_freshness_ms=400.0,
)
"""Thresholds of the end-to-end rigs. pyigtl's client thread and the user-space proxy, on a
shared 2-core machine with parallel test workers, sometimes stall for a few hundred
milliseconds; the default 50 ms watchdog is exercised by the pure state machine tests and
timed by the bench instead."""


class Rig:
    """Robot simulator, robot gateway, optional impairment proxy, console gateway, pyigtl."""

    def __init__(
        self,
        loop: LoopThread,
        profile: ImpairmentProfile | None = None,
        thresholds: SafetyThresholds | None = None,
        limits: MotionLimits | None = None,
        robot: str = "simulator",
    ) -> None:
        self.loop = loop
        self.pyigtl_robot: pyigtl.OpenIGTLinkServer | None = None
        if robot == "pyigtl":
            self.pyigtl_robot = pyigtl.OpenIGTLinkServer(port=free_port())
        self.keys = ProcedureKeys.generate("proc-test")
        # pyigtl's client starves its sends while messages keep arriving every 10 ms or less,
        # so the simulated robot reports at a rate that leaves it room.
        self.simulator = RobotSimulator(port=0, telemetry_hz=20.0, step_hz=200.0)
        self.proxy: ImpairmentProxy | None = None
        self.profile = profile
        self.thresholds = thresholds or RIG_THRESHOLDS
        self.limits = limits or MotionLimits()
        loop.run(self._start())
        self.client = pyigtl.OpenIGTLinkClient("127.0.0.1", self.console.igtl_port)
        wait_for(self.client.is_connected, what="pyigtl connected")
        wait_for(lambda: self.robot.robot_connected, what="robot controller connected")
        wait_for(
            lambda: (
                self.robot.session.clock.synchronised and self.console.session.clock.synchronised
            ),
            what="clock synchronisation",
        )
        if robot == "simulator":
            # The console gateway anchors the master's motion on the robot's measured pose.
            wait_for(lambda: self.console.session.received["telemetry"] > 0, what="telemetry")

    async def _start(self) -> None:
        if self.pyigtl_robot is not None:
            robot_port = self.pyigtl_robot.port
        else:
            await self.simulator.start()
            robot_port = self.simulator.port
        self.robot = RobotGateway(self.keys, "127.0.0.1", robot_port, self.thresholds, self.limits)
        await self.robot.start()
        remote = self.robot.link.local_address if self.robot.link else ("127.0.0.1", 0)
        if self.profile is not None:
            self.proxy = ImpairmentProxy(remote, self.profile, seed=7)
            await self.proxy.start()
            remote = self.proxy.address
        self.console = ConsoleGateway(
            self.keys, remote, igtl_port=0, freshness_ms=self.thresholds.command_freshness_ms
        )
        await self.console.start()

    def engagements(self) -> int:
        return sum(1 for t in self.robot.safety.timeline if t.state.value == "ENGAGED")

    def engage(self) -> None:
        before = self.engagements()
        self.client.send_message(pyigtl.StringMessage("ENGAGE", device_name="CONTROL"))
        self.loop.call(self.simulator.send_local, "CONFIRM_ENGAGE")
        wait_for(lambda: self.engagements() > before, what="ENGAGED")

    def close(self) -> None:
        self.client.stop()

        async def stop() -> None:
            await self.console.close()
            if self.proxy:
                self.proxy.close()
            await self.robot.close()
            await self.simulator.close()

        self.loop.run(stop())
        if self.pyigtl_robot is not None:
            self.pyigtl_robot.stop()
            # pyigtl's server installs SIGINT/SIGTERM handlers; give the test runner its own back.
            for signum, handler in self.pyigtl_robot._previous_signal_handlers.items():
                signal.signal(signum, handler)

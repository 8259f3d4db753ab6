"""Run Janus as a supervised child process of Concilium.

Janus is started with the configuration written by
:func:`concilium.live.janus_config.write_janus_config` (``janus -C <conf>/janus.jcfg -F
<conf>``), considered ready once its Janus API answers ``GET /janus/info`` (HTTP transport
chapter), restarted with a growing delay if it dies, and stopped with SIGTERM (Janus shuts
down its plugins cleanly on it), then SIGKILL if it hangs.

After every restart the ``on_restart`` hooks run: rooms, mountpoints and tokens live only in
Janus's memory, so a hook must put them back (see :class:`concilium.live.media.LiveMedia`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import TracebackType
from typing import IO, Literal, Self

import httpx

from concilium.live.janus_config import JanusConfig, write_janus_config

__all__ = [
    "JANUS_CANDIDATES",
    "JanusNotInstalled",
    "MediaServer",
    "MediaServerError",
    "find_janus",
]

log = logging.getLogger(__name__)

JANUS_CANDIDATES = (Path("/usr/bin/janus"), Path("/usr/sbin/janus"))
"""Where Debian and most distributions install the Janus binary."""

STABLE_UPTIME = 30.0
"""Seconds Janus must stay up for a crash to be restarted without extra backoff."""

State = Literal["stopped", "starting", "running", "restarting", "stopping"]
RestartHook = Callable[[], Awaitable[None]]


class MediaServerError(RuntimeError):
    """Janus could not be started or did not become ready."""


class JanusNotInstalled(MediaServerError):
    """No Janus binary was found."""


def find_janus() -> Path:
    """Path of the Janus binary, or :class:`JanusNotInstalled` explaining how to get it."""
    for candidate in JANUS_CANDIDATES:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which("janus")
    if found:
        return Path(found)
    raise JanusNotInstalled(
        "Janus media server not found (looked in /usr/bin/janus, /usr/sbin/janus and PATH); "
        "install it with: apt-get install -y janus"
    )


class MediaServer:
    """One supervised Janus process."""

    def __init__(
        self,
        config: JanusConfig,
        *,
        binary: Path | None = None,
        start_timeout: float = 15.0,
        restart_delay: float = 0.2,
        max_restart_delay: float = 10.0,
    ) -> None:
        if start_timeout <= 0 or restart_delay < 0 or max_restart_delay < restart_delay:
            raise ValueError("timeouts must be positive and max_restart_delay >= restart_delay")
        self.config = config
        self.binary = binary
        self.start_timeout = start_timeout
        self.restart_delay = restart_delay
        self.max_restart_delay = max_restart_delay
        self.on_restart: list[RestartHook] = []
        """Coroutines run after each automatic restart, once Janus answers again."""
        self.restarts = 0
        """How many times the supervisor restarted Janus."""
        self.state: State = "stopped"
        self.exit_code: int | None = None
        """Exit status of the last Janus process that ended (0 after a clean stop)."""
        self._process: asyncio.subprocess.Process | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._log: IO[bytes] | None = None
        self._restarted = asyncio.Condition()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def pid(self) -> int | None:
        """Process id of the running Janus, if any."""
        if self._process is None or self._process.returncode is not None:
            return None
        return self._process.pid

    def _set_state(self, state: State) -> None:
        if state != self.state:
            log.info("media server %s -> %s", self.state, state)
            self.state = state

    async def start(self) -> None:
        """Write the configuration, start Janus and wait until it answers."""
        if self.state != "stopped":
            raise MediaServerError(f"media server is {self.state}, not stopped")
        binary = self.binary or find_janus()
        self.binary = binary
        self._set_state("starting")
        try:
            await self._spawn()
        except BaseException:
            await self._terminate()
            if self._log is not None:
                self._log.close()
                self._log = None
            self._process = None
            self._set_state("stopped")
            raise
        self._set_state("running")
        self._supervisor = asyncio.create_task(self._supervise(), name="janus-supervisor")

    async def _spawn(self) -> None:
        jcfg = write_janus_config(self.config)
        if self._log is None:
            self._log = self.config.log_file.open("ab")
        assert self.binary is not None
        self._process = await asyncio.create_subprocess_exec(
            str(self.binary),
            "-C",
            str(jcfg),
            "-F",
            str(self.config.configs_folder),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=self._log,
            stderr=asyncio.subprocess.STDOUT,
            # Own process group: a Ctrl-C meant for Concilium reaches Janus through stop().
            start_new_session=True,
            cwd=str(self.config.root),
        )
        await self._wait_ready(self._process)

    async def _wait_ready(self, process: asyncio.subprocess.Process) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.start_timeout
        async with httpx.AsyncClient(timeout=1.0) as http:
            while True:
                if process.returncode is not None:
                    raise MediaServerError(
                        f"Janus exited with code {process.returncode} while starting; "
                        f"last lines of {self.config.log_file}:\n{self._log_tail()}"
                    )
                with contextlib.suppress(httpx.HTTPError, ValueError):
                    response = await http.get(f"{self.config.api_url}/info")
                    if response.status_code == 200 and response.json().get("janus") == (
                        "server_info"
                    ):
                        return
                if loop.time() > deadline:
                    raise MediaServerError(
                        f"Janus did not answer on {self.config.api_url} within "
                        f"{self.start_timeout} s; last lines of the log:\n{self._log_tail()}"
                    )
                await asyncio.sleep(0.05)

    def _log_tail(self, lines: int = 20) -> str:
        try:
            text = self.config.log_file.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    async def _supervise(self) -> None:
        loop = asyncio.get_running_loop()
        delay = self.restart_delay
        started = loop.time()
        while True:
            process = self._process
            assert process is not None
            code: int | None = await process.wait()
            self.exit_code = code
            if self.state == "stopping":
                return
            self._set_state("restarting")
            # A Janus that dies soon after starting is crash-looping (bad config, broken
            # library): back off instead of restarting it several times a second.
            if loop.time() - started < STABLE_UPTIME:
                delay = min(max(delay * 2, 0.1), self.max_restart_delay)
            else:
                delay = self.restart_delay
            while True:
                log.error("Janus exited with code %s; restarting in %.1f s", code, delay)
                await asyncio.sleep(delay)
                try:
                    await self._spawn()
                    break
                except (MediaServerError, OSError) as exc:
                    log.error("Janus restart failed: %s", exc)
                    await self._terminate()
                    code = self._process.returncode if self._process else None
                    delay = min(max(delay * 2, 0.1), self.max_restart_delay)
            started = loop.time()
            self.restarts += 1
            self._set_state("running")
            for hook in list(self.on_restart):
                try:
                    await hook()
                except Exception:
                    log.exception("media server restart hook %r failed", hook)
            async with self._restarted:
                self._restarted.notify_all()

    async def wait_restarted(self, count: int, timeout: float) -> None:
        """Wait until Janus has been restarted ``count`` times and its hooks have run."""
        async with asyncio.timeout(timeout), self._restarted:
            await self._restarted.wait_for(lambda: self.restarts >= count)

    async def _terminate(self, grace: float = 5.0) -> None:
        process = self._process
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), grace)
        except TimeoutError:
            log.warning("Janus ignored SIGTERM for %.0f s; killing it", grace)
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()

    async def stop(self) -> None:
        """Stop supervising and shut Janus down."""
        if self.state == "stopped":
            return
        self._set_state("stopping")
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
            self._supervisor = None
        await self._terminate()
        if self._process is not None:
            self.exit_code = self._process.returncode
        self._process = None
        if self._log is not None:
            self._log.close()
            self._log = None
        self._set_state("stopped")

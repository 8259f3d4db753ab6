"""A real ``concilium serve`` on free loopback ports, for tests that need a running server."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port the kernel says is free on 127.0.0.1 right now (TCP, or UDP with SOCK_DGRAM)."""
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RunningServer:
    url: str
    env: dict[str, str]
    data_dir: Path
    log_path: Path
    returncode: int | None = None
    """Exit status once stopped (0, or -15 after a graceful SIGTERM shutdown)."""
    pid: int = 0
    """Process id of the server."""

    def cli(self, *args: str) -> str:
        """Run a ``concilium`` command against this server's data; its standard output."""
        result = subprocess.run(
            [sys.executable, "-m", "concilium", *args],
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        )
        return result.stdout

    def create_site(self, name: str, finess: str) -> None:
        self.cli("site", "create", "--name", name, "--finess", finess)

    def create_user(self, username: str, *roles: str, password: str, totp: bool = False) -> str:
        """A user named ``username`` (full name: the same, titled) with ``roles`` such as
        ``radiologist@570005165``; the authenticator key when ``totp``, else ``""``."""
        args = ["user", "create", "--username", username, "--full-name", username.title()]
        for role in roles:
            args += ["--role", role]
        out = self.cli(*args, "--password", password, *(["--with-totp"] if totp else []))
        if not totp:
            return ""
        found = re.search(r"authenticator key: (\w+)", out)
        assert found, out
        return found.group(1)

    def create_token(self, username: str, name: str, *scopes: str) -> str:
        """An API token of ``username`` with ``scopes``; its secret."""
        args = ["token", "create", "--user", username, "--name", name]
        for scope in scopes:
            args += ["--scope", scope]
        return self.cli(*args).strip().splitlines()[-1]


@contextmanager
def running_server(tmp: Path, **settings: str) -> Iterator[RunningServer]:
    """Serve with its own data dir (SQLite unless ``settings`` name a database) and free
    HTTP, DICOM and HL7 ports; ``settings`` are extra ``CONCILIUM_*`` variables. Yields once
    ``/readyz`` answers; stops with SIGTERM."""
    port = free_port()
    data_dir = tmp / "var"
    env = {
        **os.environ,
        "CONCILIUM_DATA_DIR": str(data_dir),
        "CONCILIUM_HTTP_PORT": str(port),
        "CONCILIUM_DICOM_PORT": str(free_port()),
        "CONCILIUM_HL7_PORT": str(free_port()),
        # The media server's own ports too: servers of several test runs never collide.
        "CONCILIUM_LIVE_JANUS_HTTP_PORT": str(free_port()),
        "CONCILIUM_LIVE_JANUS_ADMIN_PORT": str(free_port()),
        "CONCILIUM_PUBLIC_URL": f"http://127.0.0.1:{port}",
        # The simulated cameras of the tests run on loopback.
        "CONCILIUM_LIVE_DEVICE_NETWORKS": '["127.0.0.1/32"]',
        # The commands' messages the helpers read, in English (French is tested on its own).
        "CONCILIUM_LANG": "en",
    }
    env.pop("CONCILIUM_DATABASE_URL", None)
    env.update(settings)  # a test may name its database (``CONCILIUM_DATABASE_URL``)
    server = RunningServer(f"http://127.0.0.1:{port}", env, data_dir, tmp / "server.log")
    with server.log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "concilium", "serve"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        server.pid = process.pid
        try:
            deadline = time.monotonic() + 120  # a loaded machine starts slowly
            while time.monotonic() < deadline:
                try:
                    if httpx.get(f"{server.url}/readyz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.2)
            else:
                raise RuntimeError(f"server did not start: {server.log_path.read_text()}")
            yield server
        finally:
            process.terminate()
            server.returncode = process.wait(timeout=30)

"""Media peers the tests drive: a simulated IP camera made of Debian's ffmpeg."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

from serving import free_port


@contextmanager
def ffmpeg_camera(protocol: str = "rtp") -> Iterator[str]:
    """A simulated IP camera: 160x120 H.264 at 15 fps in MPEG-TS, either sent over RTP to a
    free port (``rtp``), or served over SRT (``srt``: the camera listens, the relay calls).
    Yields the URL a relay reads it from."""
    port = free_port(socket.SOCK_DGRAM)
    if protocol == "rtp":
        output, url = ["-f", "rtp_mpegts", f"rtp://127.0.0.1:{port}"], f"rtp://127.0.0.1:{port}"
    elif protocol == "srt":
        output = ["-f", "mpegts", f"srt://127.0.0.1:{port}?mode=listener"]
        url = f"srt://127.0.0.1:{port}"
    else:
        raise ValueError(f"no simulated camera speaks {protocol}")
    process = subprocess.Popen(
        [
            *("ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-re"),
            *("-f", "lavfi", "-i", "testsrc=size=160x120:rate=15", "-pix_fmt", "yuv420p"),
            *("-c:v", "libx264", "-profile:v", "baseline", "-preset", "ultrafast"),
            *("-tune", "zerolatency", "-g", "15", *output),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield url
    finally:
        process.terminate()
        process.wait(5)

"""Loopback UDP ports for the RTP Janus forwards to the packagers and the source feeders."""

from __future__ import annotations

import socket
from pathlib import Path

__all__ = ["free_rtp_ports", "free_udp_port", "udp_port_bound"]


def free_udp_port() -> int:
    """A UDP port free on loopback right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def free_rtp_ports(count: int) -> list[int]:
    """``count`` even UDP ports, each free together with the next one up (ffmpeg receives
    RTP on the port and RTCP on the next, RFC 3550 11), all distinct."""
    held: list[socket.socket] = []
    ports: list[int] = []
    try:
        while len(ports) < count:
            rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            held.append(rtp)
            rtp.bind(("127.0.0.1", 0))
            port: int = rtp.getsockname()[1]
            if port % 2 or port >= 65535:
                continue
            rtcp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            held.append(rtcp)
            try:
                rtcp.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
            ports.append(port)
    finally:
        for sock in held:
            sock.close()
    return ports


def udp_port_bound(port: int) -> bool | None:
    """Whether some process of this machine has bound UDP ``port`` (from ``/proc/net``);
    None where that cannot be told."""
    found = False
    for table in (Path("/proc/net/udp"), Path("/proc/net/udp6")):
        try:
            lines = table.read_text().splitlines()[1:]
        except OSError:
            return None
        for line in lines:
            local = line.split()[1]
            if int(local.rsplit(":", 1)[1], 16) == port:
                found = True
    return found

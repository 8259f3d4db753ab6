"""Benchmark of the live service's control paths.

Measures, on loopback:

* VISCA over IP codec: pack + parse of a datagram (pure Python);
* PTZ round trip: command -> ACK -> Completion against the simulated camera;
* Janus control plane: VideoRoom create + destroy, and credential issue (admin ``add_token``
  + room ``allowed``) against a real Janus started by ``MediaServer``.

Run: ``.venv/bin/python bench/live.py [--rounds N]``. Needs Debian's ``janus`` package.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

from concilium.live.camera_simulator import SimulatedCamera
from concilium.live.janus_config import JanusConfig
from concilium.live.media import LiveMedia
from concilium.live.media_server import MediaServer
from concilium.live.ptz import PtzClient
from concilium.live.rooms import RoomSpec
from concilium.live.visca import Message, PanTiltAbsolute, PayloadType, parse_command


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def report(name: str, samples: list[float]) -> None:
    samples_ms = sorted(s * 1000 for s in samples)
    p95 = samples_ms[int(0.95 * (len(samples_ms) - 1))]
    print(
        f"{name:<34} n={len(samples_ms):<6} median={statistics.median(samples_ms):8.3f} ms"
        f"  p95={p95:8.3f} ms"
    )


async def timed(action: Callable[[], Awaitable[object]], rounds: int) -> list[float]:
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        await action()
        samples.append(time.perf_counter() - start)
    return samples


def bench_codec(rounds: int) -> None:
    command = PanTiltAbsolute(1200, -300)
    start = time.perf_counter()
    for sequence in range(rounds):
        datagram = Message(PayloadType.VISCA_COMMAND, sequence, command.payload()).pack()
        parse_command(Message.parse(datagram).payload)
    elapsed = time.perf_counter() - start
    print(f"{'visca pack+parse':<34} n={rounds:<6} {rounds / elapsed:10.0f} messages/s")


async def bench_ptz(rounds: int) -> None:
    async with SimulatedCamera() as camera, PtzClient("127.0.0.1", camera.port) as ptz:
        pan = iter(range(10**9))
        report(
            "ptz command round trip",
            await timed(lambda: ptz.send(PanTiltAbsolute(next(pan) % 2000, 0)), rounds),
        )


async def bench_janus(rounds: int) -> None:
    with tempfile.TemporaryDirectory() as data_dir:
        config = JanusConfig(Path(data_dir), http_port=free_port(), admin_port=free_port())
        async with MediaServer(config) as server, httpx.AsyncClient(timeout=5) as http:
            start = time.perf_counter()
            await server.stop()
            await server.start()
            restart_ms = 1000 * (time.perf_counter() - start)
            print(f"{'janus restart (stop + ready)':<34} {restart_ms:.1f} ms")
            media = LiveMedia(config, http)
            await media.connect()
            ids = iter(range(1, 10**6))

            async def room_cycle() -> None:
                room_id = next(ids)
                await media.create_room(RoomSpec(room_id))
                await media.destroy_room(room_id)

            report("videoroom create + destroy", await timed(room_cycle, rounds))
            await media.create_room(RoomSpec(999_999))
            report(
                "credential issue",
                await timed(lambda: media.issue("bench-user", 999_999), rounds),
            )
            await media.close()


async def main(rounds: int) -> None:
    bench_codec(rounds * 100)
    await bench_ptz(rounds)
    await bench_janus(rounds)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    asyncio.run(main(parser.parse_args().rounds))

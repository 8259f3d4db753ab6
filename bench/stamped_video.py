"""Video whose every frame carries the wall-clock time it was captured, for latency benches.

The stamp is the one ``glass_to_glass.py`` draws in the browser: the frame is cut into 8 x 6
blocks, black or white, holding 40 bits of the time in ms (modulo 2**40) then a CRC-8 of
those five bytes, most significant bit first, row by row. Blocks of a 1280x720 frame are
160x120 pixels, which survive any encoder's quantisation; the reader averages the middle
third of each block, where the codec smears least.

As a program, it is a live source: ``python bench/stamped_video.py PORT [--size 1280x720]
[--fps 25]`` paces raw frames at the given rate, stamps each with the time it is handed
to the encoder (a camera's capture time), and sends them as VP8 over RTP to
``127.0.0.1:PORT`` through Debian's ``ffmpeg``, as Janus forwards a program feed.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import time

import numpy as np
from numpy.typing import NDArray

COLS, ROWS = 8, 6
STAMP_BYTES = 5
WRAP = 2**40


def crc8(data: bytes) -> int:
    """CRC-8, polynomial 0x07, initial value 0 (as ``glass_to_glass.py``'s page)."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def stamp_bits(ms: int) -> list[int]:
    """The 48 block values (0 or 1) of a stamp."""
    value = (ms % WRAP).to_bytes(STAMP_BYTES, "big")
    data = value + bytes([crc8(value)])
    return [(byte >> (7 - i)) & 1 for byte in data for i in range(8)]


def draw_stamp(luma: NDArray[np.uint8], ms: int) -> None:
    """Draw the stamp of ``ms`` over the whole luma plane, in place."""
    height, width = luma.shape
    for i, bit in enumerate(stamp_bits(ms)):
        x0, x1 = width * (i % COLS) // COLS, width * (i % COLS + 1) // COLS
        y0, y1 = height * (i // COLS) // ROWS, height * (i // COLS + 1) // ROWS
        luma[y0:y1, x0:x1] = 235 if bit else 16


def read_stamp(luma: NDArray[np.uint8], now_ms: float) -> float | None:
    """The capture time (ms since the epoch) stamped in a decoded luma plane, or ``None``
    when the checksum fails; ``now_ms`` restores the bits above 2**40."""
    height, width = luma.shape
    data = bytearray(STAMP_BYTES + 1)
    for i in range(COLS * ROWS):
        cw, ch = width / COLS, height / ROWS
        x, y = (i % COLS) * cw, (i // COLS) * ch
        block = luma[int(y + ch / 3) : int(y + 2 * ch / 3), int(x + cw / 3) : int(x + 2 * cw / 3)]
        if block.mean() > 128:
            data[i >> 3] |= 1 << (7 - (i & 7))
    if crc8(bytes(data[:STAMP_BYTES])) != data[STAMP_BYTES]:
        return None
    value = int.from_bytes(data[:STAMP_BYTES], "big")
    return value + round((now_ms - value) / WRAP) * WRAP


def send(port: int, width: int, height: int, fps: int) -> None:
    """Feed stamped frames to an ffmpeg VP8/RTP sender at ``fps`` until it stops."""
    encoder = subprocess.Popen(
        [
            "ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin",
            "-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", f"{width}x{height}",
            "-framerate", str(fps), "-i", "-",
            "-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8", "-lag-in-frames", "0",
            "-g", str(fps), "-b:v", "1500k",
            "-f", "rtp", f"rtp://127.0.0.1:{port}?pkt_size=1200",
        ],
        stdin=subprocess.PIPE,
    )  # fmt: skip
    assert encoder.stdin is not None
    frame = np.full(width * height * 3 // 2, 128, dtype=np.uint8)
    luma = frame[: width * height].reshape(height, width)
    start = time.monotonic()
    try:
        for index in range(sys.maxsize):
            delay = start + index / fps - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            draw_stamp(luma, int(time.time() * 1000))
            encoder.stdin.write(frame.tobytes())
            encoder.stdin.flush()
    except (BrokenPipeError, KeyboardInterrupt, SystemExit):
        pass
    finally:
        # End of input ends the encoder; it reads its pipe and would not see a signal.
        encoder.stdin.close()
        try:
            encoder.wait(5)
        except subprocess.TimeoutExpired:
            encoder.kill()
            encoder.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("port", type=int, help="RTP port on 127.0.0.1")
    parser.add_argument("--size", default="1280x720", help="frame size WxH")
    parser.add_argument("--fps", type=int, default=25, help="frames per second")
    args = parser.parse_args()
    # Stopped with SIGTERM by the bench: close the encoder's input so that it ends too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    width, height = (int(v) for v in args.size.split("x"))
    send(args.port, width, height, args.fps)


if __name__ == "__main__":
    main()

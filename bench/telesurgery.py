"""Telesurgery bench: 1 kHz commands over loopback through both gateways.

Each gateway runs as its own process (``telesurgery console-gateway`` / ``robot-gateway``);
a robot controller process and a console in this process share the wall clock, so the
delay from the console's send to the controller's receipt is what the two gateways and
loopback add. Then the console gateway is frozen (SIGSTOP), which cuts the link as the
robot side sees it, and the time to HOLD is measured.

Run: .venv/bin/python bench/telesurgery.py [--seconds 10] [--rate 1000]
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from concilium.telesurgery import openigtlink as igtl
from concilium.telesurgery.link import ProcedureKeys, write_keys
from concilium.telesurgery.safety import SafetyThresholds

CLI = "from concilium.telesurgery.cli import telesurgery; telesurgery()"


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def read_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data


def robot_controller(port: int, results: mp.connection.Connection, stop_after: float) -> None:
    """Accept the robot gateway, confirm engagement, record what arrives and when."""
    server = socket.create_server(("127.0.0.1", port))
    server.settimeout(10)
    conn, _ = server.accept()
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    conn.sendall(igtl.pack(igtl.Message("LOCAL", igtl.String("CONFIRM_ENGAGE"))))
    targets: list[tuple[int, float]] = []
    states: list[tuple[int, str]] = []
    conn.settimeout(0.5)
    deadline = time.monotonic() + stop_after
    try:
        while time.monotonic() < deadline:
            try:
                header = igtl.unpack_header(read_exactly(conn, igtl.HEADER_SIZE))
                message = igtl.unpack_body(header, read_exactly(conn, header.body_size))
            except TimeoutError:
                continue
            now = time.time_ns()
            if message.device_name == "TARGET":
                targets.append((now, message.timestamp))
            elif message.device_name == "SAFETY" and isinstance(message.content, igtl.String):
                states.append((now, message.content.text))
    except (EOFError, OSError):
        pass
    results.send((targets, states))
    conn.close()
    server.close()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime + stime
    return ticks / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument(
        "--rt",
        action="store_true",
        help="SCHED_FIFO for the gateways (--rt-priority) and for this bench's peers",
    )
    args = parser.parse_args()
    rt_args = ["--rt-priority", "50"] if args.rt else []
    thresholds = SafetyThresholds()

    workdir = Path(tempfile.mkdtemp(prefix="telesurgery-bench-"))
    keys_path = workdir / "keys.json"
    write_keys(ProcedureKeys.generate("bench"), keys_path)
    robot_port = free_port()
    link_port = free_port(socket.SOCK_DGRAM)
    console_port = free_port()

    if args.rt:
        # The console and the robot controller are real-time peers on their own machines.
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(40))
    parent, child = mp.Pipe()
    controller = mp.Process(
        target=robot_controller, args=(robot_port, child, args.seconds + 8.0), daemon=True
    )
    controller.start()
    time.sleep(0.2)
    robot_gw = subprocess.Popen(
        [sys.executable, "-c", CLI, "robot-gateway", "--keys", str(keys_path),
         "--robot", f"127.0.0.1:{robot_port}", "--link-bind", f"127.0.0.1:{link_port}",
         *rt_args],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    console_gw = subprocess.Popen(
        [sys.executable, "-c", CLI, "console-gateway", "--keys", str(keys_path),
         "--remote", f"127.0.0.1:{link_port}", "--link-bind", "127.0.0.1:0",
         "--igtl-bind", f"127.0.0.1:{console_port}", *rt_args],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                console = socket.create_connection(("127.0.0.1", console_port), timeout=1)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        console.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        time.sleep(0.5)  # heartbeats synchronise the clocks

        period = 1.0 / args.rate
        count = int(args.seconds * args.rate)
        cpu_before = {p.pid: cpu_seconds(p.pid) for p in (console_gw, robot_gw)}
        wall_before = time.monotonic()
        start = time.perf_counter()
        # Poses carry their sample time (the schedule), as a master console's do; the actual
        # send time is kept apart so the console's own lateness is not charged to gateways.
        start_wall = round(time.time(), 3)
        sent_at: dict[float, int] = {}
        for i in range(count):
            due = start + i * period
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            if i == 100:
                # The console streams before engaging, as a real master does.
                console.sendall(igtl.pack(igtl.Message("CONTROL", igtl.String("ENGAGE"))))
            x = 40.0 * math.sin(2 * math.pi * 0.1 * i * period)
            pose = igtl.Transform(translation=(x, 0.0, 0.0))
            stamp = round(start_wall + i * period, 6)
            data = igtl.pack(igtl.Message("MASTER", pose, timestamp=stamp))
            sent_at[stamp] = time.time_ns()
            console.sendall(data)
        wall = time.monotonic() - wall_before
        cpu = {
            p.pid: (cpu_seconds(p.pid) - cpu_before[p.pid]) / wall for p in (console_gw, robot_gw)
        }

        # Cut: freeze the console gateway; the robot side sees the link go silent.
        time.sleep(0.02)
        cut_ns = time.time_ns()
        console_gw.send_signal(signal.SIGSTOP)
        time.sleep(0.3)
        console_gw.send_signal(signal.SIGCONT)
        time.sleep(0.2)
        console.close()
    finally:
        for process in (console_gw, robot_gw):
            process.send_signal(signal.SIGCONT)
            process.terminate()
        outputs = [p.communicate(timeout=10)[0] for p in (console_gw, robot_gw)]
    targets, states = parent.recv()
    controller.join(5)

    ages_ms = [(recv_ns / 1e6 - stamp * 1e3) for recv_ns, stamp in targets]
    before_cut = [
        (recv_ns - sent_at[round(stamp, 6)]) / 1e6
        for recv_ns, stamp in targets
        if recv_ns < cut_ns and round(stamp, 6) in sent_at
    ]
    late = sum(1 for a in ages_ms if a > thresholds.command_freshness_ms)
    holds = [t for t, state in states if state == "HOLD" and t > cut_ns]
    last_target = max((t for t, _ in targets if t < (holds[0] if holds else cut_ns)), default=0)
    stats = [json.loads(o.strip().splitlines()[-1]) if o.strip() else {} for o in outputs]

    mode = "SCHED_FIFO" if args.rt else "default scheduling"
    print(f"commands sent:            {count} at {args.rate:g} Hz over {args.seconds:g} s ({mode})")
    print(f"commands executed:        {len(targets)}")
    print(
        f"gateway-added latency:    p50 {percentile(before_cut, 50):.3f} ms, "
        f"p99 {percentile(before_cut, 99):.3f} ms, max {max(before_cut):.3f} ms "
        "(console send -> robot receipt, both gateways + loopback)"
    )
    print(f"commands executed late:   {late} (age > {thresholds.command_freshness_ms:g} ms)")
    if holds:
        print(
            f"last command -> HOLD:     {(holds[0] - last_target) / 1e6:.2f} ms "
            f"(watchdog {thresholds.watchdog_ms:g} ms)"
        )
        print(f"freeze (cut) -> HOLD:     {(holds[0] - cut_ns) / 1e6:.2f} ms")
    else:
        print("HOLD:                     not observed")
    names = {console_gw.pid: "console gateway", robot_gw.pid: "robot gateway"}
    for pid, share in cpu.items():
        print(f"CPU {names[pid]}:".ljust(26) + f"{share * 100:.1f} % of one core")
    for name, data in zip(("console gateway", "robot gateway"), stats, strict=True):
        forwarding = data.get("forwarding_ms", {})
        print(
            f"{name} forwarding:".ljust(26)
            + " ".join(f"{k} {v:.3f} ms" for k, v in forwarding.items())
        )
    for name, data in zip(("console gateway", "robot gateway"), stats, strict=True):
        print(f"{name} counters: {json.dumps(data.get('gateway', {}))}")
        print(f"{name} link drops: {json.dumps(data.get('link', {}).get('drops', {}))}")
    return 0 if late == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

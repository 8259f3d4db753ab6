"""Telesurgery bench: 1 kHz commands over loopback through both gateways.

Each gateway runs as its own process (``telesurgery console-gateway`` / ``robot-gateway``);
a robot controller process and a console in this process share the wall clock, so the
delay from the console's send to the controller's receipt is what the two gateways and
loopback add. Then the console gateway is frozen (SIGSTOP), which cuts the link as the
robot side sees it, and the time to HOLD is measured.

With ``--profile`` the link goes through the impairment proxy (``telesurgery impair``, a
process of its own) with that network profile, and the delay includes the network's; the
gateways apply the thresholds of ``--link-class`` (lan by default).

Run: .venv/bin/python bench/telesurgery.py [--seconds 10] [--rate 1000]
     [--profile intercontinental-12000km --link-class intercontinental]
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from concilium.telesurgery import openigtlink as igtl
from concilium.telesurgery.impairment import PROFILES
from concilium.telesurgery.link import ProcedureKeys, write_keys
from concilium.telesurgery.safety import DEFAULT_LINK_CLASS, LINK_CLASSES

CLI = "from concilium.telesurgery.cli import telesurgery; telesurgery()"
STARTUP_TIMEOUT = 60.0
"""How long the gateway processes may take to start: importing the command line takes
seconds on a loaded machine."""


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
    server.settimeout(STARTUP_TIMEOUT)
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
    parser.add_argument(
        "--profile",
        choices=sorted(PROFILES),
        default=None,
        help="network profile of an impairment proxy between the gateways (default: none)",
    )
    parser.add_argument(
        "--link-class",
        choices=list(LINK_CLASSES),
        default=DEFAULT_LINK_CLASS,
        help="threshold preset both gateways apply",
    )
    args = parser.parse_args()
    rt_args = ["--rt-priority", "50"] if args.rt else []
    class_args = ["--link-class", args.link_class]
    thresholds = LINK_CLASSES[args.link_class].safety

    workdir = Path(tempfile.mkdtemp(prefix="telesurgery-bench-"))
    keys_path = workdir / "keys.json"
    write_keys(ProcedureKeys.generate("bench"), keys_path)
    robot_port = free_port()
    link_port = free_port(socket.SOCK_DGRAM)
    proxy_port = free_port(socket.SOCK_DGRAM)
    console_port = free_port()
    remote_port = link_port if args.profile is None else proxy_port

    if args.rt:
        # The console and the robot controller are real-time peers on their own machines.
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(40))
    parent, child = mp.Pipe()
    controller = mp.Process(
        target=robot_controller,
        args=(robot_port, child, args.seconds + 8.0 + STARTUP_TIMEOUT),
        daemon=True,
    )
    controller.start()
    time.sleep(0.2)
    robot_gw = subprocess.Popen(
        [sys.executable, "-c", CLI, "robot-gateway", "--keys", str(keys_path),
         "--robot", f"127.0.0.1:{robot_port}", "--link-bind", f"127.0.0.1:{link_port}",
         *class_args, *rt_args],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    proxy = None
    if args.profile is not None:
        proxy = subprocess.Popen(
            [sys.executable, "-c", CLI, "impair", "--listen", f"127.0.0.1:{proxy_port}",
             "--upstream", f"127.0.0.1:{link_port}", "--profile", args.profile],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        if args.rt:
            # The proxy plays the network, which no other work on this machine delays.
            os.sched_setscheduler(proxy.pid, os.SCHED_FIFO, os.sched_param(50))
    console_gw = subprocess.Popen(
        [sys.executable, "-c", CLI, "console-gateway", "--keys", str(keys_path),
         "--remote", f"127.0.0.1:{remote_port}", "--link-bind", "127.0.0.1:0",
         "--igtl-bind", f"127.0.0.1:{console_port}", *class_args, *rt_args],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            try:
                console = socket.create_connection(("127.0.0.1", console_port), timeout=1)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        console.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if proxy is not None and proxy.stderr is not None:
            # The proxy says so on standard error once it is about to bind its port.
            ready, _, _ = select.select([proxy.stderr], [], [], STARTUP_TIMEOUT)
            if not ready or not proxy.stderr.readline().startswith("impairing"):
                raise RuntimeError("the impairment proxy did not start")
        # Heartbeats synchronise the clocks (and fill the clock filter over a long path).
        time.sleep(0.5 if args.profile is None else 1.0)

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
        time.sleep(0.3 if args.profile is None else 0.5)
        console_gw.send_signal(signal.SIGCONT)
        time.sleep(0.2)
        console.close()
    finally:
        for process in (console_gw, robot_gw):
            process.send_signal(signal.SIGCONT)
            process.terminate()
        if proxy is not None:
            proxy.terminate()
            proxy.wait(timeout=10)
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
    path = "loopback" if args.profile is None else f"profile {args.profile}"
    print(f"commands sent:            {count} at {args.rate:g} Hz over {args.seconds:g} s ({mode})")
    print(
        f"link class:               {args.link_class} (freshness "
        f"{thresholds.command_freshness_ms:g} ms, halt {thresholds.latency_halt_ms:g} ms); {path}"
    )
    print(f"commands executed:        {len(targets)}")
    label = "gateway-added latency:" if args.profile is None else "latency:"
    if before_cut:
        print(
            f"{label.ljust(26)}p50 {percentile(before_cut, 50):.3f} ms, "
            f"p99 {percentile(before_cut, 99):.3f} ms, max {max(before_cut):.3f} ms "
            f"(console send -> robot receipt, both gateways + {path})"
        )
    else:
        print(f"{label.ljust(26)}no command executed")
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
    return 0 if late == 0 and targets else 1


if __name__ == "__main__":
    sys.exit(main())

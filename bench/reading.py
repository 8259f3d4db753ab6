"""Reading bench: HL7 order ingest over MLLP and the modality worklist of a real server.

A ``concilium serve`` runs on loopback with its own data directory (SQLite), or on a new
database of the PostgreSQL server given with ``--database-url`` (created, then dropped). It
has one site (CH Briey), its HIS registered as an HL7 sender and its stations as DICOM nodes.

1. HL7 ingest. Patients are created first by ADT^A04, then ORM^O01 orders (one scheduled
   procedure step each, distinct control IDs and accession numbers) are sent over one MLLP
   connection, then over four at once. The client is as cheap as one can be: every message
   is encoded and framed before the clock starts, and each connection is a raw asyncio
   socket that sends its next message when the acknowledgment of the previous one arrives
   (MLLP's rule). The server acknowledges after its transaction committed. For reference,
   python-hl7's ``mllp_send`` sends a share of the orders over one connection (its process
   start included). No other HL7 server is installed here to measure against (no Mirth,
   HAPI or NextGen Connect): the figures are compared with the target.
2. Modality worklist C-FIND. The orders of (1) are the scheduled steps. The items Concilium
   serves, read from its database and converted as it converts them, are written as ``.wl``
   files (``dump2dcm``, ``tests/wlmscpfs.py``) for DCMTK's reference server ``wlmscpfs``, and
   both servers answer the same typical queries (station AE title and today's date, patient
   name with a wildcard, accession number), asked by pynetdicom on one open association
   (per-query latency) and by DCMTK's ``findscu -W`` (one process per query, its start
   included). Ratios are Concilium / wlmscpfs.
3. The reading worklist page and its JSON API: not measured while they do not exist.

Run: ``.venv/bin/python bench/reading.py [--steps 10000] [--database-url
postgresql://postgres@127.0.0.1:5432/test]``. Needs ``apt-get install dcmtk``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import math
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import psycopg
from pynetdicom import AE
from pynetdicom.sop_class import ModalityWorklistInformationFind  # type: ignore[attr-defined]
from sqlalchemy import create_engine, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from concilium.platform.i18n import zone
from concilium.platform.tables import Site
from concilium.reading.tables import ScheduledStepRecord
from concilium.reading.worklist import WorklistItem
from concilium.reading.worklist_source import worklist_item
from concilium.reading.worklist_store import scheduled_steps

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
import wlmscpfs  # noqa: E402  (tests/wlmscpfs.py, shared with the conformance test)
from reading_orders import (  # noqa: E402  (bench/reading_orders.py)
    END_OF_BLOCK,
    HIS,
    STATIONS,
    OrderSpec,
    PatientSpec,
    Query,
    adt_a04,
    framed,
    make_orders,
    make_patients,
    orm_o01,
    worklist_queries,
)

VENV_BIN = REPO / ".venv" / "bin"
PYTHON = str(VENV_BIN / "python" if (VENV_BIN / "python").exists() else Path(sys.executable))
MLLP_SEND = VENV_BIN / "mllp_send"
LOOPBACK = "127.0.0.1"
FINESS = "570000000"
CONCILIUM_AET = "CONCILIUM"
WLMSCPFS_AET = "WLMSCPFS"
PARIS = ZoneInfo("Europe/Paris")
TARGET_RATE = 1000.0
ENGINE_PEAK = 1170.0


def say(text: str) -> None:
    print(text, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def percentile(samples: Sequence[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))]


def wait_until(check: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if check():
                return
        time.sleep(0.2)
    raise RuntimeError(f"{what} not ready after {seconds:.0f} s")


class LoadAverage:
    """The 1-minute load average every 5 s: how much else ran on the machine meanwhile."""

    def __init__(self) -> None:
        self.samples = [os.getloadavg()[0]]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(5):
            self.samples.append(os.getloadavg()[0])

    def stop(self) -> None:
        self._stop.set()

    def line(self) -> str:
        s = self.samples
        return (
            f"1-min load average during the run: min {min(s):.1f}, median "
            f"{statistics.median(s):.1f}, max {max(s):.1f} ({os.cpu_count()} cores)"
        )


# --- the server -----------------------------------------------------------------------------


@dataclass
class Concilium:
    process: subprocess.Popen[bytes]
    env: dict[str, str]
    hl7_port: int
    dicom_port: int
    database_url: str
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def worklist_items(self) -> list[WorklistItem]:
        """Every scheduled step as the worklist item Concilium serves (its own conversion,
        the start in the site's zone), read from the database: what wlmscpfs is given."""
        engine = create_engine(self.database_url)
        try:
            with Session(engine) as db:
                zones = {s.id: zone(s.timezone) for s in db.execute(select(Site)).scalars()}
                exams = scheduled_steps(db, None)
                return [worklist_item(e, zones[e.site_id]) for e in exams]
        finally:
            engine.dispose()

    def steps(self) -> int:
        """Scheduled steps held, read from the database itself."""
        engine = create_engine(self.database_url)
        try:
            with engine.connect() as db:
                return int(db.execute(select(func.count(ScheduledStepRecord.id))).scalar_one())
        finally:
            engine.dispose()


def start_concilium(work: Path, database_url: str) -> Concilium:
    data_dir = work / "concilium"
    data_dir.mkdir()
    http_port, dicom_port, hl7_port = free_port(), free_port(), free_port()
    url = database_url or f"sqlite:///{data_dir / 'concilium.db'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONCILIUM_")}
    env.update(
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO / "src"), os.environ.get("PYTHONPATH")])),
        CONCILIUM_DATA_DIR=str(data_dir),
        CONCILIUM_DATABASE_URL=url,
        CONCILIUM_HTTP_HOST=LOOPBACK,
        CONCILIUM_HTTP_PORT=str(http_port),
        CONCILIUM_PUBLIC_URL=f"http://{LOOPBACK}:{http_port}",
        CONCILIUM_DICOM_HOST=LOOPBACK,
        CONCILIUM_DICOM_PORT=str(dicom_port),
        CONCILIUM_DICOM_AE_TITLE=CONCILIUM_AET,
        CONCILIUM_HL7_HOST=LOOPBACK,
        CONCILIUM_HL7_PORT=str(hl7_port),
        CONCILIUM_LIVE_ENABLED="false",
        CONCILIUM_LOG_LEVEL="WARNING",
    )

    def cli(*args: str) -> str:
        done = subprocess.run(
            [PYTHON, "-m", "concilium", *args], env=env, cwd=work, capture_output=True, text=True
        )
        if done.returncode:
            raise RuntimeError(f"concilium {' '.join(args[:3])} failed: {done.stderr.strip()}")
        return done.stdout

    cli("migrate")
    cli("site", "create", "--name", "CH Briey", "--finess", FINESS)
    cli("hl7", "node", "add", "--site", FINESS, "--application", HIS[0], "--facility", HIS[1])
    for station in STATIONS:
        node = ["--host", LOOPBACK, "--port", "104", "--site", FINESS, "--query"]
        cli("dicom", "ae", "add", station.ae_title, *node)
    log = work / "concilium.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [PYTHON, "-m", "concilium", "serve", "--no-migrate"],
            env=env,
            cwd=work,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = Concilium(process, env, hl7_port, dicom_port, url, log)
    health = f"http://{LOOPBACK}:{http_port}/healthz"
    try:
        wait_until(lambda: httpx.get(health).status_code == 200, 90, "Concilium HTTP")
        wait_until(lambda: port_open(hl7_port), 30, "Concilium MLLP")
    except RuntimeError:
        server.stop()
        tail = log.read_text(errors="replace")[-2000:]
        raise RuntimeError(f"Concilium did not start: {tail}") from None
    return server


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex((LOOPBACK, port)) == 0


class PostgresDatabase:
    """A new database on the server of ``admin_url`` for the run, dropped at the end."""

    def __init__(self, admin_url: str) -> None:
        url = make_url(admin_url)
        if url.drivername in ("postgresql", "postgres"):
            url = url.set(drivername="postgresql+psycopg")
        self.admin = url
        self.name = f"concilium_bench_{uuid.uuid4().hex[:8]}"
        self.url = url.set(database=self.name).render_as_string(hide_password=False)

    def _connect(self) -> psycopg.Connection[tuple[object, ...]]:
        a = self.admin
        return psycopg.connect(
            host=a.host,
            port=a.port,
            user=a.username,
            password=a.password,
            dbname=a.database,
            autocommit=True,
        )

    def create(self) -> None:
        with self._connect() as conn:
            conn.execute(f'CREATE DATABASE "{self.name}"')

    def drop(self) -> None:
        with self._connect() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


# --- 1. HL7 over MLLP -----------------------------------------------------------------------


@dataclass
class Ingest:
    label: str
    connections: int
    messages: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.messages / self.seconds if self.seconds else 0.0


async def _connection(
    port: int,
    messages: Sequence[tuple[bytes, bytes]],
    result: Ingest,
    tick: Callable[[], None],
) -> None:
    """Send each framed message when the acknowledgment of the previous one is in."""
    reader, writer = await asyncio.open_connection(LOOPBACK, port)
    clock = time.perf_counter
    try:
        for payload, expected in messages:
            sent = clock()
            writer.write(payload)
            ack = await reader.readuntil(END_OF_BLOCK)
            result.latencies.append(clock() - sent)
            if expected not in ack:
                msa = ack[ack.find(b"MSA|") :].split(b"\r", 1)[0]
                err = ack[ack.find(b"ERR|") :].split(b"\r", 1)[0] if b"ERR|" in ack else b""
                result.refused.append((msa + b" " + err).decode(errors="replace"))
            tick()
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


def send_over_mllp(
    port: int, label: str, prepared: Sequence[tuple[bytes, bytes]], connections: int, every: int
) -> Ingest:
    """``prepared`` (framed message, expected MSA) dealt round-robin to ``connections``."""
    result = Ingest(label, connections)
    shares = [prepared[i::connections] for i in range(connections)]
    done = 0

    def tick() -> None:
        nonlocal done
        done += 1
        if every and done % every == 0:
            elapsed = time.perf_counter() - started
            say(f"    {label}: {done}/{len(prepared)} acknowledged, {done / elapsed:.0f}/s")

    async def run() -> None:
        await asyncio.gather(*(_connection(port, s, result, tick) for s in shares))

    started = time.perf_counter()
    asyncio.run(run())
    result.seconds = time.perf_counter() - started
    result.messages = len(prepared)
    return result


def prepare(messages: Sequence[tuple[bytes, str]]) -> list[tuple[bytes, bytes]]:
    return [(framed(raw), f"MSA|AA|{control}".encode()) for raw, control in messages]


def report_ingest(result: Ingest) -> None:
    lat = result.latencies
    acks = (
        f"; ACK p50 {percentile(lat, 0.5) * 1000:.2f} ms, p99 {percentile(lat, 0.99) * 1000:.2f} ms"
        if lat
        else " (per-message ACK times not seen by this client)"
    )
    say(
        f"  {result.label}: {result.messages} in {result.seconds:.2f} s = "
        f"{result.rate:.0f} messages/s{acks}"
    )
    if result.refused:
        say(f"    {len(result.refused)} NOT accepted (AA), first: {result.refused[0]}")


def mllp_send_reference(port: int, work: Path, orders: Sequence[OrderSpec]) -> Ingest:
    """python-hl7's ``mllp_send`` with a file of the orders, one connection; its process
    start is included (it is what a script calling it pays)."""
    result = Ingest("python-hl7 mllp_send, 1 connection", 1)
    path = work / "mllp_send.hl7"
    path.write_bytes(b"".join(framed(orm_o01(o)) for o in orders))
    started = time.perf_counter()
    done = subprocess.run(
        [str(MLLP_SEND), "-p", str(port), "-f", str(path), LOOPBACK],
        capture_output=True,
        timeout=3600,
        check=False,
    )
    result.seconds = time.perf_counter() - started
    result.messages = len(orders)
    accepted = done.stdout.count(b"MSA|AA|")
    if done.returncode or accepted != len(orders):
        result.refused.append(f"{accepted} AA of {len(orders)}, exit {done.returncode}")
    return result


def phase_hl7(
    server: Concilium,
    work: Path,
    patients: Sequence[PatientSpec],
    orders: Sequence[OrderSpec],
    single: int,
    reference: int,
    every: int,
) -> dict[str, Ingest]:
    say(
        f"\n[1] HL7 v2 over MLLP: {len(patients)} patients by ADT^A04, then {len(orders)} "
        "ORM^O01 orders (messages framed before timing; next message on the ACK)"
    )
    results: dict[str, Ingest] = {}
    adts = prepare([(adt_a04(p), f"ADT{p.number:07d}") for p in patients])
    results["adt"] = send_over_mllp(server.hl7_port, "ADT^A04, 4 connections", adts, 4, every * 2)
    report_ingest(results["adt"])
    rest = list(orders)
    if reference and MLLP_SEND.exists():
        ref, rest = rest[:reference], rest[reference:]
        say(f"  python-hl7 mllp_send, {len(ref)} orders ...")
        results["mllp_send"] = mllp_send_reference(server.hl7_port, work, ref)
        report_ingest(results["mllp_send"])
    elif reference:
        say(f"  python-hl7 mllp_send not found at {MLLP_SEND}: not measured")
    one, four = rest[:single], rest[single:]
    for key, chosen, connections in (("one", one, 1), ("four", four, 4)):
        prepared = prepare([(orm_o01(o), o.control_id) for o in chosen])
        label = f"ORM^O01, {connections} connection{'s' if connections > 1 else ''}"
        results[key] = send_over_mllp(server.hl7_port, label, prepared, connections, every)
        report_ingest(results[key])
    held = server.steps()
    say(f"  scheduled steps in the database afterwards: {held} (orders sent: {len(orders)})")
    if held != len(orders):
        say("  WARNING: the database does not hold one step per acknowledged order")
    return results


# --- 2. Modality worklist C-FIND ------------------------------------------------------------


@dataclass
class FindResult:
    latencies: dict[str, list[float]] = field(default_factory=dict)
    matches: dict[str, int] = field(default_factory=dict)
    missing: str = ""

    def add(self, kind: str, seconds: float, total: int) -> None:
        """One query timed; a progress line every 10."""
        self.latencies.setdefault(kind, []).append(seconds)
        done = sum(len(v) for v in self.latencies.values())
        if done % 10 == 0:
            say(f"    {done}/{total} queries, last {seconds * 1000:.1f} ms")

    def all(self) -> list[float]:
        return [x for values in self.latencies.values() for x in values]


def find_pynetdicom(port: int, called: str, queries: Sequence[Query]) -> FindResult:
    """Every query on one open association per calling AE title, timed one by one."""
    result = FindResult()
    by_calling: dict[str, list[Query]] = {}
    for query in queries:
        by_calling.setdefault(query.calling, []).append(query)
    for calling, mine in by_calling.items():
        ae = AE(ae_title=calling)
        ae.add_requested_context(ModalityWorklistInformationFind)
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 120
        assoc = ae.associate(LOOPBACK, port, ae_title=called)
        if not assoc.is_established:
            result.missing = f"{called} refused the association or MWL"
            return result
        # Nagle off on the client's side too: a C-FIND request is two PDVs.
        held = assoc.dul.socket.socket if assoc.dul.socket is not None else None
        if held is not None:
            held.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            if not assoc.accepted_contexts:
                result.missing = f"{called} does not accept the Modality Worklist C-FIND"
                return result
            for warm in mine[:3]:
                list(assoc.send_c_find(warm.keys, ModalityWorklistInformationFind))
            for query in mine:
                started = time.perf_counter()
                found = 0
                for status, identifier in assoc.send_c_find(
                    query.keys, ModalityWorklistInformationFind
                ):
                    if status is None or not hasattr(status, "Status"):
                        raise RuntimeError(f"{called}: no answer to a C-FIND")
                    if status.Status in (0xFF00, 0xFF01) and identifier is not None:
                        found += 1
                    elif status.Status != 0x0000:
                        raise RuntimeError(f"{called}: C-FIND status 0x{status.Status:04X}")
                elapsed = time.perf_counter() - started
                result.add(query.kind, elapsed, len(queries))
                result.matches[query.kind] = result.matches.get(query.kind, 0) + found
        finally:
            assoc.release()
    return result


def find_findscu(port: int, called: str, queries: Sequence[Query]) -> FindResult:
    """Every query by its own ``findscu -W`` process: the time includes the process start."""
    result = FindResult()
    env = {**os.environ, "TCP_NODELAY": "1"}  # Nagle off, as for wlmscpfs
    for query in queries:
        args = ["findscu", "-W", "-aet", query.calling, "-aec", called]
        for key in query.findscu_keys:
            args += ["-k", key]
        started = time.perf_counter()
        done = subprocess.run(
            [*args, LOOPBACK, str(port)], capture_output=True, timeout=120, check=False, env=env
        )
        elapsed = time.perf_counter() - started
        if done.returncode:
            result.missing = f"findscu failed: {done.stderr.decode(errors='replace')[-300:]}"
            return result
        result.add(query.kind, elapsed, len(queries))
    return result


def phase_worklist(
    server: Concilium,
    work: Path,
    orders: Sequence[OrderSpec],
    today: dt.date,
    queries_per_kind: int,
    findscu_per_kind: int,
) -> dict[str, dict[str, FindResult]]:
    say(
        f"\n[2] Modality worklist C-FIND over {len(orders)} scheduled steps: Concilium (its "
        "database, filled by the HL7 orders above) and wlmscpfs (the same items as .wl files)"
    )
    items = server.worklist_items()
    say(f"  writing the {len(items)} items Concilium serves as .wl files (dump2dcm) for wlmscpfs")
    root = wlmscpfs.write_database(
        work / "wlistdb",
        WLMSCPFS_AET,
        items,
        workers=2,
        progress=lambda n: say(f"    {n}/{len(items)} written") if n % 2500 == 0 else None,
    )
    queries = worklist_queries(orders, queries_per_kind, today)
    few = worklist_queries(orders, findscu_per_kind, today)
    results: dict[str, dict[str, FindResult]] = {}
    port = free_port()
    with wlmscpfs.serving(root, port, work / "wlmscpfs.log", nodelay=True):
        for name, target_port, called in (
            ("Concilium", server.dicom_port, CONCILIUM_AET),
            ("wlmscpfs", port, WLMSCPFS_AET),
        ):
            say(f"  {name}: {len(queries)} queries with pynetdicom, one association per station")
            mine = {"pynetdicom": find_pynetdicom(target_port, called, queries)}
            if not mine["pynetdicom"].missing:
                say(f"  {name}: {len(few)} queries with findscu -W, one process each")
                mine["findscu"] = find_findscu(target_port, called, few)
            else:
                mine["findscu"] = FindResult(missing=mine["pynetdicom"].missing)
            for client, found in mine.items():
                if found.missing:
                    say(f"    {client}: not measured, {found.missing}")
                    continue
                lat = found.all()
                say(
                    f"    {client}: p50 {percentile(lat, 0.5) * 1000:.1f} ms, "
                    f"p95 {percentile(lat, 0.95) * 1000:.1f} ms"
                )
            results[name] = mine
    rejected = (work / "wlmscpfs.log").read_text(errors="replace").count("incomplete")
    if rejected:
        say(f"  WARNING: wlmscpfs rejected worklist files as incomplete ({rejected} messages)")
    ours, theirs = results["Concilium"]["pynetdicom"], results["wlmscpfs"]["pynetdicom"]
    if not ours.missing and ours.matches != theirs.matches:
        say(f"  WARNING: different matches: Concilium {ours.matches}, wlmscpfs {theirs.matches}")
    return results


# --- the summary ----------------------------------------------------------------------------


def cell(value: float | None, digits: int = 1) -> str:
    return "n/m" if value is None else f"{value:.{digits}f}"


def print_summary(
    hl7: dict[str, Ingest],
    mwl: dict[str, dict[str, FindResult]],
    args: argparse.Namespace,
    database: str,
    load: LoadAverage,
) -> None:
    say(
        f"\nReading bench, {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, loopback, "
        f"{os.cpu_count()} cores, database {database}"
    )
    say(
        "No other HL7 server is installed on this machine (no Mirth/NextGen Connect, HAPI "
        "or other MLLP engine): HL7 figures are compared with "
        f"the target, >= {TARGET_RATE:,.0f} messages/s over 4 connections (an integration "
        f"engine's published peak is about {ENGINE_PEAK:,.0f}/s)."
    )
    header = (
        f"{'HL7 ORM^O01 ingest, ACK after commit':<44} {'msg/s':>8} {'p50 ms':>8} {'p99 ms':>8}"
    )
    say(header)
    say("-" * len(header))
    for key in ("one", "four", "mllp_send", "adt"):
        r = hl7.get(key)
        if r is None:
            continue
        lat = r.latencies
        p50 = cell(percentile(lat, 0.5) * 1000, 2) if lat else "-"
        p99 = cell(percentile(lat, 0.99) * 1000, 2) if lat else "-"
        say(f"{r.label + f' ({r.messages})':<44} {r.rate:>8.0f} {p50:>8} {p99:>8}")
    four = hl7.get("four")
    if four is not None:
        verdict = "met" if four.rate >= TARGET_RATE and not four.refused else "NOT MET"
        say(
            f"target >= {TARGET_RATE:,.0f}/s over 4 connections: {four.rate:,.0f}/s, "
            f"{four.rate / TARGET_RATE:.2f}x the target, {four.rate / ENGINE_PEAK:.2f}x the "
            f"engine's 1,170/s: {verdict}"
        )
    if "mllp_send" in hl7:
        say("mllp_send: its process start included; a reference for the client, not the server")
    title = f"MWL C-FIND p50 / p95, {args.steps} steps"
    say(f"\n{title:<56} {'Concilium':>18} {'wlmscpfs':>18} {'ratio p50/p95':>14}  target")
    for client, label in (
        ("pynetdicom", "pynetdicom, one association"),
        ("findscu", "findscu -W, process start incl."),
    ):
        ours, theirs = mwl["Concilium"][client], mwl["wlmscpfs"][client]
        kinds = sorted(set(ours.latencies) | set(theirs.latencies)) or ["(all)"]
        for kind in ["(all)", *[k for k in kinds if k != "(all)"]]:
            o = ours.all() if kind == "(all)" else ours.latencies.get(kind, [])
            t = theirs.all() if kind == "(all)" else theirs.latencies.get(kind, [])

            def pair(values: list[float]) -> str:
                if not values:
                    return "n/m"
                return (
                    f"{percentile(values, 0.5) * 1000:.1f} / "
                    f"{percentile(values, 0.95) * 1000:.1f} ms"
                )

            ratio, verdict = "-", ""
            if o and t:
                r50 = percentile(o, 0.5) / percentile(t, 0.5)
                r95 = percentile(o, 0.95) / percentile(t, 0.95)
                ratio = f"{r50:.2f} / {r95:.2f}"
                if kind == "(all)":
                    verdict = "<= wlmscpfs: " + ("met" if r50 <= 1 and r95 <= 1 else "NOT MET")
            name = f"{label}: {kind}" if kind != "(all)" else f"{label}, all"
            say(f"{name:<56} {pair(o):>18} {pair(t):>18} {ratio:>14}  {verdict}")
    notes = {f.missing for m in mwl.values() for f in m.values() if f.missing}
    if notes:
        say("n/m = not measured: " + "; ".join(sorted(notes)))
    say(
        "\n[3] Reading worklist page and its JSON API with 50,000 orders (target p95 <= 100 ms): "
        "not measured, the page does not exist yet."
    )
    say(load.line())


# --- main -----------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--steps", type=int, default=10000, help="orders (one step each)")
    parser.add_argument("--patients", type=int, default=2000, help="patients created by ADT")
    parser.add_argument("--single", type=int, default=2000, help="orders over one connection")
    parser.add_argument(
        "--mllp-send", type=int, default=500, help="orders sent by mllp_send (0: none)"
    )
    parser.add_argument("--queries", type=int, default=100, help="pynetdicom queries per kind")
    parser.add_argument("--findscu", type=int, default=20, help="findscu -W queries per kind")
    parser.add_argument(
        "--database-url",
        default="",
        help="PostgreSQL server to run on (a new database is created there and dropped), "
        "e.g. postgresql://postgres@127.0.0.1:5432/test; SQLite when not given",
    )
    parser.add_argument("--progress", type=int, default=1000, help="progress line every N")
    parser.add_argument("--keep", action="store_true", help="keep the work directory and logs")
    args = parser.parse_args(argv)
    for tool in wlmscpfs.TOOLS:
        if shutil.which(tool) is None:
            sys.exit(f"{tool} not found: apt-get install dcmtk")
    if args.steps < args.single + args.mllp_send + 4:
        sys.exit("--steps must exceed --single + --mllp-send")

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, lambda number, _frame: sys.exit(128 + number))
    work = Path(tempfile.mkdtemp(prefix="concilium-bench-reading-"))
    postgres = PostgresDatabase(args.database_url) if args.database_url else None
    server: Concilium | None = None
    load = LoadAverage()
    try:
        say(f"working in {work}")
        today = dt.datetime.now(PARIS).date()
        patients = make_patients(args.patients)
        orders = make_orders(args.steps, patients, today)
        database = "SQLite"
        if postgres is not None:
            postgres.create()
            database = f"PostgreSQL (new database {postgres.name})"
        say(f"starting Concilium on {database} ...")
        server = start_concilium(work, postgres.url if postgres else "")
        hl7 = phase_hl7(server, work, patients, orders, args.single, args.mllp_send, args.progress)
        mwl = phase_worklist(server, work, orders, today, args.queries, args.findscu)
        load.stop()
        print_summary(hl7, mwl, args, database, load)
    finally:
        load.stop()
        if server is not None:
            server.stop()
        if postgres is not None:
            with contextlib.suppress(psycopg.Error):
                postgres.drop()
        if args.keep:
            say(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

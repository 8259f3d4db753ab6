"""Imaging bench: Concilium's archive against Orthanc, side by side on loopback.

Both servers run on this machine with their own temporary storage and receive the same
synthetic data (``concilium.imaging.synthetic``):

1. C-STORE ingest of a CT study (512x512 slices) with DCMTK ``storescu``, one association;
2. STOW-RS ingest of the same slices under new UIDs, ``dicomweb_client`` in batches of 50,
   then the same loop against ``bench/stow_sink.py``, which reads each request and discards
   it: the client's own ceiling on this machine, which bounds any server's ratio;
3. QIDO-RS study searches (p50/p95) once ``--studies`` one-instance studies are indexed;
4. WADO-RS retrieve of the whole CT study (multipart, streamed, bytes counted);
5. study metadata (``/studies/{uid}/metadata``);
6. peak resident memory (VmHWM, reset through ``/proc/PID/clear_refs`` before each phase,
   summed over the server's process tree) while ingesting, and with ``--big`` while
   ingesting a study of about 2 GB.

Ratios are Concilium / Orthanc. Orthanc is Debian's ``orthanc`` with the
``orthanc-dicomweb`` plugin, started here with a generated configuration (own storage,
ports and AE title; remote access and authentication off), never the system service.

Run: ``.venv/bin/python bench/imaging.py [--instances 1000] [--studies 10000] [--big]
[--only concilium|orthanc]``. Needs ``apt-get install dcmtk orthanc orthanc-dicomweb``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import math
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import requests
from dicomweb_client.api import DICOMwebClient
from pydicom import dcmread
from pydicom.dataset import Dataset

from concilium.imaging.synthetic import SyntheticPatient, SyntheticStudy, generate_ct_series
from concilium.imaging.synthetic import synthetic_uid as make_uid

REPO = Path(__file__).resolve().parent.parent
VENV_PYTHON = REPO / ".venv" / "bin" / "python"
PYTHON = str(VENV_PYTHON if VENV_PYTHON.exists() else Path(sys.executable))
LOOPBACK = "127.0.0.1"
CALLING_AET = "BENCHSCU"
CONCILIUM_AET = "CONCILIUM"
ORTHANC_AET = "ORTHANCBENCH"
FINESS = "999000001"
PASSWORD = "bench-only-password-4f1c9e2a7b"
DICOMWEB_PLUGIN_CANDIDATES = (
    "/usr/share/orthanc/plugins/libOrthancDicomWeb.so",
    "/usr/lib/orthanc/libOrthancDicomWeb.so",
)
CT_SEED = "bench-imaging-ct"
STOW_SEED = "bench-imaging-stow"
BIG_SEED = "bench-imaging-big"
FIRST_DATE = dt.date(2024, 1, 1)
DATE_SPAN_DAYS = 730
MB = 1024 * 1024


# --- helpers --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def say(text: str) -> None:
    print(text, flush=True)


def wait_until(check: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if check():
                return
        time.sleep(0.2)
    raise RuntimeError(f"{what} not ready after {seconds:.0f} s")


def children_of() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            stat = (entry / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def process_tree(root: int) -> list[int]:
    tree = children_of()
    pids, todo = [], [root]
    while todo:
        pid = todo.pop()
        pids.append(pid)
        todo.extend(tree.get(pid, []))
    return pids


def status_kb(pid: int, key: str) -> int:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


class PeakMemory:
    """Peak resident memory of a process tree over a phase.

    VmHWM of each process is reset at the start (``clear_refs`` 5) and summed at the end; a
    sampler thread also sums VmRSS every 50 ms, which catches children that came and went.
    """

    def __init__(self, root: int) -> None:
        self.root = root
        self.sampled_kb = 0
        self.hwm_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.05):
            total = sum(status_kb(pid, "VmRSS") for pid in process_tree(self.root))
            self.sampled_kb = max(self.sampled_kb, total)

    def __enter__(self) -> PeakMemory:
        for pid in process_tree(self.root):
            with contextlib.suppress(OSError):
                Path(f"/proc/{pid}/clear_refs").write_text("5")
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.hwm_kb = sum(status_kb(pid, "VmHWM") for pid in process_tree(self.root))

    @property
    def peak_mb(self) -> float:
        return max(self.hwm_kb, self.sampled_kb) / 1024


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


# --- the two servers ------------------------------------------------------------------------


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    dicom_port: int
    aet: str
    dicomweb_url: str
    headers: dict[str, str]
    count: Callable[[], tuple[int, int]]
    """(studies, instances) held."""
    log: Path
    dicomweb_missing: str = ""
    """Why DICOMweb cannot be measured on this server, empty when it can."""
    results: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    """Why something was not measured on this server."""

    def echo(self) -> bool:
        command = ["echoscu", "-aet", CALLING_AET, "-aec", self.aet, LOOPBACK, str(self.dicom_port)]
        return subprocess.run(command, capture_output=True, timeout=10).returncode == 0

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_concilium(work: Path) -> Server:
    data_dir = work / "concilium"
    data_dir.mkdir()
    http_port, dicom_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONCILIUM_")}
    env.update(
        CONCILIUM_DATA_DIR=str(data_dir),
        CONCILIUM_HTTP_HOST=LOOPBACK,
        CONCILIUM_HTTP_PORT=str(http_port),
        CONCILIUM_PUBLIC_URL=f"http://{LOOPBACK}:{http_port}",
        CONCILIUM_DICOM_HOST=LOOPBACK,
        CONCILIUM_DICOM_PORT=str(dicom_port),
        CONCILIUM_DICOM_AE_TITLE=CONCILIUM_AET,
        CONCILIUM_LIVE_ENABLED="false",
        CONCILIUM_LOG_LEVEL="WARNING",
    )

    def cli(*args: str) -> str:
        done = subprocess.run(
            [PYTHON, "-m", "concilium", *args], env=env, cwd=work, capture_output=True, text=True
        )
        if done.returncode:
            raise RuntimeError(f"concilium {' '.join(args[:2])} failed: {done.stderr.strip()}")
        return done.stdout

    cli("migrate")
    cli("site", "create", "--name", "Bench Hospital", "--finess", FINESS)
    account = ["--username", "bench", "--full-name", "Bench Runner", "--password", PASSWORD]
    cli("user", "create", *account, "--role", f"radiologist@{FINESS}")
    scopes = ["--scope", "imaging:read", "--scope", "imaging:write"]
    issued = cli("token", "create", "--user", "bench", "--name", "bench", "--days", "2", *scopes)
    token = issued.strip().splitlines()[-1]
    node = ["--host", LOOPBACK, "--port", "11113", "--site", FINESS, "--store", "--query"]
    cli("dicom", "ae", "add", CALLING_AET, *node)
    log = work / "concilium.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [PYTHON, "-m", "concilium", "serve", "--no-migrate"],
            env=env,
            cwd=work,
            stdout=out,
            stderr=subprocess.STDOUT,
        )

    def count() -> tuple[int, int]:
        text = cli("dicom", "stats")
        found = re.match(r"(\d+) studies, \d+ series, (\d+) instances", text)
        return (int(found[1]), int(found[2])) if found else (-1, -1)

    server = Server(
        "Concilium",
        process,
        dicom_port,
        CONCILIUM_AET,
        f"http://{LOOPBACK}:{http_port}/dicomweb",
        {"Authorization": f"Bearer {token}"},
        count,
        log,
    )
    health = f"http://{LOOPBACK}:{http_port}/healthz"
    wait_until(lambda: httpx.get(health).status_code == 200, 90, "Concilium HTTP")
    wait_until(server.echo, 30, "Concilium DICOM")
    return server


def dicomweb_plugin() -> str:
    for candidate in DICOMWEB_PLUGIN_CANDIDATES:
        if Path(candidate).is_file():
            return candidate
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        listed = subprocess.run(
            ["dpkg", "-L", "orthanc-dicomweb"], capture_output=True, text=True
        ).stdout
        for line in listed.splitlines():
            if line.endswith(".so") or ".so." in line:
                return line
    return ""


def start_orthanc(work: Path) -> Server:
    binary = shutil.which("Orthanc") or "/usr/sbin/Orthanc"
    if not Path(binary).exists():
        raise RuntimeError("Orthanc is not installed: apt-get install orthanc orthanc-dicomweb")
    home = work / "orthanc"
    (home / "storage").mkdir(parents=True)
    http_port, dicom_port = free_port(), free_port()
    plugin = dicomweb_plugin()
    config: dict[str, Any] = {
        "Name": "bench",
        "StorageDirectory": str(home / "storage"),
        "IndexDirectory": str(home / "storage"),
        "HttpServerEnabled": True,
        "HttpPort": http_port,
        "DicomServerEnabled": True,
        "DicomAet": ORTHANC_AET,
        "DicomPort": dicom_port,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "DicomCheckCalledAet": False,
        "Plugins": [plugin] if plugin else [],
    }
    if plugin:
        config["DicomWeb"] = {"Enable": True, "Root": "/dicom-web/", "EnableWado": True}
    config_path = home / "orthanc.json"
    config_path.write_text(json.dumps(config, indent=2))
    log = work / "orthanc.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [binary, str(config_path)], cwd=home, stdout=out, stderr=subprocess.STDOUT
        )
    base = f"http://{LOOPBACK}:{http_port}"

    def count() -> tuple[int, int]:
        stats = httpx.get(f"{base}/statistics", timeout=60).json()
        return int(stats["CountStudies"]), int(stats["CountInstances"])

    server = Server(
        "Orthanc", process, dicom_port, ORTHANC_AET, f"{base}/dicom-web", {}, count, log
    )
    wait_until(lambda: httpx.get(f"{base}/system").status_code == 200, 60, "Orthanc HTTP")
    wait_until(server.echo, 30, "Orthanc DICOM")
    if not plugin:
        server.dicomweb_missing = "orthanc-dicomweb plugin not found (dpkg -L orthanc-dicomweb)"
    elif httpx.get(f"{base}/dicom-web/studies", params={"limit": "1"}).status_code >= 400:
        server.dicomweb_missing = "DicomWeb plugin did not load (see orthanc.log)"
    return server


# --- data -----------------------------------------------------------------------------------


def tiny_study(index: int) -> SyntheticStudy:
    """One of the small studies filling the index: its own patient, date and accession."""
    return SyntheticStudy(
        seed=f"bench-imaging-tiny-{index}",
        patient=SyntheticPatient(name=f"BENCH^P{index:05d}", patient_id=f"BENCH-{index:06d}"),
        study_date=study_date(index % DATE_SPAN_DAYS),
        accession_number=f"BA{index:07d}",
        description="BENCH INDEX",
    )


def study_date(day: int) -> dt.date:
    return FIRST_DATE + dt.timedelta(days=day)


def generate_tiny(directory: Path, count: int, every: int) -> None:
    for index in range(count):
        generate_ct_series(
            directory / f"s{index // 1000:03d}" / f"t{index:05d}",
            1,
            study=tiny_study(index),
            rows=16,
            columns=16,
            series_number=1,
        )
        if (index + 1) % every == 0 or index + 1 == count:
            say(f"  generated {index + 1}/{count} one-instance studies")


def generate_ct(directory: Path, count: int, seed: str, every: int) -> list[Path]:
    """`count` 512x512 CT slices in chunks, so long generations show progress."""
    study = SyntheticStudy(seed=seed, accession_number="BENCH-CT")
    paths: list[Path] = []
    chunk = max(every, 1)
    # generate_ct_series numbers slices from 1 and derives UIDs from the slice index, so
    # chunks are generated into sub-directories with distinct series numbers.
    for series, start in enumerate(range(0, count, chunk), start=1):
        size = min(chunk, count - start)
        paths += generate_ct_series(
            directory / f"{series:03d}", size, study=study, series_number=series
        )
        say(f"  generated {start + size}/{count} CT slices")
    return paths


# --- phases ---------------------------------------------------------------------------------


def storescu(server: Server, directory: Path, expected: int, every: int, label: str) -> float:
    """Send every file under `directory` over one association; wall time in seconds."""
    command = [
        "storescu",
        "-v",
        "-nh",
        "-aet",
        CALLING_AET,
        "-aec",
        server.aet,
        LOOPBACK,
        str(server.dicom_port),
        "+sd",
        "+r",
        str(directory),
    ]
    start = time.perf_counter()
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    )
    assert process.stdout is not None
    answered = failed = 0
    errors: list[str] = []
    for line in process.stdout:
        if "Received Store Response" in line:
            answered += 1
            if "Success" not in line:
                failed += 1
                errors.append(line.strip())
            if answered % every == 0:
                say(f"  {label} {server.name}: {answered}/{expected}")
        elif line.startswith(("E:", "F:")):
            errors.append(line.strip())
    returncode = process.wait()
    elapsed = time.perf_counter() - start
    if returncode or failed or answered != expected:
        detail = "; ".join(errors[:3])
        say(
            f"  {label} {server.name}: {answered} answered, {failed} failed, rc {returncode} "
            f"{detail}"
        )
    return elapsed


def phase_cstore(servers: list[Server], directory: Path, count: int, every: int) -> None:
    say(f"\n[1] C-STORE ingest: {count} CT instances 512x512, storescu, one association")
    for server in servers:
        before = server.count()[1]
        with PeakMemory(server.process.pid) as memory:
            elapsed = storescu(server, directory, count, every, "C-STORE")
        stored = server.count()[1] - before
        server.results["cstore_rate"] = stored / elapsed
        server.results["cstore_peak_mb"] = memory.peak_mb
        say(
            f"  {server.name}: {stored} stored in {elapsed:.1f} s = {stored / elapsed:.1f}/s, "
            f"peak RSS {memory.peak_mb:.0f} MB"
        )


def stow_datasets(files: list[Path]) -> list[Dataset]:
    """The CT slices again, as a new study with new UIDs (the same for both servers)."""
    study_uid = make_uid(STOW_SEED, "study")
    datasets = []
    for index, path in enumerate(files):
        ds = dcmread(path)
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = make_uid(STOW_SEED, "series", ds.SeriesNumber)
        ds.SOPInstanceUID = make_uid(STOW_SEED, "instance", index)
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.AccessionNumber = "BENCH-STOW"
        datasets.append(ds)
    return datasets


def phase_stow(servers: list[Server], files: list[Path], batch: int, every: int) -> None:
    say(f"\n[2] STOW-RS ingest: {len(files)} CT instances, dicomweb_client, batches of {batch}")
    datasets = stow_datasets(files)
    for server in servers:
        if server.dicomweb_missing:
            say(f"  {server.name}: not measured, {server.dicomweb_missing}")
            continue
        try:
            stow_one(server, datasets, batch, every)
        except Exception as exc:
            failure(server, "STOW-RS", exc)
    ceiling = stow_client_ceiling(datasets, batch)
    rates = {s.name: s.results["stow_rate"] for s in servers if "stow_rate" in s.results}
    bound = ", ".join(f"{ceiling / rate:.2f}x {name}" for name, rate in rates.items())
    say(
        f"  client alone (bench/stow_sink.py reads each request and discards it): "
        f"{ceiling:.1f}/s, the most any server can reach here ({bound})"
    )


def stow_client_ceiling(datasets: list[Dataset], batch: int) -> float:
    """Instances per second of the same dicomweb-client loop against a server doing nothing
    but read the bodies: the client's own cost, shared by every server measured."""
    port = free_port()
    sink = subprocess.Popen(
        [PYTHON, "-m", "uvicorn", "--app-dir", str(REPO / "bench"), "stow_sink:app",
         "--host", LOOPBACK, "--port", str(port), "--lifespan", "off", "--log-level", "warning"],
    )  # fmt: skip
    try:
        wait_until(lambda: socket.create_connection((LOOPBACK, port), 1).close() is None, 30,
                   "the STOW-RS sink")  # fmt: skip
        client = DICOMwebClient(f"http://{LOOPBACK}:{port}/dicomweb", timeout=600)
        start = time.perf_counter()
        for first in range(0, len(datasets), batch):
            client.store_instances(datasets[first : first + batch])
        return len(datasets) / (time.perf_counter() - start)
    finally:
        sink.terminate()
        sink.wait(10)


def stow_one(server: Server, datasets: list[Dataset], batch: int, every: int) -> None:
    client = DICOMwebClient(server.dicomweb_url, headers=server.headers, timeout=600)
    failed = sent = 0
    with PeakMemory(server.process.pid) as memory:
        start = time.perf_counter()
        try:
            for first in range(0, len(datasets), batch):
                answer = client.store_instances(datasets[first : first + batch])
                failed += len(getattr(answer, "FailedSOPSequence", []) or [])
                sent += len(datasets[first : first + batch])
                if sent % every < batch:
                    say(f"  STOW-RS {server.name}: {sent}/{len(datasets)}")
        except requests.HTTPError as exc:
            status = exc.response.status_code if exc.response is not None else 0
            if status not in (404, 405):
                raise
            reason = f"{server.name} STOW-RS not available yet (HTTP {status})"
            server.notes.append(reason)
            say(f"  {reason}")
            return
        elapsed = time.perf_counter() - start
    stored = len(datasets) - failed
    server.results["stow_rate"] = stored / elapsed
    server.results["stow_peak_mb"] = memory.peak_mb
    say(
        f"  {server.name}: {stored} stored in {elapsed:.1f} s = {stored / elapsed:.1f}/s, "
        f"{failed} failed, peak RSS {memory.peak_mb:.0f} MB"
    )


def failure(server: Server, what: str, exc: Exception) -> None:
    reason = f"{server.name} {what} failed: {type(exc).__name__}: {exc}"[:240]
    server.notes.append(reason)
    say(f"  {reason}")


def phase_index(servers: list[Server], directory: Path, count: int, every: int) -> None:
    say(
        f"\n[3a] building the index: {count} one-instance studies (16x16) by C-STORE, "
        "to every server at once (not part of the comparison)"
    )
    elapsed: dict[str, float] = {}

    def send(server: Server) -> None:
        elapsed[server.name] = storescu(server, directory, count, every, "index")

    threads = [threading.Thread(target=send, args=(server,)) for server in servers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for server in servers:
        studies, instances = server.count()
        server.results["studies"] = studies
        seconds = elapsed.get(server.name, 0.0)
        say(
            f"  {server.name}: {studies} studies, {instances} instances indexed; "
            f"sent in {seconds:.0f} s ({count / max(seconds, 1e-9):.1f}/s, servers sharing cores)"
        )


def qido_queries(studies: int, count: int) -> list[tuple[str, dict[str, str]]]:
    """A fixed mix of study searches that every server answers alike.

    No wildcard or PatientName matching: Debian's Orthanc 1.10.1 with DicomWeb 1.7 answers
    such QIDO-RS searches with no match (its ``/tools/find`` does match), so they would not
    compare like with like.
    """
    rng = random.Random(20261122)
    queries: list[tuple[str, dict[str, str]]] = []
    for n in range(count):
        index = rng.randrange(max(studies, 1))
        kind = n % 4
        if kind == 0:
            queries.append(("PatientID", {"PatientID": f"BENCH-{index:06d}"}))
        elif kind == 1:
            queries.append(("list, limit 50", {"limit": "50", "offset": str(index)}))
        elif kind == 2:
            first = study_date(index % DATE_SPAN_DAYS)
            last = study_date(index % DATE_SPAN_DAYS + 6)
            span = f"{first:%Y%m%d}-{last:%Y%m%d}"
            queries.append(("StudyDate 7-day range", {"StudyDate": span}))
        else:
            queries.append(("AccessionNumber", {"AccessionNumber": f"BA{index:07d}"}))
    return queries


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, math.ceil(fraction * len(ordered)) - 1)]


@contextlib.contextmanager
def dicomweb(server: Server, accept: str) -> Iterator[httpx.Client]:
    headers = {**server.headers, "Accept": accept}
    with httpx.Client(base_url=server.dicomweb_url, headers=headers, timeout=600) as client:
        yield client


def unavailable(server: Server, response: httpx.Response, what: str) -> bool:
    if response.status_code in (404, 405):
        server.dicomweb_missing = (
            f"{server.name} DICOMweb not available yet ({what} HTTP {response.status_code})"
        )
        return True
    return False


def phase_qido(servers: list[Server], studies: int, count: int) -> None:
    queries = qido_queries(studies, count)
    say(
        f"\n[3b] QIDO-RS: {count} study searches (PatientID, list with limit 50, "
        "7-day StudyDate range, AccessionNumber), one keep-alive connection"
    )
    for server in servers:
        if server.dicomweb_missing:
            say(f"  {server.name}: not measured, {server.dicomweb_missing}")
            continue
        try:
            qido_one(server, queries)
        except Exception as exc:
            failure(server, "QIDO-RS", exc)
    answers = {s.name: s.results["qido_matches"] for s in servers if "qido_matches" in s.results}
    if len(answers) == 2 and len(set(map(str, answers.values()))) > 1:
        say(f"  WARNING: the servers found different matches per kind of search: {answers}")


def qido_one(server: Server, queries: list[tuple[str, dict[str, str]]]) -> None:
    samples: list[float] = []
    by_kind: dict[str, list[float]] = {}
    matches: dict[str, int] = {}
    with dicomweb(server, "application/dicom+json") as client:
        probe = client.get("/studies", params={"limit": "1"})
        if unavailable(server, probe, "QIDO-RS /studies"):
            say(f"  {server.dicomweb_missing}")
            return
        probe.raise_for_status()
        for _, params in queries[:20]:
            client.get("/studies", params=params)
        for kind, params in queries:
            start = time.perf_counter()
            response = client.get("/studies", params=params)
            elapsed = time.perf_counter() - start
            response.raise_for_status()
            found = len(response.json()) if response.content else 0
            matches[kind] = matches.get(kind, 0) + found
            samples.append(elapsed)
            by_kind.setdefault(kind, []).append(elapsed)
    server.results["qido_matches"] = dict(sorted(matches.items()))
    server.results["qido_p50"] = percentile(samples, 0.5) * 1000
    server.results["qido_p95"] = percentile(samples, 0.95) * 1000
    say(
        f"  {server.name}: p50 {server.results['qido_p50']:.1f} ms, "
        f"p95 {server.results['qido_p95']:.1f} ms, {sum(matches.values())} matches in all"
    )
    for kind, values in by_kind.items():
        say(
            f"    {kind:<22} p50 {percentile(values, 0.5) * 1000:7.1f} ms  "
            f"p95 {percentile(values, 0.95) * 1000:7.1f} ms  "
            f"{matches[kind] / len(values):6.1f} matches per search"
        )


def phase_retrieve(servers: list[Server], study_uid: str, instances: int, repeat: int) -> None:
    say(
        f"\n[4] WADO-RS study retrieve ({instances} instances) and [5] study metadata, "
        f"median of {repeat}"
    )
    for server in servers:
        if server.dicomweb_missing:
            say(f"  {server.name}: not measured, {server.dicomweb_missing}")
            continue
        try:
            wado_one(server, study_uid, repeat)
        except Exception as exc:
            failure(server, "WADO-RS", exc)
        if server.dicomweb_missing:
            continue
        try:
            metadata_one(server, study_uid, repeat)
        except Exception as exc:
            failure(server, "study metadata", exc)


def wado_one(server: Server, study_uid: str, repeat: int) -> None:
    times: list[float] = []
    size = parts = 0
    with dicomweb(server, 'multipart/related; type="application/dicom"') as client:
        for _ in range(repeat):
            start = time.perf_counter()
            with client.stream("GET", f"/studies/{study_uid}") as response:
                if unavailable(server, response, "WADO-RS study"):
                    say(f"  {server.dicomweb_missing}")
                    return
                response.raise_for_status()
                boundary = response.headers.get("content-type", "").partition("boundary=")[2]
                marker = b"--" + (boundary.strip('"').split(";")[0] or "?").encode()
                size = parts = 0
                tail = b""
                for chunk in response.iter_bytes(MB):
                    size += len(chunk)
                    window = tail + chunk
                    parts += window.count(marker) - tail.count(marker)
                    tail = window[-len(marker) :]
            times.append(time.perf_counter() - start)
    server.results["wado_s"] = statistics.median(times)
    say(
        f"  {server.name}: WADO-RS {size / MB:.0f} MB, {max(parts - 1, 0)} parts, in "
        f"{', '.join(f'{t:.2f}' for t in times)} s"
    )


def metadata_one(server: Server, study_uid: str, repeat: int) -> None:
    times: list[float] = []
    items = 0
    with dicomweb(server, "application/dicom+json") as client:
        for _ in range(repeat):
            start = time.perf_counter()
            response = client.get(f"/studies/{study_uid}/metadata")
            if unavailable(server, response, "study metadata"):
                say(f"  {server.dicomweb_missing}")
                return
            response.raise_for_status()
            items = len(response.json())
            times.append(time.perf_counter() - start)
    server.results["metadata_s"] = statistics.median(times)
    say(
        f"  {server.name}: metadata of {items} instances in "
        f"{', '.join(f'{t:.2f}' for t in times)} s"
    )


def phase_big(servers: list[Server], directory: Path, count: int, size_gb: float, every: int):
    say(f"\n[6] --big: C-STORE of a {size_gb:.1f} GB study ({count} CT slices), peak RSS")
    for server in servers:
        before = server.count()[1]
        with PeakMemory(server.process.pid) as memory:
            elapsed = storescu(server, directory, count, every, "big C-STORE")
        stored = server.count()[1] - before
        server.results["big_peak_mb"] = memory.peak_mb
        server.results["big_rate"] = stored / elapsed
        say(
            f"  {server.name}: {stored} stored in {elapsed:.1f} s = {stored / elapsed:.1f}/s, "
            f"peak RSS {memory.peak_mb:.0f} MB"
        )


# --- the table ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    label: str
    key: str
    unit: str
    higher_is_better: bool
    target: str
    check: Callable[[float | None, float | None], bool | None]


def _ratio_at_least(limit: float) -> Callable[[float | None, float | None], bool | None]:
    def check(concilium: float | None, orthanc: float | None) -> bool | None:
        if concilium is None or not orthanc:
            return None
        return concilium / orthanc >= limit

    return check


def _ratio_at_most(limit: float) -> Callable[[float | None, float | None], bool | None]:
    def check(concilium: float | None, orthanc: float | None) -> bool | None:
        if concilium is None or not orthanc:
            return None
        return concilium / orthanc <= limit

    return check


def _below(limit: float) -> Callable[[float | None, float | None], bool | None]:
    def check(concilium: float | None, _orthanc: float | None) -> bool | None:
        return None if concilium is None else concilium < limit

    return check


def _none(_concilium: float | None, _orthanc: float | None) -> bool | None:
    return None


def print_table(by_name: dict[str, Server], args: argparse.Namespace, load: LoadAverage) -> None:
    rows = [
        Row(
            "C-STORE ingest",
            "cstore_rate",
            "inst/s",
            True,
            ">= 3x Orthanc (ref ~18/s)",
            _ratio_at_least(3),
        ),
        Row(
            "STOW-RS ingest",
            "stow_rate",
            "inst/s",
            True,
            ">= 3x Orthanc (ref ~66/s)",
            _ratio_at_least(3),
        ),
        Row("QIDO-RS study search p50", "qido_p50", "ms", False, "<= Orthanc", _ratio_at_most(1)),
        Row("QIDO-RS study search p95", "qido_p95", "ms", False, "<= Orthanc", _ratio_at_most(1)),
        Row("WADO-RS study retrieve", "wado_s", "s", False, "<= Orthanc", _ratio_at_most(1)),
        Row("Study metadata", "metadata_s", "s", False, "<= Orthanc", _ratio_at_most(1)),
        Row("Peak RSS, C-STORE ingest", "cstore_peak_mb", "MB", False, "-", _none),
        Row("Peak RSS, STOW-RS ingest", "stow_peak_mb", "MB", False, "-", _none),
    ]
    if args.big:
        rows += [
            Row(
                f"Peak RSS, {args.big_gb:.0f} GB study ingest",
                "big_peak_mb",
                "MB",
                False,
                "Concilium < 400 MB",
                _below(400),
            ),
            Row(
                f"C-STORE ingest, {args.big_gb:.0f} GB study",
                "big_rate",
                "inst/s",
                True,
                "-",
                _none,
            ),
        ]
    concilium = by_name.get("Concilium")
    orthanc = by_name.get("Orthanc")

    def value(server: Server | None, key: str) -> float | None:
        if server is None:
            return None
        found = server.results.get(key)
        return found if isinstance(found, float) else None

    def cell(server: Server | None, key: str) -> str:
        if server is None:
            return "-"
        found = server.results.get(key)
        if isinstance(found, float):
            return (
                f"{found:.3f}" if found < 1 else f"{found:.1f}" if found < 100 else f"{found:.0f}"
            )
        return "n/m"

    studies = max((s.results.get("studies", 0) for s in by_name.values()), default=0)
    say(
        f"\nConcilium vs Orthanc, loopback, {os.cpu_count()} cores; {args.instances} CT "
        f"instances 512x512; QIDO over {studies} studies indexed; ratio = Concilium / Orthanc"
    )
    header = (
        f"{'measure':<30} {'unit':<7} {'Concilium':>10} {'Orthanc':>10} {'ratio':>7}  "
        f"{'target':<26} verdict"
    )
    say(header)
    say("-" * len(header))
    for row in rows:
        c, o = value(concilium, row.key), value(orthanc, row.key)
        ratio = f"{c / o:.2f}" if c is not None and o else "-"
        verdict = row.check(c, o)
        shown = "-" if verdict is None else ("met" if verdict else "NOT MET")
        say(
            f"{row.label:<30} {row.unit:<7} {cell(concilium, row.key):>10} "
            f"{cell(orthanc, row.key):>10} {ratio:>7}  {row.target:<26} {shown}"
        )
    notes = {note for s in by_name.values() for note in s.notes}
    notes |= {s.dicomweb_missing for s in by_name.values() if s.dicomweb_missing}
    if notes:
        say("n/m = not measured: " + "; ".join(sorted(notes)))
    say(
        "Peak RSS: VmHWM reset before the phase (clear_refs), summed over the server's "
        "process tree, or the highest sampled VmRSS sum if higher."
    )
    say(
        f"1-min load average during the run: min {min(load.samples):.1f}, "
        f"median {statistics.median(load.samples):.1f}, max {max(load.samples):.1f} "
        f"(anything above ~0.5 is other work sharing the {os.cpu_count()} cores)"
    )


# --- main -----------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--instances", type=int, default=1000, help="CT slices of the study")
    parser.add_argument("--studies", type=int, default=10000, help="studies indexed for QIDO")
    parser.add_argument("--big", action="store_true", help="also ingest a ~2 GB study")
    parser.add_argument("--big-gb", type=float, default=2.0, help="size of the --big study")
    parser.add_argument("--only", choices=["concilium", "orthanc"], help="one server only")
    parser.add_argument("--batch", type=int, default=50, help="instances per STOW-RS request")
    parser.add_argument("--queries", type=int, default=400, help="QIDO-RS searches timed")
    parser.add_argument("--repeat", type=int, default=3, help="WADO-RS/metadata repetitions")
    parser.add_argument("--progress", type=int, default=250, help="progress line every N")
    args = parser.parse_args()
    for tool in ("storescu", "echoscu"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} not found: apt-get install dcmtk")

    # Stopping the bench (Ctrl-C, kill) still stops both servers and removes the temp dir.
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, lambda number, _frame: sys.exit(128 + number))
    work = Path(tempfile.mkdtemp(prefix="concilium-bench-imaging-"))
    servers: list[Server] = []
    load = LoadAverage()
    try:
        say(f"working in {work}")
        say(f"generating {args.instances} CT slices 512x512 ...")
        ct_dir = work / "data" / "ct"
        ct_files = generate_ct(ct_dir, args.instances, CT_SEED, args.progress)
        tiny_dir = work / "data" / "tiny"
        say(f"generating {args.studies} one-instance studies 16x16 ...")
        generate_tiny(tiny_dir, args.studies, max(args.progress, 1000))

        if args.only != "orthanc":
            say("starting Concilium ...")
            servers.append(start_concilium(work))
        if args.only != "concilium":
            say("starting Orthanc ...")
            servers.append(start_orthanc(work))
        for server in servers:
            say(
                f"  {server.name}: pid {server.process.pid}, DICOM {server.aet}@"
                f"{LOOPBACK}:{server.dicom_port}, DICOMweb {server.dicomweb_url}"
            )

        phase_cstore(servers, ct_dir, args.instances, args.progress)
        phase_stow(servers, ct_files, args.batch, args.progress)
        phase_index(servers, tiny_dir, args.studies, max(args.progress, 1000))
        shutil.rmtree(tiny_dir)
        phase_qido(servers, args.studies, args.queries)
        study_uid = SyntheticStudy(seed=CT_SEED).study_instance_uid
        phase_retrieve(servers, study_uid, args.instances, args.repeat)
        if args.big:
            slice_bytes = ct_files[0].stat().st_size if ct_files else 526_000
            shutil.rmtree(ct_dir)
            count = math.ceil(args.big_gb * 1024**3 / slice_bytes)
            say(f"\ngenerating the --big study: {count} CT slices ...")
            big_dir = work / "data" / "big"
            generate_ct(big_dir, count, BIG_SEED, max(args.progress, 500))
            phase_big(servers, big_dir, count, args.big_gb, max(args.progress, 500))
        load.stop()
        print_table({s.name: s for s in servers}, args, load)
    finally:
        load.stop()
        for server in servers:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

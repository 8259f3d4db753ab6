"""DCMTK's reference worklist server ``wlmscpfs`` on given worklist items, for the worklist
conformance test and ``bench/reading.py``.

Each item's data set (``item_dataset``) is written in ``dump2dcm``'s text form and converted
by ``dump2dcm`` into a ``.wl`` file of a ``wlmscpfs`` data directory (``root/<AE title>/``
with its ``lockfile``), as DCMTK's documentation builds its example worklist database.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset

from concilium.reading.worklist import WorklistItem, item_dataset

TOOLS = ("wlmscpfs", "dump2dcm", "findscu")


def _dump_lines(ds: Dataset, depth: int = 0) -> list[str]:
    lines: list[str] = []
    pad = "  " * depth
    for elem in ds:
        tag = f"({elem.tag.group:04x},{elem.tag.element:04x})"
        if elem.VR == "SQ":
            lines.append(f"{pad}{tag} SQ")
            for child in elem.value:
                lines.append(f"{pad}  (fffe,e000) -")
                lines += _dump_lines(child, depth + 2)
                lines.append(f"{pad}  (fffe,e00d) -")
            lines.append(f"{pad}(fffe,e0dd) -")
            continue
        lines.append(f"{pad}{tag} {elem.VR} [{_dump_value(elem)}]")
    return lines


def _dump_value(elem: DataElement) -> str:
    value = elem.value
    if value is None:
        return ""
    if isinstance(value, list | tuple) or (
        hasattr(value, "__iter__") and not isinstance(value, str | bytes) and elem.VR != "PN"
    ):
        return "\\".join(str(v) for v in value)
    return str(value)


def dump(item: WorklistItem) -> str:
    """The item's data set (`item_dataset`) in ``dump2dcm``'s text form (UTF-8)."""
    return "\n".join(_dump_lines(item_dataset(item))) + "\n"


def dump2dcm(source: Path, target: Path) -> None:
    """Convert a dump file with DCMTK's ``dump2dcm`` (``+E``: stop on any error)."""
    result = subprocess.run(
        ["dump2dcm", "+E", str(source), str(target)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode:
        raise RuntimeError(f"dump2dcm {source.name}: {result.stdout}{result.stderr}")


def write_database(
    root: Path,
    ae_title: str,
    scheduled: Sequence[WorklistItem],
    *,
    workers: int = 1,
    progress: Callable[[int], None] | None = None,
) -> Path:
    """A ``wlmscpfs`` data directory: ``root/<AE title>/`` with its ``lockfile`` and one
    ``.wl`` file per item, converted by ``dump2dcm`` (``workers`` at once; ``progress`` is
    told how many are written, every 500). Returns ``root``."""
    folder = root / ae_title
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "lockfile").write_text("")

    def write(numbered: tuple[int, WorklistItem]) -> None:
        number, item = numbered
        source = folder / f"item{number}.dump"
        source.write_text(dump(item), encoding="utf-8")
        dump2dcm(source, folder / f"item{number}.wl")
        source.unlink()

    with ThreadPoolExecutor(max(1, workers)) as pool:
        for done, _ in enumerate(pool.map(write, enumerate(scheduled, 1)), 1):
            if progress is not None and done % 500 == 0:
                progress(done)
    return root


def wait_for_port(
    port: int, process: subprocess.Popen[bytes], log: Path, seconds: float = 10
) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"wlmscpfs exited: {log.read_text(errors='replace')}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError("wlmscpfs did not start listening")


@contextmanager
def serving(
    root: Path, port: int, log: Path, *, nodelay: bool = False
) -> Iterator[subprocess.Popen[bytes]]:
    """``wlmscpfs`` on ``root`` and ``port``, its output in ``log``, stopped on exit.

    ``-s``: one process for every association (no fork per association); ``-csk``: it
    returns the Specific Character Set of the item files (the items are UTF-8). ``nodelay``:
    Nagle's algorithm off (DCMTK's ``TCP_NODELAY`` environment variable; Debian's build
    leaves it on, and each answer then waits for the peer's delayed TCP acknowledgment)."""
    env = {**os.environ, "TCP_NODELAY": "1"} if nodelay else None
    with log.open("wb") as out:
        process = subprocess.Popen(
            ["wlmscpfs", "-s", "-csk", "-dfp", str(root), str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
        try:
            wait_for_port(port, process, log)
            yield process
        finally:
            if process.poll() is None:
                process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

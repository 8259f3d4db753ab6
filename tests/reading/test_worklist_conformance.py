"""Worklist conformance: DCMTK's own example queries, answered by our modality worklist and by
DCMTK's reference worklist server ``wlmscpfs`` from the same scheduled items.

The queries are the ``wlistqry*.dump`` examples of Debian's ``dcmtk`` package, converted with
``dump2dcm`` and sent with ``findscu -W`` to both servers. The items are written once
(`worklist_items.items`): as ``.wl`` files (``item_dataset`` → dump → ``dump2dcm``) in a
``wlmscpfs`` database (AE title folder and lockfile), and into the in-memory source of our
listener. Answers are compared attribute by attribute, whatever their order. Where
``wlmscpfs`` answers otherwise, the difference is one of `QUIRKS`, each checked precisely and
each required to occur, so that the list says exactly how the two differ.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydicom.dataset import Dataset

from concilium.imaging import nodes
from concilium.imaging.archive import Archive
from concilium.imaging.dimse import DicomServer, DimseSettings
from concilium.platform import audit
from concilium.platform.db import transaction
from concilium.reading.modality import worklist_service
from concilium.reading.worklist import InMemoryWorklist, WorklistItem, item_dataset
from imaging.dcmtk import run
from serving import free_port
from wlmscpfs import dump2dcm, write_database
from wlmscpfs import serving as wlmscpfs_serving

from .worklist_items import items

EXAMPLES = Path("/usr/share/doc/dcmtk/examples/wlistqry")
DAY = dt.date(2026, 12, 12)

QUIRKS = {
    "sequence-left-out": (
        "wlmscpfs leaves out a sequence key, asked with an item of keys, that the worklist "
        "item does not hold (RequestedProcedureCodeSequence in wlistqry0, "
        "ScheduledProtocolCodeSequence in wlistqry10); PS3.4 K.2.2.1.2 and C.2.2.1.2 return "
        "every key asked for, and we return it zero-length."
    ),
    "expansion-adds-empty-keys": (
        "asked for a sequence with one empty item (wlistqry1, wlistqry3: the whole "
        "Scheduled Procedure Step, K.2.2.1.2 note 4), wlmscpfs expands the item to every key "
        "it supports and returns those the worklist item does not hold, empty "
        "(CommentsOnTheScheduledProcedureStep, PreMedication, RequestedContrastAgent, "
        "ScheduledProcedureStepEndDate/Time, CodingSchemeVersion); we return the item's "
        "attributes. Every value both return is the same."
    ),
    "station-name-not-matched": (
        "wlmscpfs does not match on Scheduled Station Name (0040,0010), an optional matching "
        "key of Table K.6-1 (wlistqry12: station AE AA4 and station name A2 also answers the "
        "AA4 step of station B5); we match on it."
    ),
}


def _require_tools() -> None:
    missing = [t for t in ("findscu", "wlmscpfs", "dump2dcm") if shutil.which(t) is None]
    if missing:
        pytest.fail(f"DCMTK tools missing: {missing}; `apt-get install -y dcmtk`", pytrace=False)
    if not sorted(EXAMPLES.glob("wlistqry*.dump")):
        pytest.fail(
            f"DCMTK's example worklist queries are not in {EXAMPLES} (Debian package dcmtk)",
            pytrace=False,
        )


@pytest.fixture
def wlmscpfs(tmp_path: Path) -> Iterator[int]:
    """DCMTK's reference worklist server on the items, called AE title OFFIS."""
    _require_tools()
    root = write_database(tmp_path / "wlistdb", "OFFIS", items(DAY))
    port = free_port()
    log = tmp_path / "wlmscpfs.log"
    with wlmscpfs_serving(root, port, log):
        yield port
    output = log.read_text(errors="replace")
    assert "incomplete" not in output, output  # every item file was served


@pytest.fixture
def ours(world, runtime, tmp_path: Path) -> Iterator[int]:
    with transaction(runtime.sessions) as db:
        nodes.add_remote_ae(
            db,
            audit.SYSTEM,
            ae_title="BRIEY_CT",
            host="127.0.0.1",
            port=104,
            site_id=world.briey.id,
        )
    source = InMemoryWorklist()
    source.add(world.briey.id, *items(DAY))
    archive = Archive(tmp_path / "images", runtime.sessions, runtime.bus, clock=runtime.now)
    server = DicomServer(
        archive, DimseSettings(port=0, network_timeout=10), extensions=[worklist_service(source)]
    )
    server.start()
    try:
        yield server.port
    finally:
        server.stop()


def _query(query: Path, port: int, called: str, out: Path) -> list[Dataset]:
    out.mkdir(parents=True)
    result = run(
        "findscu", "-W", "-aet", "BRIEY_CT", "-aec", called, "-X", "-od", out,
        "127.0.0.1", str(port), query,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return [pydicom.dcmread(p) for p in sorted(out.glob("*.dcm"))]


def _value(element: Any) -> Any:
    value = element.value
    if value is None:
        return ""
    if isinstance(value, list | pydicom.multival.MultiValue):
        return "\\".join(str(v) for v in value)
    return str(value)


def _sort_key(item: Dataset) -> str:
    return repr(sorted((e.keyword, str(e.value)) for e in item if e.VR != "SQ"))


def _compare(
    theirs: Dataset,
    ours: Dataset,
    asked: Dataset | None,
    held: Dataset | None,
    path: str,
    seen: set[str],
) -> list[str]:
    """The differences between two responses, but for the named quirks (noted in ``seen``).

    ``asked`` is the query's data set at this level (None inside an expanded item), ``held``
    the worklist item's.
    """
    problems: list[str] = []
    expanded = asked is None
    keywords = {e.keyword for e in theirs} | {e.keyword for e in ours}
    for keyword in sorted(keywords - {"SpecificCharacterSet"}):
        where = f"{path}{keyword}"
        mine, other = ours.get(keyword), theirs.get(keyword)
        if keyword not in theirs:
            in_item = held is not None and keyword in held
            if ours[keyword].VR == "SQ" and not ours[keyword].value and not in_item:
                seen.add("sequence-left-out")
                continue
            problems.append(f"{where}: only we return it")
            continue
        if keyword not in ours:
            element = theirs[keyword]
            empty = not element.value if element.VR == "SQ" else _value(element) == ""
            if expanded and empty:
                seen.add("expansion-adds-empty-keys")
                continue
            problems.append(f"{where}: only wlmscpfs returns it")
            continue
        if theirs[keyword].VR == "SQ":
            their_items = sorted(other, key=_sort_key)
            our_items = sorted(mine, key=_sort_key)
            if len(their_items) != len(our_items):
                problems.append(f"{where}: {len(their_items)} items against {len(our_items)}")
                continue
            query_item = None
            if asked is not None and keyword in asked and asked[keyword].value:
                query_item = asked[keyword].value[0]
                if not any(True for _ in query_item):
                    query_item = None
            held_items = (
                sorted(held[keyword].value, key=_sort_key) if held and keyword in held else []
            )
            for index, (t, o) in enumerate(zip(their_items, our_items, strict=True)):
                problems += _compare(
                    t,
                    o,
                    query_item,
                    held_items[index] if index < len(held_items) else None,
                    f"{where}[{index}].",
                    seen,
                )
            continue
        if _value(theirs[keyword]) != _value(ours[keyword]):
            problems.append(
                f"{where}: wlmscpfs {_value(theirs[keyword])!r}, we {_value(ours[keyword])!r}"
            )
    if _value_of(theirs, "SpecificCharacterSet") != _value_of(ours, "SpecificCharacterSet"):
        problems.append(f"{path}SpecificCharacterSet differs")
    return problems


def _value_of(ds: Dataset, keyword: str) -> str:
    return _value(ds[keyword]) if keyword in ds else ""


def _station_name_explains(query: Dataset, item: WorklistItem) -> bool:
    """Whether the query's Scheduled Station Name alone excludes the item."""
    step = (
        query.ScheduledProcedureStepSequence[0]
        if "ScheduledProcedureStepSequence" in query
        else None
    )
    if step is None or not str(step.get("ScheduledStationName", "") or ""):
        return False
    return str(step.ScheduledStationName) != item.step.station_name


def test_dcmtk_example_queries_are_answered_as_wlmscpfs_answers_them(wlmscpfs, ours, tmp_path):
    scheduled = {item.patient_name: item for item in items(DAY)}
    seen: set[str] = set()
    problems: list[str] = []
    compared = 0
    examples = sorted(EXAMPLES.glob("wlistqry*.dump"))
    assert len(examples) >= 13, examples
    for example in examples:
        query_file = tmp_path / f"{example.stem}.dcm"
        dump2dcm(example, query_file)
        query = pydicom.dcmread(query_file)
        theirs = {
            str(r.PatientName): r
            for r in _query(query_file, wlmscpfs, "OFFIS", tmp_path / f"{example.stem}-theirs")
        }
        mine = {
            str(r.PatientName): r
            for r in _query(query_file, ours, "CONCILIUM", tmp_path / f"{example.stem}-ours")
        }
        for name in sorted(set(theirs) - set(mine)):
            if _station_name_explains(query, scheduled[name]):
                seen.add("station-name-not-matched")
            else:
                problems.append(f"{example.stem}: only wlmscpfs answers {name}")
        for name in sorted(set(mine) - set(theirs)):
            problems.append(f"{example.stem}: only we answer {name}")
        for name in sorted(set(theirs) & set(mine)):
            compared += 1
            held = item_dataset(scheduled[name])
            problems += _compare(
                theirs[name], mine[name], query, held, f"{example.stem} {name}: ", seen
            )
    assert not problems, "\n".join(problems)
    assert seen == set(QUIRKS), f"quirks named but not seen: {set(QUIRKS) - seen}"
    # Every example query matched items on both sides.
    assert compared >= 50, compared

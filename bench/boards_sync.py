"""Boards bench: presenter-to-follower propagation of the synchronised image view.

A ``concilium serve`` runs on loopback with its own data directory (SQLite). A board has a
facilitator, who presents, and 20 other members; its meeting starts in twenty minutes and a
case with a study is under discussion. Each of the 21 signs in through the pages (the
session cookie is what the room's websocket reads) and opens the meeting's room
(``/boards/meetings/{id}/ws``) with the ``websockets`` client, the cheapest client that
speaks the protocol a browser speaks. The presenter then changes the slice ``--changes``
times, one change every ``--interval`` ms (a person scrolling), each message stamped with
the sending time; every follower stamps each view it receives. The figure is the delay from
send to receive, per follower and change: p50, p95, p99 and the worst, against the target
p95 <= 100 ms on loopback. Views are states: when the server is still writing one, the
views that arrived meanwhile are replaced by the latest, so a follower may receive fewer
views than were sent, never a stale one late; each must receive the last one.

Each view goes through everything a real one does: the socket's person authenticated and
authorised again, the presenter role checked, the study checked against the case, the view
written to the database (so that a latecomer lands on it), then fanned out through the
platform's event bus to every socket.

Run: ``PYTHONPATH=src .venv/bin/python bench/boards_sync.py [--followers 20] [--changes 200]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pyotp
import websockets

from concilium.boards import attendance, case_files, case_store, registry
from concilium.boards.tables import Board, BoardCaseStudy, BoardMeeting
from concilium.config import Settings
from concilium.platform import audit, patients
from concilium.platform.db import transaction
from concilium.platform.runtime import Runtime
from concilium.platform.tables import Site, User

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
from serving import RunningServer, running_server  # noqa: E402  (tests/serving.py)

PASSWORD = "bench-boards-pass-1"
RENNES = "350005179"
STUDY = "1.2.826.0.1.3680043.8.498.4242"
SERIES = "1.2.826.0.1.3680043.8.498.4243"
DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
SPECIALTIES = ("haematology", "pathology", "radiology", "oncology", "radiotherapy")
PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


def provision(server: RunningServer, followers: int) -> tuple[int, dict[str, str]]:
    """The board, its members and its meeting through the commands; the case under
    discussion written with the boards' own functions on the server's database. The
    meeting's id and the members' authenticator keys by user name, the presenter first."""
    server.create_site("CHU de Rennes", RENNES)
    names = ["presenter", *(f"follower{i:02d}" for i in range(followers))]
    server.create_user("referrer", f"referring_physician@{RENNES}", password=PASSWORD)
    keys = {
        name: server.create_user(name, f"specialist@{RENNES}", password=PASSWORD, totp=True)
        for name in names
    }
    start = datetime.now(ZoneInfo("Europe/Paris")) + timedelta(minutes=20)
    code = "rcp-bench"
    server.cli(
        "boards", "create", code, "--name", "RCP bench", "--type", "haematology",
        "--site", RENNES, "--weekday", DAYS[start.weekday()], "--at", start.strftime("%H:%M"),
    )  # fmt: skip
    for i, name in enumerate(names):
        role = "facilitator" if i == 0 else "member"
        specialty = SPECIALTIES[i % len(SPECIALTIES)]
        server.cli(
            "boards", "member", "add", code, name, "--specialty", specialty, "--role", role
        )  # fmt: skip
    server.cli("boards", "meetings", "generate", code, "--weeks", "2")

    runtime = Runtime.start(Settings(data_dir=server.data_dir))
    try:
        with transaction(runtime.sessions) as db:
            site = db.query(Site).filter_by(finess=RENNES).one()
            users = {u.username: u for u in db.query(User).all()}
            referrer, presenter = users["referrer"], users["presenter"]
            as_referrer = audit.Actor(referrer.id, referrer.username)
            board = db.query(Board).filter_by(code=code).one()
            meeting = (
                db.query(BoardMeeting)
                .filter_by(board_id=board.id)
                .order_by(BoardMeeting.starts_at)
                .first()
            )
            assert meeting is not None
            now = datetime.now(UTC)
            patient = patients.create_patient(
                db, as_referrer, site.id, "REN-BENCH", patients.Demographics("Bench", "Case")
            )
            patients.record_consent(
                db, as_referrer, patient, case_store.MDT_PRESENTATION, "granted", site.id
            )
            fields = case_store.CaseFields(
                question="Traitement ?",
                diagnosis="Lymphome",
                histology="DLBCL",
                stage="IIA",
                performance_status=1,
                history="aucun",
                current_treatment="aucun",
            )
            found = registry.get_board(db, board.id)
            case = case_store.create_draft(
                db, as_referrer, found, patient.id, referrer.id, fields, now
            )
            case_files.add_document(db, as_referrer, case, "pathology_report", "cr.pdf", PDF, now)
            case_store.submit(db, as_referrer, case, now)
            case_store.list_on_meeting(db, as_referrer, case, meeting, now)
            db.add(BoardCaseStudy(case_id=case.id, study_instance_uid=STUDY, modalities="CT"))
            attendance.take_up(
                db, audit.Actor(presenter.id, presenter.username), meeting, case, now
            )
            return meeting.id, keys
    finally:
        runtime.close()


def sign_in(url: str, username: str, key: str) -> str:
    """The session cookie of ``username``, signed in through the sign-in pages (password,
    then the authenticator's code). The cookies are marked Secure, which a client on plain
    loopback HTTP keeps to itself: they are carried by hand, as a browser treating loopback
    as secure does."""
    jar: dict[str, str] = {}

    def keep(response: httpx.Response) -> httpx.Response:
        for header in response.headers.get_list("set-cookie"):
            name, _, rest = header.partition("=")
            jar[name] = rest.split(";", 1)[0]
        return response

    def cookie() -> dict[str, str]:
        return {"cookie": "; ".join(f"{k}={v}" for k, v in jar.items())}

    def csrf(page: httpx.Response) -> str:
        return page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]

    with httpx.Client(base_url=url, follow_redirects=False) as client:
        page = keep(client.get("/login"))
        done = keep(
            client.post(
                "/login",
                data={"username": username, "password": PASSWORD, "csrf_token": csrf(page)},
                headers=cookie(),
            )
        )
        assert done.status_code == 303, done.text
        page = keep(client.get(done.headers["location"], headers=cookie()))
        done = keep(
            client.post(
                "/login/totp",
                data={"code": pyotp.TOTP(key).now(), "csrf_token": csrf(page)},
                headers=cookie(),
            )
        )
        assert done.status_code == 303, done.text
        return jar["concilium_session"]


def view(index: int) -> dict[str, Any]:
    return {
        "study": STUDY,
        "series": SERIES,
        "index": index,
        "window": {"center": 40, "width": 400},
        "zoom": 1,
        "pan": {"x": 0, "y": 0},
        "measure": None,
    }


async def next_of(socket: Any, kind: str) -> dict[str, Any]:
    while True:
        message: dict[str, Any] = json.loads(await socket.recv())
        if message["type"] == kind:
            return message
        if message["type"] == "error":
            raise RuntimeError(message["detail"])


async def run(
    url: str, meeting_id: int, cookies: list[str], changes: int, interval: float
) -> list[float]:
    address = url.replace("http://", "ws://") + f"/boards/meetings/{meeting_id}/ws"
    sockets = [
        await websockets.connect(address, additional_headers={"Cookie": f"concilium_session={c}"})
        for c in cookies
    ]
    presenter, followers = sockets[0], sockets[1:]
    hellos = [await next_of(socket, "hello") for socket in sockets]
    # The facilitator takes the presenter role.
    await presenter.send(json.dumps({"type": "hand_over", "to": hellos[0]["me"]}))
    for socket in sockets:
        await next_of(socket, "presenter")

    delays: list[float] = []

    async def follow(socket: Any) -> None:
        while True:
            got = await next_of(socket, "view")
            delays.append(time.time() * 1000 - float(got["sent_at"]))
            if got["view"]["index"] == changes - 1:
                return

    listening = [asyncio.create_task(follow(s)) for s in followers]
    for i in range(changes):
        await presenter.send(
            json.dumps({"type": "view", "view": view(i), "sent_at": time.time() * 1000})
        )
        await asyncio.sleep(interval / 1000)
    await asyncio.wait_for(asyncio.gather(*listening), timeout=60)
    for socket in sockets:
        await socket.close()
    return delays


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--followers", type=int, default=20)
    parser.add_argument("--changes", type=int, default=200)
    parser.add_argument(
        "--interval", type=float, default=30.0, help="ms between changes (the page's pace)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, running_server(Path(tmp)) as server:
        meeting_id, keys = provision(server, args.followers)
        cookies = [sign_in(server.url, name, key) for name, key in keys.items()]
        delays = asyncio.run(run(server.url, meeting_id, cookies, args.changes, args.interval))
    expected = args.followers * args.changes
    print(f"{args.followers} followers, {args.changes} changes every {args.interval:g} ms")
    print(f"views received: {len(delays)} of {expected} sent (the last by every follower)")
    print(
        "send -> receive (ms): "
        f"p50 {statistics.median(delays):.1f}  p95 {percentile(delays, 0.95):.1f}  "
        f"p99 {percentile(delays, 0.99):.1f}  max {max(delays):.1f}  (target p95 <= 100)"
    )


if __name__ == "__main__":
    main()

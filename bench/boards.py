"""Boards bench: the fiche RCP and the agenda page of a real server, with a busy database.

A ``concilium serve`` runs on loopback with its own data directory (SQLite), or on a new
database of the PostgreSQL server given with ``--database-url`` (created, then dropped). The
database is filled before the server starts, through the boards' own functions for the
board, its members and meetings, then in bulk (one INSERT per table, many rows) for the
cases: one haematology board of CH Briey, 1,000 cases listed on its next meeting and
100,000 cases decided at 200 earlier meetings, each with its decision (version 1).

1. The fiche RCP: the time to write one (``fiche.render``: fpdf2, DejaVu Sans) for a
   decision with four participants, measured in this process; then the time to fetch it
   from the server (``GET /boards/cases/{case}/fiche``, an audited view of the case).
   Target: p95 of the writing at most 500 ms.
2. The agenda page (``GET /boards/meetings/{meeting}/agenda``) of the meeting with 1,000
   cases: each listed case's view is audited, so each request writes 1,000 audit entries.
   Target: p95 at most 100 ms.

The client is as cheap as one can be: one keep-alive ``http.client`` connection, the
request (a bearer token of the board's coordinator) built before the clock starts, the
body read to its end; requests one after another.

Run: ``.venv/bin/python bench/boards.py [--requests 50] [--database-url
postgresql://postgres@127.0.0.1:5432/test]``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import http.client
import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import psycopg
from sqlalchemy import create_engine, insert, select
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session

from concilium.boards import fiche, meetings, registry
from concilium.boards.tables import BoardCase, BoardDecision, BoardMeeting
from concilium.platform import accounts, audit, authn, patients
from concilium.platform.accounts import RoleGrant
from concilium.platform.tables import User
from concilium.services import ACTIONS, migrate_database

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = REPO / ".venv" / "bin"
PYTHON = str(VENV_BIN / "python" if (VENV_BIN / "python").exists() else Path(sys.executable))
LOOPBACK = "127.0.0.1"
SYSTEM = audit.Actor(None, "bench")
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
FICHE_TARGET_MS = 500.0
AGENDA_TARGET_MS = 100.0


def say(text: str) -> None:
    print(text, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def percentile(samples: Sequence[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))]


def figures(label: str, samples_ms: Sequence[float], target: float | None = None) -> str:
    p50, p95 = percentile(samples_ms, 0.5), percentile(samples_ms, 0.95)
    verdict = ""
    if target is not None:
        verdict = f"  (target p95 <= {target:.0f} ms: {'met' if p95 <= target else 'MISSED'})"
    return (
        f"{label}: n={len(samples_ms)} p50 {p50:.1f} ms, p95 {p95:.1f} ms, "
        f"max {max(samples_ms):.1f} ms{verdict}"
    )


def wait_until(check: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if check():
                return
        time.sleep(0.2)
    raise RuntimeError(f"{what} not ready after {seconds:.0f} s")


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


# --- the data -------------------------------------------------------------------------------


@dataclass
class World:
    board_id: int
    meeting_id: int
    """The meeting with the listed cases."""
    decided_case_id: int
    """A decided case with its fiche kept."""
    token: str
    """Bearer token of the board's coordinator."""


def _chunks(rows: list[dict[str, object]], size: int = 5000) -> list[list[dict[str, object]]]:
    return [rows[i : i + size] for i in range(0, len(rows), size)]


def fill(engine: Engine, listed: int, decided: int) -> World:
    """The board, its people and meetings through the domain; the cases in bulk."""
    with Session(engine) as db, db.begin():
        site = accounts.create_site(db, SYSTEM, "CH Briey", "540000049")
        people = []
        for name, role, specialty in (
            ("coord", "coordinator", "haematology"),
            ("dr-path", "specialist", "pathology"),
            ("dr-hemato", "specialist", "haematology"),
            ("dr-radio", "radiologist", "radiology"),
        ):
            people.append(
                (
                    accounts.create_user(
                        db,
                        SYSTEM,
                        username=name,
                        full_name=name.title(),
                        password=None,
                        roles=[RoleGrant(site.id, role)],
                    ),
                    specialty,
                )
            )
        board = registry.create_board(
            db,
            SYSTEM,
            "rcp-hemato",
            registry.BoardFields(
                name="RCP régionale d'hématologie",
                board_type="haematology",
                site_id=site.id,
                starts_on=(NOW - dt.timedelta(days=5 * 365)).date(),
                weekday=4,
                at=dt.time(14, 0),
                duration_minutes=240,
            ),
        )
        for (user, specialty), role in zip(
            people, ("coordinator", "facilitator", "member", "member"), strict=True
        ):
            registry.set_member(db, SYSTEM, board, user, frozenset({specialty}), role)
        meetings.generate_meetings(db, SYSTEM, board, NOW, 2)
        next_meeting = db.scalars(
            select(BoardMeeting)
            .where(BoardMeeting.board_id == board.id)
            .order_by(BoardMeeting.starts_at)
        ).first()
        assert next_meeting is not None
        past = []
        for week in range(1, 201):
            start = next_meeting.starts_at - dt.timedelta(weeks=week)
            past.append(
                {
                    "board_id": board.id,
                    "key": f"rcp-hemato.past-{week}",
                    "scheduled_day": start.date(),
                    "starts_at": start,
                    "ends_at": start + dt.timedelta(hours=4),
                    "status": "planned",
                    "moved_for": "",
                    "sequence": 0,
                }
            )
        db.execute(insert(BoardMeeting), past)
        past_ids = list(
            db.scalars(select(BoardMeeting.id).where(BoardMeeting.key.like("rcp-hemato.past-%")))
        )
        patient_ids = [
            patients.create_patient(
                db, SYSTEM, site.id, f"BRY-{n}", patients.Demographics("Patient", f"N{n}")
            ).id
            for n in range(200)
        ]
        referrer = people[0][0]
        token = authn.issue_token(
            db,
            _settings(),
            SYSTEM,
            db.get(User, referrer.id) or referrer,
            "bench",
            ["boards:read", "boards:write"],
            30,
            NOW,
            actions=ACTIONS,
        ).secret
        board_id, meeting_id = board.id, next_meeting.id
        participants = [
            {"user": user.id, "specialty": specialty} for user, specialty in people[1:]
        ] + [{"user": people[0][0].id, "specialty": ""}]
        referrer_id = referrer.id

    def case(n: int, status: str, meeting: int, order: int) -> dict[str, object]:
        return {
            "board_id": board_id,
            "patient_id": patient_ids[n % len(patient_ids)],
            "referrer_id": referrer_id,
            "question": "Traitement de première ligne ?",
            "diagnosis": "Lymphome diffus à grandes cellules B",
            "histology": "DLBCL, CD20+",
            "stage": "Ann Arbor IIA",
            "performance_status": 1,
            "history": "aucun",
            "current_treatment": "aucun",
            "status": status,
            "meeting_id": meeting,
            "agenda_order": order,
            "minutes": 10,
            "specialties_needed": ["radiology"] if n % 3 == 0 else [],
            "within_guidelines": False,
            "postponements": 0,
            "gp_email": "",
            "created_at": NOW - dt.timedelta(days=30),
            "submitted_at": NOW - dt.timedelta(days=20),
            "updated_at": NOW - dt.timedelta(days=20),
        }

    with Session(engine) as db, db.begin():
        for rows in _chunks(
            [case(n, "decided", past_ids[n % len(past_ids)], 0) for n in range(decided)]
        ):
            db.execute(insert(BoardCase), rows)
        decided_ids = list(db.scalars(select(BoardCase.id).where(BoardCase.status == "decided")))
        for rows in _chunks(
            [
                {
                    "case_id": case_id,
                    "version": 1,
                    "meeting_id": past_ids[i % len(past_ids)],
                    "proposal": "R-CHOP 6 cures puis TEP d'évaluation",
                    "guideline": "Référentiel régional LDGCB 2026",
                    "outside_guidelines": False,
                    "justification": "",
                    "trial": "POLARIX-2" if i % 10 == 0 else "",
                    "further_exams": "TEP-TDM à mi-traitement",
                    "represent": False,
                    "referent_id": referrer_id,
                    "reason": "",
                    "participants": participants,
                    "discussion_started_at": NOW - dt.timedelta(days=7),
                    "signed_by_id": referrer_id,
                    "signed_at": NOW - dt.timedelta(days=7),
                    "digest": "0" * 64,
                    "fiche_pdf": None,
                }
                for i, case_id in enumerate(decided_ids)
            ]
        ):
            db.execute(insert(BoardDecision), rows)
        db.execute(
            insert(BoardCase),
            [case(n, "on_agenda", meeting_id, n + 1) for n in range(listed)],
        )
    return World(board_id, meeting_id, decided_ids[0], token)


def _settings():  # type: ignore[no-untyped-def]
    from concilium.config import Settings

    return Settings()


# --- 1. the fiche ---------------------------------------------------------------------------


def fiche_render_times(engine: Engine, world: World, count: int) -> list[float]:
    """Milliseconds to write the fiche of the decided case, ``count`` times; the last kept."""
    times: list[float] = []
    with Session(engine) as db, db.begin():
        case = db.get(BoardCase, world.decided_case_id)
        assert case is not None
        decision = db.scalars(select(BoardDecision).where(BoardDecision.case_id == case.id)).one()
        board = registry.get_board(db, case.board_id)
        meeting = db.get(BoardMeeting, decision.meeting_id)
        assert meeting is not None
        content = b""
        for _ in range(count):
            started = time.perf_counter()
            content = fiche.render(db, board, meeting, case, decision, [])
            times.append((time.perf_counter() - started) * 1000)
        decision.fiche_pdf = content
    return times


# --- the server and the client --------------------------------------------------------------


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_server(work: Path, url: str) -> Server:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONCILIUM_")}
    env.update(
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO / "src"), os.environ.get("PYTHONPATH")])),
        CONCILIUM_DATA_DIR=str(work / "concilium"),
        CONCILIUM_DATABASE_URL=url,
        CONCILIUM_HTTP_HOST=LOOPBACK,
        CONCILIUM_HTTP_PORT=str(port),
        CONCILIUM_PUBLIC_URL=f"http://{LOOPBACK}:{port}",
        CONCILIUM_DICOM_PORT=str(free_port()),
        CONCILIUM_HL7_PORT=str(free_port()),
        CONCILIUM_LIVE_ENABLED="false",
        CONCILIUM_LOG_LEVEL="WARNING",
    )
    log = work / "concilium.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [PYTHON, "-m", "concilium", "serve", "--no-migrate"],
            env=env,
            cwd=work,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = Server(process, port, log)

    def healthy() -> bool:
        conn = http.client.HTTPConnection(LOOPBACK, port, timeout=2)
        conn.request("GET", "/healthz")
        return conn.getresponse().status == 200

    try:
        wait_until(healthy, 90, "Concilium HTTP")
    except RuntimeError:
        server.stop()
        raise RuntimeError(f"Concilium did not start: {log.read_text()[-2000:]}") from None
    return server


def timed_gets(port: int, path: str, token: str, count: int, expect: bytes) -> list[float]:
    """Milliseconds of ``count`` GETs of ``path`` on one keep-alive connection (one warm-up)."""
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=120)
    headers = {"Authorization": f"Bearer {token}", "Accept-Language": "fr"}
    times: list[float] = []
    for n in range(count + 1):
        started = time.perf_counter()
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        body = response.read()
        elapsed = (time.perf_counter() - started) * 1000
        if response.status != 200 or expect not in body:
            raise RuntimeError(f"GET {path}: {response.status} {body[:300]!r}")
        if n:
            times.append(elapsed)
    conn.close()
    return times


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--listed", type=int, default=1000, help="cases on the meeting")
    parser.add_argument("--decided", type=int, default=100_000, help="decided cases")
    parser.add_argument("--fiches", type=int, default=30, help="fiches written")
    parser.add_argument("--requests", type=int, default=50, help="GETs of each page")
    parser.add_argument("--database-url", default="", help="PostgreSQL server to use")
    args = parser.parse_args(argv)
    postgres = PostgresDatabase(args.database_url) if args.database_url else None
    with tempfile.TemporaryDirectory(prefix="boards-bench-") as tmp:
        work = Path(tmp)
        (work / "concilium").mkdir()
        if postgres is not None:
            postgres.create()
            url = postgres.url
        else:
            url = f"sqlite:///{work / 'concilium' / 'concilium.db'}"
        server = None
        try:
            migrate_database(url)
            engine = create_engine(url)
            started = time.perf_counter()
            world = fill(engine, args.listed, args.decided)
            say(
                f"database: {'PostgreSQL' if postgres else 'SQLite'}, {args.listed} cases on "
                f"the meeting, {args.decided} decided cases with their decision "
                f"(filled in {time.perf_counter() - started:.0f} s)"
            )
            say(
                figures(
                    "fiche RCP written (fiche.render)",
                    fiche_render_times(engine, world, args.fiches),
                    FICHE_TARGET_MS,
                )
            )
            engine.dispose()
            server = start_server(work, url)
            fiche_path = f"/boards/cases/{world.decided_case_id}/fiche"
            say(
                figures(
                    "fiche RCP fetched over HTTP",
                    timed_gets(server.port, fiche_path, world.token, args.requests, b"%PDF-"),
                )
            )
            agenda_path = f"/boards/meetings/{world.meeting_id}/agenda"
            say(
                figures(
                    f"agenda page, {args.listed} cases",
                    timed_gets(server.port, agenda_path, world.token, args.requests, b"</html>"),
                    AGENDA_TARGET_MS,
                )
            )
            say(f"1-min load average at the end: {os.getloadavg()[0]:.1f} ({os.cpu_count()} cores)")
        finally:
            if server is not None:
                server.stop()
            if postgres is not None:
                postgres.drop()


if __name__ == "__main__":
    main()

"""Many requests at once against a real server: none waits for another's write lock on the
event loop (on SQLite such a wait stalled every request until the 30 s busy timeout)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from serving import running_server

REQUESTS = 240
CLIENTS = 12


def test_concurrent_readers_and_writers_are_all_served_promptly(tmp_path: Path) -> None:
    with running_server(
        tmp_path, CONCILIUM_DICOM_PORT="0", CONCILIUM_LIVE_ENABLED="false"
    ) as server:
        server.cli("site", "create", "--name", "CH Briey", "--finess", "540000049")
        server.cli(
            "user", "create", "--username", "coord", "--full-name", "Coord",
            "--role", "coordinator@540000049", "--password", "concurrency-pass-1",
        )  # fmt: skip
        out = server.cli(
            "token", "create", "--user", "coord", "--name", "t",
            "--scope", "patients:read", "--scope", "patients:write",
        )  # fmt: skip
        headers = {"authorization": f"Bearer {out.strip().splitlines()[-1]}"}
        site_id = httpx.get(f"{server.url}/api/v1/sites", headers=headers).json()[0]["id"]

        def call(n: int) -> tuple[int, float]:
            started = time.monotonic()
            if n % 3 == 0:  # a writer: a new patient, audited
                answer = httpx.post(
                    f"{server.url}/api/v1/patients",
                    json={
                        "site_id": site_id,
                        "identifier": f"BRY-{n}",
                        "family_name": "Martin",
                        "given_name": "Paul",
                    },
                    headers=headers,
                    timeout=25,
                )
            else:
                answer = httpx.get(f"{server.url}/api/v1/sites", headers=headers, timeout=25)
            return answer.status_code, time.monotonic() - started

        with ThreadPoolExecutor(CLIENTS) as pool:
            results = list(pool.map(call, range(REQUESTS)))

        statuses = sorted({status for status, _ in results})
        slowest = max(elapsed for _, elapsed in results)
        assert statuses == [200, 201], statuses
        # A single stall on the lock would last the whole busy timeout (30 s).
        assert slowest < 10, f"slowest request took {slowest:.1f} s"
        created = httpx.get(
            f"{server.url}/api/v1/patients", params={"q": "Martin", "limit": 100}, headers=headers
        ).json()
        assert len(created) == len(range(0, REQUESTS, 3))

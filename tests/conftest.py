"""Shared fixtures: a fresh database per test on SQLite and, when reachable, PostgreSQL."""

from __future__ import annotations

import os
import shutil
import sys
import uuid
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pyotp
import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy.engine import make_url

from concilium.app import create_app
from concilium.config import Settings
from concilium.platform import accounts, audit, authn, passwords, totp
from concilium.platform.accounts import RoleGrant
from concilium.platform.db import transaction
from concilium.platform.runtime import Runtime
from concilium.platform.tables import Site, User
from concilium.services import ACTIONS, migrate_database

# Test folders are separate top-level packages (importlib import mode): shared helper
# modules of this folder, such as ``serving``, are imported from here.
sys.path.insert(0, str(Path(__file__).parent))

PG_ADMIN_URL = os.environ.get(
    "CONCILIUM_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
PASSWORD = "correct-horse-42"
ENGLISH = {"Accept-Language": "en"}
"""Test clients read the English messages; French, the default, is tested on its own."""


@pytest.fixture(autouse=True, scope="session")
def _cheap_password_hashing() -> Iterator[None]:
    """Passwords of the test accounts hashed with argon2id at its lowest cost: the product's
    RFC 9106 cost (64 MiB, three passes, about a second on this machine) spent on every
    account and sign-in of the suite would take minutes. Servers the tests start as separate
    processes, and ``tests/platform/test_passwords.py``, keep the product's cost."""
    cheap = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(passwords, "_hasher", cheap)
        patch.setattr(passwords, "_DUMMY_HASH", cheap.hash("timing-equaliser-not-a-password"))
        yield


def _pg_reachable() -> str | None:
    url = make_url(PG_ADMIN_URL)
    try:
        with psycopg.connect(
            host=url.host, port=url.port, user=url.username, dbname=url.database, connect_timeout=3
        ):
            return None
    except psycopg.Error as exc:
        return f"PostgreSQL at {url.host}:{url.port} not reachable: {exc}"


def _pg_admin() -> psycopg.Connection:
    url = make_url(PG_ADMIN_URL)
    return psycopg.connect(
        host=url.host, port=url.port, user=url.username, dbname=url.database, autocommit=True
    )


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "concilium.db"
    migrate_database(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    reason = _pg_reachable()
    if reason:
        pytest.skip(f"{reason}; these tests ran on SQLite only")
    name = f"concilium_tpl_{uuid.uuid4().hex[:8]}"
    with _pg_admin() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    migrate_database(
        make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    )
    yield name
    with _pg_admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class DatabasePool:
    """Fresh copies of the migrated template, made ahead of the tests that take them.

    Copying a database is the server's work and takes about a second (its files are
    written and synced), during which a test would only wait: a thread asks for the next
    copies while the current test runs, and drops the used ones the same way. Every test
    still gets a database nobody used before."""

    AHEAD = 2
    """Copies kept ready."""

    def __init__(self, template: str) -> None:
        self.template = template
        self.work = ThreadPoolExecutor(max_workers=2, thread_name_prefix="pg-copies")
        self.ready: deque[Future[str]] = deque(
            self.work.submit(self._copy) for _ in range(self.AHEAD)
        )
        self.dropped: list[Future[None]] = []

    def _copy(self) -> str:
        name = f"concilium_t_{uuid.uuid4().hex[:10]}"
        with _pg_admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
        return name

    @staticmethod
    def _drop(name: str) -> None:
        with _pg_admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def take(self) -> str:
        self.ready.append(self.work.submit(self._copy))
        return self.ready.popleft().result()

    def give_back(self, name: str) -> None:
        self.dropped.append(self.work.submit(self._drop, name))

    def close(self) -> None:
        for future in self.ready:
            self.give_back(future.result())
        for future in self.dropped:
            future.result()
        self.work.shutdown()


@pytest.fixture(scope="session")
def pg_pool(pg_template: str) -> Iterator[DatabasePool]:
    pool = DatabasePool(pg_template)
    yield pool
    pool.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database of each kind, new for each test."""
    if request.param == "sqlite":
        target = tmp_path / "var" / "concilium.db"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(request.getfixturevalue("sqlite_template"), target)
        yield f"sqlite:///{target}"
        return
    pool: DatabasePool = request.getfixturevalue("pg_pool")
    name = pool.take()
    yield make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    pool.give_back(name)


@dataclass
class Clock:
    """A clock the tests move by hand (session timeouts, expiries, lockouts)."""

    now: datetime = field(default_factory=lambda: datetime.now(UTC).replace(microsecond=0))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(data_dir=tmp_path / "var", database_url=database_url)


@pytest.fixture
def runtime(settings: Settings, clock: Clock) -> Iterator[Runtime]:
    rt = Runtime.start(settings)
    rt.clock = clock
    yield rt
    rt.close()


@dataclass
class World:
    """Two hospitals and helpers to populate them."""

    runtime: Runtime
    metz: Site
    briey: Site

    def user(
        self,
        username: str,
        *roles: tuple[Site, str],
        platform_admin: bool = False,
        with_totp: bool = False,
    ) -> User:
        with transaction(self.runtime.sessions) as db:
            user = accounts.create_user(
                db,
                audit.SYSTEM,
                username=username,
                full_name=username.title(),
                password=PASSWORD,
                roles=[RoleGrant(s.id, r) for s, r in roles],
                is_platform_admin=platform_admin,
            )
            if with_totp:
                user.totp_secret = self.runtime.box.seal(pyotp.random_base32(), f"totp:{user.id}")
            return user

    def totp_secret(self, user: User) -> str:
        assert user.totp_secret
        return self.runtime.box.open(user.totp_secret, f"totp:{user.id}")

    def code(self, user: User, at: datetime | None = None) -> str:
        return totp.code_at(self.totp_secret(user), at or self.runtime.now())

    def client(self, app) -> TestClient:  # type: ignore[no-untyped-def]
        """Another browser, with its own cookies."""
        return TestClient(
            app, base_url="https://testserver", follow_redirects=False, headers=ENGLISH
        )

    @staticmethod
    def hidden(page_text: str, name: str = "csrf_token") -> str:
        marker = f'name="{name}" value="'
        start = page_text.index(marker) + len(marker)
        return page_text[start : page_text.index('"', start)]

    def csrf(self, client: TestClient, path: str = "/account") -> str:
        page = client.get(path)
        assert page.status_code == 200, page.text
        return self.hidden(page.text)

    def start_login(self, client: TestClient, username: str, password: str = PASSWORD) -> Response:
        page = client.get("/login")
        assert page.status_code == 200
        return client.post(
            "/login",
            data={"username": username, "password": password, "csrf_token": self.hidden(page.text)},
        )

    def sign_in(self, client: TestClient, user: User, password: str = PASSWORD) -> str:
        """Full browser sign-in (password, then TOTP when enrolled); returns the CSRF token."""
        response = self.start_login(client, user.username, password)
        assert response.status_code == 303, response.text
        if response.headers["location"].startswith("/login/totp"):
            response = client.post(
                "/login/totp",
                data={"code": self.code(user), "csrf_token": self.csrf(client, "/login/totp")},
            )
            assert response.status_code == 303, response.text
        return self.csrf(client)

    def token(self, user: User, *scopes: str, days: int = 30) -> str:
        with transaction(self.runtime.sessions) as db:
            owner = db.get(User, user.id)
            assert owner is not None
            issued = authn.issue_token(
                db,
                self.runtime.settings,
                audit.SYSTEM,
                owner,
                "test",
                list(scopes),
                days,
                self.runtime.now(),
                actions=ACTIONS,
            )
            return issued.secret


@pytest.fixture
def app(runtime: Runtime, settings: Settings):  # type: ignore[no-untyped-def]
    return create_app(settings, runtime)


@pytest.fixture
def client(app) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    with TestClient(
        app, base_url="https://testserver", follow_redirects=False, headers=ENGLISH
    ) as c:
        yield c


@pytest.fixture
def world(runtime: Runtime) -> World:
    with transaction(runtime.sessions) as db:
        metz = accounts.create_site(db, audit.SYSTEM, "CHR Metz-Thionville", "570005165")
        briey = accounts.create_site(db, audit.SYSTEM, "CH Briey", "540000049")
    return World(runtime, metz, briey)

"""A live ``concilium serve`` for the DICOMweb tests, with two sites and their tokens."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from dicomweb_client import DICOMwebClient
from sqlalchemy import func, select

from concilium.config import Settings
from concilium.platform import accounts, audit, authn, sharing
from concilium.platform.accounts import RoleGrant
from concilium.platform.db import transaction
from concilium.platform.runtime import Runtime
from concilium.platform.tables import Site, User
from concilium.services import ACTIONS
from serving import running_server

SCOPES = ("imaging:read", "imaging:write")


@dataclass
class LiveArchive:
    """The server, a runtime on its database, and a client per site."""

    url: str
    runtime: Runtime
    metz: Site
    briey: Site
    metz_user: User
    briey_user: User
    metz_token: str
    briey_token: str

    statuses: list[int] = field(default_factory=list)
    """HTTP status of every response the clients received, in order."""

    def _remember_status(self, response: object, *args: object, **kwargs: object) -> None:
        self.statuses.append(int(getattr(response, "status_code", 0)))

    @property
    def images(self) -> Path:
        return self.runtime.settings.data_dir / "images"

    def client(self, token: str | None = None) -> DICOMwebClient:
        """The real DICOMweb client of the outside world, authenticated by a bearer token."""
        headers = {"Authorization": f"Bearer {token or self.metz_token}"}
        client = DICOMwebClient(
            f"{self.url}/dicomweb", headers=headers, callback=self._remember_status
        )
        client.set_http_retry_params(retry=False)
        return client

    def stored_files(self) -> int:
        return sum(1 for p in (self.images / "objects").rglob("*") if p.is_file())

    def audit_count(self, action: str) -> int:
        with self.runtime.sessions() as db:
            return int(
                db.execute(
                    select(func.count(audit.AuditEvent.seq)).where(
                        audit.AuditEvent.action == action
                    )
                ).scalar_one()
            )

    def token(self, user: User, *scopes: str) -> str:
        return _token(self.runtime, user, scopes)

    def share_study_with_briey(self, study_uid: str) -> None:
        now = self.runtime.now()
        with transaction(self.runtime.sessions) as db:
            sharing.create_share(
                db,
                audit.Actor(self.metz_user.id, self.metz_user.username),
                resource_kind="study",
                resource_id=study_uid,
                to_site_id=self.briey.id,
                to_user_id=None,
                expires_at=now + timedelta(days=2),
                now=now,
            )


def _token(runtime: Runtime, user: User, scopes: tuple[str, ...] = SCOPES) -> str:
    with transaction(runtime.sessions) as db:
        owner = db.get(User, user.id)
        assert owner is not None
        issued = authn.issue_token(
            db,
            runtime.settings,
            audit.SYSTEM,
            owner,
            "dicomweb",
            list(scopes),
            30,
            runtime.now(),
            actions=ACTIONS,
        )
        return issued.secret


def start_live_archive(tmp: Path) -> Iterator[LiveArchive]:
    """Serve on free ports, then populate Metz and Briey through the same database."""
    with running_server(tmp, CONCILIUM_LIVE_ENABLED="false") as server:
        data_dir = server.data_dir
        settings = Settings(
            data_dir=data_dir,
            database_url=f"sqlite:///{(data_dir / 'concilium.db').resolve()}",
        )
        runtime = Runtime.start(settings)
        with transaction(runtime.sessions) as db:
            metz = accounts.create_site(db, audit.SYSTEM, "CHR Metz-Thionville", "570005165")
            briey = accounts.create_site(db, audit.SYSTEM, "CH Briey", "540000049")
            metz_user = accounts.create_user(
                db,
                audit.SYSTEM,
                username="metz-tech",
                full_name="Metz Tech",
                password="correct-horse-42",
                roles=[RoleGrant(metz.id, "technologist"), RoleGrant(metz.id, "radiologist")],
            )
            briey_user = accounts.create_user(
                db,
                audit.SYSTEM,
                username="briey-radio",
                full_name="Briey Radio",
                password="correct-horse-42",
                roles=[RoleGrant(briey.id, "radiologist")],
            )
        yield LiveArchive(
            server.url,
            runtime,
            metz,
            briey,
            metz_user,
            briey_user,
            _token(runtime, metz_user),
            _token(runtime, briey_user),
        )
        runtime.close()

"""What a running Concilium process holds: settings, database, keys, event bus, clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from concilium.config import Settings
from concilium.platform.audit_checkpoints import CheckpointLog
from concilium.platform.db import make_engine, make_sessionmaker, utcnow
from concilium.platform.encryption import SecretBox, load_or_create_key
from concilium.platform.events import EventBus, make_bus
from concilium.platform.policy import Action, token_scopes

SESSION_INFO_KEY = "concilium.runtime"
"""Key of the runtime in the ``info`` of the sessions it makes (see :func:`of_session`)."""


@dataclass
class Runtime:
    """The platform's share of a process, which every service builds on."""

    settings: Settings
    """The effective configuration."""
    engine: Engine
    """The database (a serving engine: writes begin off the event loop)."""
    sessions: sessionmaker[Session]
    """Sessions for the requests' units of work."""
    read_sessions: sessionmaker[Session]
    """Sessions for readers that must never hold up writers (event streams, polls)."""
    box: SecretBox
    """Encryption of secrets at rest (second factors)."""
    bus: EventBus
    """The one event bus of the process (Redis pub/sub between processes when set)."""
    audit_checkpoints: CheckpointLog
    """Where signed checkpoints of the audit chain's head are written and read back."""
    clock: Callable[[], datetime] = field(default=utcnow)
    """The current time (tests move it by hand)."""
    actions: tuple[Action, ...] = ()
    """Every action of the policy in this installation, the platform's and each service's."""

    @property
    def token_scopes(self) -> frozenset[str]:
        """Every scope an API token can carry in this installation (from every action)."""
        return token_scopes(self.actions)

    @classmethod
    def start(cls, settings: Settings, actions: tuple[Action, ...] = ()) -> Runtime:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = make_engine(settings.effective_database_url, serving=True)
        reader = make_engine(settings.effective_database_url, read_only=True)
        key = load_or_create_key(settings.data_dir, settings.secret_key)
        runtime = cls(
            settings=settings,
            engine=engine,
            sessions=make_sessionmaker(engine),
            read_sessions=make_sessionmaker(reader),
            box=SecretBox(key),
            bus=make_bus(settings.redis_url),
            actions=actions,
            audit_checkpoints=CheckpointLog.in_data_dir(
                settings.data_dir, key, settings.audit_syslog_destination
            ),
        )
        # Domain functions given only a session queue their e-mail through its runtime.
        runtime.sessions.configure(info={SESSION_INFO_KEY: runtime})
        return runtime

    def now(self) -> datetime:
        return self.clock()

    @staticmethod
    def of_session(session: Session) -> Runtime | None:
        """The runtime whose ``sessions`` made ``session`` (None for another session): how a
        domain function given only a session queues e-mail in its transaction."""
        found = session.info.get(SESSION_INFO_KEY)
        return found if isinstance(found, Runtime) else None

    def close(self) -> None:
        self.bus.close()
        self.engine.dispose()
        bind = self.read_sessions.kw.get("bind")
        if isinstance(bind, Engine):
            bind.dispose()

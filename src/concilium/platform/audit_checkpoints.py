"""Signed checkpoints of the audit chain's head, kept outside the database.

The hash chain (``audit.verify``) proves that no entry between the first and the head was
altered or removed. It cannot prove that the tail was not cut: someone with rights on the
database who deletes the newest entries and rewinds the head leaves a shorter chain that is
still valid. A checkpoint records, outside the database, how far the chain had grown: the
sequence number and hash of its head entry, and when. It is signed with HMAC-SHA256
(RFC 2104) under a key derived from the installation's secret key with HKDF (RFC 5869),
appended as one JSON line to ``<data_dir>/audit/checkpoints.jsonl`` and, when a collector is
configured, sent as an RFC 5424 syslog message over UDP (RFC 5426). ``audit.verify`` checks
the chain against every checkpoint: one naming an entry the chain no longer has, or a
different hash at its sequence number, shows a cut or a rewrite.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import re
import socket
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from concilium.platform.i18n import N_, gettext
from concilium.platform.tables import AuditHead

log = logging.getLogger(__name__)

CHECKPOINTS_FILE = Path("audit") / "checkpoints.jsonl"
"""Where, under the data dir, checkpoints are appended."""

_KEY_PURPOSE = b"concilium audit checkpoint v1"
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_FIELDS = frozenset({"seq", "hash", "at", "mac"})

SD_ID = "checkpoint@32473"
"""Structured-data ID of a checkpoint's syslog message (RFC 5424 section 7.2.2)."""
_FACILITY_AUTHPRIV = 10
_SEVERITY_NOTICE = 5


def _timestamp(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Checkpoint:
    """How far the audit chain had grown at one moment, with the signature vouching for it."""

    seq: int
    """Sequence number of the chain's head entry (its newest)."""
    hash: str
    """Chain hash of that entry."""
    at: datetime
    """When the checkpoint was taken."""
    mac: str
    """HMAC-SHA256 of the three fields above, in hexadecimal."""

    def to_json(self) -> str:
        fields = {"seq": self.seq, "hash": self.hash, "at": _timestamp(self.at), "mac": self.mac}
        return json.dumps(fields, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Checkpoint:
        """Parse one checkpoint; ``ValueError`` names what is wrong with it."""
        try:
            fields: Any = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not JSON ({exc.msg})") from exc
        if not isinstance(fields, dict) or set(fields) != _FIELDS:
            raise ValueError(f"expected the fields {sorted(_FIELDS)}")
        seq, digest, at, mac = fields["seq"], fields["hash"], fields["at"], fields["mac"]
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
            raise ValueError("seq must be a non-negative integer")
        for name, value in (("hash", digest), ("mac", mac)):
            if not isinstance(value, str) or not _HEX64.match(value):
                raise ValueError(f"{name} must be 64 lowercase hexadecimal digits")
        if not isinstance(at, str):
            raise ValueError("at must be an ISO 8601 time")
        when = datetime.fromisoformat(at)
        if when.tzinfo is None:
            raise ValueError("at must carry its offset from UTC")
        return cls(seq=seq, hash=digest, at=when.astimezone(UTC), mac=mac)


class CheckpointSigner:
    """HMAC-SHA256 (RFC 2104) under a subkey of the installation's secret key.

    The subkey is derived with HKDF-SHA256 (RFC 5869) and a label of its own, so the key
    that seals second-factor secrets is never used for anything else.
    """

    def __init__(self, secret_key: bytes) -> None:
        if len(secret_key) < 32:
            raise ValueError("the secret key must be at least 32 bytes")
        self._key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_KEY_PURPOSE).derive(
            secret_key
        )

    def _mac(self, seq: int, digest: str, at: datetime) -> str:
        message = f"concilium-audit-checkpoint\n{seq}\n{digest}\n{_timestamp(at)}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def sign(self, seq: int, digest: str, at: datetime) -> Checkpoint:
        return Checkpoint(seq=seq, hash=digest, at=at, mac=self._mac(seq, digest, at))

    def authentic(self, checkpoint: Checkpoint) -> bool:
        expected = self._mac(checkpoint.seq, checkpoint.hash, checkpoint.at)
        return hmac.compare_digest(expected, checkpoint.mac)


# --- RFC 5424 syslog over UDP (RFC 5426) ---------------------------------------------------


def to_syslog(checkpoint: Checkpoint, hostname: str | None = None) -> str:
    """The checkpoint as one RFC 5424 message.

    Its fields are structured data (section 6.3) for the collector to index; the MSG is the
    checkpoint's JSON line, so that a collector writing only messages still keeps all of it
    and its file can be given back to ``concilium audit verify --checkpoints``.
    """
    pri = _FACILITY_AUTHPRIV * 8 + _SEVERITY_NOTICE
    host = (hostname or socket.gethostname())[:255] or "-"
    at = _timestamp(checkpoint.at)
    sd = (
        f'[{SD_ID} seq="{checkpoint.seq}" hash="{checkpoint.hash}" at="{at}" '
        f'mac="{checkpoint.mac}"]'
    )
    return f"<{pri}>1 {at} {host} concilium {os.getpid()} audit-checkpoint {sd} " + (
        checkpoint.to_json()
    )


def send_syslog(destination: tuple[str, int], message: str) -> None:
    """Send one message in one datagram (RFC 5426 section 3.1)."""
    host, port = destination
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
    with socket.socket(family, kind, proto) as sock:
        sock.sendto(message.encode(), address)


# --- the checkpoint file ------------------------------------------------------------------


def _append_line(path: Path, line: str) -> None:
    """Append one line durably; other processes may append to the same file meanwhile.

    One ``write`` on an ``O_APPEND`` descriptor lands whole at the end of the file, so lines
    from several processes never interleave.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    created = not path.exists()
    data = (line + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        if os.write(fd, data) != len(data):
            raise OSError(f"short write to {path}")
        os.fsync(fd)
    finally:
        os.close(fd)
    if created:
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


class Problem(str):
    """Something wrong with the chain or a checkpoint: the string itself is the English
    sentence (what scripts and tests match), :meth:`said` the same in the reader's
    language."""

    message: str
    values: Mapping[str, object]

    def __new__(cls, message: str, **values: object) -> Problem:
        made = super().__new__(cls, message % values if values else message)
        made.message = message
        made.values = values
        return made

    def said(self) -> str:
        """The problem in the current language."""
        translated = gettext(self.message) if self.message else ""
        return translated % self.values if self.values else translated


NO_PROBLEM = Problem("")


@dataclass(frozen=True)
class Reading:
    """One checkpoint read back from a file, and whether it can be trusted."""

    where: str
    """File and line it was read from (``path:line``)."""
    checkpoint: Checkpoint | None
    """What it says; None when the line is not a readable checkpoint."""
    problem: Problem = NO_PROBLEM
    """Why it cannot be trusted; empty when it is readable and its signature holds."""


def _checkpoint_text(line: str) -> str | None:
    """The checkpoint's JSON in a line of a checkpoint file or of a collector's file (where it
    is the MSG after the structured data); None if the line is no checkpoint at all."""
    if line.startswith("{"):
        return line
    sd = line.find(SD_ID)
    if sd < 0:
        return None
    start = line.find("{", sd)
    return line[start:] if start >= 0 else ""


def _read_lines(path: Path, signer: CheckpointSigner, strict: bool) -> Iterator[Reading]:
    with path.open(encoding="utf-8", errors="replace") as handle:
        for number, raw in enumerate(handle, start=1):
            line = raw.strip()
            where = f"{path}:{number}"
            if not line:
                continue
            text = _checkpoint_text(line)
            if text is None:
                if strict:  # a collector's file holds other messages too; this one does not
                    yield Reading(where, None, Problem(N_("not a checkpoint")))
                continue
            try:
                checkpoint = Checkpoint.from_json(text)
            except ValueError as exc:
                problem = Problem(N_("unreadable checkpoint: %(error)s"), error=str(exc))
                yield Reading(where, None, problem)
                continue
            if not signer.authentic(checkpoint):
                altered = N_("signature does not match: checkpoint altered")
                yield Reading(where, checkpoint, Problem(altered))
            else:
                yield Reading(where, checkpoint)


class CheckpointLog:
    """Where checkpoints are written (the data dir file, syslog when configured) and read."""

    def __init__(
        self,
        path: Path,
        signer: CheckpointSigner,
        syslog: tuple[str, int] | None = None,
        hostname: str | None = None,
    ) -> None:
        self.path = path
        self.signer = signer
        self.syslog = syslog
        self.hostname = hostname

    @classmethod
    def in_data_dir(
        cls, data_dir: Path, secret_key: bytes, syslog: tuple[str, int] | None = None
    ) -> CheckpointLog:
        return cls(data_dir / CHECKPOINTS_FILE, CheckpointSigner(secret_key), syslog)

    def take(self, seq: int, digest: str, at: datetime) -> Checkpoint:
        """Sign the head and write it out: the file first (it must not be lost), then syslog.

        A collector that cannot be reached is logged and skipped; the file write is not.
        """
        checkpoint = self.signer.sign(seq, digest, at)
        _append_line(self.path, checkpoint.to_json())
        if self.syslog is not None:
            try:
                send_syslog(self.syslog, to_syslog(checkpoint, self.hostname))
            except OSError as exc:
                log.warning(
                    "audit checkpoint not sent to syslog",
                    extra={"seq": seq, "error": type(exc).__name__},
                )
        return checkpoint

    def read(self, others: Iterable[Path] = ()) -> Iterator[Reading]:
        """Every checkpoint of the data dir file, then of ``others`` (files of checkpoints or
        of syslog messages kept by a collector, where lines of other messages are skipped)."""
        if self.path.exists():
            yield from _read_lines(self.path, self.signer, strict=True)
        for other in others:
            yield from _read_lines(other, self.signer, strict=False)


# --- when to take one ---------------------------------------------------------------------


def read_head(session: Session) -> tuple[int, str]:
    """The chain's head: the newest entry's sequence number and hash."""
    row = session.execute(select(AuditHead.seq, AuditHead.last_hash).where(AuditHead.id == 1)).one()
    return int(row.seq), str(row.last_hash)


def checkpoint_due(
    last: Checkpoint | None,
    head: tuple[int, str],
    now: datetime,
    every: timedelta,
    entries: int,
) -> bool:
    """Whether to take a checkpoint of ``head`` now, ``last`` being this process's previous.

    Only when the chain changed since ``last``, and then once ``every`` has passed since it
    or ``entries`` were added since it; at once if the head went back (the chain was cut
    while this process watched, and the next checkpoint records where it now stands).
    """
    seq, digest = head
    if seq == 0:
        return False
    if last is None:
        return True
    if (seq, digest) == (last.seq, last.hash):
        return False
    if seq <= last.seq:
        return True
    return seq - last.seq >= entries or now - last.at >= every


class AuditCheckpointer:
    """Takes checkpoints from a thread of its own while the server runs, and one at stop.

    The thread reads the head every ``poll`` seconds (one primary-key SELECT), so a request
    never waits for a checkpoint's fsync or datagram.
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        checkpoints: CheckpointLog,
        clock: Callable[[], datetime],
        *,
        every: timedelta,
        entries: int,
        poll: float,
    ) -> None:
        if poll <= 0 or entries < 1:
            raise ValueError("poll must be positive and entries at least 1")
        self._sessions = sessions
        self._log = checkpoints
        self._clock = clock
        self._every = every
        self._entries = entries
        self._poll = poll
        self._last: Checkpoint | None = None
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def last(self) -> Checkpoint | None:
        """The latest checkpoint this process took."""
        return self._last

    def start(self) -> None:
        """Take a checkpoint of the chain as found, then follow it from a thread."""
        self._safe_tick()
        self._thread = threading.Thread(target=self._run, name="audit-checkpoints", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread, which takes a last checkpoint if the chain moved."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def tick(self, *, final: bool = False) -> Checkpoint | None:
        """Take a checkpoint if one is due (at stop: if the chain moved at all)."""
        with self._sessions() as session:
            head = read_head(session)
        now = self._clock()
        every = timedelta(0) if final else self._every
        if not checkpoint_due(self._last, head, now, every, self._entries):
            return None
        if self._last is not None and head[0] <= self._last.seq:
            log.error(
                "audit chain head went back",
                extra={"from_seq": self._last.seq, "to_seq": head[0]},
            )
        self._last = self._log.take(head[0], head[1], now)
        return self._last

    def _safe_tick(self, final: bool = False) -> None:
        try:
            self.tick(final=final)
        except Exception:
            log.exception("audit checkpoint not written")

    def _run(self) -> None:
        while not self._stopping.wait(self._poll):
            self._safe_tick()
        self._safe_tick(final=True)

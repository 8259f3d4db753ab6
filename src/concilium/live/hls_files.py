"""The files of a broadcast as served to its audience: where they are, which names exist,
their HTTP headers, and the capability in the path that opens them (HMAC-SHA256, RFC 2104).

The packager (:mod:`concilium.live.hls`) writes them; :mod:`concilium.live.playback_web`
serves them, checking each request against the capability alone, without the database or a
session cookie, so a crowd of viewers (or a cache in front) costs an HMAC per request.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["HlsCapability", "HlsSigner", "hls_headers", "hls_root", "resolve_hls_file"]

_FILE_NAME = re.compile(r"^(?:[a-z0-9]{1,16}/)?[A-Za-z0-9_-]{1,64}\.(m3u8|m4s|mp4)$")
_CONTENT_TYPES = {
    "m3u8": "application/vnd.apple.mpegurl",
    "m4s": "video/iso.segment",
    "mp4": "video/mp4",
}


def hls_root(data_dir: Path) -> Path:
    """Folder holding the HLS output of every broadcast."""
    return data_dir / "live" / "hls"


def resolve_hls_file(root: Path, session_id: int, name: str) -> Path | None:
    """The file ``name`` of a session's HLS output, or None for anything else.

    Only the shapes ffmpeg writes are accepted (``master.m3u8``, ``720p/index.m3u8``,
    ``720p/seg-1.m4s``, ``720p/init-x_0.mp4``): no dots, no other folders.
    """
    if not _FILE_NAME.match(name):
        return None
    path = root / str(session_id) / name
    return path if path.is_file() else None


def hls_headers(name: str) -> tuple[str, str]:
    """Content type and ``Cache-Control`` of an HLS file.

    Playlists change every segment: ``no-cache`` (a cache in front may still keep one for
    a second, see the README). Segments and init segments never change once written (their
    names are unique): ``immutable``.
    """
    extension = name.rsplit(".", 1)[-1]
    content_type = _CONTENT_TYPES[extension]
    if extension == "m3u8":
        return content_type, "no-cache"
    return content_type, "public, max-age=31536000, immutable"


@dataclass(frozen=True)
class HlsCapability:
    """The right to fetch one session's HLS files until ``expires``, carried in the path."""

    session_id: int
    """The broadcast whose files it opens."""
    expires: int
    """Unix time (s) after which it is refused."""
    signature: str
    """HMAC-SHA256 tag over session id and expiry, URL-safe base64 without padding."""

    @property
    def prefix(self) -> str:
        """Path every file of the session is fetched under (playlists refer relatively)."""
        return f"/live/{self.session_id}/hls/{self.expires}/{self.signature}"

    @property
    def master(self) -> str:
        """Path of the master playlist."""
        return f"{self.prefix}/master.m3u8"


_EXPIRES = re.compile(r"^[0-9]{1,12}$")


class HlsSigner:
    """Signs and checks HLS capabilities (HMAC-SHA256, RFC 2104) under a key derived from the
    installation's secret key.

    Expiries are rounded up to ``granularity`` seconds: everyone granted within the same
    window gets the same path, so a shared cache keeps one copy of each file for the whole
    audience rather than one per viewer. The tag covers only session and expiry for that
    reason; taking someone's access away therefore takes effect when their capability
    lapses (at most ``lifetime + granularity``), not at once.
    """

    def __init__(
        self, secret_key: bytes, *, lifetime: int = 4 * 3600, granularity: int = 600
    ) -> None:
        if len(secret_key) < 16:
            raise ValueError("the secret key must be at least 16 bytes")
        if not 60 <= lifetime <= 24 * 3600 or not 1 <= granularity <= lifetime:
            raise ValueError("lifetime must be 60..86400 s and granularity 1..lifetime s")
        # A key of its own, so a tag made here means nothing to any other use of the secret.
        self._key = hmac.new(secret_key, b"concilium live hls capability", hashlib.sha256).digest()
        self.lifetime = lifetime
        self.granularity = granularity

    def _tag(self, session_id: int, expires: int) -> str:
        digest = hmac.new(self._key, f"{session_id}:{expires}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()

    def grant(self, session_id: int, now: float) -> HlsCapability:
        """A capability for ``session_id`` valid at least ``lifetime`` seconds from ``now``."""
        window = self.granularity
        expires = -(-(int(now) + self.lifetime) // window) * window
        return HlsCapability(session_id, expires, self._tag(session_id, expires))

    def verify(self, session_id: int, expires: str, signature: str, now: float) -> bool:
        """Whether the path's ``expires``/``signature`` open ``session_id`` at ``now``
        (constant-time comparison of the tag)."""
        if not _EXPIRES.match(expires) or int(expires) <= now:
            return False
        expected = self._tag(session_id, int(expires))
        return hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace"))

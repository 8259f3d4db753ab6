"""Who sent each recording of a live session, and what the library calls it.

Janus's ``.mjr`` files carry a feed's number only: the name each feed published under and
what it sent (a camera, a shared screen or a capture device) are noted beside them
(:func:`note_publishers`, ``publishers.json``), kept with the recording
(``LiveRecording.source``, :func:`stored_source`), and shown in the reader's language
(:func:`describe`). What a browser says it sends is one of :data:`SOURCE_KINDS` or taken for
a camera, so a page can neither write its own words into the library nor pass for someone
else.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from concilium.platform.i18n import _, pgettext

__all__ = [
    "PROGRAM_FEED",
    "PUBLISHERS_NOTE",
    "SOURCE_KINDS",
    "NotedPublisher",
    "describe",
    "kind_label",
    "note_publishers",
    "noted_publishers",
    "parse_source",
    "source_kind",
    "stored_source",
]

PROGRAM_FEED = 0
"""``feed`` of a session's program recording (Janus never gives a publisher the id 0)."""

PUBLISHERS_NOTE = "publishers.json"
"""In a recorded room's folder: the name each feed published under (Janus's ``.mjr``
files carry the feed id only), so the library names the person, not a number."""


SOURCE_KINDS = ("camera", "screen", "capture")
"""What a person's browser may say it publishes (the ``description`` of its streams, checked
by :func:`source_kind`): their camera, their shared screen, or a capture device (the video
output of an X-ray system or an endoscope through a frame grabber)."""

_KIND_SEPARATOR = ":"
_FED = "source"


def source_kind(description: object) -> str:
    """The kind of source a browser's stream ``description`` names, from the fixed
    :data:`SOURCE_KINDS`; anything else (a forged name, a sentence, nothing) is a camera, so
    a browser can neither put its own words in the library nor pass for someone else."""
    return description if isinstance(description, str) and description in SOURCE_KINDS else "camera"


def stored_source(name: str, kind: str = "") -> str:
    """A recording's ``source`` as kept (the ``LiveRecording.source`` column, at most 200
    characters): ``kind:name`` for a person's camera, screen or capture device,
    ``source:name`` for one known by its name alone (a source the server feeds, under its
    registered name). A name kept
    before kinds were (migration ``0017_live_recording_source``) is the name alone."""
    return f"{kind if kind in SOURCE_KINDS else _FED}{_KIND_SEPARATOR}{name}"[:200]


def parse_source(stored: str) -> tuple[str, str]:
    """The name and kind (empty when not a person's stream) kept by :func:`stored_source`."""
    kind, separator, name = stored.partition(_KIND_SEPARATOR)
    if separator and kind in SOURCE_KINDS:
        return name, kind
    if separator and kind == _FED:
        return name, ""
    return stored, ""


def kind_label(kind: str) -> str:
    """A person's source kind, in the reader's language."""
    labels = {
        "camera": pgettext("recorded source", "camera"),
        "screen": pgettext("recorded source", "shared screen"),
        "capture": pgettext("recorded source", "capture device"),
    }
    return labels.get(kind, "")


def describe(feed: int, media_type: str, video_codec: str, source: str = "") -> tuple[str, str]:
    """What the library says of a recording: its source (the person who sent it, by the
    name they published under, and what they sent: camera, shared screen or capture device;
    a fed source by its registered name; else the feed's number) and its format."""
    name, kind = parse_source(source)
    if feed == PROGRAM_FEED:
        shown = _("Program")
    elif name and kind:
        shown = _("%(name)s — %(source)s") % {"name": name, "source": kind_label(kind)}
    elif name:
        shown = name
    else:
        shown = _("Feed %(feed)s") % {"feed": feed}
    codec = video_codec.upper() if video_codec != "h264" else "H.264"
    if media_type == "video/webm":
        form = _("WebM (%(codec)s: MP4 would need re-encoding)") % {"codec": codec}
    else:
        form = _("MP4 (%(codec)s)") % {"codec": codec}
    return shown, form


@dataclass(frozen=True)
class NotedPublisher:
    """What :func:`note_publishers` keeps of one feed."""

    name: str
    """The name it published under: the account's, set by the server."""
    kind: str = ""
    """One of :data:`SOURCE_KINDS` for a person's browser, empty for a fed source."""

    @property
    def stored(self) -> str:
        """As kept in ``LiveRecording.source`` (:func:`stored_source`)."""
        return stored_source(self.name, self.kind)


def note_publishers(rec_dir: Path, publishers: dict[int, NotedPublisher]) -> None:
    """Add to ``rec_dir``'s note the name each of ``publishers``' feeds publishes under and
    what it sends; a feed keeps the first noted. Written whole or not at all."""
    known = noted_publishers(rec_dir)
    fresh = {feed: p for feed, p in publishers.items() if p.name and feed not in known}
    if not fresh or not rec_dir.is_dir():
        return
    known.update(fresh)
    note = rec_dir / PUBLISHERS_NOTE
    temporary = note.with_suffix(".json.tmp")
    temporary.write_text(
        json.dumps({str(feed): {"name": p.name, "kind": p.kind} for feed, p in known.items()})
    )
    temporary.replace(note)


def noted_publishers(rec_dir: Path) -> dict[int, NotedPublisher]:
    """What :func:`note_publishers` noted in ``rec_dir``, by feed (a note written before
    kinds were noted holds names alone)."""
    try:
        found = json.loads((rec_dir / PUBLISHERS_NOTE).read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(found, dict):
        return {}
    noted: dict[int, NotedPublisher] = {}
    for key, value in found.items():
        if not key.isdigit():
            continue
        if isinstance(value, str):
            noted[int(key)] = NotedPublisher(value)
        elif isinstance(value, dict) and isinstance(value.get("name"), str):
            kind = value.get("kind")
            noted[int(key)] = NotedPublisher(value["name"], kind if kind in SOURCE_KINDS else "")
    return noted

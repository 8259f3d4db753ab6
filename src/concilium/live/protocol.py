"""Messages of the live session websocket (``/live/{session_id}/ws``): chat, Q&A, telestration.

Every frame is one JSON object with a ``type``. A client sends::

    {"type": "chat", "body": "..."}
    {"type": "question", "body": "..."}
    {"type": "moderate", "question_id": 3, "action": "approve|reject|answer|merge",
     "answer": "...", "into": 2}
    {"type": "stroke", "points": [[0.1, 0.2], ...], "color": "#ff0000", "width": 3,
     "source_id": 1}
    {"type": "clear"}

and receives the same kinds as events, plus ``{"type": "error", "detail": "..."}`` addressed
to itself alone when a frame is refused. Parsing is pure and refuses anything malformed with
:class:`ProtocolError`, so a bad client never reaches the domain.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from concilium.platform.i18n import _

__all__ = [
    "MAX_BODY",
    "MAX_FRAME",
    "MAX_POINTS",
    "Chat",
    "Clear",
    "ClientMessage",
    "Moderate",
    "ProtocolError",
    "Question",
    "Stroke",
    "parse_client_message",
]

MAX_FRAME = 64 * 1024
"""Largest frame accepted, in bytes."""
MAX_BODY = 2000
"""Longest chat line or question, in characters."""
MAX_POINTS = 2000
"""Most points in one telestration stroke."""
MODERATION_ACTIONS = ("approve", "reject", "answer", "merge")
_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")


class ProtocolError(ValueError):
    """A frame that is not a valid message; the detail is sent back to its sender."""


@dataclass(frozen=True)
class Chat:
    """A chat line."""

    body: str


@dataclass(frozen=True)
class Question:
    """A question for the speakers, held for moderation."""

    body: str


@dataclass(frozen=True)
class Moderate:
    """A moderator's decision on a question."""

    question_id: int
    action: str
    """``approve``, ``reject``, ``answer`` or ``merge``."""
    answer: str = ""
    """The answer given (``answer``)."""
    into: int | None = None
    """The question this one duplicates (``merge``)."""


@dataclass(frozen=True)
class Stroke:
    """A telestration stroke over a source, in picture-relative coordinates."""

    points: tuple[tuple[float, float], ...]
    """Points in 0..1 of the picture's width and height."""
    color: str
    """``#rrggbb``."""
    width: int
    """Line width in CSS pixels, 1..20."""
    source_id: int | None = None
    """The source drawn over, if the client says."""


@dataclass(frozen=True)
class Clear:
    """Wipe the telestration layer for everyone."""


ClientMessage = Chat | Question | Moderate | Stroke | Clear


def _text(data: dict[str, Any], key: str, *, required: bool = True) -> str:
    value = data.get(key, "")
    if not isinstance(value, str):
        raise ProtocolError(f"{key} must be a string")
    value = value.strip()
    # What a person typed (or left empty): told in words, in their language.
    if required and not value:
        empty = _("Write the answer.") if key == "answer" else _("Write something first.")
        raise ProtocolError(empty)
    if len(value) > MAX_BODY:
        raise ProtocolError(_("A message has at most %(count)s characters.") % {"count": MAX_BODY})
    return value


def _int(data: dict[str, Any], key: str, *, optional: bool = False) -> int | None:
    value = data.get(key)
    if value is None and optional:
        return None
    # bool is an int in Python, never a meaningful id here.
    if not isinstance(value, int) or isinstance(value, bool):
        raise ProtocolError(f"{key} must be an integer")
    return value


def _points(value: Any) -> tuple[tuple[float, float], ...]:
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_POINTS:
        raise ProtocolError(f"points must be a list of 1 to {MAX_POINTS} [x, y] pairs")
    points: list[tuple[float, float]] = []
    for point in value:
        if (
            not isinstance(point, list)
            or len(point) != 2
            or not all(isinstance(c, int | float) and not isinstance(c, bool) for c in point)
        ):
            raise ProtocolError("each point must be [x, y] with numbers")
        x, y = float(point[0]), float(point[1])
        if not (math.isfinite(x) and math.isfinite(y) and 0 <= x <= 1 and 0 <= y <= 1):
            raise ProtocolError("point coordinates must be within 0..1 of the picture")
        points.append((x, y))
    return tuple(points)


def parse_client_message(frame: str | bytes) -> ClientMessage:
    """Parse one client frame; raise :class:`ProtocolError` on anything malformed."""
    if len(frame) > MAX_FRAME:
        raise ProtocolError(f"frame larger than {MAX_FRAME} bytes")
    try:
        data = json.loads(frame)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProtocolError("frame is not JSON") from exc
    if not isinstance(data, dict):
        raise ProtocolError("frame must be a JSON object")
    kind = data.get("type")
    if kind == "chat":
        return Chat(_text(data, "body"))
    if kind == "question":
        return Question(_text(data, "body"))
    if kind == "moderate":
        action = data.get("action")
        if action not in MODERATION_ACTIONS:
            raise ProtocolError(f"action must be one of {', '.join(MODERATION_ACTIONS)}")
        question_id = _int(data, "question_id")
        assert question_id is not None
        answer = _text(data, "answer", required=action == "answer")
        into = _int(data, "into", optional=action != "merge")
        return Moderate(question_id, action, answer, into)
    if kind == "stroke":
        color = data.get("color", "#ffcc00")
        if not isinstance(color, str) or not _COLOR.match(color):
            raise ProtocolError("color must be #rrggbb")
        width = data.get("width", 3)
        if not isinstance(width, int) or isinstance(width, bool) or not 1 <= width <= 20:
            raise ProtocolError("width must be an integer 1..20")
        source_id = _int(data, "source_id", optional=True)
        return Stroke(_points(data.get("points")), color.lower(), width, source_id)
    if kind == "clear":
        return Clear()
    raise ProtocolError("type must be chat, question, moderate, stroke or clear")

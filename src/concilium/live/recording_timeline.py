"""What is placed on a recording's timeline: its chapters (the program switches, naming the
person put on program, and the questions the audience saw) and the telestration strokes
drawn while it ran; a chapter's label in the reader's language.

All pure functions of what the live service already keeps: the session's program switches
(:mod:`concilium.live.program`), its approved or answered questions
(:mod:`concilium.live.chat`) and its strokes (:mod:`concilium.live.telestration`). A
recording of one piece places a wall-clock instant by its offset from the first frame
(:func:`span_position`); the program recording, made of parts joined end to end, by
:func:`program_position`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from concilium.platform.i18n import _

__all__ = [
    "CHAPTER_FEED",
    "PROGRAM_CLEARED",
    "PROGRAM_OF",
    "Chapter",
    "DrawnStroke",
    "chapter_text",
    "chapters",
    "placed_strokes",
    "program_chapters",
    "program_position",
    "span_position",
]

_PROGRAM_LEAD_S = 10.0
"""A program switch this shortly before the program recording starts is its first picture
(the packager needs a moment to receive a keyframe): it is placed at 0 s."""

_JOIN_SNAP_S = 3.0
"""A program switch this close to a join of the program recording is put on the join."""


@dataclass(frozen=True)
class Chapter:
    """A point of a recording worth jumping to."""

    at: float
    """Seconds from the start of the recording."""
    kind: str
    """``program`` (the director switched the picture) or ``question``."""
    label: str

    def as_dict(self) -> dict[str, Any]:
        return {"at": self.at, "kind": self.kind, "label": self.label}


PROGRAM_CLEARED = "Program cleared"
PROGRAM_OF = "Program: "
CHAPTER_FEED = "feed "
"""How a program chapter is kept (``Program: <person>``, ``Program: feed <n>``, ``Program
cleared``): the same for every reader, who reads it in their language (:func:`chapter_text`)."""


def chapter_text(kind: str, label: str) -> str:
    """A chapter's label in the reader's language."""
    if kind != "program":
        return label  # a question, as it was asked
    if label == PROGRAM_CLEARED:
        return _("Program cleared")
    shown = label.removeprefix(PROGRAM_OF)
    if shown.startswith(CHAPTER_FEED) and shown.removeprefix(CHAPTER_FEED).isdigit():
        return _("Program: feed %(feed)s") % {"feed": shown.removeprefix(CHAPTER_FEED)}
    return _("Program: %(name)s") % {"name": shown}


def _chapters(
    position: Callable[[datetime], float | None],
    program_switches: Iterable[tuple[datetime, int | None]],
    questions: Iterable[tuple[datetime, str]],
    names: Mapping[int, str],
) -> list[Chapter]:
    found: list[Chapter] = []
    for when, feed in program_switches:
        if feed is None:
            label = PROGRAM_CLEARED
        else:
            label = PROGRAM_OF + names.get(feed, f"{CHAPTER_FEED}{feed}")
        at = position(when)
        if at is not None:
            found.append(Chapter(at, "program", label))
    for when, body in questions:
        text = " ".join(body.split())
        at = position(when)
        if at is not None:
            found.append(Chapter(at, "question", text[:120]))
    return sorted((Chapter(round(c.at, 2), c.kind, c.label) for c in found), key=lambda c: c.at)


def span_position(started_at: datetime, duration: float) -> Callable[[datetime], float | None]:
    """Where a wall-clock instant falls in a recording of one piece: its offset from the
    first frame, or None outside the recording."""

    def position(when: datetime) -> float | None:
        at = (when - started_at).total_seconds()
        return at if 0 <= at <= duration else None

    return position


def chapters(
    started_at: datetime,
    duration: float,
    program_switches: Iterable[tuple[datetime, int | None]],
    questions: Iterable[tuple[datetime, str]],
    names: Mapping[int, str] | None = None,
) -> list[Chapter]:
    """Chapters within a recording, in time order: each program switch (naming the person
    put on program when ``names`` knows their feed) and each question (approved or answered
    ones only: what the audience saw)."""
    return _chapters(span_position(started_at, duration), program_switches, questions, names or {})


@dataclass(frozen=True)
class DrawnStroke:
    """A telestration stroke as the session kept it."""

    drawn_at: datetime
    points: list[list[float]]
    """Picture-relative ``[x, y]`` points; empty for a clear."""
    color: str
    width: int


def placed_strokes(
    position: Callable[[datetime], float | None], strokes: Iterable[DrawnStroke]
) -> list[dict[str, Any]]:
    """The strokes drawn while a recording ran, placed on its timeline in time order, so that
    a player draws each from its instant until the next clear (an empty stroke)."""
    placed = []
    for stroke in strokes:
        at = position(stroke.drawn_at)
        if at is not None:
            placed.append(
                {"at": round(at, 2), "points": stroke.points, "color": stroke.color,
                 "width": stroke.width}
            )  # fmt: skip
    return sorted(placed, key=lambda s: float(s["at"]))


def program_position(parts: Sequence[tuple[datetime, float]], when: datetime) -> float | None:
    """Where the wall-clock instant ``when`` falls in a recording made of ``parts`` joined
    end to end (each a wall-clock start and a length, in order): inside a part, its offset
    there; between two parts, the join; shortly before the first, 0; None otherwise."""
    if not parts:
        return None
    lead = (parts[0][0] - when).total_seconds()
    if lead > 0:
        return 0.0 if lead <= _PROGRAM_LEAD_S else None
    offset = 0.0
    for start, duration in parts:
        into = (when - start).total_seconds()
        if into < 0:
            return offset
        if into <= duration:
            return offset + into
        offset += duration
    return None


def program_chapters(
    parts: Sequence[tuple[datetime, float]],
    program_switches: Iterable[tuple[datetime, int | None]],
    questions: Iterable[tuple[datetime, str]],
    names: Mapping[int, str] | None = None,
) -> list[Chapter]:
    """Chapters of the program recording (see :func:`program_position`), naming the people
    put on program as :func:`chapters` does.

    A switch starts a new part a moment after the director asked for it (the packager
    waits for a keyframe): a program chapter within a few seconds of a join is put on the
    join, where the picture changes.
    """
    joins = [0.0]
    for _start, duration in parts:
        joins.append(joins[-1] + duration)

    def on_join(when: datetime) -> float | None:
        at = program_position(parts, when)
        if at is None:
            return None
        nearest = min(joins, key=lambda join: abs(join - at))
        return nearest if abs(nearest - at) <= _JOIN_SNAP_S else at

    switches = _chapters(on_join, program_switches, (), names or {})
    asked = _chapters(lambda when: program_position(parts, when), (), questions, {})
    return sorted(switches + asked, key=lambda c: c.at)

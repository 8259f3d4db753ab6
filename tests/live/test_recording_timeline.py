"""What is placed on a recording's timeline: the chapters (program switches and shown
questions, on a recording of one piece and on the joined program), the strokes drawn, and a
chapter's label in the reader's language."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import partial

from concilium.live import recording_timeline
from concilium.live.recording_timeline import Chapter, chapters
from concilium.platform import i18n
from concilium.services import LOCALE_FOLDERS


def test_chapters_are_the_switches_and_shown_questions_inside_the_recording() -> None:
    start = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
    found = chapters(
        start,
        600.0,
        [(start - timedelta(seconds=5), 1), (start + timedelta(seconds=90), 2)],
        [
            (start + timedelta(seconds=30.123), "Why   this size?"),
            (start + timedelta(hours=1), "x"),
        ],
    )
    assert found == [
        Chapter(30.12, "question", "Why this size?"),
        Chapter(90.0, "program", "Program: feed 2"),
    ]
    # Once the name each feed published under is known, the switch names the person.
    named = chapters(start, 600.0, [(start + timedelta(seconds=90), 2)], [], {2: "Dr Anne Martin"})
    assert named == [Chapter(90.0, "program", "Program: Dr Anne Martin")]


def test_program_chapters_follow_the_joined_parts_and_land_on_the_joins() -> None:
    start = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)

    def at(seconds: float) -> datetime:
        return start + timedelta(seconds=seconds)

    # Two packager runs: 0-20 s and, after a 3 s gap (the switch), 23-33 s of wall clock.
    parts = [(at(0), 20.0), (at(23), 10.0)]
    assert recording_timeline.program_position(parts, at(5)) == 5.0
    assert recording_timeline.program_position(parts, at(21)) == 20.0  # in the gap: the join
    assert recording_timeline.program_position(parts, at(25)) == 22.0
    assert recording_timeline.program_position(parts, at(-2)) == 0.0  # the switch that started it
    assert recording_timeline.program_position(parts, at(-60)) is None
    assert recording_timeline.program_position(parts, at(40)) is None
    found = recording_timeline.program_chapters(
        parts,
        [(at(-0.5), 1), (at(19.2), 2)],
        [(at(8), "Which  ring?"), (at(30), "And now?"), (at(90), "too late")],
    )
    assert found == [
        Chapter(0.0, "program", "Program: feed 1"),
        Chapter(8.0, "question", "Which ring?"),
        Chapter(20.0, "program", "Program: feed 2"),  # put on the join, where it shows
        Chapter(27.0, "question", "And now?"),
    ]


def test_strokes_are_placed_on_the_recordings_timeline_with_their_clears() -> None:
    start = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)

    def at(seconds: float) -> datetime:
        return start + timedelta(seconds=seconds)

    line = [[0.1, 0.1], [0.9, 0.9]]
    drawn = [
        recording_timeline.DrawnStroke(at(26), line, "#00ff00", 3),
        recording_timeline.DrawnStroke(at(4.256), line, "#ff0000", 2),
        recording_timeline.DrawnStroke(at(12), [], "#ff0000", 2),  # a clear
        recording_timeline.DrawnStroke(at(50), line, "#ff0000", 2),  # after the recording
    ]
    # A feed's recording of one piece, 0-40 s of wall clock: offsets from its first frame.
    placed = recording_timeline.placed_strokes(recording_timeline.span_position(start, 40.0), drawn)
    assert [(s["at"], s["color"], len(s["points"])) for s in placed] == [
        (4.26, "#ff0000", 2),
        (12.0, "#ff0000", 0),
        (26.0, "#00ff00", 2),
    ]
    # The program, joined from two runs with a 3 s gap (see the chapters): the stroke drawn
    # after the gap moves back by it.
    parts = [(at(0), 20.0), (at(23), 10.0)]
    placed = recording_timeline.placed_strokes(
        partial(recording_timeline.program_position, parts), drawn
    )
    assert [s["at"] for s in placed] == [4.26, 12.0, 23.0]


def test_program_chapters_are_read_in_the_readers_language():
    i18n.load_catalogues(LOCALE_FOLDERS)
    said = {}
    for locale in ("fr", "en"):
        with i18n.using_locale(locale):
            said[locale] = [
                recording_timeline.chapter_text("program", "Program: Dr Anne Martin"),
                recording_timeline.chapter_text("program", "Program: feed 7"),
                recording_timeline.chapter_text("program", "Program cleared"),
                recording_timeline.chapter_text("question", "Program: is this a question?"),
            ]
    assert said["fr"] == [
        "À l'antenne : Dr Anne Martin",
        "À l'antenne : flux 7",
        "Plus rien à l'antenne",
        "Program: is this a question?",
    ]
    assert said["en"][:3] == ["Program: Dr Anne Martin", "Program: feed 7", "Program cleared"]

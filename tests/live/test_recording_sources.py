"""Who sent each recording and what the library calls it: the person and what they sent,
a forged description taken for a camera, the notes kept beside the room's files, in the
reader's language."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from concilium.live import recording_sources
from concilium.platform import i18n
from concilium.services import LOCALE_FOLDERS


@pytest.mark.parametrize(
    ("locale", "said"),
    [
        ("en", ["Dr A — camera", "Dr A — shared screen", "Dr A — capture device", "IRM 2"]),
        ("fr", ["Dr A — caméra", "Dr A — écran partagé", "Dr A — appareil de capture", "IRM 2"]),
    ],
)
def test_a_recordings_source_names_the_person_and_what_they_sent(
    locale: str, said: list[str]
) -> None:
    i18n.load_catalogues(LOCALE_FOLDERS)
    with i18n.using_locale(locale):
        shown = [
            recording_sources.describe(
                7, "video/mp4", "h264", recording_sources.stored_source(name, kind)
            )[0]
            for name, kind in [
                ("Dr A", recording_sources.source_kind("camera")),
                ("Dr A", recording_sources.source_kind("screen")),
                ("Dr A", recording_sources.source_kind("capture")),
                # A fed source (an IP camera, a cine loop) is shown by its registered name.
                ("IRM 2", ""),
            ]
        ]
    assert shown == said


def test_a_forged_or_missing_description_is_a_camera_and_old_notes_still_read(
    tmp_path: Path,
) -> None:
    for forged in ("Pr Chef de service", "Camera", "", None, 3, ["screen"]):
        assert recording_sources.source_kind(forged) == "camera"
    # A name that looks like a kept kind is still the name when noted with no kind.
    assert recording_sources.parse_source(recording_sources.stored_source("screen:Dr B")) == (
        "screen:Dr B",
        "",
    )
    assert recording_sources.parse_source("camera:Dr B: chef") == ("Dr B: chef", "camera")
    (tmp_path / recording_sources.PUBLISHERS_NOTE).write_text(json.dumps({"12": "Dr Anne Martin"}))
    recording_sources.note_publishers(
        tmp_path, {13: recording_sources.NotedPublisher("Dr B", "screen")}
    )
    assert recording_sources.noted_publishers(tmp_path) == {
        12: recording_sources.NotedPublisher("Dr Anne Martin"),
        13: recording_sources.NotedPublisher("Dr B", "screen"),
    }


def test_the_library_says_what_each_recording_is() -> None:
    i18n.load_catalogues(LOCALE_FOLDERS)
    with i18n.using_locale("en"):
        assert recording_sources.describe(recording_sources.PROGRAM_FEED, "video/mp4", "h264") == (
            "Program",
            "MP4 (H.264)",
        )
        assert recording_sources.describe(42, "video/webm", "vp8") == (
            "Feed 42",
            "WebM (VP8: MP4 would need re-encoding)",
        )
        assert (
            recording_sources.describe(42, "video/mp4", "h264", "Dr Anne Martin")[0]
            == "Dr Anne Martin"
        )
    with i18n.using_locale("fr"):
        assert (
            recording_sources.describe(recording_sources.PROGRAM_FEED, "video/mp4", "h264")[0]
            == "Programme"
        )
        assert recording_sources.describe(42, "video/webm", "vp8") == (
            "Flux 42",
            "WebM (VP8 : le MP4 imposerait un réencodage)",
        )

"""The synchronised image view of a meeting: what the presenter shows, who presents, and who
may change either.

Every participant's own viewer loads the pixels from the archive (DICOMweb); only the view
state travels: the study, series, slice, window (centre and width), zoom, pan and the
annotation drawn (a measured line). The state of a meeting's view is a :class:`RoomView`;
its changes are pure functions of it (:func:`drive`, :func:`hand_over`), so that the
websocket adapter only loads, calls and saves. A latecomer is sent the current
:class:`RoomView` and lands where the others are.

Rules: only the presenter drives the view (:class:`NotPresenter` otherwise, and the view is
unchanged for everyone); the presenter, or whoever runs the meeting (the facilitator), hands
the role over to another participant present; whoever runs the meeting may take the role
when nobody holds it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

__all__ = [
    "MAX_ZOOM",
    "MIN_ZOOM",
    "Annotation",
    "HandOverRefused",
    "NotPresenter",
    "RoomView",
    "View",
    "ViewError",
    "drive",
    "hand_over",
    "parse_view",
]

MIN_ZOOM = 0.25
"""The viewer's least zoom, relative to the image fitted to the canvas."""
MAX_ZOOM = 16.0
"""The viewer's greatest zoom."""
MAX_UID = 64
"""A DICOM UID holds at most 64 characters (PS3.5 9.1)."""
MAX_INDEX = 100_000
"""More slices than any series holds."""
MAX_COORDINATE = 1e6
"""Image pixel coordinates and window values stay well within this."""


class ViewError(ValueError):
    """A view message that does not describe a view."""


class NotPresenter(Exception):
    """Someone other than the presenter tried to drive the view."""


class HandOverRefused(Exception):
    """A hand-over of the presenter role that the rules do not allow."""


@dataclass(frozen=True)
class Annotation:
    """A line measured on the image, in image pixel coordinates."""

    x1: float
    y1: float
    x2: float
    y2: float


@dataclass(frozen=True)
class View:
    """What the presenter's viewer shows, independent of the size of anyone's screen."""

    study: str
    """Study Instance UID."""
    series: str
    """Series Instance UID; empty until the viewer has opened one."""
    index: int
    """The slice (or frame) shown, from 0, in the viewer's order."""
    center: float | None
    """Window centre; None with ``width``: the object's own window."""
    width: float | None
    """Window width, positive."""
    zoom: float
    """Relative to the image fitted to the canvas (1)."""
    pan_x: float
    """Horizontal shift as a fraction of the canvas width."""
    pan_y: float
    """Vertical shift as a fraction of the canvas height."""
    annotation: Annotation | None
    """The measured line, if any."""

    def to_json(self) -> dict[str, Any]:
        """The view as the viewer's ``applyView`` takes it."""
        return {
            "study": self.study,
            "series": self.series,
            "index": self.index,
            "window": None
            if self.center is None or self.width is None
            else {"center": self.center, "width": self.width},
            "zoom": self.zoom,
            "pan": {"x": self.pan_x, "y": self.pan_y},
            "measure": None
            if self.annotation is None
            else {
                "x1": self.annotation.x1,
                "y1": self.annotation.y1,
                "x2": self.annotation.x2,
                "y2": self.annotation.y2,
            },
        }


def _uid(data: Mapping[str, Any], key: str, required: bool) -> str:
    value = data.get(key, "")
    if not isinstance(value, str) or len(value) > MAX_UID:
        raise ViewError(f"{key}: a UID of at most {MAX_UID} characters")
    if value and not all(part.isdigit() for part in value.split(".")):
        raise ViewError(f"{key}: a UID is digits separated by dots")
    if required and not value:
        raise ViewError(f"{key}: required")
    return value


def _number(
    value: Any, key: str, low: float = -MAX_COORDINATE, high: float = MAX_COORDINATE
) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ViewError(f"{key}: a number")
    number = float(value)
    if not math.isfinite(number) or not low <= number <= high:
        raise ViewError(f"{key}: between {low:g} and {high:g}")
    return number


def _object(value: Any, key: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ViewError(f"{key}: an object")
    return value


def parse_view(data: Any) -> View:
    """A view from the JSON a viewer sends (:meth:`View.to_json`'s form); bad input raises
    :class:`ViewError` naming the field."""
    data = _object(data, "view")
    index = data.get("index", 0)
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index <= MAX_INDEX:
        raise ViewError(f"index: a whole number from 0 to {MAX_INDEX}")
    center: float | None = None
    width: float | None = None
    if data.get("window") is not None:
        window = _object(data["window"], "window")
        center = _number(window.get("center"), "window.center")
        width = _number(window.get("width"), "window.width", 1e-6)
    pan = _object(data.get("pan", {"x": 0, "y": 0}), "pan")
    annotation = None
    if data.get("measure") is not None:
        measure = _object(data["measure"], "measure")
        x1, y1, x2, y2 = (_number(measure.get(k), f"measure.{k}") for k in ("x1", "y1", "x2", "y2"))
        annotation = Annotation(x1, y1, x2, y2)
    return View(
        study=_uid(data, "study", True),
        series=_uid(data, "series", False),
        index=index,
        center=center,
        width=width,
        zoom=_number(data.get("zoom", 1), "zoom", MIN_ZOOM, MAX_ZOOM),
        pan_x=_number(pan.get("x", 0), "pan.x", -100, 100),
        pan_y=_number(pan.get("y", 0), "pan.y", -100, 100),
        annotation=annotation,
    )


@dataclass(frozen=True)
class RoomView:
    """The synchronised view of one meeting: who presents, what they show, and how many
    changes it has seen (a follower drops a change older than the one it shows)."""

    presenter_id: int | None = None
    view: View | None = None
    version: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "presenter": self.presenter_id,
            "view": None if self.view is None else self.view.to_json(),
            "version": self.version,
        }


def drive(room: RoomView, user_id: int, view: View) -> RoomView:
    """The presenter shows ``view``; anyone else is refused and nothing changes."""
    if room.presenter_id is None or room.presenter_id != user_id:
        raise NotPresenter(user_id)
    return replace(room, view=view, version=room.version + 1)


def hand_over(
    room: RoomView, by: int, to: int, *, runs_meeting: bool, present: frozenset[int]
) -> RoomView:
    """``by`` gives the presenter role to ``to``, a participant present. The presenter
    hands over; whoever runs the meeting hands over or takes the role at any time. The view
    stays as it is: the new presenter drives on from there."""
    if by != room.presenter_id and not runs_meeting:
        raise HandOverRefused("only the presenter or the facilitator hands over")
    if to not in present:
        raise HandOverRefused("the new presenter must be present")
    if to == room.presenter_id:
        return room
    return replace(room, presenter_id=to, version=room.version + 1)

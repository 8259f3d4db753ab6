"""The synchronised view's rules, without a server: only the presenter drives, the
presenter or the facilitator hands over to someone present, a latecomer gets the state as
it stands, and a view message is checked field by field."""

from __future__ import annotations

import pytest

from concilium.boards import view_sync
from concilium.boards.view_sync import HandOverRefused, NotPresenter, RoomView

STUDY = "1.2.826.0.1.3680043.8.498.1"
SERIES = "1.2.826.0.1.3680043.8.498.2"
PRESENTER, FACILITATOR, FOLLOWER = 1, 2, 3
PRESENT = frozenset({PRESENTER, FACILITATOR, FOLLOWER})


def view(index: int = 5, center: float = 40, width: float = 400) -> view_sync.View:
    return view_sync.parse_view(
        {
            "study": STUDY,
            "series": SERIES,
            "index": index,
            "window": {"center": center, "width": width},
            "zoom": 2,
            "pan": {"x": 0.1, "y": -0.05},
            "measure": {"x1": 10, "y1": 12, "x2": 40, "y2": 52},
        }
    )


def presenting() -> RoomView:
    return view_sync.hand_over(
        RoomView(), FACILITATOR, PRESENTER, runs_meeting=True, present=PRESENT
    )


def test_only_the_presenter_drives_the_view():
    room = view_sync.drive(presenting(), PRESENTER, view(5))
    assert room.view == view(5) and room.version == 2
    with pytest.raises(NotPresenter):
        view_sync.drive(room, FOLLOWER, view(9))
    with pytest.raises(NotPresenter):
        view_sync.drive(RoomView(), FACILITATOR, view(9))


def test_the_presenter_hands_over_and_the_new_one_drives_from_there():
    room = view_sync.drive(presenting(), PRESENTER, view(5))
    room = view_sync.hand_over(room, PRESENTER, FOLLOWER, runs_meeting=False, present=PRESENT)
    assert room.presenter_id == FOLLOWER and room.view == view(5)
    with pytest.raises(NotPresenter):
        view_sync.drive(room, PRESENTER, view(6))
    room = view_sync.drive(room, FOLLOWER, view(7, center=-600, width=1500))
    assert room.view is not None and room.view.index == 7 and room.view.center == -600


def test_the_facilitator_hands_over_at_any_time_others_never():
    room = presenting()
    with pytest.raises(HandOverRefused):
        view_sync.hand_over(room, FOLLOWER, FOLLOWER, runs_meeting=False, present=PRESENT)
    taken = view_sync.hand_over(room, FACILITATOR, FACILITATOR, runs_meeting=True, present=PRESENT)
    assert taken.presenter_id == FACILITATOR


def test_the_role_goes_only_to_someone_in_the_room():
    with pytest.raises(HandOverRefused):
        view_sync.hand_over(presenting(), PRESENTER, 99, runs_meeting=False, present=PRESENT)


def test_a_latecomer_gets_the_state_as_it_stands():
    room = view_sync.drive(presenting(), PRESENTER, view(8, center=400, width=1800))
    sent = room.to_json()
    assert sent["presenter"] == PRESENTER and sent["version"] == room.version
    assert sent["view"]["index"] == 8 and sent["view"]["window"] == {"center": 400, "width": 1800}
    assert view_sync.parse_view(sent["view"]) == room.view


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"study": ""}, "study"),
        ({"study": "1.2.x"}, "study"),
        ({"index": -1}, "index"),
        ({"index": True}, "index"),
        ({"zoom": 100}, "zoom"),
        ({"window": {"center": 40, "width": 0}}, "window.width"),
        ({"window": {"center": float("nan"), "width": 3}}, "window.center"),
        ({"pan": {"x": "left"}}, "pan.x"),
        ({"measure": {"x1": 1}}, "measure.y1"),
    ],
)
def test_a_bad_view_is_refused_naming_the_field(change, field):
    good = view().to_json()
    with pytest.raises(view_sync.ViewError, match=field):
        view_sync.parse_view({**good, **change})

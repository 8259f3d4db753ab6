"""The Janus API proxy: only the caller's own credentials, only what a browser needs."""

from __future__ import annotations

import pytest

from concilium.live.credentials import CredentialBook, RoomCredential
from concilium.live.sources import mountpoint_id
from concilium.live.web.janus_proxy import check_janus_request, credential_for
from concilium.platform import i18n
from concilium.platform.errors import Forbidden


@pytest.fixture(autouse=True)
def english():
    """The refusals are read in English here, whatever catalogues the process loaded."""
    with i18n.using_locale("en"):
        yield


def test_the_media_proxy_forwards_only_own_credentials_and_browser_requests():
    class Media:
        book = CredentialBook()
        now = 1000.0

        def clock(self) -> float:
            return self.now

    media = Media()
    mine = media.book.mint("7", 10_000_001, now=1000.0, ttl=60)
    assert credential_for(media, 7, mine.token) is mine
    for user, token in ((8, mine.token), (7, "guess"), (7, "")):
        with pytest.raises(Forbidden, match="no media credential"):
            credential_for(media, user, token)
    with pytest.raises(Forbidden):
        credential_for(None, 7, mine.token)  # no media server, no credential
    media.now = 1060.0
    with pytest.raises(Forbidden):
        credential_for(media, 7, mine.token)  # lapsed

    check_janus_request({"janus": "create"}, mine, may_publish=False)
    publisher = {"request": "join", "ptype": "publisher", "room": 10_000_001}
    subscriber = {"request": "join", "ptype": "subscriber", "room": 10_000_001}
    check_janus_request({"janus": "message", "body": publisher}, mine, may_publish=True)
    check_janus_request({"janus": "message", "body": subscriber}, mine, may_publish=False)
    with pytest.raises(Forbidden, match="receives media only"):
        check_janus_request({"janus": "message", "body": publisher}, mine, may_publish=False)
    refused = [
        {"janus": "message", "body": {"request": "list"}},
        {"janus": "message", "body": {"request": "listparticipants", "room": 10_000_001}},
        {"janus": "message", "body": {"request": "join", "room": 10_000_002}},
        {"janus": "message", "body": "join"},
    ]
    for body in refused:
        with pytest.raises(Forbidden):
            check_janus_request(body, mine, may_publish=True)


def test_the_janus_proxy_lets_a_browser_watch_only_its_own_sessions_sources() -> None:
    credential = RoomCredential("t" * 32, "5", 10_000_007, 0.0, 1e12)
    ours = frozenset({mountpoint_id(41)})

    def message(body: dict[str, object]) -> dict[str, object]:
        return {"janus": "message", "token": "t" * 32, "body": body}

    check_janus_request(
        message({"request": "watch", "id": mountpoint_id(41)}),
        credential,
        may_publish=False,
        mountpoints=ours,
    )
    check_janus_request(message({"request": "start"}), credential, may_publish=False)
    for body in (
        {"request": "watch", "id": mountpoint_id(99)},
        {"request": "switch", "id": mountpoint_id(99)},
        {"request": "watch"},
        {"request": "info", "id": mountpoint_id(41)},
        {"request": "list"},
    ):
        with pytest.raises(Forbidden):
            check_janus_request(message(body), credential, may_publish=False, mountpoints=ours)

"""Where the server may connect for a session: pure decisions, with a resolver of our own."""

from __future__ import annotations

import pytest

from concilium.live.endpoints import (
    check_stream_url,
    device_address,
    mask_credentials,
    networks_of,
)
from concilium.platform.errors import InvalidInput

PRIVATE = networks_of(["10.0.0.0/8", "192.168.0.0/16"])
NAMES = {
    "cam.or2.local": ["10.4.0.7"],
    "split.example": ["10.4.0.8", "203.0.113.9"],  # one address on the Internet
    "gone.example": [],
}


def resolver(host: str) -> list[str]:
    return NAMES.get(host, [host])


def test_a_name_counts_by_every_address_it_resolves_to_and_the_server_sends_to_one():
    assert device_address("cam.or2.local", PRIVATE, resolver=resolver) == "10.4.0.7"
    for host in ("split.example", "gone.example", "127.0.0.1", "::1", "", "a b"):
        with pytest.raises(InvalidInput):
            device_address(host, PRIVATE, resolver=resolver)
    assert check_stream_url("rtsp://cam.or2.local/live", PRIVATE, resolver=resolver)
    with pytest.raises(InvalidInput):
        check_stream_url("rtsp://split.example/live", PRIVATE, resolver=resolver)
    with pytest.raises(InvalidInput):
        check_stream_url("rtsp://10.4.0.7/live", networks_of([]), resolver=resolver)


def test_credentials_are_masked_whatever_they_hold():
    assert mask_credentials("rtsp://admin:s3cret@10.0.0.1/x") == "rtsp://admin:***@10.0.0.1/x"
    assert mask_credentials("rtsp://admin:p@ss@10.0.0.1/x") == "rtsp://admin:***@10.0.0.1/x"
    assert mask_credentials("rtsp://token@10.0.0.1/x") == "rtsp://***@10.0.0.1/x"
    assert mask_credentials("rtsp://10.0.0.1/x") == "rtsp://10.0.0.1/x"
    line = "Connection to rtsp://u:pw@10.0.0.1:554/live failed"
    assert mask_credentials(line) == "Connection to rtsp://u:***@10.0.0.1:554/live failed"

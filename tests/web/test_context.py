"""The address a request comes from: the peer's, or behind a trusted reverse proxy the
client's that the proxy forwards; never one the client writes itself."""

from __future__ import annotations

import ipaddress

from fastapi.testclient import TestClient
from sqlalchemy import select

from concilium.platform.tables import AuditEvent
from concilium.web.context import forwarded_client

PASSWORD = "correct-horse-42"  # as tests/conftest.py gives every user

PROXY = "10.0.0.1"
TRUSTED = (ipaddress.ip_network("10.0.0.0/29"), ipaddress.ip_network("::1"))


def test_the_peer_is_the_client_unless_it_is_a_trusted_proxy():
    assert forwarded_client("203.0.113.9", ["198.51.100.7"], TRUSTED) == "203.0.113.9"
    assert forwarded_client("203.0.113.9", ["198.51.100.7"], ()) == "203.0.113.9"
    assert forwarded_client(PROXY, ["198.51.100.7"], TRUSTED) == "198.51.100.7"
    assert forwarded_client("::1", ["2001:db8::5"], TRUSTED) == "2001:db8::5"
    assert forwarded_client(PROXY, [], TRUSTED) == PROXY


def test_the_right_most_untrusted_hop_is_the_client():
    # The client wrote the left part; each proxy appended its peer's address.
    spoofed = ["1.2.3.4, 198.51.100.7", "10.0.0.2"]
    assert forwarded_client(PROXY, spoofed, TRUSTED) == "198.51.100.7"
    assert forwarded_client(PROXY, ["10.0.0.3, 10.0.0.2"], TRUSTED) == "10.0.0.3"
    assert forwarded_client(PROXY, ["not-an-address, 10.0.0.2"], TRUSTED) == "10.0.0.2"
    assert forwarded_client(PROXY, ["garbage"], TRUSTED) == PROXY
    assert forwarded_client(f"::ffff:{PROXY}", ["198.51.100.7"], TRUSTED) == "198.51.100.7"


def sign_in_through(client, forwarded_for, username, password):
    client.headers["x-forwarded-for"] = forwarded_for
    page = client.get("/login")
    marker = 'name="csrf_token" value="'
    start = page.text.index(marker) + len(marker)
    csrf = page.text[start : page.text.index('"', start)]
    return client.post(
        "/login", data={"username": username, "password": password, "csrf_token": csrf}
    )


def test_behind_a_trusted_proxy_one_client_failing_does_not_lock_out_the_others(app, world):
    """Behind the reverse proxy every request comes from the proxy's address: failures of
    one client must not throttle everyone."""
    settings = world.runtime.settings
    settings.trusted_proxies = [PROXY]
    settings.__dict__.pop("trusted_proxy_networks", None)
    user = world.user("coord-proxy", (world.metz, "coordinator"))
    proxy = TestClient(
        app, base_url="https://testserver", follow_redirects=False, client=(PROXY, 44321)
    )
    attacker = "203.0.113.9"
    for _ in range(settings.login_ip_limit_per_minute):
        assert sign_in_through(proxy, attacker, "nobody", "wrong-password-1").status_code == 401
    assert sign_in_through(proxy, attacker, "nobody", "wrong-password-1").status_code == 429
    # Another person behind the same proxy signs in.
    assert sign_in_through(proxy, "198.51.100.7", user.username, PASSWORD).status_code == 303
    # Writing someone else's address in front changes nothing: the proxy appends the real one.
    spoofed = f"198.51.100.7, {attacker}"
    assert sign_in_through(proxy, spoofed, "nobody", "wrong-password-1").status_code == 429
    # Straight to the server, the header is not believed at all.
    direct = TestClient(
        app, base_url="https://testserver", follow_redirects=False, client=("192.0.2.50", 1)
    )
    for n in range(settings.login_ip_limit_per_minute):
        sign_in_through(direct, f"198.51.100.{n}", "nobody", "wrong-password-1")
    assert sign_in_through(direct, "198.51.100.99", "nobody", "wrong-password-1").status_code == 429
    with world.runtime.sessions() as db:
        addresses = set(db.execute(select(AuditEvent.ip)).scalars())
    assert {attacker, "198.51.100.7", "192.0.2.50"} <= addresses
    assert PROXY not in addresses and "198.51.100.99" not in addresses

"""The DICOM nodes page tells how the nodes reach this archive, tests a node by C-ECHO (PS3.4
Annex A) and shows each node's recent refusals."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from pynetdicom import AE, evt
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]
from sqlalchemy import select

from concilium.imaging.archive import Archive
from concilium.imaging.dimse import DicomServer, DimseSettings
from concilium.platform.db import transaction
from concilium.platform.tables import AuditEvent


@pytest.fixture
def admin(app, world):  # type: ignore[no-untyped-def]
    user = world.user("metz-admin", (world.metz, "admin"), with_totp=True)
    browser = world.client(app)
    csrf = world.sign_in(browser, user)
    return browser, csrf


def _register(browser, csrf: str, world, title: str, port: int, **extra: str) -> None:  # type: ignore[no-untyped-def]
    added = browser.post(
        "/admin/imaging/aes",
        data={
            "ae_title": title, "host": "127.0.0.1", "port": str(port),
            "site_id": str(world.metz.id), "allow_store": "1", "csrf_token": csrf, **extra,
        },
    )  # fmt: skip
    assert added.status_code == 303, added.text


@pytest.fixture
def scp() -> Iterator[int]:
    """A modality's Verification SCP, as pynetdicom serves it."""
    ae = AE(ae_title="MODALITY")
    ae.add_supported_context(Verification)
    server = ae.start_server(
        ("127.0.0.1", 0), block=False, evt_handlers=[(evt.EVT_C_ECHO, lambda event: 0x0000)]
    )
    yield server.server_address[1]
    server.shutdown()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_page_shows_how_nodes_reach_the_archive(admin, runtime):
    browser, _ = admin
    page = browser.get("/admin/imaging/aes")
    assert page.status_code == 200
    own = page.text[page.text.index('id="own-ae"') :].split("</dl>")[0]
    settings = runtime.settings
    assert f"<code>{settings.dicom_ae_title}</code>" in own
    assert f"<code>{settings.dicom_host}</code>" in own
    assert f"<code>{settings.dicom_port}</code>" in own


def test_c_echo_reaches_a_live_node_and_reports_a_dead_one(admin, world, runtime, scp):
    browser, csrf = admin
    _register(browser, csrf, world, "MTZ_US", scp)
    _register(browser, csrf, world, "MTZ_OFF", _closed_port())
    ok = browser.post("/admin/imaging/aes/MTZ_US/echo", data={"csrf_token": csrf})
    assert ok.status_code == 200
    result = ok.text[ok.text.index('id="echo-result"') :].split("</p>")[0]
    assert "C-ECHO to MTZ_US succeeded" in result
    dead = browser.post("/admin/imaging/aes/MTZ_OFF/echo", data={"csrf_token": csrf})
    result = dead.text[dead.text.index('id="echo-result"') :].split("</p>")[0]
    assert "C-ECHO to MTZ_OFF failed" in result and "no answer" in result
    with transaction(runtime.sessions) as db:
        echoes = db.execute(select(AuditEvent).where(AuditEvent.action == "dicom.echo"))
        assert sorted((e.object_id, e.outcome) for e in echoes.scalars()) == [
            ("MTZ_OFF", "failure"),
            ("MTZ_US", "success"),
        ]


def test_c_echo_is_for_administrators_of_the_node_site(app, world, admin, scp):
    browser, csrf = admin
    _register(browser, csrf, world, "MTZ_US", scp)
    briey = world.user("briey-admin", (world.briey, "admin"), with_totp=True)
    other = world.client(app)
    other_csrf = world.sign_in(other, briey)
    answer = other.post("/admin/imaging/aes/MTZ_US/echo", data={"csrf_token": other_csrf})
    assert answer.status_code == 404
    radio = world.user("metz-radio", (world.metz, "radiologist"), with_totp=True)
    third = world.client(app)
    third_csrf = world.sign_in(third, radio)
    assert (
        third.post("/admin/imaging/aes/MTZ_US/echo", data={"csrf_token": third_csrf}).status_code
        == 403
    )


def test_a_refused_association_appears_in_the_node_refusals(admin, world, runtime, tmp_path: Path):
    browser, csrf = admin
    _register(browser, csrf, world, "MTZ_CT", 104)
    archive = Archive(tmp_path / "images", runtime.sessions, runtime.bus, clock=runtime.now)
    server = DicomServer(archive, DimseSettings(port=0, network_timeout=10))
    server.start()
    try:
        ae = AE(ae_title="MTZ_CT")
        ae.add_requested_context(Verification)
        assoc = ae.associate(
            "127.0.0.1", server.port, ae_title="CONCILIUM", bind_address=("127.0.0.2", 0)
        )
        assert assoc.is_rejected
    finally:
        server.stop()
    page = browser.get("/admin/imaging/aes").text
    refusals = page[page.index('id="refusals-MTZ_CT"') :].split("</ul>")[0]
    assert "association refused" in refusals
    assert "calling from an address not registered for this node" in refusals
    assert "127.0.0.2" in refusals

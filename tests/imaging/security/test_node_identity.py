"""A DICOM node is more than the AE title it claims: an association using a registered
calling AE title from an address the node is not registered at, or over TLS with a
certificate of the trusted authority registered to another node, is rejected
(A-ASSOCIATE-RJ) and audited."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from pynetdicom import AE
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]
from sqlalchemy import select

from concilium.imaging import nodes
from concilium.imaging.archive import Archive
from concilium.imaging.dimse import DicomServer, DimseSettings, server_tls_context
from concilium.platform import audit
from concilium.platform.db import transaction
from concilium.platform.tables import AuditEvent

from ..certificates import Identity, authority, issue


def _register(runtime, title: str, site_id: int, **identity: str) -> None:  # type: ignore[no-untyped-def]
    with transaction(runtime.sessions) as db:
        nodes.add_remote_ae(
            db, audit.SYSTEM, ae_title=title, host="127.0.0.1", port=104, site_id=site_id,
            allow_store=True, allow_query=True, **identity,
        )  # fmt: skip


def _refusals(runtime) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    with transaction(runtime.sessions) as db:
        rows = db.execute(
            select(AuditEvent).where(AuditEvent.action == "dicom.associate")
        ).scalars()
        return [(e.object_id, e.outcome) for e in rows]


def _serve(runtime, tmp: Path, tls: ssl.SSLContext | None = None) -> DicomServer:  # type: ignore[no-untyped-def]
    archive = Archive(tmp / "images", runtime.sessions, runtime.bus, clock=runtime.now)
    server = DicomServer(archive, DimseSettings(port=0, network_timeout=10, tls=tls))
    server.start()
    return server


def _echo(
    port: int, title: str, *, source: str = "127.0.0.1", tls: ssl.SSLContext | None = None
) -> tuple[bool, bool]:
    """(established, rejected) of an association from ``source`` claiming ``title``."""
    ae = AE(ae_title=title)
    ae.add_requested_context(Verification)
    assoc = ae.associate(
        "127.0.0.1", port, ae_title="CONCILIUM", bind_address=(source, 0),
        tls_args=(tls, None) if tls is not None else None,
    )  # fmt: skip
    established, rejected = assoc.is_established, assoc.is_rejected
    if established:
        assert assoc.send_c_echo().Status == 0x0000
        assoc.release()
    return established, rejected


@pytest.fixture
def plain(world, runtime, tmp_path: Path) -> Iterator[int]:  # type: ignore[no-untyped-def]
    _register(runtime, "METZ_CT", world.metz.id)  # registered for 127.0.0.1
    server = _serve(runtime, tmp_path)
    yield server.port
    server.stop()


def test_a_registered_title_from_another_address_is_rejected_and_audited(plain, runtime):
    assert _echo(plain, "METZ_CT", source="127.0.0.2") == (False, True)
    assert _refusals(runtime) == [("METZ_CT", "refused")]
    assert _echo(plain, "METZ_CT", source="127.0.0.1") == (True, False)


def test_a_node_bound_to_a_network_calls_from_it(world, runtime, tmp_path):
    _register(runtime, "METZ_WS", world.metz.id, networks="127.0.0.0/30")
    server = _serve(runtime, tmp_path)
    try:
        assert _echo(server.port, "METZ_WS", source="127.0.0.2") == (True, False)
        assert _echo(server.port, "METZ_WS", source="127.0.0.5") == (False, True)
    finally:
        server.stop()


def _client(identity: Identity, ca: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca))
    context.check_hostname = False
    context.load_cert_chain(identity.certificate, identity.key)
    return context


def test_a_certificate_of_the_authority_registered_to_another_node_is_rejected(
    world, runtime, tmp_path
):
    ca = authority(tmp_path, "hospital-ca")
    archive_id = issue(tmp_path, "archive", ca)
    metz_ct = issue(tmp_path, "metz-ct", ca)
    briey_ct = issue(tmp_path, "briey-ct", ca)
    metz_ws = issue(tmp_path, "metz-ws", ca)
    certificate = x509.load_pem_x509_certificate(metz_ct.certificate.read_bytes())
    fingerprint = certificate.fingerprint(hashes.SHA256()).hex(":")
    _register(runtime, "METZ_CT", world.metz.id, certificate=fingerprint)
    _register(runtime, "BRIEY_CT", world.briey.id, certificate="CN=briey-ct")
    _register(runtime, "METZ_WS", world.metz.id)  # no certificate bound
    tls = server_tls_context(archive_id.certificate, archive_id.key, ca.pem)
    server = _serve(runtime, tmp_path, tls)
    try:
        port, pem = server.port, ca.pem
        # Briey's modality's certificate, claiming Metz's titles.
        assert _echo(port, "METZ_CT", tls=_client(briey_ct, pem)) == (False, True)
        assert _echo(port, "METZ_WS", tls=_client(briey_ct, pem)) == (False, True)
        # Each with its own certificate, or one registered to no node.
        assert _echo(port, "METZ_CT", tls=_client(metz_ct, pem)) == (True, False)
        assert _echo(port, "BRIEY_CT", tls=_client(briey_ct, pem)) == (True, False)
        assert _echo(port, "METZ_WS", tls=_client(metz_ws, pem)) == (True, False)
    finally:
        server.stop()
    assert _refusals(runtime) == [("METZ_CT", "refused"), ("METZ_WS", "refused")]


@pytest.mark.usefixtures("english")
def test_the_cli_binds_a_node_to_its_networks_and_certificate(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from concilium.cli import main

    monkeypatch.setenv("CONCILIUM_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("CONCILIUM_DATABASE_URL", f"sqlite:///{tmp_path / 'var' / 'c.db'}")
    runner = CliRunner()

    def run(*args: str, ok: bool = True) -> str:
        result = runner.invoke(main, list(args), catch_exceptions=False)
        assert (result.exit_code == 0) is ok, result.output
        return result.output

    run("migrate")
    run("site", "create", "--name", "CH Briey", "--finess", "540000049")
    add = ("dicom", "ae", "add", "--port", "104", "--site", "540000049")
    run(*add, "BRIEY_CT", "--host", "10.0.0.7")
    run(*add, "BRIEY_WS", "--host", "ws.briey.example", "--networks", "10.1.0.0/24")
    listed = run("dicom", "ae", "list")
    assert "BRIEY_CT\t10.0.0.7:104\tsite 1\tstore\ttcp\t10.0.0.7/32\t-" in listed
    assert "BRIEY_WS\tws.briey.example:104\tsite 1\tstore\ttcp\t10.1.0.0/24\t-" in listed
    bound = run("dicom", "ae", "identity", "BRIEY_CT", "--networks", "10.0.0.0/29 10.0.1.9",
                "--certificate", "CN=ct.briey")  # fmt: skip
    assert "calls from 10.0.0.0/29 10.0.1.9/32, presenting CN=ct.briey" in bound
    assert "not an address" in run(
        "dicom", "ae", "identity", "BRIEY_CT", "--networks", "briey", ok=False
    )


def test_the_admin_page_binds_a_node(app, world, runtime):
    admin = world.user("metz-admin", (world.metz, "admin"), with_totp=True)
    browser = world.client(app)
    csrf = world.sign_in(browser, admin)
    registered = browser.post(
        "/admin/imaging/aes",
        data={
            "ae_title": "METZ_MR", "host": "10.2.0.4", "port": "104",
            "site_id": str(world.metz.id), "allow_store": "1", "csrf_token": csrf,
        },
    )  # fmt: skip
    assert registered.status_code == 303, registered.text
    bound = browser.post(
        "/admin/imaging/aes/METZ_MR/identity",
        data={"networks": "10.2.0.0/24", "certificate": "AB" * 32, "csrf_token": csrf},
    )
    assert bound.status_code == 303, bound.text
    refused = browser.post(
        "/admin/imaging/aes/METZ_MR/identity",
        data={"networks": "not-a-network", "certificate": "", "csrf_token": csrf},
    )
    assert refused.status_code == 422
    with transaction(runtime.sessions) as db:
        node = nodes.remote_ae(db, "METZ_MR")
        assert node is not None
        assert (node.networks, node.certificate) == ("10.2.0.0/24", "sha256:" + "ab" * 32)
    page = browser.get("/admin/imaging/aes")
    assert "10.2.0.0/24" in page.text


def test_an_association_that_cannot_be_checked_is_rejected(plain, monkeypatch):
    import concilium.imaging.dimse as dimse

    def broken(*args: object) -> str | None:
        raise RuntimeError("registry unavailable")

    monkeypatch.setattr(dimse, "refusal_of", broken)
    assert _echo(plain, "METZ_CT") == (False, True)

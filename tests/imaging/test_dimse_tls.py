"""TLS of the archive's DICOM services (PS3.15 Annex B), with DCMTK's TLS-enabled tools as
the peers. The listener: a node with a certificate of the trusted authority echoes and
stores; plain TCP and a certificate of another authority are refused before any DICOM is
exchanged. The archive as a caller: C-MOVE results reach a destination registered with TLS
over TLS; a destination whose certificate is not trusted or names another host, that does
not trust the archive's certificate or does not speak TLS gets nothing, and the C-MOVE fails."""

from __future__ import annotations

import logging
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pydicom
import pytest
from sqlalchemy import func, select

from concilium.imaging import nodes
from concilium.imaging.archive import Archive
from concilium.imaging.dimse import ClientTls, DicomServer, DimseSettings, server_tls_context
from concilium.imaging.synthetic import SyntheticPatient, SyntheticStudy, generate_ct_series
from concilium.imaging.tables import ImagingInstance
from concilium.platform import audit
from concilium.platform.db import transaction
from serving import free_port

from .certificates import Authority, Identity, authority, dcmtk_tls, issue
from .dcmtk import require_dcmtk, run


@dataclass
class Pki:
    """The hospital's authority and the identities it issued, and a stranger's."""

    tmp: Path
    ca: Authority
    archive: Identity
    modality: Identity
    other_ca: Authority
    stranger: Identity


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    ca = authority(tmp_path, "hospital-ca")
    other_ca = authority(tmp_path, "other-ca")
    return Pki(
        tmp_path,
        ca,
        archive=issue(tmp_path, "archive", ca),
        modality=issue(tmp_path, "modality", ca),
        other_ca=other_ca,
        stranger=issue(tmp_path, "stranger", other_ca),
    )


@dataclass
class TlsRig:
    archive: Archive
    port: int
    pki: Pki
    listener_tls: bool

    @property
    def tmp(self) -> Path:
        return self.pki.tmp

    def as_modality(
        self, tool: str, *options: str, files: Sequence[Path] = ()
    ) -> subprocess.CompletedProcess[str]:
        """A DCMTK tool run by METZ_CT against the archive (over TLS if the listener is)."""
        tls = dcmtk_tls(self.pki.modality, self.pki.ca.pem) if self.listener_tls else []
        return run(tool, *tls, "-aet", "METZ_CT", "-aec", "CONCILIUM", *options,
                   "127.0.0.1", str(self.port), *files)  # fmt: skip


def _serve(world, runtime, pki: Pki, listener_tls: bool) -> Iterator[TlsRig]:
    require_dcmtk()
    with transaction(runtime.sessions) as db:
        nodes.add_remote_ae(
            db, audit.SYSTEM, ae_title="METZ_CT", host="127.0.0.1", port=104,
            site_id=world.metz.id, allow_store=True, allow_query=True,
        )  # fmt: skip
    archive = Archive(pki.tmp / "images", runtime.sessions, runtime.bus, clock=runtime.now)
    identity = pki.archive
    tls = server_tls_context(identity.certificate, identity.key, pki.ca.pem)
    # The archive calls TLS nodes with its own certificate, trusting the hospital's authority.
    client_tls = ClientTls(identity.certificate, identity.key, pki.ca.pem)
    settings = DimseSettings(
        port=0, network_timeout=10, tls=tls if listener_tls else None, client_tls=client_tls
    )
    server = DicomServer(archive, settings)
    server.start()
    yield TlsRig(archive, server.port, pki, listener_tls)
    server.stop()


@pytest.fixture
def tls_rig(world, runtime, pki: Pki) -> Iterator[TlsRig]:
    """The archive with a TLS listener."""
    yield from _serve(world, runtime, pki, listener_tls=True)


@pytest.fixture
def move_rig(world, runtime, pki: Pki) -> Iterator[TlsRig]:
    """The archive with a plain listener (DCMTK's movescu has no TLS), calling TLS nodes."""
    yield from _serve(world, runtime, pki, listener_tls=False)


def test_a_node_with_a_trusted_certificate_echoes_and_stores_over_tls(tls_rig, tmp_path):
    echo = tls_rig.as_modality("echoscu")
    assert echo.returncode == 0, echo.stdout + echo.stderr
    files = generate_ct_series(tmp_path / "ct", 2, study=SyntheticStudy(seed="tls"), rows=32,
                               columns=32)  # fmt: skip
    stored = tls_rig.as_modality("storescu", files=files)
    assert stored.returncode == 0, stored.stdout + stored.stderr
    with transaction(tls_rig.archive.sessions) as db:
        count = db.execute(select(func.count()).select_from(ImagingInstance)).scalar_one()
    assert count == 2


def test_plain_tcp_and_an_untrusted_certificate_are_refused(tls_rig):
    port = str(tls_rig.port)
    plain = run("echoscu", "-to", "5", "-aet", "METZ_CT", "-aec", "CONCILIUM", "127.0.0.1", port)
    assert plain.returncode != 0
    pki = tls_rig.pki
    stranger = run("echoscu", *dcmtk_tls(pki.stranger, pki.ca.pem), "-aet", "METZ_CT",
                   "-aec", "CONCILIUM", "127.0.0.1", port)  # fmt: skip
    assert stranger.returncode != 0
    # A client that does not trust the archive's authority does not go on either.
    untrusting = run("echoscu", *dcmtk_tls(pki.modality, pki.stranger.certificate),
                     "-aet", "METZ_CT", "-aec", "CONCILIUM", "127.0.0.1", port)  # fmt: skip
    assert untrusting.returncode != 0
    # The listener keeps serving trusted nodes after those refusals.
    again = tls_rig.as_modality("echoscu")
    assert again.returncode == 0, again.stdout + again.stderr


# --- the archive calling a node registered with TLS ----------------------------------------------


@dataclass
class StorageScp:
    """A DCMTK storescp, the destination of C-MOVE results."""

    title: str
    port: int
    received: Path
    process: subprocess.Popen[str]
    printed: str | None = None

    def stop(self) -> str:
        """Stop it (once); what it printed."""
        if self.printed is None:
            self.process.terminate()
            self.printed, _ = self.process.communicate(timeout=10)
        return self.printed


@pytest.fixture
def storage_scps(pki: Pki) -> Iterator[Callable[..., StorageScp]]:
    """Start storescp peers. With an ``issuer``, it speaks TLS only, with a certificate of
    ``issuer`` for ``names``, and requires a client certificate of ``clients`` (DCMTK's
    default; the hospital's authority unless told); without one, plain TCP."""
    started: list[StorageScp] = []

    def start(
        title: str,
        issuer: Authority | None,
        names: tuple[str, ...] = ("localhost", "127.0.0.1"),
        clients: Authority | None = None,
    ) -> StorageScp:
        port = free_port()
        received = pki.tmp / title
        received.mkdir()
        tls: list[str | Path] = []
        probe: list[str | Path] = []
        if issuer is not None:
            clients = clients or pki.ca
            tls = dcmtk_tls(issue(pki.tmp, title.lower(), issuer, names), clients.pem)
            probe = dcmtk_tls(issue(pki.tmp, f"{title.lower()}-probe", clients), issuer.pem)
        process = subprocess.Popen(
            ["storescp", "-v", *map(str, tls), "-aet", title, "-od", str(received), str(port)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        scp = StorageScp(title, port, received, process)
        started.append(scp)
        # Ready once it answers a C-ECHO (over TLS when it speaks TLS).
        deadline = time.monotonic() + 20
        while run("echoscu", *probe, "-to", "2", "-aet", "PROBE", "-aec", title,
                  "127.0.0.1", str(port)).returncode != 0:  # fmt: skip
            assert process.poll() is None, scp.stop()
            assert time.monotonic() < deadline, f"{title} did not answer C-ECHO"
            time.sleep(0.1)
        return scp

    yield start
    for scp in started:
        scp.stop()


def _register(rig: TlsRig, world, title: str, host: str, port: int) -> None:
    with transaction(rig.archive.sessions) as db:
        nodes.add_remote_ae(
            db, audit.SYSTEM, ae_title=title, host=host, port=port, site_id=world.metz.id,
            allow_store=False, allow_move_destination=True, tls=True,
        )  # fmt: skip


@pytest.fixture
def stored_study(move_rig) -> tuple[SyntheticStudy, list[Path]]:
    study = SyntheticStudy(seed="tls-move", patient=SyntheticPatient("SECRET^PATIENT", "IPP-TLS"))
    files = generate_ct_series(move_rig.tmp / "ct", 3, study=study, rows=32, columns=32)
    stored = move_rig.as_modality("storescu", files=files)
    assert stored.returncode == 0, stored.stdout + stored.stderr
    return study, files


def _move(rig: TlsRig, study: SyntheticStudy, destination: str) -> subprocess.CompletedProcess[str]:
    return rig.as_modality("movescu", "-v", "-S", "-aem", destination,
                           "-k", "QueryRetrieveLevel=STUDY",
                           "-k", f"StudyInstanceUID={study.study_instance_uid}")  # fmt: skip


def test_move_results_reach_a_tls_destination_over_tls(move_rig, world, stored_study, storage_scps):
    study, files = stored_study
    pki = move_rig.pki
    # Registered by address, with a certificate of the hospital's authority that names the
    # viewer only: the chain is what vouches for it (see ClientTls.context).
    viewer = storage_scps("METZ_VIEW", pki.ca, names=("viewer.metz.example",))
    _register(move_rig, world, "METZ_VIEW", "127.0.0.1", viewer.port)
    # Registered by name: the certificate must name it.
    station = storage_scps("METZ_WS", pki.ca, names=("localhost",))
    _register(move_rig, world, "METZ_WS", "localhost", station.port)
    expected = {pydicom.dcmread(f).SOPInstanceUID for f in files}
    for scp in (viewer, station):
        moved = _move(move_rig, study, scp.title)
        assert moved.returncode == 0, moved.stdout + moved.stderr
        assert "Received Final Move Response (Success)" in moved.stderr, moved.stderr
        # storescp speaks TLS only and requires a client certificate of the hospital's
        # authority: what arrived came over TLS, from the archive's own certificate.
        arrived = sorted(scp.received.iterdir())
        assert {pydicom.dcmread(p).SOPInstanceUID for p in arrived} == expected
        printed = scp.stop()
        assert printed.count("Received Store Request") == 3, printed


def test_a_destination_failing_the_handshake_fails_the_move(
    move_rig, world, stored_study, storage_scps, caplog
):
    study, _ = stored_study
    pki = move_rig.pki
    caplog.set_level(logging.ERROR, logger="concilium.imaging.dimse")
    # A certificate of another authority, on a node registered by address.
    rogue = storage_scps("METZ_ROGUE", pki.other_ca)
    _register(move_rig, world, "METZ_ROGUE", "127.0.0.1", rogue.port)
    # A certificate of the hospital's authority, for another name than the one registered.
    misnamed = storage_scps("METZ_OTHER", pki.ca, names=("pacs.example.org",))
    _register(move_rig, world, "METZ_OTHER", "localhost", misnamed.port)
    # A node that does not trust the archive's own certificate.
    picky = storage_scps("METZ_PICKY", pki.ca, clients=pki.other_ca)
    _register(move_rig, world, "METZ_PICKY", "127.0.0.1", picky.port)
    # No TLS at all: the archive does not fall back to plain TCP.
    plain = storage_scps("METZ_PLAIN", None)
    _register(move_rig, world, "METZ_PLAIN", "127.0.0.1", plain.port)

    for scp in (rogue, misnamed, picky, plain):
        moved = _move(move_rig, study, scp.title)
        # Failure A801 (PS3.4 C.4.2.1.5): pynetdicom's answer when the association with the
        # destination cannot be established; DCMTK names it so.
        assert "Final Move Response (Refused: MoveDestinationUnknown)" in moved.stderr, moved.stderr
        assert list(scp.received.iterdir()) == []
    failures = {r.ae_title: r.reason for r in caplog.records if hasattr(r, "ae_title")}
    assert failures.keys() == {"METZ_ROGUE", "METZ_OTHER", "METZ_PICKY", "METZ_PLAIN"}, caplog.text
    assert "unable to get local issuer certificate" in failures["METZ_ROGUE"]
    assert "Hostname mismatch" in failures["METZ_OTHER"]
    assert "ALERT_UNKNOWN_CA" in failures["METZ_PICKY"]
    # The log names nodes and TLS errors, never the patient.
    assert "SECRET" not in caplog.text and "IPP-TLS" not in caplog.text
    # The archive keeps answering.
    echo = move_rig.as_modality("echoscu")
    assert echo.returncode == 0, echo.stdout + echo.stderr


def test_a_client_context_verifies_tls_1_2_peers_and_names_unless_a_private_authority_vouches(
    pki,
):
    private = ClientTls(pki.archive.certificate, pki.archive.key, pki.ca.pem)
    by_address = private.context("10.1.2.3", "METZ_VIEW")
    assert by_address.verify_mode == ssl.CERT_REQUIRED
    assert by_address.minimum_version == ssl.TLSVersion.TLSv1_2
    assert not by_address.check_hostname
    assert private.context("pacs.metz.example").check_hostname
    # With the system's public authorities, an address must be named in the certificate.
    assert ClientTls().context("10.1.2.3").check_hostname
    with pytest.raises(ValueError, match="needs its key"):
        ClientTls(certificate=pki.archive.certificate)


def test_serve_calls_tls_nodes_with_the_listener_certificate_and_authority(settings, runtime, pki):
    import click

    from concilium.imaging.cli import start_dicom_server

    settings.dicom_tls_certificate = pki.archive.certificate
    settings.dicom_tls_key = pki.archive.key
    settings.dicom_tls_client_ca = pki.ca.pem
    server = start_dicom_server(settings, port=0)
    try:
        assert server.settings.client_tls == ClientTls(
            pki.archive.certificate, pki.archive.key, pki.ca.pem
        )
    finally:
        server.stop()
    # Without them, TLS nodes are checked against the system's authorities.
    settings.dicom_tls_certificate = settings.dicom_tls_key = settings.dicom_tls_client_ca = None
    server = start_dicom_server(settings, port=0)
    try:
        assert server.settings.client_tls == ClientTls()
    finally:
        server.stop()
    settings.dicom_tls_certificate, settings.dicom_tls_key = pki.archive.certificate, pki.tmp / "x"
    with pytest.raises(click.ClickException, match="TLS"):
        start_dicom_server(settings, port=0)

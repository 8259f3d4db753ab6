"""The DICOM listener over TLS (PS3.15 Annex B), with DCMTK's TLS-enabled tools as the peers:
a node with a certificate of the trusted authority echoes and stores; plain TCP and a
certificate of another authority are refused before any DICOM is exchanged."""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import func, select

from concilium.imaging import service
from concilium.imaging.dimse import DicomServer, DimseSettings, server_tls_context
from concilium.imaging.service import Archive
from concilium.imaging.synthetic import SyntheticStudy, generate_ct_series
from concilium.imaging.tables import ImagingInstance
from concilium.platform import audit
from concilium.platform.db import transaction

from .dcmtk import require_dcmtk, run


@dataclass
class Identity:
    key: Path
    certificate: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write(directory: Path, stem: str, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate):  # type: ignore[no-untyped-def]
    key_path, cert_path = directory / f"{stem}.key", directory / f"{stem}.crt"
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return Identity(key_path, cert_path)


Authority = tuple[Identity, ec.EllipticCurvePrivateKey, x509.Certificate]


def _authority(directory: Path, name: str) -> Authority:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(name))
        .issuer_name(_name(name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return _write(directory, name, key, cert), key, cert


def _issue(
    directory: Path, name: str, ca_key: ec.EllipticCurvePrivateKey, ca: x509.Certificate
) -> Identity:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(name))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return _write(directory, name, key, cert)


@dataclass
class TlsRig:
    archive: Archive
    port: int
    ca: Identity
    modality: Identity
    stranger: Identity


@pytest.fixture
def tls_rig(world, runtime, tmp_path: Path) -> Iterator[TlsRig]:
    require_dcmtk()
    ca, ca_key, ca_cert = _authority(tmp_path, "hospital-ca")
    server_identity = _issue(tmp_path, "archive", ca_key, ca_cert)
    modality = _issue(tmp_path, "modality", ca_key, ca_cert)
    _, other_key, other_cert = _authority(tmp_path, "other-ca")
    stranger = _issue(tmp_path, "stranger", other_key, other_cert)
    with transaction(runtime.sessions) as db:
        service.add_remote_ae(
            db, audit.SYSTEM, ae_title="METZ_CT", host="127.0.0.1", port=104,
            site_id=world.metz.id, allow_store=True, allow_query=True,
        )  # fmt: skip
    archive = Archive(tmp_path / "images", runtime.sessions, runtime.bus, clock=runtime.now)
    tls = server_tls_context(server_identity.certificate, server_identity.key, ca.certificate)
    server = DicomServer(archive, DimseSettings(port=0, network_timeout=10, tls=tls))
    server.start()
    yield TlsRig(archive, server.port, ca, modality, stranger)
    server.stop()


def _tls(identity: Identity, ca: Identity) -> list[str | Path]:
    return ["+tls", identity.key, identity.certificate, "+cf", ca.certificate]


def test_a_node_with_a_trusted_certificate_echoes_and_stores_over_tls(tls_rig, tmp_path):
    port = str(tls_rig.port)
    echo = run("echoscu", *_tls(tls_rig.modality, tls_rig.ca), "-aet", "METZ_CT",
               "-aec", "CONCILIUM", "127.0.0.1", port)  # fmt: skip
    assert echo.returncode == 0, echo.stdout + echo.stderr
    files = generate_ct_series(tmp_path / "ct", 2, study=SyntheticStudy(seed="tls"), rows=32,
                               columns=32)  # fmt: skip
    stored = run("storescu", *_tls(tls_rig.modality, tls_rig.ca), "-aet", "METZ_CT",
                 "-aec", "CONCILIUM", "127.0.0.1", port, *files)  # fmt: skip
    assert stored.returncode == 0, stored.stdout + stored.stderr
    with transaction(tls_rig.archive.sessions) as db:
        count = db.execute(select(func.count()).select_from(ImagingInstance)).scalar_one()
    assert count == 2


def test_plain_tcp_and_an_untrusted_certificate_are_refused(tls_rig):
    port = str(tls_rig.port)
    plain = run("echoscu", "-to", "5", "-aet", "METZ_CT", "-aec", "CONCILIUM", "127.0.0.1", port)
    assert plain.returncode != 0
    stranger = run("echoscu", *_tls(tls_rig.stranger, tls_rig.ca), "-aet", "METZ_CT",
                   "-aec", "CONCILIUM", "127.0.0.1", port)  # fmt: skip
    assert stranger.returncode != 0
    # A client that does not trust the archive's authority does not go on either.
    untrusting = run("echoscu", *_tls(tls_rig.modality, tls_rig.stranger), "-aet", "METZ_CT",
                     "-aec", "CONCILIUM", "127.0.0.1", port)  # fmt: skip
    assert untrusting.returncode != 0
    # The listener keeps serving trusted nodes after those refusals.
    again = run("echoscu", *_tls(tls_rig.modality, tls_rig.ca), "-aet", "METZ_CT",
                "-aec", "CONCILIUM", "127.0.0.1", port)  # fmt: skip
    assert again.returncode == 0, again.stdout + again.stderr

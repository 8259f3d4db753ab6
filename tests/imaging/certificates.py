"""Certificates for TLS tests: a private authority and the identities it issues, as PEM files
that both Python's ssl module and DCMTK's ``+tls KEY CERT +cf CA`` options read."""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass
class Identity:
    """A private key and its certificate, as PEM files."""

    key: Path
    certificate: Path


@dataclass
class Authority:
    """A certification authority: its own identity files, and what it signs with."""

    identity: Identity
    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate

    @property
    def pem(self) -> Path:
        """Its certificate file, the trust anchor peers are given."""
        return self.identity.certificate


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write(
    directory: Path, stem: str, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate
) -> Identity:
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


def authority(directory: Path, name: str) -> Authority:
    """A self-signed authority valid for a day."""
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
    return Authority(_write(directory, name, key, cert), key, cert)


def issue(
    directory: Path,
    name: str,
    by: Authority,
    names: tuple[str, ...] = ("localhost", "127.0.0.1"),
) -> Identity:
    """A certificate of ``by`` for ``names`` (host names or IP addresses), valid for a day."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    alternative: list[x509.GeneralName] = []
    for entry in names:
        try:
            alternative.append(x509.IPAddress(ipaddress.ip_address(entry)))
        except ValueError:
            alternative.append(x509.DNSName(entry))
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(name))
        .issuer_name(by.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(alternative), critical=False)
        .sign(by.key, hashes.SHA256())
    )
    return _write(directory, name, key, cert)


def dcmtk_tls(identity: Identity, anchor: Path) -> list[str | Path]:
    """DCMTK's options to speak TLS as ``identity``, trusting the certificate in ``anchor``."""
    return ["+tls", identity.key, identity.certificate, "+cf", anchor]

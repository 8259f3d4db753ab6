"""The DICOM nodes the archive knows: registered remote application entities (PS3.8 7).

A node is registered for a site with what it may do (store, query and retrieve, receive by
C-MOVE) and whether it is called over TLS (PS3.15 Annex B). A calling AE title is only a
name anyone can claim: a node is also bound to its network identity, the addresses or
networks it may call from and, over TLS, the client certificate it must present
(`refusal_of`); an association claiming its title from elsewhere is rejected. It then acts
for its site:
`peer_principal` makes it a principal the policy judges as a technologist there, narrowed by
scopes to what its registration allows, so a node never reaches patient records.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import socket
from collections.abc import Iterable, Sequence
from typing import Any

from cryptography import x509
from sqlalchemy import select
from sqlalchemy.orm import Session

from concilium.imaging.actions import ImagingAction
from concilium.imaging.tables import RemoteApplicationEntity
from concilium.platform import audit
from concilium.platform.errors import Conflict, InvalidInput, NotFound
from concilium.platform.i18n import N_, _
from concilium.platform.policy import Principal

__all__ = [
    "DEVICE_ROLE",
    "DEVICE_USER_ID",
    "add_remote_ae",
    "certificate_fingerprint",
    "list_remote_aes",
    "peer_actor",
    "peer_principal",
    "refusal_of",
    "remote_ae",
    "remove_remote_ae",
    "set_remote_ae_identity",
    "set_remote_ae_tls",
]

DEVICE_ROLE = "technologist"
"""Role a registered DICOM node holds at its site: it sends and fetches images for the
technologists there. Its registration flags become scopes (as for an API token) that narrow
it to the imaging actions it was allowed, so a node never reaches patient records."""


DEVICE_USER_ID = 0
"""User id of node principals; no account has it, so no share to a person ever matches."""
_AE_TITLE = re.compile(r"^[\x20-\x5b\x5d-\x7e]{1,16}$")


def peer_principal(ae: RemoteApplicationEntity, *, as_destination: bool = False) -> Principal:
    """The principal a registered node acts as (requester, or C-MOVE destination)."""
    read_scope = ImagingAction.STUDY_READ.rule.scope
    write_scope = ImagingAction.STUDY_STORE.rule.scope
    scopes: set[str] = set()
    if as_destination:
        if ae.allow_move_destination:
            scopes.add(read_scope)
    else:
        if ae.allow_store:
            scopes.add(write_scope)
        if ae.allow_query:
            scopes.add(read_scope)
    return Principal(
        user_id=DEVICE_USER_ID,
        username=f"ae:{ae.ae_title}",
        roles={ae.site_id: frozenset({DEVICE_ROLE})},
        scopes=frozenset(scopes),
    )


def peer_actor(ae: RemoteApplicationEntity, ip: str = "") -> audit.Actor:
    """How a node appears in the audit trail."""
    return audit.Actor(None, f"ae:{ae.ae_title}", role=DEVICE_ROLE, site_id=ae.site_id, ip=ip)


def _check_ae_title(title: str) -> str:
    # PS3.5 6.2 AE: 16 characters of the default repertoire, no backslash or control codes;
    # leading and trailing spaces are insignificant.
    stripped = title.strip()
    if not stripped or not _AE_TITLE.fullmatch(stripped):
        raise InvalidInput(_("AE title: 1-16 printable characters, no backslash"))
    return stripped


Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_FINGERPRINT = re.compile(r"^(?:sha256:)?((?:[0-9a-f]{2}:?){31}[0-9a-f]{2})$")


def check_networks(text: str) -> str:
    """Addresses and networks (CIDR) separated by spaces or commas, normalised; "" is
    accepted (the addresses of the node's host)."""
    found: list[str] = []
    for item in text.replace(",", " ").split():
        try:
            found.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError as exc:
            raise InvalidInput(
                _("networks: %(item)r is not an address or a network (CIDR)") % {"item": item}
            ) from exc
    result = " ".join(dict.fromkeys(found))
    if len(result) > 1000:
        raise InvalidInput(_("networks: at most 1000 characters"))
    return result


def check_certificate(text: str) -> str:
    """A client certificate's SHA-256 fingerprint (hex, colons allowed) or subject
    (RFC 4514, e.g. ``CN=ct1.metz``), normalised; "" binds no certificate."""
    value = text.strip()
    if not value:
        return ""
    fingerprint = _FINGERPRINT.fullmatch(value.lower())
    if fingerprint:
        return "sha256:" + fingerprint.group(1).replace(":", "")
    if "=" not in value or len(value) > 400:
        raise InvalidInput(_("certificate: a SHA-256 fingerprint or a subject such as CN=name"))
    return value


def _host_networks(host: str) -> list[Network]:
    try:
        return [ipaddress.ip_network(host)]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except OSError:
        return []
    return [ipaddress.ip_network(str(info[4][0]).split("%")[0]) for info in infos]


def _networks(ae: RemoteApplicationEntity) -> list[Network]:
    if ae.networks.strip():
        return [ipaddress.ip_network(n, strict=False) for n in ae.networks.split()]
    return _host_networks(ae.host)


def _calls_from(ae: RemoteApplicationEntity, address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("%")[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip.version == n.version and ip in n for n in _networks(ae))


def certificate_fingerprint(der: bytes) -> str:
    """The SHA-256 fingerprint of a certificate, as `check_certificate` keeps it."""
    return "sha256:" + hashlib.sha256(der).hexdigest()


def _presents(registered: str, der: bytes) -> bool:
    if not registered:
        return False
    if registered.startswith("sha256:"):
        return registered == certificate_fingerprint(der)
    subject = x509.load_der_x509_certificate(der).subject
    return _same_subject(registered, subject)


def _same_subject(registered: str, subject: x509.Name) -> bool:
    def normal(text: str) -> str:
        return ",".join(part.strip().casefold() for part in text.split(","))

    return normal(registered) == normal(subject.rfc4514_string())


def refusal_of(
    ae: RemoteApplicationEntity,
    address: str,
    certificate: bytes | None,
    others: Iterable[RemoteApplicationEntity],
) -> str | None:
    """Why an association claiming ``ae``'s title is not ``ae`` (None: it is).

    It must come from one of its networks; over TLS, present the certificate registered with
    it, or, when none is, a certificate that is not registered with another node (the TLS
    layer has already checked that the certificate chains to the trusted authority). A node
    with a registered certificate never calls over plain TCP.
    """
    if not _calls_from(ae, address):
        return N_("calling from an address not registered for this node")
    if ae.certificate:
        if certificate is None:
            return N_("no client certificate, this node calls over TLS")
        if not _presents(ae.certificate, certificate):
            return N_("client certificate not the one registered for this node")
    elif certificate is not None:
        for other in others:
            if other.id != ae.id and _presents(other.certificate, certificate):
                return N_("client certificate registered to another node")
    return None


def add_remote_ae(
    session: Session,
    actor: audit.Actor,
    *,
    ae_title: str,
    host: str,
    port: int,
    site_id: int,
    allow_store: bool = True,
    allow_query: bool = False,
    allow_move_destination: bool = False,
    description: str = "",
    tls: bool = False,
    networks: str | None = None,
    certificate: str = "",
) -> RemoteApplicationEntity:
    """Register a node of a site; it then acts for that site (see `peer_principal`), when
    it calls from ``networks`` (default: its host's address; for a host name, the addresses
    it resolves to) and, over TLS, presents ``certificate`` (see `refusal_of`)."""
    title = _check_ae_title(ae_title)
    if not host.strip() or len(host) > 255:
        raise InvalidInput(_("host: a name or an address"))
    if networks is None:
        networks = host.strip() if _host_networks_literal(host.strip()) else ""
    allowed = check_networks(networks)
    bound = check_certificate(certificate)
    if not 1 <= port <= 65535:
        raise InvalidInput(_("port: 1-65535"))
    if remote_ae(session, title) is not None:
        raise Conflict(_("AE title %(title)s is already registered") % {"title": title})
    ae = RemoteApplicationEntity(
        ae_title=title,
        host=host.strip(),
        port=port,
        site_id=site_id,
        description=description.strip()[:200],
        allow_store=allow_store,
        allow_query=allow_query,
        allow_move_destination=allow_move_destination,
        tls=tls,
        networks=allowed,
        certificate=bound,
    )
    session.add(ae)
    session.flush()
    _audit_change(
        session,
        actor,
        title,
        site_id,
        {
            "host": ae.host,
            "port": port,
            "store": allow_store,
            "query": allow_query,
            "move_destination": allow_move_destination,
            "tls": tls,
            "networks": allowed,
            "certificate": bound,
        },
    )
    return ae


def _host_networks_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def set_remote_ae_identity(
    session: Session,
    actor: audit.Actor,
    ae_title: str,
    *,
    networks: str | None = None,
    certificate: str | None = None,
) -> RemoteApplicationEntity:
    """Bind a registered node to where it may call from and the certificate it presents
    (audited); None leaves either as it is."""
    ae = remote_ae(session, ae_title)
    if ae is None:
        raise NotFound(_("no AE title %(title)r") % {"title": ae_title})
    if networks is not None:
        ae.networks = check_networks(networks)
    if certificate is not None:
        ae.certificate = check_certificate(certificate)
    _audit_change(
        session,
        actor,
        ae.ae_title,
        ae.site_id,
        {"networks": ae.networks, "certificate": ae.certificate},
    )
    return ae


def set_remote_ae_tls(
    session: Session, actor: audit.Actor, ae_title: str, tls: bool
) -> RemoteApplicationEntity:
    """Call a registered node over TLS from now on, or over plain TCP again (audited)."""
    ae = remote_ae(session, ae_title)
    if ae is None:
        raise NotFound(_("no AE title %(title)r") % {"title": ae_title})
    ae.tls = tls
    _audit_change(session, actor, ae.ae_title, ae.site_id, {"tls": tls})
    return ae


def remote_ae(session: Session, ae_title: str) -> RemoteApplicationEntity | None:
    """The registered node with this AE title (trailing spaces are insignificant)."""
    return session.execute(
        select(RemoteApplicationEntity).where(RemoteApplicationEntity.ae_title == ae_title.strip())
    ).scalar_one_or_none()


def list_remote_aes(
    session: Session, site_ids: frozenset[int] | None = None
) -> Sequence[RemoteApplicationEntity]:
    statement = select(RemoteApplicationEntity).order_by(RemoteApplicationEntity.ae_title)
    if site_ids is not None:
        statement = statement.where(RemoteApplicationEntity.site_id.in_(site_ids))
    return session.execute(statement).scalars().all()


def remove_remote_ae(session: Session, actor: audit.Actor, ae_title: str) -> None:
    ae = remote_ae(session, ae_title)
    if ae is None:
        raise NotFound(_("no AE title %(title)r") % {"title": ae_title})
    session.delete(ae)
    _audit_change(session, actor, ae.ae_title, ae.site_id, {"removed": True})


def _audit_change(
    session: Session, actor: audit.Actor, ae_title: str, site_id: int, detail: dict[str, Any]
) -> None:
    """One audit entry for a change to a registered node (`ImagingAction.AE_MANAGE`)."""
    audit.record(
        session,
        actor,
        str(ImagingAction.AE_MANAGE),
        "success",
        object_kind="ae",
        object_id=ae_title,
        site_id=site_id,
        detail=detail,
    )

"""DIMSE adapter: the archive's DICOM network services, on pynetdicom's event hooks.

Services (PS3.4): Verification (A, C-ECHO), Storage SCP (B, C-STORE), Query/Retrieve SCP
(C, C-FIND / C-MOVE / C-GET, Patient Root and Study Root models), and the SOP classes other
services add (`DimseExtension`: C-FIND, N-CREATE, N-SET). Each handler reads the
request, calls the archive's domain functions and translates the result or the exception into
the DIMSE status of PS3.4 / PS3.7 Annex C (`concilium.imaging.status`). Who may do what is
decided by the policy from the calling node's registration; associations from unregistered AE
titles are rejected (PS3.8 7.1.1.9, "calling AE title not recognized") unless configured
otherwise. The associations the archive opens itself (C-MOVE sub-operations) go over TLS to
the nodes registered with it (PS3.15 Annex B).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import ssl
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import (
    JPEG2000,
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
)
from pynetdicom import AE, AllStoragePresentationContexts, _config, evt
from pynetdicom.events import Event

from concilium.imaging.access import NotAuthorized
from concilium.imaging.archive import Archive
from concilium.imaging.dimse_services import CallingNode, DimseExtension, FindRequest, NResult
from concilium.imaging.ingest import Sender, ingest_instance
from concilium.imaging.matching import InvalidQuery
from concilium.imaging.nodes import (
    list_remote_aes,
    peer_actor,
    peer_principal,
    refusal_of,
    remote_ae,
)
from concilium.imaging.parsing import FailureReason, failure_reason
from concilium.imaging.query import find
from concilium.imaging.retrieve import RetrievableInstance, locate
from concilium.imaging.status import (
    C_STORE_STATUS,
    CANCEL,
    IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS,
    NOT_AUTHORIZED,
    PENDING,
    SUCCESS,
    UNABLE_TO_PROCESS,
)
from concilium.imaging.tables import RemoteApplicationEntity
from concilium.platform import audit
from concilium.platform.db import transaction

__all__ = [
    "ACCEPTED_TRANSFER_SYNTAXES",
    "ClientTls",
    "DicomServer",
    "DimseSettings",
    "server_tls_context",
]

log = logging.getLogger(__name__)


def _quiet_toolkit() -> None:
    """Keep pynetdicom's logger out of the log below warnings: at INFO and DEBUG it writes
    every DIMSE message it sends or receives, identifiers included (patients' names, birth
    dates), and it does so from handlers it binds to every association, which are not bound
    at all here. The archive logs what it does itself, without patient data."""
    _config.LOG_HANDLER_LEVEL = "none"
    logging.getLogger("pynetdicom").setLevel(logging.WARNING)


_quiet_toolkit()

ACCEPTED_TRANSFER_SYNTAXES = [
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    JPEG2000Lossless,
    JPEG2000,
    RLELossless,
]
"""Transfer syntaxes accepted for storage (PS3.5 Annex A); instances are kept as received."""

# SOP Classes of PS3.4 Annex A (Verification) and C.6 (Query/Retrieve information models).
Verification = UID("1.2.840.10008.1.1")
PatientRootQueryRetrieveInformationModelFind = UID("1.2.840.10008.5.1.4.1.2.1.1")
PatientRootQueryRetrieveInformationModelMove = UID("1.2.840.10008.5.1.4.1.2.1.2")
PatientRootQueryRetrieveInformationModelGet = UID("1.2.840.10008.5.1.4.1.2.1.3")
StudyRootQueryRetrieveInformationModelFind = UID("1.2.840.10008.5.1.4.1.2.2.1")
StudyRootQueryRetrieveInformationModelMove = UID("1.2.840.10008.5.1.4.1.2.2.2")
StudyRootQueryRetrieveInformationModelGet = UID("1.2.840.10008.5.1.4.1.2.2.3")

_QUERY_MODELS = (
    PatientRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelFind,
)
_RETRIEVE_MODELS = (
    PatientRootQueryRetrieveInformationModelMove,
    StudyRootQueryRetrieveInformationModelMove,
    PatientRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelGet,
)
_UNCOMPRESSED = [ExplicitVRLittleEndian, ImplicitVRLittleEndian]


@dataclass(frozen=True)
class ClientTls:
    """What the archive presents and trusts when it calls a node registered with TLS
    (PS3.15 Annex B, BCP 195: TLS 1.2 or later, the peer's certificate verified)."""

    certificate: Path | None = None
    """Our certificate (chain, PEM), shown to a destination that asks for one."""
    key: Path | None = None
    """Its private key (PEM)."""
    ca: Path | None = None
    """Authorities (PEM) a destination's certificate must chain to; None: the system's."""

    def __post_init__(self) -> None:
        if (self.certificate is None) != (self.key is None):
            raise ValueError("a client certificate needs its key, and a key its certificate")

    def context(self, host: str, ae_title: str = "") -> ssl.SSLContext:
        """A client context for a call to ``host``, naming ``ae_title`` if the handshake fails.

        Raises `OSError` or `ssl.SSLError` when a file cannot be loaded.
        """
        context = _DestinationContext(ssl.PROTOCOL_TLS_CLIENT)
        context.destination = ae_title
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        if self.ca is not None:
            context.load_verify_locations(self.ca)
        else:
            context.load_default_certs(ssl.Purpose.SERVER_AUTH)
        if self.certificate is not None and self.key is not None:
            context.load_cert_chain(self.certificate, self.key)
        # The chain is always verified (CERT_REQUIRED). The name is not checked for a node
        # registered by its IP address when the installation names its own authority:
        # certificates of modalities and PACS are issued to a host or device name and seldom
        # list the address a hospital network reaches them at, and a certificate of that
        # private authority already binds the peer. With the system's public authorities,
        # whose certificates anyone can obtain for some name, the address must be in it.
        context.check_hostname = not (self.ca is not None and _is_address(host))
        return context


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class _DestinationSocket(ssl.SSLSocket):
    """A client TLS socket that logs why TLS failed, naming the destination.

    A node refusing the archive's certificate says so in an alert that, in TLS 1.3, arrives
    on the first read after the client's side of the handshake: reads are watched too.
    """

    def do_handshake(self, block: bool = False) -> None:
        try:
            super().do_handshake(block)
        except OSError as exc:
            self._log_failure(exc)
            raise

    def recv(self, buflen: int = 1024, flags: int = 0) -> bytes:
        try:
            return super().recv(buflen, flags)
        except ssl.SSLError as exc:
            self._log_failure(exc)
            raise

    def _log_failure(self, exc: OSError) -> None:
        destination = getattr(self.context, "destination", "")
        reason = (
            exc.verify_message
            if isinstance(exc, ssl.SSLCertVerificationError)
            else getattr(exc, "reason", None) or str(exc)
        )
        # No PHI here: the node's title and address and the TLS error only.
        log.error(
            "TLS with %s (%s) failed: %s",
            destination or "a DICOM node",
            self.server_hostname,
            reason,
            extra={"ae_title": destination, "host": self.server_hostname, "reason": reason},
        )


class _DestinationContext(ssl.SSLContext):
    """The client context of one call, which names its destination for the log."""

    sslsocket_class = _DestinationSocket
    destination: str = ""


@dataclass(frozen=True)
class DimseSettings:
    """How the DICOM server presents itself and whom it lets in."""

    ae_title: str = "CONCILIUM"
    """Our AE title (the Called AE title peers use)."""
    host: str = "127.0.0.1"
    """Listen address."""
    port: int = 11112
    """Listen port (0: let the system choose, see `DicomServer.port`)."""
    allow_unknown_ae: bool = False
    """Accept unregistered calling AE titles (they can only C-ECHO)."""
    network_timeout: float = 60.0
    """Seconds of silence after which an association is aborted (PS3.8 9.1.5 ARTIM)."""
    tls: ssl.SSLContext | None = None
    """TLS for every association (see `server_tls_context`); None for plain TCP."""
    client_tls: ClientTls = ClientTls()
    """TLS of the associations the archive opens to nodes registered with TLS."""

    def __post_init__(self) -> None:
        if not 1 <= len(self.ae_title.strip()) <= 16:
            raise ValueError(f"AE title must have 1-16 characters: {self.ae_title!r}")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port out of range: {self.port}")


def server_tls_context(
    certificate: Path, key: Path, client_ca: Path | None = None
) -> ssl.SSLContext:
    """TLS of the DICOM listener (PS3.15 Annex B, BCP 195: TLS 1.2 or later).

    With ``client_ca``, a node must present a certificate signed by one of those
    authorities before any DICOM is exchanged (the calling AE title is then checked as
    always).
    """
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(certificate, key)
    if client_ca is not None:
        context.load_verify_locations(client_ca)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


@dataclass(frozen=True)
class _Peer:
    ae: RemoteApplicationEntity
    ip: str

    @property
    def actor(self) -> audit.Actor:
        return peer_actor(self.ae, self.ip)


class DicomServer:
    """The archive's DIMSE services, served from a background thread."""

    def __init__(
        self,
        archive: Archive,
        settings: DimseSettings,
        clock: Callable[[], dt.datetime] | None = None,
        extensions: Sequence[DimseExtension] = (),
    ) -> None:
        self.archive = archive
        self.settings = settings
        self.extensions = {UID(e.sop_class_uid): e for e in extensions}
        """SOP classes other services serve here, by UID."""
        if len(self.extensions) != len(extensions):
            raise ValueError("two DIMSE services for one SOP class")
        self._clock = clock or archive.clock
        self._server: Any = None
        self._ae = self._make_ae()
        # Unreadable certificate files are a configuration error: refuse to start, rather
        # than fail the first C-MOVE to a TLS node.
        settings.client_tls.context("localhost")

    # -- lifecycle -------------------------------------------------------------------------

    def _make_ae(self) -> AE:
        ae = AE(ae_title=self.settings.ae_title)
        ae.network_timeout = self.settings.network_timeout
        ae.maximum_pdu_size = 0
        ae.add_supported_context(Verification, _UNCOMPRESSED)
        for context in AllStoragePresentationContexts:
            assert context.abstract_syntax is not None
            # Both roles, so that a C-GET requestor may take the storage SCP role (PS3.7 D.3.3.4).
            ae.add_supported_context(
                context.abstract_syntax, ACCEPTED_TRANSFER_SYNTAXES, scu_role=True, scp_role=True
            )
        for model in (*_QUERY_MODELS, *_RETRIEVE_MODELS):
            ae.add_supported_context(model, _UNCOMPRESSED)
        for uid, extension in self.extensions.items():
            ae.add_supported_context(uid, list(extension.transfer_syntaxes))
        return ae

    def start(self) -> None:
        """Listen in a background thread; returns once the port is bound."""
        if self._server is not None:
            return
        self.archive.open_for_writing()
        handlers: list[Any] = [
            (evt.EVT_REQUESTED, self._on_requested),
            (evt.EVT_SOP_EXTENDED, self._on_sop_extended),
            (evt.EVT_C_ECHO, self._on_echo),
            (evt.EVT_C_STORE, self._on_store),
            (evt.EVT_C_FIND, self._on_find),
            (evt.EVT_C_MOVE, self._on_move),
            (evt.EVT_C_GET, self._on_get),
            (evt.EVT_N_CREATE, self._on_n_create),
            (evt.EVT_N_SET, self._on_n_set),
        ]
        self._server = self._ae.start_server(
            (self.settings.host, self.settings.port),
            block=False,
            evt_handlers=handlers,
            ssl_context=self.settings.tls,
        )
        log.info(
            "DICOM server listening",
            extra={"ae_title": self.settings.ae_title, "tls": self.settings.tls is not None},
        )

    @property
    def port(self) -> int:
        """The bound port (useful when started with port 0)."""
        if self._server is None:
            raise RuntimeError("server not started")
        return int(self._server.server_address[1])

    def stop(self) -> None:
        """Stop listening and end the open associations."""
        if self._server is not None:
            self._server.shutdown()
            self._server = None
        self.archive.close()

    def __enter__(self) -> DicomServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- helpers ---------------------------------------------------------------------------

    def _peer(self, event: Event) -> _Peer | None:
        title = _calling_ae_title(event)
        with transaction(self.archive.sessions) as session:
            ae = remote_ae(session, title)
            if ae is not None:
                session.expunge(ae)
        return _Peer(ae, str(event.assoc.requestor.address)) if ae is not None else None

    # -- association -----------------------------------------------------------------------

    def _on_requested(self, event: Event) -> None:
        """PS3.8 9.3.3.2: reject (permanent, service user, calling AE title not recognized)
        an association whose calling AE title is not registered, or that does not come from
        the registered node's network identity (its addresses, its TLS certificate, see
        `nodes.refusal_of`); the latter is audited.

        The registry is read for every association, so that a node registered, bound or
        removed a moment ago is treated accordingly.
        """
        try:
            self._admit(event)
        except Exception:
            # pynetdicom would log a failing hook and go on with the association: an
            # association that could not be checked is not let in.
            log.exception("association check failed; rejected")
            if not event.assoc.is_rejected:
                _reject(event)

    def _admit(self, event: Event) -> None:
        title = _calling_ae_title(event)
        address = str(event.assoc.requestor.address)
        certificate = _peer_certificate(event)
        with transaction(self.archive.sessions) as session:
            ae = remote_ae(session, title)
            if ae is None:
                if self.settings.allow_unknown_ae:
                    return
                log.warning(
                    "association from an unregistered AE title rejected",
                    extra={"calling_ae": title, "address": address},
                )
                _reject(event)
                return
            reason = refusal_of(ae, address, certificate, list_remote_aes(session))
            if reason is None:
                return
            audit.record(
                session,
                audit.Actor(None, f"ae:{ae.ae_title}", site_id=ae.site_id, ip=address),
                "dicom.associate",
                "refused",
                object_kind="ae",
                object_id=ae.ae_title,
                site_id=ae.site_id,
                detail={"reason": reason, "address": address},
            )
        log.warning(
            "association claiming a registered AE title rejected: %s",
            reason,
            extra={"calling_ae": title, "address": address},
        )
        _reject(event)

    def _on_sop_extended(self, event: Event) -> dict[UID, bytes]:
        """PS3.4 C.5.1.1: of the C-FIND options a requestor asks for, fuzzy semantic matching
        of person names is accepted; relational queries, combined date-time matching and the
        others are not (0 in their byte)."""
        accepted: dict[UID, bytes] = {}
        # pynetdicom sets the event's attributes from the request: typed here, not there.
        requested: dict[str, bytes] = vars(event).get("app_info", {})
        for sop_class, asked in requested.items():
            extension = self.extensions.get(UID(sop_class))
            if extension is not None and extension.extended_negotiation is not None:
                accepted[UID(sop_class)] = extension.extended_negotiation(asked)
            elif sop_class in _QUERY_MODELS:
                reply = bytearray(len(asked))
                if _asks_fuzzy_matching(asked):
                    reply[_FUZZY_SEMANTIC_MATCHING] = 1
                accepted[UID(sop_class)] = bytes(reply)
        return accepted

    def _on_echo(self, event: Event) -> int:
        """PS3.4 A.4: the Verification SCP answers success."""
        return SUCCESS

    # -- storage ---------------------------------------------------------------------------

    def _on_store(self, event: Event) -> int:
        """PS3.4 B.2.2: store the data set exactly as received, then acknowledge."""
        peer = self._peer(event)
        if peer is None:
            return NOT_AUTHORIZED
        try:
            # The bytes as they came off the wire, behind File Meta Information built from
            # the presentation context: no decode, no re-encode (PS3.10 7.1).
            part10 = event.encoded_dataset(include_meta=True)
            sender = Sender(
                principal=peer_principal(peer.ae),
                actor=peer.actor,
                site_id=peer.ae.site_id,
                ae_title=peer.ae.ae_title,
            )
            result = ingest_instance(self.archive, sender, [part10])
        except Exception as exc:
            reason = failure_reason(exc)
            if reason is FailureReason.PROCESSING_FAILURE:
                log.exception("C-STORE failed")
            else:
                log.warning("C-STORE refused: %s", exc)
            return C_STORE_STATUS[reason]
        log.debug("C-STORE %s %s", result.outcome, result.sop_instance_uid)
        return SUCCESS

    # -- query -----------------------------------------------------------------------------

    def _on_find(self, event: Event) -> Iterator[tuple[int, Dataset | None]]:
        """PS3.4 C.4.1.3: one pending response per match, then success."""
        peer = self._peer(event)
        if peer is None:
            yield NOT_AUTHORIZED, None
            return
        extension = self.extensions.get(UID(str(event.request.AffectedSOPClassUID)))
        if extension is not None:
            yield from self._extension_find(event, peer, extension)
            return
        try:
            identifier = _identifier(event)
            with transaction(self.archive.sessions) as session:
                matches = find(
                    session,
                    peer_principal(peer.ae),
                    peer.actor,
                    identifier,
                    now=self._clock(),
                    retrieve_ae_title=self.settings.ae_title,
                    fuzzy=_negotiated_fuzzy_matching(event),
                )
        except Exception as exc:
            yield _query_failure(exc), None
            return
        for match in matches:
            if event.is_cancelled:
                yield CANCEL, None
                return
            yield PENDING, match
        yield SUCCESS, None

    # -- services of other services ---------------------------------------------------------

    def _caller(self, event: Event, peer: _Peer) -> CallingNode:
        ae = peer.ae
        return CallingNode(
            ae_title=ae.ae_title,
            site_id=ae.site_id,
            address=peer.ip,
            allow_store=ae.allow_store,
            allow_query=ae.allow_query,
            principal=peer_principal(ae),
            actor=peer.actor,
        )

    def _extension_find(
        self, event: Event, peer: _Peer, extension: DimseExtension
    ) -> Iterator[tuple[int, Dataset | None]]:
        if extension.find is None:
            yield UNABLE_TO_PROCESS, None
            return
        model = UID(str(event.request.AffectedSOPClassUID))
        agreed = event.assoc.acceptor.sop_class_extended.get(model) or b""
        try:
            request = FindRequest(self._caller(event, peer), event.identifier, bytes(agreed))
            matches = iter(extension.find(request))
            for match in matches:
                if event.is_cancelled:
                    yield CANCEL, None
                    return
                yield PENDING, match
        except Exception as exc:
            yield _query_failure(exc), None
            return
        yield SUCCESS, None

    def _on_n_create(self, event: Event) -> tuple[Dataset | int, Dataset | None]:
        """An N-CREATE of an extension's SOP class (PS3.7 10.1.5)."""
        request: Any = event.request
        return self._on_n(event, "n_create", request.AffectedSOPClassUID)

    def _on_n_set(self, event: Event) -> tuple[Dataset | int, Dataset | None]:
        """An N-SET of an extension's SOP class (PS3.7 10.1.3)."""
        request: Any = event.request
        return self._on_n(event, "n_set", request.RequestedSOPClassUID)

    def _on_n(
        self, event: Event, operation: str, sop_class: object
    ) -> tuple[Dataset | int, Dataset | None]:
        extension = self.extensions.get(UID(str(sop_class)))
        handler = getattr(extension, operation, None) if extension is not None else None
        if handler is None:
            return _NO_SUCH_SOP_CLASS, None
        peer = self._peer(event)
        if peer is None:
            return NOT_AUTHORIZED, None
        caller = self._caller(event, peer)
        request: Any = event.request
        try:
            if operation == "n_create":
                instance = str(request.AffectedSOPInstanceUID or "")
                attributes = event.attribute_list
            else:
                instance = str(request.RequestedSOPInstanceUID or "")
                attributes = event.modification_list
            result: NResult = handler(caller, instance, attributes)
        except Exception:
            log.exception("%s failed", operation.replace("_", "-").upper())
            return _PROCESSING_FAILURE, None
        return _n_response(result)

    # -- retrieve --------------------------------------------------------------------------

    def _locate(
        self, event: Event, peer: _Peer, destination: RemoteApplicationEntity | None
    ) -> list[RetrievableInstance]:
        with transaction(self.archive.sessions) as session:
            return locate(
                self.archive,
                session,
                peer_principal(peer.ae),
                peer.actor,
                _identifier(event),
                now=self._clock(),
                destination=(
                    peer_principal(destination, as_destination=True)
                    if destination is not None
                    else None
                ),
                destination_title=destination.ae_title if destination is not None else "",
            )

    def _association(
        self, destination: RemoteApplicationEntity, instances: list[RetrievableInstance]
    ) -> tuple[str, int, dict[str, Any]]:
        """Where and how pynetdicom opens the storage association of a C-MOVE.

        A node registered with TLS is called over TLS only (PS3.15 Annex B), never over plain
        TCP as a fallback. If the handshake fails (certificate not trusted, peer not speaking
        TLS), the association is not established and pynetdicom answers the C-MOVE with
        failure A801; `_DestinationSocket` logs the reason.
        """
        options: dict[str, Any] = {"contexts": _contexts_for(instances)}
        if destination.tls:
            host = destination.host
            context = self.settings.client_tls.context(host, destination.ae_title)
            options["tls_args"] = (context, host)
        return destination.host, destination.port, options

    def _on_move(self, event: Event) -> Iterator[Any]:
        """PS3.4 C.4.2.3: C-STORE sub-operations to a registered destination."""
        peer = self._peer(event)
        raw = event.move_destination
        title = (raw.decode("ascii", "replace") if isinstance(raw, bytes) else str(raw)).strip()
        with transaction(self.archive.sessions) as session:
            destination = remote_ae(session, title)
            if destination is not None:
                session.expunge(destination)
        if peer is None or destination is None:
            # Unknown destination: PS3.4 C.4.2.1.5 A801.
            yield None, None
            return
        try:
            instances = self._locate(event, peer, destination)
        except NotAuthorized:
            # Not a destination for these images: "Move Destination unknown" for them.
            yield None, None
            return
        except Exception as exc:
            yield self._association(destination, [])
            yield 1
            yield _query_failure(exc), None
            return
        yield self._association(destination, instances)
        yield from self._send(event, instances)

    def _on_get(self, event: Event) -> Iterator[Any]:
        """PS3.4 C.4.3.3: C-STORE sub-operations on the requestor's own association."""
        peer = self._peer(event)
        if peer is None:
            yield 1
            yield NOT_AUTHORIZED, None
            return
        try:
            instances = self._locate(event, peer, None)
        except Exception as exc:
            yield 1
            yield _query_failure(exc), None
            return
        yield from self._send(event, instances)

    def _send(self, event: Event, instances: list[RetrievableInstance]) -> Iterator[Any]:
        yield len(instances)
        for instance in instances:
            if event.is_cancelled:
                yield CANCEL, None
                return
            try:
                dataset = dcmread(instance.path)
            except Exception:
                log.exception("stored instance unreadable: %s", instance.sop_instance_uid)
                failed = Dataset()
                failed.SOPInstanceUID = instance.sop_instance_uid
                yield UNABLE_TO_PROCESS, failed
                continue
            yield PENDING, dataset


_STUDY_ROOT_MODELS = frozenset(
    {
        StudyRootQueryRetrieveInformationModelFind,
        StudyRootQueryRetrieveInformationModelMove,
        StudyRootQueryRetrieveInformationModelGet,
    }
)


def _identifier(event: Event) -> Dataset:
    """The request's identifier, refused when its level is not one of its model's."""
    identifier: Dataset = event.identifier
    level = str(identifier.get("QueryRetrieveLevel", "") or "").strip().upper()
    model = str(event.request.AffectedSOPClassUID)
    if model in _STUDY_ROOT_MODELS and level == "PATIENT":
        # PS3.4 C.6.2.1: the Study Root model has no patient level.
        raise InvalidQuery("the Study Root model has no PATIENT level")
    return identifier


_FUZZY_SEMANTIC_MATCHING = 2
"""Offset of the "fuzzy semantic matching of person names" byte in the C-FIND service class
application information (PS3.4 Table C.5-1, byte 3)."""


def _asks_fuzzy_matching(application_information: bytes) -> bool:
    info = application_information
    return len(info) > _FUZZY_SEMANTIC_MATCHING and info[_FUZZY_SEMANTIC_MATCHING] == 1


def _negotiated_fuzzy_matching(event: Event) -> bool:
    """Whether this association agreed on fuzzy semantic matching of person names for the
    request's model (PS3.4 C.5.1.1); without it, names match as C.2.2.2.1 says."""
    model = UID(str(event.request.AffectedSOPClassUID))
    agreed = event.assoc.acceptor.sop_class_extended.get(model)
    return agreed is not None and _asks_fuzzy_matching(agreed)


def _reject(event: Event) -> None:
    """A-ASSOCIATE-RJ: permanent, service user, calling AE title not recognized."""
    event.assoc.acse.send_reject(0x01, 0x01, 0x03)
    event.assoc.kill()


def _peer_certificate(event: Event) -> bytes | None:
    """The client certificate (DER) of a TLS association, None over plain TCP."""
    connection = getattr(event.assoc.dul.socket, "socket", None)
    if isinstance(connection, ssl.SSLSocket):
        return connection.getpeercert(binary_form=True)
    return None


def _calling_ae_title(event: Event) -> str:
    # Before negotiation completes only the A-ASSOCIATE-RQ primitive holds the title.
    primitive = event.assoc.requestor.primitive
    title = primitive.calling_ae_title if primitive is not None else event.assoc.requestor.ae_title
    return str(title).strip()


def _contexts_for(instances: list[RetrievableInstance]) -> list[Any]:
    """Presentation contexts for a C-MOVE's storage association: each stored syntax."""
    from pynetdicom.presentation import build_context

    syntaxes: dict[str, set[str]] = {}
    for instance in instances:
        syntaxes.setdefault(instance.sop_class_uid, set(_UNCOMPRESSED)).add(
            instance.transfer_syntax_uid
        )
    if not syntaxes:
        return [build_context(Verification)]
    # PS3.8 9.3.2.2: at most 128 presentation contexts in one association request.
    return [build_context(sop, sorted(ts)) for sop, ts in list(syntaxes.items())[:128]]


_NO_SUCH_SOP_CLASS = 0x0118
_PROCESSING_FAILURE = 0x0110


def _n_response(result: NResult) -> tuple[Dataset | int, Dataset | None]:
    """The status (with its comment and offending elements) and attribute list of an
    N-CREATE or N-SET response, as pynetdicom sends them."""
    status = Dataset()
    status.Status = result.status
    if result.error_comment:
        status.ErrorComment = result.error_comment[:64]
    if result.attribute_identifiers:
        status.AttributeIdentifierList = list(result.attribute_identifiers)
    if result.error_id is not None:
        status.ErrorID = result.error_id
    attributes = result.attributes
    if result.affected_sop_instance_uid:
        attributes = attributes if attributes is not None else Dataset()
        attributes.AffectedSOPInstanceUID = result.affected_sop_instance_uid
    return status, attributes


def _query_failure(exc: Exception) -> int:
    if isinstance(exc, NotAuthorized):
        return NOT_AUTHORIZED
    if isinstance(exc, InvalidQuery):
        return IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS
    log.exception("query failed", exc_info=exc)
    return UNABLE_TO_PROCESS

"""Verification of a registered node (PS3.4 Annex A): the archive calls it and sends a
C-ECHO, as an administrator checks that the node is reachable and answers.

A node registered with TLS is called over TLS only (PS3.15 Annex B), as for C-MOVE.
"""

from __future__ import annotations

import ssl
import time
from dataclasses import dataclass

from pynetdicom import AE
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

from concilium.imaging.dimse import ClientTls
from concilium.imaging.tables import RemoteApplicationEntity
from concilium.platform.i18n import N_

__all__ = ["EchoResult", "echo"]


@dataclass(frozen=True)
class EchoResult:
    ae_title: str
    ok: bool
    reason: str = ""
    """Why it failed, a catalogue message (empty on success)."""
    milliseconds: int = 0


def echo(
    node: RemoteApplicationEntity,
    own_ae_title: str,
    client_tls: ClientTls | None = None,
    timeout: float = 5.0,
) -> EchoResult:
    """Associate with ``node`` as ``own_ae_title`` and send one C-ECHO."""
    ae = AE(ae_title=own_ae_title)
    ae.acse_timeout = timeout
    ae.dimse_timeout = timeout
    ae.network_timeout = timeout
    ae.connection_timeout = timeout
    ae.add_requested_context(Verification)
    options: dict[str, object] = {}
    if node.tls:
        try:
            context = (client_tls or ClientTls()).context(node.host, node.ae_title)
        except (OSError, ssl.SSLError):
            return EchoResult(node.ae_title, False, N_("the archive's TLS files cannot be read"))
        options["tls_args"] = (context, node.host)
    started = time.monotonic()
    assoc = ae.associate(node.host, node.port, ae_title=node.ae_title, **options)  # type: ignore[arg-type]
    try:
        if assoc.is_rejected:
            return EchoResult(node.ae_title, False, N_("the node rejected the association"))
        if not assoc.is_established:
            # Connection refused or timed out: pynetdicom reports it as an abort.
            return EchoResult(node.ae_title, False, N_("no answer at the node's address"))
        status = assoc.send_c_echo()
        code = status.get("Status") if status else None
        if code != 0x0000:
            return EchoResult(node.ae_title, False, N_("the node did not answer the C-ECHO"))
        elapsed = round((time.monotonic() - started) * 1000)
        return EchoResult(node.ae_title, True, milliseconds=elapsed)
    finally:
        if assoc.is_established:
            assoc.release()
        ae.shutdown()

"""The sources a live session may show, as named for its director: a camera, a capture
device, a shared screen, an IP camera or a DICOM cine loop.

An IP camera's URL must be one the server may call (:mod:`concilium.live.endpoints`); its
credentials are kept sealed, opened only for its own session. A cine loop is added only by
someone it was authorised for (:func:`concilium.live.sources.authorize_cine`). Feeding the
sources the server sends into the room is :mod:`concilium.live.sources`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from concilium.live import endpoints
from concilium.live.endpoints import Network
from concilium.live.invitations import RESOURCE_KIND
from concilium.live.tables import LiveSession, LiveSource
from concilium.platform import audit
from concilium.platform.encryption import SecretBox
from concilium.platform.errors import Forbidden, InvalidInput
from concilium.platform.i18n import _

__all__ = [
    "SOURCE_KINDS",
    "CineGrant",
    "add_source",
    "seal_clear_credentials",
    "sealed_url_context",
    "source_url",
    "sources",
]

SOURCE_KINDS = ("camera", "capture", "screen", "ip_camera", "dicom_cine")


@dataclass(frozen=True)
class CineGrant:
    """Proof that a cine loop was authorised for the person adding it
    (:func:`concilium.live.sources.authorize_cine`): they may read its study, and its
    patient is the session's or has consented to teaching."""

    reference: str
    user_id: int


def add_source(
    db: Session,
    actor: audit.Actor,
    live: LiveSession,
    *,
    name: str,
    kind: str,
    reference: str,
    networks: Sequence[Network] = (),
    box: SecretBox | None = None,
    cine: CineGrant | None = None,
) -> LiveSource:
    """Name a picture the director may put on program.

    An IP camera's URL must be one the server may call (:func:`endpoints.check_stream_url`
    with the installation's device ``networks``); its credentials are sealed with ``box``
    and only the masked URL is kept readable. A cine loop needs the ``cine`` grant of the
    acting person for this very reference.
    """
    name = name.strip()
    if not 1 <= len(name) <= 100:
        raise InvalidInput(_("A source name has 1 to 100 characters."))
    if kind not in SOURCE_KINDS:
        raise InvalidInput(_("Choose a kind of source from the list."))
    reference = reference.strip()
    sealed: str | None = None
    if kind == "ip_camera":
        url = endpoints.check_stream_url(reference, networks)
        reference = endpoints.mask_credentials(url)
        if reference != url:
            if box is None:
                raise InvalidInput(_("Camera credentials cannot be kept on this server."))
            sealed = box.seal(url, sealed_url_context(live.id))
    if kind == "dicom_cine":
        if not re.match(r"^[0-9.]+/[0-9.]+(/[0-9.]+)?$", reference):
            raise InvalidInput(
                _("A DICOM cine loop is named 'study UID/series UID[/instance UID]'.")
            )
        if cine is None or cine.reference != reference or cine.user_id != actor.user_id:
            raise Forbidden(_("A cine loop is shown only by someone it was authorised for."))
    source = LiveSource(
        session_id=live.id,
        name=name,
        kind=kind,
        reference=reference[:500],
        sealed_url=sealed,
        added_by_id=actor.user_id,
    )
    db.add(source)
    db.flush()
    audit.record(
        db,
        actor,
        "live.source.add",
        "success",
        object_kind=RESOURCE_KIND,
        object_id=live.id,
        detail={"source": source.id, "kind": kind},
    )
    return source


def sealed_url_context(session_id: int) -> str:
    """What a camera URL's sealing is bound to: it opens for its own session only."""
    return f"live-source:{session_id}"


def source_url(source: LiveSource, box: SecretBox | None) -> str:
    """The URL the server calls for an IP camera, credentials included."""
    if source.sealed_url is None:
        return source.reference
    if box is None:
        raise InvalidInput(_("Camera credentials cannot be opened on this server."))
    return box.open(source.sealed_url, sealed_url_context(source.session_id))


def seal_clear_credentials(db: Session, box: SecretBox) -> int:
    """Seal the credentials of camera URLs written in clear (before they were sealed);
    how many were."""
    sealed = 0
    clear = select(LiveSource).where(
        LiveSource.kind == "ip_camera", LiveSource.sealed_url.is_(None)
    )
    for source in db.execute(clear).scalars():
        masked = endpoints.mask_credentials(source.reference)
        if masked != source.reference:
            source.sealed_url = box.seal(source.reference, sealed_url_context(source.session_id))
            source.reference = masked
            sealed += 1
    return sealed


def sources(db: Session, live: LiveSession) -> list[LiveSource]:
    return list(
        db.execute(
            select(LiveSource).where(LiveSource.session_id == live.id).order_by(LiveSource.id)
        ).scalars()
    )

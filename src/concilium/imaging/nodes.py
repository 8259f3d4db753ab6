"""The DICOM nodes the archive knows: registered remote application entities (PS3.8 7).

A node is registered for a site with what it may do (store, query and retrieve, receive by
C-MOVE) and whether it is called over TLS (PS3.15 Annex B). It then acts for its site:
`peer_principal` makes it a principal the policy judges as a technologist there, narrowed by
scopes to what its registration allows, so a node never reaches patient records.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from concilium.imaging.actions import ImagingAction
from concilium.imaging.tables import RemoteApplicationEntity
from concilium.platform import audit
from concilium.platform.errors import Conflict, InvalidInput, NotFound
from concilium.platform.policy import Principal

__all__ = [
    "DEVICE_ROLE",
    "DEVICE_USER_ID",
    "add_remote_ae",
    "list_remote_aes",
    "peer_actor",
    "peer_principal",
    "remote_ae",
    "remove_remote_ae",
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
        raise InvalidInput("AE title: 1-16 printable characters, no backslash")
    return stripped


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
) -> RemoteApplicationEntity:
    """Register a node of a site; it then acts for that site (see `peer_principal`)."""
    title = _check_ae_title(ae_title)
    if not host.strip() or len(host) > 255:
        raise InvalidInput("host: a name or an address")
    if not 1 <= port <= 65535:
        raise InvalidInput("port: 1-65535")
    if remote_ae(session, title) is not None:
        raise Conflict(f"AE title {title} is already registered")
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
    )
    session.add(ae)
    session.flush()
    audit.record(
        session,
        actor,
        str(ImagingAction.AE_MANAGE),
        "success",
        object_kind="ae",
        object_id=title,
        site_id=site_id,
        detail={
            "host": ae.host,
            "port": port,
            "store": allow_store,
            "query": allow_query,
            "move_destination": allow_move_destination,
            "tls": tls,
        },
    )
    return ae


def set_remote_ae_tls(
    session: Session, actor: audit.Actor, ae_title: str, tls: bool
) -> RemoteApplicationEntity:
    """Call a registered node over TLS from now on, or over plain TCP again (audited)."""
    ae = remote_ae(session, ae_title)
    if ae is None:
        raise NotFound(f"no AE title {ae_title!r}")
    ae.tls = tls
    audit.record(
        session,
        actor,
        str(ImagingAction.AE_MANAGE),
        "success",
        object_kind="ae",
        object_id=ae.ae_title,
        site_id=ae.site_id,
        detail={"tls": tls},
    )
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
        raise NotFound(f"no AE title {ae_title!r}")
    session.delete(ae)
    audit.record(
        session,
        actor,
        str(ImagingAction.AE_MANAGE),
        "success",
        object_kind="ae",
        object_id=ae.ae_title,
        site_id=ae.site_id,
        detail={"removed": True},
    )

"""Per-site rules giving the Scheduled Station AE Title of a step whose order names none
(IPC-9 and ORC-18 empty): a requested procedure code or a modality → a modality's AE title.
``order_store.station_for`` applies them."""

from __future__ import annotations

import re
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from concilium.platform import audit
from concilium.platform.errors import Conflict, InvalidInput, NotFound
from concilium.platform.i18n import _
from concilium.reading.tables import StationRule

__all__ = ["add_station_rule", "list_station_rules", "remove_station_rule"]

_AE_TITLE = re.compile(r"^[\x20-\x5b\x5d-\x7e]{1,16}$")
_CODE = re.compile(r"^[\x21-\x7e]{0,64}$")


def add_station_rule(
    session: Session,
    actor: audit.Actor,
    *,
    site_id: int,
    station_ae_title: str,
    modality: str = "",
    procedure_code: str = "",
) -> StationRule:
    """Steps of the site with this modality and/or procedure code go to this station."""
    title = station_ae_title.strip()
    if not _AE_TITLE.fullmatch(title):
        raise InvalidInput(_("AE title: 1-16 printable characters, no backslash"))
    modality, procedure_code = modality.strip().upper(), procedure_code.strip()
    if not modality and not procedure_code:
        raise InvalidInput(_("a station rule needs a modality or a procedure code"))
    if len(modality) > 16 or not _CODE.fullmatch(modality) or not _CODE.fullmatch(procedure_code):
        raise InvalidInput(_("modality: up to 16 characters; procedure code: up to 64"))
    existing = session.execute(
        select(StationRule).where(
            StationRule.site_id == site_id,
            StationRule.modality == modality,
            StationRule.procedure_code == procedure_code,
        )
    ).scalar_one_or_none()
    if existing is not None:
        raise Conflict(_("a rule for this modality and procedure code already exists"))
    rule = StationRule(
        site_id=site_id,
        modality=modality,
        procedure_code=procedure_code,
        station_ae_title=title,
    )
    session.add(rule)
    session.flush()
    audit.record(
        session,
        actor,
        "hl7.station_rule.create",
        "success",
        object_kind="station_rule",
        object_id=rule.id,
        site_id=site_id,
        detail={"modality": modality, "procedure": procedure_code, "station": title},
    )
    return rule


def list_station_rules(
    session: Session, site_ids: frozenset[int] | None = None
) -> Sequence[StationRule]:
    """The rules of ``site_ids`` (None: every site)."""
    query = select(StationRule).order_by(
        StationRule.site_id, StationRule.modality, StationRule.procedure_code
    )
    if site_ids is not None:
        query = query.where(StationRule.site_id.in_(site_ids))
    return session.execute(query).scalars().all()


def remove_station_rule(
    session: Session, actor: audit.Actor, site_id: int, modality: str, procedure_code: str
) -> None:
    """Forget the site's rule for this modality and procedure code."""
    rule = session.execute(
        select(StationRule).where(
            StationRule.site_id == site_id,
            StationRule.modality == modality.strip().upper(),
            StationRule.procedure_code == procedure_code.strip(),
        )
    ).scalar_one_or_none()
    if rule is None:
        raise NotFound(_("no such station rule"))
    audit.record(
        session,
        actor,
        "hl7.station_rule.delete",
        "success",
        object_kind="station_rule",
        object_id=rule.id,
        site_id=site_id,
    )
    session.delete(rule)
    session.flush()

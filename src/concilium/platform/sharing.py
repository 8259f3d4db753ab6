"""Explicit shares (to a site or a person, with expiry) and break-the-glass emergency access."""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from datetime import datetime, timedelta

from sqlalchemy import bindparam, or_, select
from sqlalchemy.orm import Session

from concilium.platform import audit
from concilium.platform.errors import InvalidInput, NotFound
from concilium.platform.i18n import _
from concilium.platform.tables import Alert, EmergencyGrant, PatientIdentifier, Share

log = logging.getLogger(__name__)

MIN_JUSTIFICATION = 20


def create_share(
    session: Session,
    actor: audit.Actor,
    *,
    resource_kind: str,
    resource_id: str,
    to_site_id: int | None,
    to_user_id: int | None,
    expires_at: datetime,
    now: datetime,
    reason: str = "",
    patient_id: int | None = None,
    from_site_id: int | None = None,
    granter_site_ids: Collection[int] = (),
) -> Share:
    """Share a resource with one site or one person until ``expires_at`` (audited).

    ``from_site_id`` is the site the share comes from: a share of a patient grants what that
    site holds of them and nothing of another site's (`active_share_targets`). A share
    widens the access of others, never its granter's: nobody shares with themselves, nor
    with the site it comes from or any site where they hold a role (``granter_site_ids``).
    """
    if (to_site_id is None) == (to_user_id is None):
        raise InvalidInput(_("share with exactly one site or one person"))
    if to_user_id is not None and to_user_id == actor.user_id:
        raise InvalidInput(_("nobody shares with themselves"))
    if to_site_id is not None and (to_site_id == from_site_id or to_site_id in granter_site_ids):
        raise InvalidInput(_("share with a site other than your own"))
    if expires_at <= now:
        raise InvalidInput(_("a share must expire in the future"))
    if expires_at - now > timedelta(days=366):
        raise InvalidInput(_("a share lasts at most one year"))
    if actor.user_id is None:
        raise InvalidInput(_("a share is granted by a person"))
    share = Share(
        resource_kind=resource_kind,
        resource_id=resource_id,
        to_site_id=to_site_id,
        to_user_id=to_user_id,
        from_site_id=from_site_id,
        granted_by_id=actor.user_id,
        reason=reason.strip()[:2000],
        created_at=now,
        expires_at=expires_at,
    )
    session.add(share)
    session.flush()
    audit.record(
        session,
        actor,
        "share.create",
        "success",
        object_kind=resource_kind,
        object_id=resource_id,
        patient_id=patient_id,
        detail={
            "share": share.id,
            "to_site": to_site_id,
            "to_user": to_user_id,
            "from_site": from_site_id,
            "expires": expires_at.isoformat(),
        },
    )
    return share


def get_share(session: Session, share_id: int) -> Share:
    share = session.get(Share, share_id)
    if share is None:
        raise NotFound(f"share {share_id} not found")
    return share


def revoke_share(
    session: Session, actor: audit.Actor, share: Share, now: datetime, patient_id: int | None
) -> None:
    if share.revoked_at is None:
        share.revoked_at = now
    audit.record(
        session,
        actor,
        "share.revoke",
        "success",
        object_kind=share.resource_kind,
        object_id=share.resource_id,
        patient_id=patient_id,
        detail={"share": share.id},
    )


def shares_of(session: Session, resource_kind: str, resource_id: str) -> Sequence[Share]:
    return (
        session.execute(
            select(Share)
            .where(Share.resource_kind == resource_kind, Share.resource_id == resource_id)
            .order_by(Share.created_at.desc())
        )
        .scalars()
        .all()
    )


def active_share_targets(
    session: Session,
    resource_kind: str,
    resource_id: str,
    now: datetime,
    *,
    from_site_id: int | None = None,
) -> tuple[frozenset[int], frozenset[int]]:
    """Sites and users a resource is currently shared with; with ``from_site_id``, only by
    the shares coming from that site (what a patient's share grants of that site's data)."""
    statement = select(Share.to_site_id, Share.to_user_id).where(
        Share.resource_kind == resource_kind,
        Share.resource_id == resource_id,
        Share.revoked_at.is_(None),
        Share.expires_at > now,
    )
    if from_site_id is not None:
        statement = statement.where(Share.from_site_id == from_site_id)
    rows = session.execute(statement).all()
    return (
        frozenset(site for site, _ in rows if site is not None),
        frozenset(user for _, user in rows if user is not None),
    )


def shared_resource_ids(
    session: Session, resource_kind: str, user_id: int, site_ids: frozenset[int], now: datetime
) -> frozenset[str]:
    """Resources of a kind currently shared with this person or one of their sites."""
    rows = session.execute(
        select(Share.resource_id).where(
            Share.resource_kind == resource_kind,
            Share.revoked_at.is_(None),
            Share.expires_at > now,
            or_(Share.to_user_id == user_id, Share.to_site_id.in_(site_ids)),
        )
    ).scalars()
    return frozenset(rows)


_SHARED_WITH = select(Share.resource_kind, Share.resource_id, Share.from_site_id).where(
    Share.resource_kind.in_(bindparam("kinds", expanding=True)),
    Share.revoked_at.is_(None),
    Share.expires_at > bindparam("now"),
    # A NULL user id matches no row: without a person, only shares to the sites count.
    or_(
        Share.to_user_id == bindparam("user_id"),
        Share.to_site_id.in_(bindparam("site_ids", expanding=True)),
    ),
)
"""Built once: `shared_with` runs for every search of every reader."""


def shared_with(
    session: Session,
    resource_kinds: Collection[str],
    *,
    user_id: int | None,
    site_ids: Collection[int],
    now: datetime,
) -> dict[str, frozenset[str]]:
    """Resources of these kinds shared at ``now`` (not revoked, not expired) with this person
    or with any of these sites, by kind; every kind asked for is a key. One query.

    ``user_id`` None leaves shares to persons out; no site leaves shares to sites out.
    """
    found = shared_with_origin(session, resource_kinds, user_id=user_id, site_ids=site_ids, now=now)
    return {kind: frozenset(i for i, _ in pairs) for kind, pairs in found.items()}


def shared_with_origin(
    session: Session,
    resource_kinds: Collection[str],
    *,
    user_id: int | None,
    site_ids: Collection[int],
    now: datetime,
) -> dict[str, frozenset[tuple[str, int | None]]]:
    """As `shared_with`, each resource with the site its share comes from. One query."""
    found: dict[str, set[tuple[str, int | None]]] = {kind: set() for kind in resource_kinds}
    if found and (user_id is not None or site_ids):
        rows = session.connection().execute(
            _SHARED_WITH,
            {"kinds": sorted(found), "now": now, "user_id": user_id, "site_ids": sorted(site_ids)},
        )
        for kind, resource_id, from_site_id in rows:
            found[kind].add((resource_id, from_site_id))
    return {kind: frozenset(pairs) for kind, pairs in found.items()}


def break_the_glass(
    session: Session,
    actor: audit.Actor,
    *,
    patient_id: int,
    patient_site_ids: frozenset[int],
    justification: str,
    minutes: int,
    now: datetime,
) -> EmergencyGrant:
    """Open emergency access to one patient: justified, time-boxed, alerted, audited."""
    justification = justification.strip()
    if len(justification) < MIN_JUSTIFICATION:
        raise InvalidInput(
            _("explain the emergency in at least %(count)s characters; it is reviewed")
            % {"count": MIN_JUSTIFICATION}
        )
    if actor.user_id is None:
        raise InvalidInput(_("break-the-glass is for a person"))
    grant = EmergencyGrant(
        user_id=actor.user_id,
        patient_id=patient_id,
        justification=justification[:2000],
        created_at=now,
        expires_at=now + timedelta(minutes=minutes),
    )
    session.add(grant)
    session.add(
        Alert(
            created_at=now,
            kind="break-the-glass",
            user_id=actor.user_id,
            site_ids=sorted(patient_site_ids),
            message=f"{actor.username} opened emergency access to patient #{patient_id} "
            f"until {grant.expires_at:%Y-%m-%d %H:%M} UTC",
        )
    )
    session.flush()
    audit.record(
        session,
        actor,
        "emergency.open",
        "emergency-override",
        object_kind="patient",
        object_id=patient_id,
        patient_id=patient_id,
        detail={"grant": grant.id, "minutes": minutes, "justification": justification[:2000]},
    )
    # Operators watch this line; it names no patient data beyond the internal number.
    log.warning("break-the-glass opened", extra={"user_id": actor.user_id, "grant": grant.id})
    return grant


def emergency_grants(
    session: Session, site_ids: frozenset[int] | None, since: datetime
) -> list[EmergencyGrant]:
    """Emergency accesses opened from ``since`` on to patients known at one of ``site_ids``
    (None: at any site), newest first."""
    query = select(EmergencyGrant).where(EmergencyGrant.created_at >= since)
    if site_ids is not None:
        known = select(PatientIdentifier.patient_id).where(PatientIdentifier.site_id.in_(site_ids))
        query = query.where(EmergencyGrant.patient_id.in_(known))
    query = query.order_by(EmergencyGrant.created_at.desc(), EmergencyGrant.id.desc())
    return list(session.execute(query).scalars())


def open_alerts(session: Session, site_ids: frozenset[int] | None) -> list[Alert]:
    alerts = session.execute(
        select(Alert).where(Alert.acknowledged_at.is_(None)).order_by(Alert.created_at.desc())
    ).scalars()
    if site_ids is None:
        return list(alerts)
    return [a for a in alerts if set(a.site_ids) & site_ids]


def acknowledge_alert(
    session: Session,
    actor: audit.Actor,
    alert_id: int,
    site_ids: frozenset[int] | None,
    now: datetime,
) -> Alert:
    alert = session.get(Alert, alert_id)
    if alert is None or (site_ids is not None and not set(alert.site_ids) & site_ids):
        raise NotFound(f"alert {alert_id} not found")
    alert.acknowledged_at = now
    alert.acknowledged_by_id = actor.user_id
    audit.record(
        session, actor, "alert.acknowledge", "success", object_kind="alert", object_id=alert_id
    )
    return alert

"""Sites, users and their roles: the administration of who is who."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from concilium.config import ROLES
from concilium.platform import audit
from concilium.platform.errors import Conflict, Forbidden, InvalidInput, NotFound
from concilium.platform.i18n import _
from concilium.platform.passwords import hash_password, unusable_hash
from concilium.platform.policy import CLINICAL_ROLES, Principal
from concilium.platform.tables import EmergencyGrant, Membership, Site, User

FINESS_RE = re.compile(r"^\d{2}[0-9AB]\d{6}$")
RPPS_RE = re.compile(r"^\d{11}$")
USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{1,62}$")


@dataclass(frozen=True)
class RoleGrant:
    """One role at one site."""

    site_id: int
    role: str

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise InvalidInput(f"unknown role {self.role!r}; roles are {', '.join(ROLES)}")


def check_office(is_platform_admin: bool, grants: Iterable[RoleGrant]) -> None:
    """A platform administrator holds no clinical role: administrators administer, and never
    read patient data (see :mod:`concilium.platform.policy`)."""
    clinical = sorted({g.role for g in grants} & CLINICAL_ROLES)
    if is_platform_admin and clinical:
        raise InvalidInput(
            f"a platform administrator holds no clinical role ({', '.join(clinical)}): "
            "administrators administer, never read patient data"
        )


def create_site(session: Session, actor: audit.Actor, name: str, finess: str) -> Site:
    name = name.strip()
    if not name:
        raise InvalidInput(_("site name is required"))
    if not FINESS_RE.match(finess):
        raise InvalidInput(_("FINESS must be nine characters: two digits, digit/A/B, six digits"))
    if session.execute(select(Site).where(Site.finess == finess)).scalar_one_or_none():
        raise Conflict(f"a site with FINESS {finess} already exists")
    site = Site(name=name, finess=finess)
    session.add(site)
    session.flush()
    audit.record(session, actor, "site.create", "success", object_kind="site", object_id=site.id)
    return site


def list_sites(session: Session) -> Sequence[Site]:
    return session.execute(select(Site).order_by(Site.name)).scalars().all()


def site_names(session: Session) -> dict[int, str]:
    """Every hospital's name, by site id."""
    return {s.id: s.name for s in list_sites(session)}


def get_site(session: Session, site_id: int) -> Site:
    site = session.get(Site, site_id)
    if site is None:
        raise NotFound(f"site {site_id} not found")
    return site


def site_by_finess(session: Session, finess: str) -> Site:
    site = session.execute(select(Site).where(Site.finess == finess)).scalar_one_or_none()
    if site is None:
        raise NotFound(f"no site with FINESS {finess}")
    return site


def create_user(
    session: Session,
    actor: audit.Actor,
    *,
    username: str,
    full_name: str,
    password: str | None,
    roles: Iterable[RoleGrant],
    email: str = "",
    profession: str = "",
    specialty: str = "",
    rpps: str | None = None,
    is_platform_admin: bool = False,
) -> User:
    username = username.strip().lower()
    if not USERNAME_RE.match(username):
        raise InvalidInput(_("username: 2-63 lower-case letters, digits, dot, dash or underscore"))
    if not full_name.strip():
        raise InvalidInput(_("full name is required"))
    if rpps and not RPPS_RE.match(rpps):
        raise InvalidInput(_("RPPS must be eleven digits"))
    grants = list(roles)
    if not grants and not is_platform_admin:
        raise InvalidInput(_("a user needs at least one role at a site"))
    check_office(is_platform_admin, grants)
    for grant in grants:
        get_site(session, grant.site_id)
    if session.execute(select(User).where(User.username == username)).scalar_one_or_none():
        raise Conflict(f"username {username!r} is taken")
    if rpps and session.execute(select(User).where(User.rpps == rpps)).scalar_one_or_none():
        raise Conflict(f"a user with RPPS {rpps} already exists")
    user = User(
        username=username,
        full_name=full_name.strip(),
        email=email.strip(),
        profession=profession.strip(),
        specialty=specialty.strip(),
        rpps=rpps or None,
        # Without a password, the holder chooses one through a set-up link.
        password_hash=hash_password(password) if password is not None else unusable_hash(),
        is_platform_admin=is_platform_admin,
    )
    user.memberships = [Membership(site_id=g.site_id, role=g.role) for g in set(grants)]
    session.add(user)
    try:
        session.flush()
    except IntegrityError as exc:
        raise Conflict(_("user conflicts with an existing one")) from exc
    audit.record(
        session,
        actor,
        "user.create",
        "success",
        object_kind="user",
        object_id=user.id,
        detail={"roles": sorted(f"{g.site_id}:{g.role}" for g in grants)},
    )
    return user


def get_user(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"user {user_id} not found")
    return user


def user_by_username(session: Session, username: str) -> User | None:
    return session.execute(
        select(User).where(User.username == username.strip().lower())
    ).scalar_one_or_none()


def active_users(session: Session) -> Sequence[User]:
    """Every account that is not disabled, by full name (people to share or invite to)."""
    return (
        session.execute(select(User).where(~User.disabled).order_by(User.full_name)).scalars().all()
    )


def list_users(session: Session, site_ids: frozenset[int] | None) -> Sequence[User]:
    """Users holding a role at one of ``site_ids`` (all users when None)."""
    query = select(User).order_by(User.username)
    if site_ids is not None:
        query = query.where(
            User.id.in_(select(Membership.user_id).where(Membership.site_id.in_(site_ids)))
        )
    return session.execute(query).scalars().all()


def set_disabled(session: Session, actor: audit.Actor, user: User, disabled: bool) -> None:
    from concilium.platform.authn import end_all_sessions

    if user.id == actor.user_id and disabled:
        raise InvalidInput(_("you cannot disable your own account"))
    user.disabled = disabled
    if disabled:
        end_all_sessions(session, user.id)
    audit.record(
        session,
        actor,
        "user.disable" if disabled else "user.enable",
        "success",
        object_kind="user",
        object_id=user.id,
    )


def set_roles(
    session: Session,
    actor: audit.Actor,
    user: User,
    site_ids: frozenset[int] | None,
    roles: Iterable[RoleGrant],
) -> None:
    """Replace the user's roles at the sites the administrator manages (``None``: all sites)."""
    if actor.user_id == user.id:
        raise Forbidden(_("nobody changes the roles of their own account"))
    wanted = set(roles)
    check_office(user.is_platform_admin, wanted)
    for grant in wanted:
        if site_ids is not None and grant.site_id not in site_ids:
            raise InvalidInput(f"you do not administer site {grant.site_id}")
        get_site(session, grant.site_id)
    kept = [m for m in user.memberships if site_ids is not None and m.site_id not in site_ids]
    existing = {RoleGrant(m.site_id, m.role): m for m in user.memberships}
    # Wanted grants all lie at managed sites, so they never overlap the kept memberships.
    user.memberships = kept + [
        existing.get(g) or Membership(site_id=g.site_id, role=g.role) for g in wanted
    ]
    if not user.memberships and not user.is_platform_admin:
        raise InvalidInput(_("a user needs at least one role at a site"))
    session.flush()
    audit.record(
        session,
        actor,
        "user.roles.update",
        "success",
        object_kind="user",
        object_id=user.id,
        detail={"roles": sorted(f"{m.site_id}:{m.role}" for m in user.memberships)},
    )


def user_site_ids(user: User) -> frozenset[int]:
    return frozenset(m.site_id for m in user.memberships)


def principal_for(
    session: Session, user: User, now: datetime, scopes: frozenset[str] | None = None
) -> Principal:
    roles: dict[int, set[str]] = {}
    for membership in user.memberships:
        roles.setdefault(membership.site_id, set()).add(membership.role)
    emergency = session.execute(
        select(EmergencyGrant.patient_id).where(
            EmergencyGrant.user_id == user.id, EmergencyGrant.expires_at > now
        )
    ).scalars()
    return Principal(
        user_id=user.id,
        username=user.username,
        roles={site: frozenset(held) for site, held in roles.items()},
        is_platform_admin=user.is_platform_admin,
        scopes=scopes,
        emergency_patient_ids=frozenset(emergency),
    )

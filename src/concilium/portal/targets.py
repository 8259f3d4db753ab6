"""Load an object and the facts the policy needs about it (its ``Target``)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from concilium.platform.accounts import get_site, get_user, user_site_ids
from concilium.platform.authn import get_token
from concilium.platform.policy import Target
from concilium.platform.tables import ApiToken, Site, User


def site_target(session: Session, site_id: int) -> tuple[Site, Target]:
    site = get_site(session, site_id)
    return site, Target(kind="site", id=str(site.id), site_ids=frozenset({site.id}))


def user_target(session: Session, user_id: int) -> tuple[User, Target]:
    user = get_user(session, user_id)
    return user, Target(
        kind="user",
        id=str(user.id),
        site_ids=user_site_ids(user),
        owner_user_id=user.id,
        reaches_every_site=user.is_platform_admin,
    )


def token_target(session: Session, public_id: str) -> tuple[ApiToken, Target]:
    token = get_token(session, public_id)
    owner = get_user(session, token.user_id)
    return token, Target(
        kind="token",
        id=public_id,
        site_ids=user_site_ids(owner),
        owner_user_id=owner.id,
        reaches_every_site=owner.is_platform_admin,
    )


def sites_target(site_ids: frozenset[int], kind: str = "site") -> Target:
    """Acting at given sites (creating a user or a patient there)."""
    return Target(kind=kind, site_ids=site_ids)

"""The directory of the region's people: find a colleague by name, hospital and specialty.

Sharing a file and inviting someone to a procedure or a session need the exact user name of
the person; people remember a name, a hospital, a specialty. The directory is regional on
purpose: one shares with and invites people of the *other* hospitals of the platform, so
whoever holds a role at a site (``PlatformAction.PEOPLE_SEARCH``) finds the people of every
active site. It shows who they are and where they work, never anything about patients.

Never found: disabled accounts, and accounts holding no role at an active site (machine
accounts, a platform administrator without a clinical post, people of a closed hospital).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from concilium.platform import accounts
from concilium.platform.errors import InvalidInput
from concilium.platform.folding import folded
from concilium.platform.i18n import _
from concilium.platform.tables import Membership, Site, User

MAX_RESULTS = 50
"""Most people one search returns: a search narrows, it does not list the region."""
DEFAULT_RESULTS = 20
"""People one search returns unless told otherwise."""
MAX_QUERY = 100
"""Longest text searched (characters)."""


@dataclass(frozen=True)
class PeopleQuery:
    """What the asker typed and chose."""

    text: str = ""
    """Words each found, in any order and case, with or without accents, in the full name or
    the user name ("dup mar" finds Marie Dupont)."""
    site_id: int | None = None
    """Only people holding a role at this hospital."""
    specialty: str = ""
    """Only people whose specialty (or, when they have none, profession) contains this."""
    limit: int = DEFAULT_RESULTS
    """Most people returned."""

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= MAX_RESULTS:
            raise ValueError(f"limit must be between 1 and {MAX_RESULTS}, got {self.limit}")
        if len(self.text) > MAX_QUERY or len(self.specialty) > MAX_QUERY:
            raise ValueError(f"a search is at most {MAX_QUERY} characters")


@dataclass(frozen=True)
class Hospital:
    id: int
    name: str


@dataclass(frozen=True)
class Person:
    """One person as the directory shows them."""

    id: int
    username: str
    """What forms ask for to name this person."""
    full_name: str
    hospitals: tuple[Hospital, ...]
    """Active sites where they hold a role, by name."""
    specialty: str
    profession: str


def _matches(words: Sequence[str], user: User) -> bool:
    haystack = f"{folded(user.full_name)} {folded(user.username)}"
    return all(word in haystack for word in words)


def _rank(words: Sequence[str], user: User) -> tuple[int, str, str]:
    """Whose name or user name starts with what was typed comes first, then by name."""
    names = [*folded(user.full_name).split(), folded(user.username)]
    starts = sum(1 for word in words if any(name.startswith(word) for name in names))
    return (-starts, folded(user.full_name), user.username)


def search(session: Session, query: PeopleQuery) -> list[Person]:
    """The people matching ``query``, best first, at most ``query.limit``."""
    sites = {s.id: s for s in session.execute(select(Site).where(Site.active)).scalars()}
    if query.site_id is not None and query.site_id not in sites:
        return []
    wanted_sites = [query.site_id] if query.site_id is not None else list(sites)
    statement = (
        select(User)
        .where(~User.disabled)
        .where(User.id.in_(select(Membership.user_id).where(Membership.site_id.in_(wanted_sites))))
    )
    words = folded(query.text).split()
    specialty = folded(query.specialty.strip())
    found: list[User] = []
    for user in session.execute(statement).scalars():
        if not _matches(words, user):
            continue
        if specialty and specialty not in folded(user.specialty or user.profession):
            continue
        found.append(user)
    found.sort(key=lambda user: _rank(words, user))
    return [_person(user, sites) for user in found[: query.limit]]


def _person(user: User, sites: dict[int, Site]) -> Person:
    held = sorted({m.site_id for m in user.memberships if m.site_id in sites})
    return Person(
        id=user.id,
        username=user.username,
        full_name=user.full_name,
        hospitals=tuple(Hospital(i, sites[i].name) for i in held),
        specialty=user.specialty,
        profession=user.profession,
    )


def named(session: Session, username: str) -> User:
    """The active account a form names by its user name; who is not found is said so."""
    wanted = username.strip()
    user = accounts.user_by_username(session, wanted)
    if user is None or user.disabled:
        raise InvalidInput(_("Nobody has the user name %(username)s.") % {"username": wanted})
    return user

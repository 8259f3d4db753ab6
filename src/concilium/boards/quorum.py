"""Quorum of a multidisciplinary meeting (RCP, réunion de concertation pluridisciplinaire).

French cancer care asks that a case be discussed by physicians of at least three
different specialties (circulaire DHOS/SDO/2005/101), and a board may name specialties
that must be among them: surgery, medical or radiation oncology and radiology for a solid
tumour board, pathology for haematology. :class:`QuorumRules` holds those rules as data.

How the specialties present are counted:

- a physician counts for one specialty only, however many they hold;
- who counts for which is chosen to cover as many of the board's requirements as
  possible, then as many distinct specialties as possible: a maximum bipartite matching
  between physicians and specialties, so a radiologist who is also a nuclear physician is
  counted as whichever lets a second radiologist count too, which a greedy pass may miss.

Who is present comes from attendance intervals (people leave and rejoin). For a case, a
person counts when present through the whole discussion, from its start to the decision
instant included (:func:`quorum_for_case`): someone who arrives for the vote has not
heard the case, and someone who left has not endorsed the decision. The facilitator
validates the decision at that instant, with the result of :func:`quorum_for_case`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

SPECIALTY_CODE = re.compile(r"[a-z][a-z0-9_-]*")
"""Specialty codes are lower-case stable codes (``"radiology"``), never display names."""


def check_specialty_codes(specialties: Iterable[str]) -> None:
    """Refuse anything that is not a specialty code, with a :class:`ValueError`."""
    for specialty in specialties:
        if not isinstance(specialty, str) or not SPECIALTY_CODE.fullmatch(specialty):
            raise ValueError(
                f"specialty codes are lower-case letters, digits, '_' or '-', got {specialty!r}"
            )


def _check_instant(name: str, value: datetime) -> None:
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise ValueError(f"{name} must be a datetime with a time zone, got {value!r}")


@dataclass(frozen=True)
class QuorumRules:
    """What a board needs to decide; refused at construction when inconsistent."""

    min_specialties: int = 3
    """Fewest distinct specialties that must be represented."""
    required: tuple[frozenset[str], ...] = ()
    """Specialties that must be among them: each entry is met by any one of its specialties.
    Entries are disjoint, so each is met by its own physician."""

    def __post_init__(self) -> None:
        if (
            not isinstance(self.min_specialties, int)
            or isinstance(self.min_specialties, bool)
            or not 1 <= self.min_specialties <= 30
        ):
            raise ValueError(f"min_specialties must be 1 to 30, got {self.min_specialties!r}")
        if not isinstance(self.required, tuple):
            raise ValueError(f"required must be a tuple of frozensets, got {self.required!r}")
        seen: dict[str, frozenset[str]] = {}
        for requirement in self.required:
            if not isinstance(requirement, frozenset) or not requirement:
                raise ValueError(
                    f"each requirement must be a non-empty frozenset, got {requirement!r}"
                )
            check_specialty_codes(requirement)
            for specialty in sorted(requirement):
                if specialty in seen:
                    raise ValueError(
                        f"requirements {sorted(seen[specialty])} and {sorted(requirement)} "
                        f"share {specialty!r}: make them disjoint"
                    )
                seen[specialty] = requirement

    def requiring(self, specialties: Iterable[str]) -> QuorumRules:
        """These rules, with each of ``specialties`` required as well.

        A requirement that one of the added specialties meets is replaced by it (needing
        radiotherapy meets "oncology or radiotherapy"), so the result needs what both ask
        for and no more.
        """
        added = frozenset(specialties)
        check_specialty_codes(added)
        kept = tuple(r for r in self.required if not r & added)
        singles = tuple(frozenset({s}) for s in sorted(added))
        return QuorumRules(self.min_specialties, kept + singles)


SOLID_TUMOUR = QuorumRules(
    required=(
        frozenset({"surgery"}),
        frozenset({"oncology", "radiotherapy"}),
        frozenset({"radiology"}),
    )
)
"""A standard solid tumour board: a surgeon, a medical or radiation oncologist, a radiologist."""

HAEMATOLOGY = QuorumRules(required=(frozenset({"haematology"}), frozenset({"pathology"})))
"""A haematology board: a haematologist and a pathologist among three specialties."""


@dataclass(frozen=True)
class Attendance:
    """One stretch of presence of one person; a person who rejoins has several."""

    person: str
    """Stable identifier of the person (never a name)."""
    specialties: frozenset[str]
    """Specialties the person may count for; empty for those who do not count."""
    joined: datetime
    """When they joined, with a time zone."""
    left: datetime | None = None
    """When they left, with a time zone; None while still there."""

    def __post_init__(self) -> None:
        if not isinstance(self.person, str) or not self.person:
            raise ValueError(f"person must be a non-empty identifier, got {self.person!r}")
        if not isinstance(self.specialties, frozenset):
            raise ValueError(f"specialties must be a frozenset, got {self.specialties!r}")
        check_specialty_codes(self.specialties)
        _check_instant("joined", self.joined)
        if self.left is not None:
            _check_instant("left", self.left)
            if self.left <= self.joined:
                raise ValueError(
                    f"{self.person} left ({self.left.isoformat()}) before joining "
                    f"({self.joined.isoformat()})"
                )

    def covers(self, start: datetime, end: datetime) -> bool:
        """Whether this stretch holds every instant from ``start`` to ``end`` included."""
        return self.joined <= start and (self.left is None or self.left > end)


@dataclass(frozen=True)
class QuorumResult:
    """Whether the quorum is met, how, and what is missing."""

    met: bool
    """True when the rules are satisfied."""
    counted: Mapping[str, str] = field(hash=False)
    """Who counts for which specialty: person to specialty."""
    present: frozenset[str]
    """Everyone present, counted or not."""
    missing_required: tuple[frozenset[str], ...]
    """Required entries no one present can meet, in the rules' order."""
    more_needed: int
    """How many more distinct specialties must join (each missing requirement is one)."""

    @property
    def specialties(self) -> frozenset[str]:
        """The distinct specialties counted."""
        return frozenset(self.counted.values())

    @property
    def uncounted(self) -> frozenset[str]:
        """People present who do not count (a second physician of a specialty, staff)."""
        return self.present - self.counted.keys()


def assess(rules: QuorumRules, members: Mapping[str, frozenset[str]]) -> QuorumResult:
    """The quorum given the people present (person to the specialties they hold)."""
    for person, specialties in members.items():
        if not isinstance(specialties, frozenset):
            raise ValueError(f"specialties of {person} must be a frozenset")
        check_specialty_codes(specialties)
    by_specialty = _match(rules.required, members)
    counted = {person: specialty for specialty, person in sorted(by_specialty.items())}
    covered = frozenset(by_specialty)
    missing = tuple(r for r in rules.required if not r & covered)
    more_needed = max(0, len(missing), rules.min_specialties - len(covered))
    return QuorumResult(
        met=more_needed == 0,
        counted=counted,
        present=frozenset(members),
        missing_required=missing,
        more_needed=more_needed,
    )


def present_throughout(
    attendance: Iterable[Attendance], start: datetime, end: datetime
) -> dict[str, frozenset[str]]:
    """Who is present at every instant from ``start`` to ``end`` included, with their
    specialties. Stretches of one person that meet or overlap are joined, so leaving and
    rejoining at the same instant is no absence."""
    _check_instant("start", start)
    _check_instant("end", end)
    if end < start:
        raise ValueError(f"end ({end.isoformat()}) is before start ({start.isoformat()})")
    stretches: dict[str, list[Attendance]] = {}
    for stretch in attendance:
        if not isinstance(stretch, Attendance):
            raise ValueError(f"attendance must hold Attendance records, got {stretch!r}")
        known = stretches.setdefault(stretch.person, [])
        if known and known[0].specialties != stretch.specialties:
            raise ValueError(
                f"{stretch.person} has different specialties in two attendance records"
            )
        known.append(stretch)
    present: dict[str, frozenset[str]] = {}
    for person, records in stretches.items():
        if any(merged.covers(start, end) for merged in _merge(records)):
            present[person] = records[0].specialties
    return present


def quorum_at(rules: QuorumRules, attendance: Iterable[Attendance], at: datetime) -> QuorumResult:
    """The quorum of the people present at the instant ``at``."""
    return assess(rules, present_throughout(attendance, at, at))


def quorum_for_case(
    rules: QuorumRules,
    attendance: Iterable[Attendance],
    discussion_start: datetime,
    decided_at: datetime,
) -> QuorumResult:
    """The quorum for a case: only people present from the start of its discussion to the
    decision instant, both included, count."""
    return assess(rules, present_throughout(attendance, discussion_start, decided_at))


def _merge(records: list[Attendance]) -> list[Attendance]:
    merged: list[Attendance] = []
    for record in sorted(records, key=lambda r: r.joined):
        if merged:
            last = merged[-1]
            if last.left is None or record.joined <= last.left:
                left = (
                    None
                    if last.left is None or record.left is None
                    else max(last.left, record.left)
                )
                merged[-1] = Attendance(last.person, last.specialties, last.joined, left)
                continue
        merged.append(record)
    return merged


def _match(
    required: tuple[frozenset[str], ...], members: Mapping[str, frozenset[str]]
) -> dict[str, str]:
    """Specialty to person: a maximum matching that covers as many requirements as can be.

    First each requirement gets its own physician (augmenting paths over requirement
    slots); then every other specialty is added by augmenting paths over the specialty to
    person graph, which keep every matched specialty matched, so the requirements met in
    the first step stay met and the final matching is maximum. Orders are sorted so the
    same attendance always gives the same assignment.
    """
    people = sorted(members)
    holders: dict[str, list[str]] = {}
    for person in people:
        for specialty in sorted(members[person]):
            holders.setdefault(specialty, []).append(person)

    slot_of: dict[str, int] = {}

    def place(slot: int, seen: set[str]) -> bool:
        for person in people:
            if person in seen or not members[person] & required[slot]:
                continue
            seen.add(person)
            if person not in slot_of or place(slot_of[person], seen):
                slot_of[person] = slot
                return True
        return False

    for slot in range(len(required)):
        place(slot, set())

    person_of: dict[str, str] = {}
    specialty_of: dict[str, str] = {}
    for person, slot in slot_of.items():
        specialty = min(members[person] & required[slot])
        person_of[specialty] = person
        specialty_of[person] = specialty

    def augment(specialty: str, seen: set[str]) -> bool:
        for person in holders[specialty]:
            if person in seen:
                continue
            seen.add(person)
            current = specialty_of.get(person)
            if current is None or augment(current, seen):
                specialty_of[person] = specialty
                person_of[specialty] = person
                return True
        return False

    for specialty in sorted(holders):
        if specialty not in person_of:
            augment(specialty, set())
    return person_of

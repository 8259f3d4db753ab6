"""Routing of exams to reading groups: rules as data, one pure decision.

A rule says: exams from this site (and of this modality, if given) go to this group
while it is on call in the rota (or at any time, for a rule not tied to the rota). Rules
are tried by priority, lowest number first, ties in the order given; the first that
matches decides. When none matches, the exam stays with the local group of its site.

:func:`explain_route` returns the decision with the rule that made it and why, for the
audit trail and for the people who wonder where an exam went; :func:`route` the group
only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from concilium.reading.rota import Rota


class NoRoute(LookupError):
    """No rule matched and the site has no local group."""


@dataclass(frozen=True)
class ExamFacts:
    """What routing knows of an exam."""

    site: str
    """Site the exam comes from."""
    modality: str | None = None
    """DICOM modality, e.g. ``CT``, when known."""


@dataclass(frozen=True)
class RoutingRule:
    """Exams of ``site`` (and ``modality``) go to ``group`` while it is on call."""

    name: str
    """Identifier shown in decisions and audit."""
    site: str
    """Site whose exams the rule takes."""
    group: str
    """Group that receives them."""
    modality: str | None = None
    """Only this modality, or any when None."""
    priority: int = 100
    """Lower numbers are tried first."""
    on_call_only: bool = True
    """Applies only while ``group`` is on call in the rota; False applies at any time."""

    def __post_init__(self) -> None:
        for name in ("name", "site", "group"):
            if not getattr(self, name).strip():
                raise ValueError(f"a routing rule needs a {name}")

    def matches(self, exam: ExamFacts) -> bool:
        """Whether the exam is one this rule takes, the rota aside."""
        if exam.site != self.site:
            return False
        if self.modality is None:
            return True
        return exam.modality is not None and exam.modality.upper() == self.modality.upper()


@dataclass(frozen=True)
class RoutingTable:
    """The routing rules and the local group of each site."""

    rules: tuple[RoutingRule, ...]
    """Rules, in any order: priority decides."""
    local_groups: Mapping[str, str]
    """Site to the group that reads its exams when no rule applies."""

    def __post_init__(self) -> None:
        names = [rule.name for rule in self.rules]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"routing rule names must be unique: {', '.join(duplicates)}")

    def ordered(self) -> list[RoutingRule]:
        """Rules in the order they are tried."""
        return sorted(self.rules, key=lambda rule: rule.priority)


@dataclass(frozen=True)
class RoutingDecision:
    """Where an exam goes and why."""

    group: str
    """Reading group that receives the exam."""
    rule: RoutingRule | None
    """The rule that decided, None when the local group took it."""
    reason: str
    """The decision in words."""
    on_call: tuple[str, ...]
    """Groups on call at the time of the decision."""


def explain_route(
    exam: ExamFacts, table: RoutingTable, rota: Rota, at: datetime
) -> RoutingDecision:
    """Decide which group reads an exam at an aware instant, and say why.

    Raises :class:`NoRoute` when no rule applies and the site has no local group, and
    :class:`ValueError` for a naive ``at``.
    """
    on_call = rota.groups_on_call(at)
    for rule in table.ordered():
        if not rule.matches(exam):
            continue
        if rule.on_call_only and rule.group not in on_call:
            continue
        when = "on call" if rule.on_call_only else "at any time"
        return RoutingDecision(
            rule.group,
            rule,
            f"rule {rule.name!r} (priority {rule.priority}): site {exam.site}"
            f"{' ' + rule.modality if rule.modality else ''} to {rule.group}, {when}",
            on_call,
        )
    local = table.local_groups.get(exam.site)
    if local is None:
        raise NoRoute(f"no rule applies and site {exam.site!r} has no local group")
    return RoutingDecision(
        local, None, f"no rule applies: local group of site {exam.site}", on_call
    )


def route(exam: ExamFacts, table: RoutingTable, rota: Rota, at: datetime) -> str:
    """The reading group of an exam at an aware instant (see :func:`explain_route`)."""
    return explain_route(exam, table, rota, at).group

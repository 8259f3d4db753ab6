"""Reading groups as data: groups owned by a site, their members credentialed per site,
their on-call rota and the routing rules, stored in the database and built into the
storage-free models of :mod:`concilium.reading.rota` and :mod:`concilium.reading.routing`.

The rota is read in the zone and holiday calendar of the site the exam comes from
(``Site.timezone``, ``Site.holiday_region``): every wall-clock time of the on-call lines is
that site's clock, which is the same for every French site of metropolitan France.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date, datetime, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.orm import Session

from concilium.platform import audit, holidays
from concilium.platform.errors import Conflict, InvalidInput, NotFound
from concilium.platform.i18n import _
from concilium.platform.tables import Site
from concilium.reading.rota import (
    EVENING,
    EVERY_DAY,
    MONDAY,
    MORNING,
    SATURDAY,
    FixedPeriod,
    HolidayShift,
    NightShift,
    Rota,
    RotaEntry,
    WeekendShift,
)
from concilium.reading.routing import RoutingRule, RoutingTable
from concilium.reading.tables import (
    ReadingCredential,
    ReadingGroup,
    ReadingGroupMember,
    ReadingOnCall,
    ReadingRoutingRule,
)

__all__ = [
    "ON_CALL_KINDS",
    "add_credential",
    "add_group",
    "add_member",
    "add_on_call",
    "add_rule",
    "build_rota",
    "build_table",
    "group_by_name",
    "groups_of_user",
    "list_groups",
    "list_on_call",
    "list_rules",
    "members_of",
    "remove_rule",
]

ON_CALL_KINDS = ("night", "weekend", "holiday", "fixed")
"""The kinds of on-call line."""
_NAME = re.compile(r"^[\w.-][\w .-]{0,63}$")
_CLOCK = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


def _clean_name(name: str) -> str:
    name = name.strip()
    if not _NAME.fullmatch(name):
        raise InvalidInput(_("name: 1-64 letters, digits, spaces, dots, dashes or underscores"))
    return name


def add_group(
    session: Session, actor: audit.Actor, *, name: str, site_id: int, local: bool = False
) -> ReadingGroup:
    """A reading group owned by a site; ``local``: the one reading the site's own exams."""
    name = _clean_name(name)
    if group_by_name(session, name, missing_ok=True) is not None:
        raise Conflict(_("a reading group with this name already exists"))
    if (
        local
        and session.execute(
            select(ReadingGroup.id).where(ReadingGroup.site_id == site_id, ReadingGroup.local)
        ).first()
    ):
        raise Conflict(_("this site already has a local reading group"))
    group = ReadingGroup(name=name, site_id=site_id, local=local)
    session.add(group)
    session.flush()
    audit.record(
        session,
        actor,
        "reading.group.create",
        "success",
        object_kind="reading_group",
        object_id=group.id,
        site_id=site_id,
        detail={"name": name, "local": local},
    )
    return group


def group_by_name(session: Session, name: str, *, missing_ok: bool = False) -> ReadingGroup | None:
    """The group of this name (NotFound, or None with ``missing_ok``)."""
    group = session.execute(
        select(ReadingGroup).where(ReadingGroup.name == name.strip())
    ).scalar_one_or_none()
    if group is None and not missing_ok:
        raise NotFound(_("no reading group named %(name)s") % {"name": name.strip()})
    return group


def list_groups(session: Session, site_ids: frozenset[int] | None = None) -> Sequence[ReadingGroup]:
    """The groups owned by ``site_ids`` (None: every site), by name."""
    query = select(ReadingGroup).order_by(ReadingGroup.name)
    if site_ids is not None:
        query = query.where(ReadingGroup.site_id.in_(site_ids))
    return session.execute(query).scalars().all()


def add_member(
    session: Session, actor: audit.Actor, group: ReadingGroup, user_id: int
) -> ReadingGroupMember:
    """A user reading in the group (credentialed for the group's site)."""
    member = session.execute(
        select(ReadingGroupMember).where(
            ReadingGroupMember.group_id == group.id, ReadingGroupMember.user_id == user_id
        )
    ).scalar_one_or_none()
    if member is not None:
        raise Conflict(_("this user is already a member of the group"))
    member = ReadingGroupMember(group_id=group.id, user_id=user_id)
    session.add(member)
    session.flush()
    audit.record(
        session,
        actor,
        "reading.member.create",
        "success",
        object_kind="reading_group",
        object_id=group.id,
        site_id=group.site_id,
        detail={"user_id": user_id},
    )
    add_credential(session, actor, member, group.site_id)
    return member


def add_credential(
    session: Session, actor: audit.Actor, member: ReadingGroupMember, site_id: int
) -> None:
    """The member may read exams of this site (once)."""
    exists = session.execute(
        select(ReadingCredential.id).where(
            ReadingCredential.member_id == member.id, ReadingCredential.site_id == site_id
        )
    ).first()
    if exists:
        return
    session.add(ReadingCredential(member_id=member.id, site_id=site_id))
    session.flush()
    audit.record(
        session,
        actor,
        "reading.credential.create",
        "success",
        object_kind="reading_group",
        object_id=member.group_id,
        site_id=site_id,
        detail={"user_id": member.user_id},
    )


def members_of(session: Session, group_id: int) -> dict[int, frozenset[int]]:
    """The members of a group: user id to the sites they are credentialed for."""
    rows = session.execute(
        select(ReadingGroupMember.user_id, ReadingCredential.site_id)
        .join(ReadingCredential, ReadingCredential.member_id == ReadingGroupMember.id, isouter=True)
        .where(ReadingGroupMember.group_id == group_id)
    ).all()
    found: dict[int, set[int]] = {}
    for user_id, site_id in rows:
        found.setdefault(user_id, set())
        if site_id is not None:
            found[user_id].add(site_id)
    return {user: frozenset(sites) for user, sites in found.items()}


def groups_of_user(session: Session, user_id: int) -> dict[int, frozenset[int]]:
    """The groups a user reads in: group id to the sites the user is credentialed for."""
    rows = session.execute(
        select(ReadingGroupMember.group_id, ReadingCredential.site_id)
        .join(ReadingCredential, ReadingCredential.member_id == ReadingGroupMember.id, isouter=True)
        .where(ReadingGroupMember.user_id == user_id)
    ).all()
    found: dict[int, set[int]] = {}
    for group_id, site_id in rows:
        found.setdefault(group_id, set())
        if site_id is not None:
            found[group_id].add(site_id)
    return {group: frozenset(sites) for group, sites in found.items()}


def _clock(value: str, default: time) -> str:
    if not value:
        return default.strftime("%H:%M")
    if not _CLOCK.fullmatch(value.strip()):
        raise InvalidInput(_("times are given as HH:MM, e.g. 18:30"))
    return value.strip()


def _weekday(value: int | None, default: int) -> int:
    if value is None:
        return default
    if value not in EVERY_DAY:
        raise InvalidInput(_("weekdays are 0 (Monday) to 6 (Sunday)"))
    return value


def add_on_call(
    session: Session,
    actor: audit.Actor,
    group: ReadingGroup,
    kind: str,
    *,
    start: str = "",
    end: str = "",
    weekdays: str = "",
    start_weekday: int | None = None,
    end_weekday: int | None = None,
    starts_at: datetime | None = None,
    ends_at: datetime | None = None,
) -> ReadingOnCall:
    """One line of the group's rota, checked by building it into the rota model."""
    if kind not in ON_CALL_KINDS:
        raise InvalidInput(
            _("kind of on-call line: one of %(kinds)s") % {"kinds": ", ".join(ON_CALL_KINDS)}
        )
    line = ReadingOnCall(group_id=group.id, kind=kind)
    if kind == "night":
        line.start_time, line.end_time = _clock(start, EVENING), _clock(end, MORNING)
        days = weekdays.strip() or "0123456"
        if not re.fullmatch(r"[0-6]{1,7}", days):
            raise InvalidInput(_("weekdays are 0 (Monday) to 6 (Sunday)"))
        line.weekdays = "".join(sorted(set(days)))
    elif kind == "weekend":
        line.start_time, line.end_time = _clock(start, MORNING), _clock(end, MORNING)
        line.start_weekday = _weekday(start_weekday, SATURDAY)
        line.end_weekday = _weekday(end_weekday, MONDAY)
    elif kind == "holiday":
        line.start_time, line.end_time = _clock(start, EVENING), _clock(end, MORNING)
    else:
        if starts_at is None or ends_at is None:
            raise InvalidInput(_("a fixed period needs its start and its end"))
        line.starts_at, line.ends_at = starts_at, ends_at
    try:
        _entry(line, group.name)
    except ValueError as error:
        raise InvalidInput(_("this on-call line is not valid: %(why)s") % {"why": error}) from None
    session.add(line)
    session.flush()
    audit.record(
        session,
        actor,
        "reading.on_call.create",
        "success",
        object_kind="reading_group",
        object_id=group.id,
        site_id=group.site_id,
        detail={"kind": kind},
    )
    return line


def list_on_call(session: Session, group_id: int | None = None) -> Sequence[ReadingOnCall]:
    """The on-call lines (of one group), in the order they were added."""
    query = select(ReadingOnCall).order_by(ReadingOnCall.id)
    if group_id is not None:
        query = query.where(ReadingOnCall.group_id == group_id)
    return session.execute(query).scalars().all()


def add_rule(
    session: Session,
    actor: audit.Actor,
    *,
    name: str,
    site_id: int,
    group: ReadingGroup,
    modality: str = "",
    priority: int = 100,
    on_call_only: bool = True,
) -> ReadingRoutingRule:
    """Exams of the site (of the modality) go to the group while on call (or always)."""
    name = _clean_name(name)
    modality = modality.strip().upper()
    if len(modality) > 16 or not re.fullmatch(r"[A-Z0-9_]*", modality):
        raise InvalidInput(_("modality: up to 16 letters or digits, e.g. CT"))
    if session.execute(
        select(ReadingRoutingRule.id).where(ReadingRoutingRule.name == name)
    ).first():
        raise Conflict(_("a routing rule with this name already exists"))
    rule = ReadingRoutingRule(
        name=name,
        site_id=site_id,
        group_id=group.id,
        modality=modality,
        priority=priority,
        on_call_only=on_call_only,
    )
    session.add(rule)
    session.flush()
    audit.record(
        session,
        actor,
        "reading.rule.create",
        "success",
        object_kind="reading_rule",
        object_id=rule.id,
        site_id=site_id,
        detail={"name": name, "group": group.name, "modality": modality},
    )
    return rule


def list_rules(session: Session) -> Sequence[ReadingRoutingRule]:
    """Every routing rule, in the order they are tried."""
    return (
        session.execute(
            select(ReadingRoutingRule).order_by(ReadingRoutingRule.priority, ReadingRoutingRule.id)
        )
        .scalars()
        .all()
    )


def remove_rule(session: Session, actor: audit.Actor, name: str) -> None:
    """Forget a routing rule."""
    rule = session.execute(
        select(ReadingRoutingRule).where(ReadingRoutingRule.name == name.strip())
    ).scalar_one_or_none()
    if rule is None:
        raise NotFound(_("no routing rule named %(name)s") % {"name": name.strip()})
    audit.record(
        session,
        actor,
        "reading.rule.delete",
        "success",
        object_kind="reading_rule",
        object_id=rule.id,
        site_id=rule.site_id,
    )
    session.delete(rule)
    session.flush()


def _time(value: str) -> time:
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def _entry(line: ReadingOnCall, group: str) -> RotaEntry:
    if line.kind == "night":
        return NightShift(
            group,
            _time(line.start_time),
            _time(line.end_time),
            frozenset(int(day) for day in line.weekdays),
        )
    if line.kind == "weekend":
        return WeekendShift(
            group,
            SATURDAY if line.start_weekday is None else line.start_weekday,
            _time(line.start_time),
            MONDAY if line.end_weekday is None else line.end_weekday,
            _time(line.end_time),
        )
    if line.kind == "holiday":
        return HolidayShift(group, _time(line.start_time), _time(line.end_time))
    if line.starts_at is None or line.ends_at is None:
        raise ValueError("a fixed period needs its start and its end")
    return FixedPeriod(group, line.starts_at, line.ends_at)


def site_zone(site: Site) -> ZoneInfo:
    """The zone of a site's clocks (Europe/Paris when its zone is unknown)."""
    try:
        return ZoneInfo(site.timezone or "Europe/Paris")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("Europe/Paris")


def build_rota(session: Session, site: Site) -> Rota:
    """Every group's on-call lines as one rota, in the site's zone and public holidays.

    Groups are named by their id (as text) in the rota and the routing table."""
    names = {
        row.id: row.name for row in session.execute(select(ReadingGroup.id, ReadingGroup.name))
    }
    entries = tuple(
        _entry(line, str(line.group_id)) for line in list_on_call(session) if line.group_id in names
    )
    region = site.holiday_region or holidays.METROPOLITAN

    def is_holiday(day: date) -> bool:
        return holidays.holiday_on(day, region) is not None

    return Rota(entries, zone=site_zone(site), holidays=is_holiday)


def build_table(session: Session) -> RoutingTable:
    """The stored rules and the local group of every site, groups named by their id."""
    rules = tuple(
        RoutingRule(
            name=rule.name,
            site=str(rule.site_id),
            group=str(rule.group_id),
            modality=rule.modality or None,
            priority=rule.priority,
            on_call_only=rule.on_call_only,
        )
        for rule in list_rules(session)
    )
    local = {
        str(row.site_id): str(row.id)
        for row in session.execute(
            select(ReadingGroup.id, ReadingGroup.site_id).where(ReadingGroup.local)
        )
    }
    return RoutingTable(rules, local)

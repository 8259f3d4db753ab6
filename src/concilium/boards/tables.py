"""Tables of the boards: each board with its schedule and quorum rules, its member sites,
its members, and the meetings generated from its schedule.

A board's schedule is kept as the fields of a :class:`~concilium.platform.recurrence.Recurrence`
(weekday, local time, IANA zone, duration, holiday region and policy), and its quorum as the
data of :class:`~concilium.boards.quorum.QuorumRules`; :mod:`concilium.boards.registry`
turns a row into those objects. A meeting's key (:func:`~concilium.boards.schedule.meeting_key`)
is unique, so generating the meetings again adds none twice.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Date, ForeignKey, Integer, String, Time, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from concilium.platform.db import Base, UTCDateTime, utcnow

__all__ = ["Board", "BoardMeeting", "BoardMember", "BoardSite"]


class Board(Base):
    """A multidisciplinary meeting (RCP), run by its organising site."""

    __tablename__ = "boards"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    """Stable lower-case code (``rcp-hemato-ouest``); names its meetings' keys."""
    name: Mapped[str] = mapped_column(String(200))
    board_type: Mapped[str] = mapped_column(String(32))
    """``haematology``, ``solid_tumour`` or ``other``: which rules it starts from."""
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), index=True)
    """The organising site, whose administrators and coordinators manage the board."""
    starts_on: Mapped[dt.date] = mapped_column(Date)
    """First day the board may meet."""
    until: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    """Last day the board may meet, if it stops."""
    weekday: Mapped[int] = mapped_column(Integer)
    """Day of the week it meets on, 0 for Monday."""
    at: Mapped[dt.time] = mapped_column(Time)
    """Local wall-clock start time."""
    timezone: Mapped[str] = mapped_column(String(64))
    """IANA time zone of ``at``."""
    duration_minutes: Mapped[int] = mapped_column(Integer)
    interval_weeks: Mapped[int] = mapped_column(Integer, default=1)
    """Every how many weeks it meets."""
    holiday_region: Mapped[str | None] = mapped_column(String(32), nullable=True)
    """Region whose public holidays apply; None ignores holidays."""
    on_holiday: Mapped[str] = mapped_column(String(32))
    """A :class:`~concilium.platform.recurrence.HolidayPolicy` value."""
    min_specialties: Mapped[int] = mapped_column(Integer, default=3)
    """Fewest distinct specialties for a decision."""
    required_specialties: Mapped[list[Any]] = mapped_column(JSON, default=list)
    """Specialties that must be among them: a list of requirements, each a list of the
    specialty codes that meet it."""
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class BoardSite(Base):
    """A hospital taking part in a board (its physicians present cases there)."""

    __tablename__ = "board_sites"
    __table_args__ = (UniqueConstraint("board_id", "site_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    board_id: Mapped[int] = mapped_column(ForeignKey("boards.id", ondelete="CASCADE"), index=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), index=True)


class BoardMember(Base):
    """A person of a board, with the specialties they may count for and their role."""

    __tablename__ = "board_members"
    __table_args__ = (UniqueConstraint("board_id", "user_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    board_id: Mapped[int] = mapped_column(ForeignKey("boards.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    specialties: Mapped[list[Any]] = mapped_column(JSON, default=list)
    """Specialty codes (``haematology``); one physician counts for one of them only."""
    role: Mapped[str] = mapped_column(String(16), default="member")
    """``member``, ``coordinator`` (builds agendas, invites) or ``facilitator`` (runs the
    meeting, validates attendance and decisions)."""
    added_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class BoardMeeting(Base):
    """One meeting of a board, generated from its schedule."""

    __tablename__ = "board_meetings"
    __table_args__ = (UniqueConstraint("key"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    board_id: Mapped[int] = mapped_column(ForeignKey("boards.id", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(String(64))
    """``<board code>.<day the schedule gives>``: stable when a holiday moves the meeting."""
    scheduled_day: Mapped[dt.date] = mapped_column(Date)
    starts_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    ends_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16), default="planned")
    """``planned``, or ``cancelled`` when the schedule no longer gives it."""
    moved_for: Mapped[str] = mapped_column(String(64), default="")
    """The public holiday it was moved away from, if any."""

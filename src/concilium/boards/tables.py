"""Tables of the boards: each board with its schedule and quorum rules, its member sites,
its members, and the meetings generated from its schedule.

Cases presented to a board (:class:`BoardCase`) keep their structured summary, the
documents attached (bytes in the database, in the same transaction as the case and its
audit entry), the studies of the archive chosen for them (by Study Instance UID) and every
change of state (:class:`BoardCaseTransition`).

A board's schedule is kept as the fields of a :class:`~concilium.platform.recurrence.Recurrence`
(weekday, local time, IANA zone, duration, holiday region and policy), and its quorum as the
data of :class:`~concilium.boards.quorum.QuorumRules`; :mod:`concilium.boards.registry`
turns a row into those objects. A meeting's key (:func:`~concilium.boards.schedule.meeting_key`)
is unique, so generating the meetings again adds none twice.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    Time,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from concilium.platform.db import Base, UTCDateTime, utcnow

__all__ = [
    "Board",
    "BoardCalendarToken",
    "BoardCase",
    "BoardCaseDocument",
    "BoardCaseStudy",
    "BoardCaseTransition",
    "BoardMeeting",
    "BoardMeetingView",
    "BoardMember",
    "BoardSite",
]


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
    records_without_discussion: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false()
    )
    """The board's charter lets a case within guidelines be recorded without discussion."""
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
    sequence: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    """The revision of its calendar event (iCalendar SEQUENCE, RFC 5545 3.8.7.4): one up
    each time it is moved or cancelled."""


class BoardCase(Base):
    """A patient's case presented to a board by a referring physician."""

    __tablename__ = "board_cases"
    # A board's cases waiting to be listed, found among its thousands decided.
    __table_args__ = (Index("ix_board_cases_board_id_status", "board_id", "status"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    board_id: Mapped[int] = mapped_column(ForeignKey("boards.id", ondelete="CASCADE"), index=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    """The platform patient."""
    referrer_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    """The referring physician, who prepares and submits it."""
    question: Mapped[str] = mapped_column(Text, default="")
    diagnosis: Mapped[str] = mapped_column(Text, default="")
    histology: Mapped[str] = mapped_column(Text, default="")
    stage: Mapped[str] = mapped_column(String(200), default="")
    performance_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    """WHO/ECOG 0 to 4, None until given."""
    history: Mapped[str] = mapped_column(Text, default="")
    current_treatment: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default="draft", index=True)
    """A :class:`~concilium.boards.cases.CaseStatus` value."""
    meeting_id: Mapped[int | None] = mapped_column(
        ForeignKey("board_meetings.id"), nullable=True, index=True
    )
    """The meeting it is listed on, or was decided or recorded at."""
    agenda_order: Mapped[int] = mapped_column(Integer, default=0)
    """Place on its meeting's agenda, smallest first."""
    minutes: Mapped[int] = mapped_column(Integer, default=10)
    """Estimated time to present and discuss it."""
    specialties_needed: Mapped[list[Any]] = mapped_column(JSON, default=list)
    """Specialty codes this case needs beyond the board's quorum rules."""
    within_guidelines: Mapped[bool] = mapped_column(Boolean, default=False)
    """The referring physician deems it within guidelines: it may be recorded without
    discussion where the board's charter allows it."""
    postponements: Mapped[int] = mapped_column(Integer, default=0)
    gp_email: Mapped[str] = mapped_column(String(200), default="")
    """The patient's general practitioner's address, who gets the fiche RCP; empty if none."""
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    submitted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class BoardCaseDocument(Base):
    """A document attached to a case (PDF, PNG or JPEG), its bytes kept here."""

    __tablename__ = "board_case_documents"
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(
        ForeignKey("board_cases.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(32))
    """``pathology_report``, ``imaging_report``, ``letter``, ``other``."""
    filename: Mapped[str] = mapped_column(String(200))
    media_type: Mapped[str] = mapped_column(String(64))
    """Found from the bytes, never taken from the sender."""
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    content: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    """The bytes, loaded only when the document is opened."""
    added_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    added_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class BoardCaseStudy(Base):
    """A study of the archive chosen for a case, with what the archive told of it then."""

    __tablename__ = "board_case_studies"
    __table_args__ = (UniqueConstraint("case_id", "study_instance_uid"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(
        ForeignKey("board_cases.id", ondelete="CASCADE"), index=True
    )
    study_instance_uid: Mapped[str] = mapped_column(String(64))
    study_date: Mapped[str] = mapped_column(String(8), default="")
    """DICOM DA, as the archive answered."""
    description: Mapped[str] = mapped_column(String(200), default="")
    modalities: Mapped[str] = mapped_column(String(64), default="")
    added_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class BoardCaseTransition(Base):
    """One change of state of a case: who, when, from what to what, and why."""

    __tablename__ = "board_case_transitions"
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(
        ForeignKey("board_cases.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    """Who; None for the system (a case re-listed by itself)."""
    event: Mapped[str] = mapped_column(String(32))
    """The event's stable name (``postpone``)."""
    from_status: Mapped[str] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    meeting_id: Mapped[int | None] = mapped_column(ForeignKey("board_meetings.id"), nullable=True)
    """The meeting the case is on afterwards."""
    detail: Mapped[str] = mapped_column(Text, default="")
    """The reason or guideline given."""


class BoardAttendance(Base):
    """One stretch of presence of one person at a meeting: a person who leaves and comes
    back has several. Recorded on the meeting page by the facilitator, who validates it
    (the live room's feed will add rows awaiting validation)."""

    __tablename__ = "board_attendance"
    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(
        ForeignKey("board_meetings.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    joined_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    left_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    """None while still there."""
    validated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    """The facilitator who validated the stretch; None while not validated (not counted)."""
    validated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)


class BoardMeetingView(Base):
    """The synchronised image view of a meeting as it stands (one row a meeting): who
    presents and what they show (:class:`~concilium.boards.view_sync.RoomView`), kept so
    that every process and every latecomer sees the same."""

    __tablename__ = "board_meeting_views"
    meeting_id: Mapped[int] = mapped_column(
        ForeignKey("board_meetings.id", ondelete="CASCADE"), primary_key=True
    )
    presenter_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    view: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    """``View.to_json`` of what the presenter shows; None before anything is shown."""
    version: Mapped[int] = mapped_column(Integer, default=0)
    """Changes so far (each view and each hand-over counts one)."""
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class BoardDiscussion(Base):
    """A case taken up at a meeting: its discussion starts then, and only who is present
    from that instant to the decision counts for its quorum."""

    __tablename__ = "board_discussions"
    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(
        ForeignKey("board_meetings.id", ondelete="CASCADE"), index=True
    )
    case_id: Mapped[int] = mapped_column(
        ForeignKey("board_cases.id", ondelete="CASCADE"), index=True
    )
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    started_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))


class BoardDecision(Base):
    """A board's validated decision on a case (version 1) and its addenda (2, 3, ...):
    never changed once written; each version is signed by the facilitator's second factor
    and chained to the one before by its digest."""

    __tablename__ = "board_decisions"
    __table_args__ = (UniqueConstraint("case_id", "version"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(
        ForeignKey("board_cases.id", ondelete="CASCADE"), index=True
    )
    version: Mapped[int] = mapped_column(Integer)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("board_meetings.id"))
    proposal: Mapped[str] = mapped_column(Text)
    """The collective proposal: the treatment plan."""
    guideline: Mapped[str] = mapped_column(Text)
    """The guideline or reference used."""
    outside_guidelines: Mapped[bool] = mapped_column(Boolean, default=False)
    justification: Mapped[str] = mapped_column(Text, default="")
    """Why the proposal departs from the guidelines (required when it does)."""
    trial: Mapped[str] = mapped_column(Text, default="")
    """A clinical trial proposed, if any."""
    further_exams: Mapped[str] = mapped_column(Text, default="")
    """Further examinations asked for, if any."""
    represent: Mapped[bool] = mapped_column(Boolean, default=False)
    """The case is to be presented again once they are done."""
    referent_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    """The physician who follows the patient up."""
    reason: Mapped[str] = mapped_column(Text, default="")
    """What an addendum corrects; empty for the decision itself."""
    participants: Mapped[list[Any]] = mapped_column(JSON, default=list)
    """Who was present throughout the discussion: ``{"user": id, "specialty": code}``,
    the specialty empty for those who did not count."""
    discussion_started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    signed_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    signed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    digest: Mapped[str] = mapped_column(String(64))
    """SHA-256 of this version's content and the previous version's digest."""
    fiche_pdf: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True, deferred=True)
    """The fiche RCP of this version, as sent."""


class BoardCalendarToken(Base):
    """The secret of a member's calendar feed (the address a calendar client subscribes
    to), kept only as its SHA-256; revoked when its holder asks or makes a new one."""

    __tablename__ = "board_calendar_tokens"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)

"""Tables of the live service: sessions, who is invited in which role, sources, cameras,
chat and questions, telestration strokes, program switches, recordings.

Rooms, credentials and the director lock live in memory next to Janus
(:mod:`concilium.live.media`, :mod:`concilium.live.ptz`); what is kept here is what must
outlive a restart and what the audit and the VOD library will need.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from concilium.platform.db import Base, UTCDateTime, utcnow


class LiveSession(Base):
    """A supervision, a broadcast or a conference, owned by the site that runs it."""

    __tablename__ = "live_sessions"
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    """``supervision``, ``broadcast`` or ``conference``."""
    title: Mapped[str] = mapped_column(String(200))
    """Shown to every invitee; never names the patient (checked on creation)."""
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), index=True)
    scheduled_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    status: Mapped[str] = mapped_column(String(16), default="scheduled")
    """``scheduled``, ``live`` or ``ended``."""
    patient_id: Mapped[int | None] = mapped_column(
        ForeignKey("patients.id"), nullable=True, index=True
    )
    """The patient shown, if any: broadcasting or recording then needs teaching consent."""
    record: Mapped[bool] = mapped_column(Boolean, default=False)
    """Whether Janus records the room while the session is live."""
    janus_room_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True, unique=True)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class LiveParticipant(Base):
    """A person invited to a session, with their role in it (director, moderator, ...)."""

    __tablename__ = "live_participants"
    __table_args__ = (UniqueConstraint("session_id", "user_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(
        ForeignKey("live_sessions.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    role: Mapped[str] = mapped_column(String(16))
    share_id: Mapped[int | None] = mapped_column(ForeignKey("shares.id"), nullable=True)
    """The share that lets an invitee of another site in (platform ``sharing``)."""
    invited_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    invited_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    joined_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    left_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class LiveSource(Base):
    """A named picture the director can put on program."""

    __tablename__ = "live_sources"
    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(
        ForeignKey("live_sessions.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(16))
    """``camera``, ``capture`` (a capture device) or ``screen`` (sent by a browser),
    ``ip_camera`` or ``dicom_cine`` (fed by Concilium)."""
    reference: Mapped[str] = mapped_column(String(500), default="")
    """URL of an IP camera with its password masked (``rtsp://user:***@host/...``), or
    ``study/series`` UIDs of a DICOM cine loop: what pages and answers show."""
    sealed_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    """The IP camera's full URL, credentials included, sealed with the installation's key
    (``platform.encryption``); None when it carries no credentials."""
    added_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    """Who added the source: a cine loop is authorised as this person, not the organiser."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class LiveCamera(Base):
    """A PTZ camera of a session, driven over VISCA over IP."""

    __tablename__ = "live_cameras"
    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(
        ForeignKey("live_sessions.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(100))
    host: Mapped[str] = mapped_column(String(255))
    port: Mapped[int] = mapped_column(Integer)
    visca_address: Mapped[int] = mapped_column(Integer, default=1)
    """Camera address on its VISCA chain (1..7)."""
    source_id: Mapped[int | None] = mapped_column(
        ForeignKey("live_sources.id", ondelete="SET NULL"), nullable=True
    )
    """The source showing this camera's picture, if any."""


class LiveMessage(Base):
    """A chat line or an audience question; questions go through moderation."""

    __tablename__ = "live_messages"
    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(
        ForeignKey("live_sessions.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    kind: Mapped[str] = mapped_column(String(16))
    """``chat`` or ``question``."""
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    """Chat: ``posted``. Question: ``submitted``, ``approved``, ``rejected``, ``answered``
    or ``merged``."""
    merged_into_id: Mapped[int | None] = mapped_column(
        ForeignKey("live_messages.id"), nullable=True
    )
    answer: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class LiveStroke(Base):
    """One telestration stroke drawn over a source, kept with the session."""

    __tablename__ = "live_strokes"
    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(
        ForeignKey("live_sessions.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    source_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    color: Mapped[str] = mapped_column(String(7))
    width: Mapped[int] = mapped_column(Integer)
    points: Mapped[list[Any]] = mapped_column(JSON)
    """``[[x, y], ...]`` in 0..1 of the picture's width and height."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class LiveRecording(Base):
    """One recorded source of a session, post-processed into a file the library plays."""

    __tablename__ = "live_recordings"
    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(
        ForeignKey("live_sessions.id", ondelete="CASCADE"), index=True
    )
    feed: Mapped[int] = mapped_column(BigInteger)
    """Janus publisher id whose media this is (what program switches name)."""
    path: Mapped[str] = mapped_column(String(500))
    """File relative to the data dir (``live/recordings/<session>/<name>``)."""
    media_type: Mapped[str] = mapped_column(String(32))
    """``video/mp4`` or ``video/webm`` (VP8 cannot go in MP4 without re-encoding)."""
    video_codec: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    """Wall-clock time of the recording's first frame: chapter offsets count from here."""
    duration: Mapped[float] = mapped_column(Float)
    """Seconds."""
    chapters: Mapped[list[Any]] = mapped_column(JSON)
    """``[{"at": seconds, "kind": "program"|"question", "label": str}, ...]``."""
    telestration: Mapped[list[Any]] = mapped_column(JSON, default=list)
    """The session's strokes drawn while this recording ran, in time order:
    ``[{"at": seconds, "points": [[x, y], ...], "color": str, "width": int}, ...]``; a
    stroke without points wipes what was drawn before it (migration
    ``0008_live_recording_telestration``)."""
    source: Mapped[str] = mapped_column(String(200), default="", server_default="")
    """The name its feed published under (the person's), empty for the program."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class LiveProgramSwitch(Base):
    """The director put a feed on program: what the audience watched from then on."""

    __tablename__ = "live_program_switches"
    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(
        ForeignKey("live_sessions.id", ondelete="CASCADE"), index=True
    )
    feed: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    """Janus publisher id put on program; None when the program was cleared."""
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    """Who switched (None for switches carried over from the audit trail without one)."""
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    """When the switch was made: recordings place their chapters from it."""

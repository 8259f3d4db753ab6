"""Tables of the telesurgery service: procedures, their two gateways, the key sets issued to
them, link qualification reports and the procedure timeline.

Key material never lands here: the key files are written for the gateways only (mode 0600,
:func:`concilium.telesurgery.link.write_keys`); the database keeps which key set was issued,
when, and whether it was revoked.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from concilium.platform.db import Base, UTCDateTime, utcnow


class Procedure(Base):
    """A telesurgical procedure: a surgeon at the console site drives a robot at another."""

    __tablename__ = "telesurgery_procedures"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    """Shown to both sites; never names the patient."""
    console_site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), index=True)
    robot_site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), index=True)
    surgeon_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    local_team_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    """Users at the robot site who confirm engagement and may take over."""
    robot_name: Mapped[str] = mapped_column(String(100))
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    thresholds: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    """Per-procedure sections ``safety``, ``limits`` and ``qualification`` (as in the file)."""
    status: Mapped[str] = mapped_column(String(16), default="planned")
    """``planned``, ``started`` or ``ended``."""
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    """None when done by an operator at the command line."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    live_session_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    """The live session whose video the surgeon sees next to the link state (the live service
    owns it and decides who may watch it)."""


class EnrolledGateway(Base):
    """One of the two gateways of a procedure, with the hash of its enrolment token."""

    __tablename__ = "telesurgery_gateways"
    __table_args__ = (UniqueConstraint("procedure_id", "role"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    procedure_id: Mapped[int] = mapped_column(
        ForeignKey("telesurgery_procedures.id", ondelete="CASCADE"), index=True
    )
    role: Mapped[str] = mapped_column(String(8))
    """``console`` or ``robot``."""
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"))
    public_name: Mapped[str] = mapped_column(String(255))
    """Where the peer reaches this gateway's link (host:port as seen from the WAN)."""
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    """SHA-256 of the enrolment token the gateway presents when it reports its timeline."""
    enrolled_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    """None when done by an operator at the command line."""
    enrolled_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class IssuedKey(Base):
    """A key set issued to both gateways of a procedure; the material is not stored."""

    __tablename__ = "telesurgery_keys"
    __table_args__ = (UniqueConstraint("procedure_id", "key_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    procedure_id: Mapped[int] = mapped_column(
        ForeignKey("telesurgery_procedures.id", ondelete="CASCADE"), index=True
    )
    key_id: Mapped[int] = mapped_column(Integer)
    """The key set identifier carried in every link datagram."""
    issued_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    """None when done by an operator at the command line."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class QualificationRecord(Base):
    """A link qualification run for a procedure, with its verdict and its HTML report."""

    __tablename__ = "telesurgery_qualifications"
    id: Mapped[int] = mapped_column(primary_key=True)
    procedure_id: Mapped[int] = mapped_column(
        ForeignKey("telesurgery_procedures.id", ondelete="CASCADE"), index=True
    )
    measured_at: Mapped[datetime] = mapped_column(UTCDateTime)
    passed: Mapped[bool] = mapped_column(Boolean)
    profile: Mapped[str] = mapped_column(String(64))
    verdict: Mapped[dict[str, Any]] = mapped_column(JSON)
    """The report's JSON form (criteria, thresholds, measurements)."""
    html_path: Mapped[str] = mapped_column(Text)
    """The HTML report, relative to the data directory."""
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)


class TimelineEntry(Base):
    """Something that happened during a procedure: a state transition, an alarm, a refusal."""

    __tablename__ = "telesurgery_timeline"
    id: Mapped[int] = mapped_column(primary_key=True)
    procedure_id: Mapped[int] = mapped_column(
        ForeignKey("telesurgery_procedures.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    source: Mapped[str] = mapped_column(String(16))
    """``console``, ``robot`` (a gateway) or ``platform``."""
    kind: Mapped[str] = mapped_column(String(16))
    """``transition``, ``alarm``, ``refusal`` or ``procedure``."""
    state: Mapped[str] = mapped_column(String(16), default="")
    """The safety state after a transition."""
    detail: Mapped[str] = mapped_column(Text, default="")

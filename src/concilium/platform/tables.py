"""Tables of the trust layer: sites, users, sessions, tokens, patients, consent, shares, audit.

Each service keeps its own tables in its own package, declared in its descriptor.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from concilium.platform.db import Base, UTCDateTime, utcnow


class Site(Base):
    """A hospital (or any care site) of the region."""

    __tablename__ = "sites"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    finess: Mapped[str] = mapped_column(String(9), unique=True)
    """National establishment identifier (FINESS: nine digits)."""
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    timezone: Mapped[str] = mapped_column(String(64), default="Europe/Paris")
    """IANA zone of the site: its people read and enter times in it."""
    holiday_region: Mapped[str] = mapped_column(String(32), default="FR")
    """Which public holidays it keeps (``concilium.platform.holidays.REGIONS``)."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class User(Base):
    """A person (or a machine account) who signs in to Concilium."""

    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    full_name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(200), default="")
    profession: Mapped[str] = mapped_column(String(100), default="")
    specialty: Mapped[str] = mapped_column(String(100), default="")
    rpps: Mapped[str | None] = mapped_column(String(11), unique=True, nullable=True)
    """Practitioner identifier (RPPS: eleven digits)."""
    password_hash: Mapped[str] = mapped_column(String(200))
    totp_secret: Mapped[str | None] = mapped_column(Text, nullable=True)
    """Second-factor secret, encrypted at rest."""
    totp_last_step: Mapped[int | None] = mapped_column(Integer, nullable=True)
    """Last accepted TOTP time step; a code is never accepted twice."""
    is_platform_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    """Wrong passwords since the last right one."""
    mfa_failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    """Wrong second-factor codes since the last right one, across sign-ins."""
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    locale: Mapped[str | None] = mapped_column(String(8), nullable=True)
    """Language of the interface the person chose (None: their browser's)."""
    timezone: Mapped[str | None] = mapped_column(String(64), nullable=True)
    """IANA zone the person reads times in (None: their site's)."""
    memberships: Mapped[list[Membership]] = relationship(
        back_populates="user", cascade="all, delete-orphan", lazy="selectin"
    )


class Membership(Base):
    """A role a user holds at a site."""

    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("user_id", "site_id", "role"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), index=True)
    role: Mapped[str] = mapped_column(String(32))
    user: Mapped[User] = relationship(back_populates="memberships")


class WebSession(Base):
    """A signed-in browser; only the hash of its cookie value is stored."""

    __tablename__ = "web_sessions"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    csrf_token: Mapped[str] = mapped_column(String(64))
    mfa_verified: Mapped[bool] = mapped_column(Boolean, default=False)
    ip: Mapped[str] = mapped_column(String(64), default="")


class LoginAttempt(Base):
    """A login attempt, kept to throttle by address."""

    __tablename__ = "login_attempts"
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    ip: Mapped[str] = mapped_column(String(64), index=True)
    success: Mapped[bool] = mapped_column(Boolean)


class ApiToken(Base):
    """A bearer token for a machine or a script, acting for its user within its scopes."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(16), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    secret_hash: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Patient(Base):
    """One person, known to one or more sites under their own identifiers."""

    __tablename__ = "patients"
    id: Mapped[int] = mapped_column(primary_key=True)
    family_name: Mapped[str] = mapped_column(String(100))
    given_name: Mapped[str] = mapped_column(String(100))
    birth_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    sex: Mapped[str] = mapped_column(String(1), default="U")
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("patients.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    identifiers: Mapped[list[PatientIdentifier]] = relationship(
        back_populates="patient", lazy="selectin", order_by="PatientIdentifier.id"
    )


class PatientIdentifier(Base):
    """A hospital's own identifier (IPP) for a patient."""

    __tablename__ = "patient_identifiers"
    __table_args__ = (UniqueConstraint("site_id", "value"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), index=True)
    value: Mapped[str] = mapped_column(String(64))
    patient: Mapped[Patient] = relationship(back_populates="identifiers")


class Consent(Base):
    """A consent or non-opposition decision of a patient for one purpose; the latest wins."""

    __tablename__ = "consents"
    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    purpose: Mapped[str] = mapped_column(String(32))
    decision: Mapped[str] = mapped_column(String(16))
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"))
    recorded_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    note: Mapped[str] = mapped_column(Text, default="")


class Share(Base):
    """An explicit, expiring grant of one resource to another site or to one person."""

    __tablename__ = "shares"
    id: Mapped[int] = mapped_column(primary_key=True)
    resource_kind: Mapped[str] = mapped_column(String(32))
    resource_id: Mapped[str] = mapped_column(String(128))
    to_site_id: Mapped[int | None] = mapped_column(ForeignKey("sites.id"), nullable=True)
    to_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    from_site_id: Mapped[int | None] = mapped_column(ForeignKey("sites.id"), nullable=True)
    """Site the share is granted from: a share of a patient grants what that site holds of
    them (its studies), never another site's; None grants the patient's demographics only."""
    granted_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class EmergencyGrant(Base):
    """A break-the-glass access to one patient: justified, time-boxed, alerted and audited."""

    __tablename__ = "emergency_grants"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"))
    justification: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Alert(Base):
    """Something an administrator must look at (break-the-glass, lockouts)."""

    __tablename__ = "alerts"
    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    kind: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    site_ids: Mapped[list[int]] = mapped_column(JSON)
    message: Mapped[str] = mapped_column(Text)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    acknowledged_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)


class AccountLink(Base):
    """A single-use, expiring link by which a person sets their password and enrols their
    second factor: set-up of a new account, or reset by an administrator. Only the hash of
    its secret is stored."""

    __tablename__ = "account_links"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    purpose: Mapped[str] = mapped_column(String(16))
    """``setup`` (a new account) or ``reset`` (password and second factor)."""
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    issued_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    """The administrator who issued it (None: the operator at the command line)."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    """When a newer link for the same account replaced it."""


class Notification(Base):
    """Something a person must know about their own account (a token issued for them, a
    reset link, a locked second factor), shown on their home page until dismissed."""

    __tablename__ = "notifications"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    kind: Mapped[str] = mapped_column(String(32))
    message: Mapped[str] = mapped_column(Text)
    dismissed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class AuditEvent(Base):
    """One entry of the append-only, hash-chained audit trail."""

    __tablename__ = "audit_events"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    actor_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    actor: Mapped[str] = mapped_column(String(64), default="")
    role: Mapped[str] = mapped_column(String(32), default="")
    site_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    patient_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    action: Mapped[str] = mapped_column(String(64), index=True)
    object_kind: Mapped[str] = mapped_column(String(32), default="")
    object_id: Mapped[str] = mapped_column(String(128), default="")
    outcome: Mapped[str] = mapped_column(String(24))
    ip: Mapped[str] = mapped_column(String(64), default="")
    detail: Mapped[str] = mapped_column(Text, default="")
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """The chain's tip; updating it first serialises writers on every backend."""

    __tablename__ = "audit_head"
    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(Integer)
    last_hash: Mapped[str] = mapped_column(String(64))


class OutboxMail(Base):
    """An e-mail that must leave, queued in the transaction of the action that caused it
    (``concilium.platform.outbox``)."""

    __tablename__ = "mail_outbox"
    __table_args__ = (Index("ix_mail_outbox_due", "state", "next_attempt_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(64))
    """What the message is (``account.notice``); never patient data."""
    site_id: Mapped[int | None] = mapped_column(ForeignKey("sites.id"), nullable=True, index=True)
    """The site the message concerns: its administrators see it (None: platform's only)."""
    recipients: Mapped[list[str]] = mapped_column(JSON)
    """Envelope recipients (addresses of people, for administrators to find a message)."""
    message_id: Mapped[str] = mapped_column(String(255), unique=True)
    """The Message-ID header: the same on every try, so a duplicate can be recognised."""
    payload: Mapped[str | None] = mapped_column(Text, nullable=True)
    """The message (subject, bodies, attachments) sealed with the installation's key;
    erased once sent or cancelled."""
    state: Mapped[str] = mapped_column(String(16))
    """pending, sending, sent, failed or cancelled."""
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    """Tries begun so far."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    """When it is next due: its next try while pending, the end of its lease while sending."""
    holder: Mapped[str | None] = mapped_column(String(128), nullable=True)
    """The process sending it (``host:pid:nonce``), while sending."""
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_error: Mapped[str] = mapped_column(String(500), default="")
    """Why the latest try failed: the relay's status codes or the network's error, never a
    recipient or any content."""
    events: Mapped[list[OutboxMailEvent]] = relationship(
        back_populates="mail",
        cascade="all, delete-orphan",
        order_by="OutboxMailEvent.id",
    )


class OutboxMailEvent(Base):
    """One change of state of a queued e-mail, kept for as long as the message."""

    __tablename__ = "mail_outbox_events"
    id: Mapped[int] = mapped_column(primary_key=True)
    mail_id: Mapped[int] = mapped_column(
        ForeignKey("mail_outbox.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    state: Mapped[str] = mapped_column(String(16))
    """The state entered."""
    cause: Mapped[str] = mapped_column(String(24))
    """What happened (``outbox.Cause``)."""
    attempt: Mapped[int] = mapped_column(Integer)
    """Tries begun when it was entered."""
    detail: Mapped[str] = mapped_column(String(500), default="")
    """The relay's status codes or the network's error, the process or the person acting;
    never a recipient or any content."""
    mail: Mapped[OutboxMail] = relationship(back_populates="events")

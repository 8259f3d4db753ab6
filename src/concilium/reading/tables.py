"""Tables of the teleradiology service: who may send HL7 for a site, every message in and
out, and the imaging orders with their scheduled procedure steps.

An order is one accession number of a site (IHE RAD TF-2: the accession the order filler
assigns); it holds the requested procedure and belongs to a platform patient. Its steps are
what a modality worklist shows (PS3.4 K.6): each with its station, modality, start and
status. The patient's name, identifier, birth date and sex are the platform's
(``patients``), never copied here, so that a merge or an identifier change is seen at once.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from concilium.platform.db import Base, UTCDateTime, utcnow

__all__ = [
    "CriticalFindingNotice",
    "HL7Message",
    "HL7Sender",
    "ImagingOrderRecord",
    "MergedIdentifier",
    "OutboundMessage",
    "PerformedStepRecord",
    "ReadingAssignment",
    "ReadingCredential",
    "ReadingGroup",
    "ReadingGroupMember",
    "ReadingOnCall",
    "ReadingReport",
    "ReadingReportVersion",
    "ReadingRoutingRule",
    "ReportTemplateRecord",
    "ResourceVersion",
    "ScheduledStepRecord",
    "StationRule",
]


class HL7Sender(Base):
    """A hospital system allowed to send HL7 messages for a site (MSH-3 and MSH-4)."""

    __tablename__ = "reading_hl7_senders"
    __table_args__ = (UniqueConstraint("application", "facility"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), index=True)
    """Site whose patients and orders its messages concern."""
    application: Mapped[str] = mapped_column(String(64))
    """Sending application, MSH-3 (its namespace ID or universal ID)."""
    facility: Mapped[str] = mapped_column(String(64))
    """Sending facility, MSH-4 (its namespace ID or universal ID)."""
    description: Mapped[str] = mapped_column(String(200), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    """An inactive sender is refused like an unregistered one."""
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    results_host: Mapped[str] = mapped_column(String(255), default="")
    """Host of the system's MLLP listener that receives results; empty: none."""
    results_port: Mapped[int | None] = mapped_column(nullable=True)
    """Its port."""
    images_available: Mapped[str] = mapped_column(String(8), default="none")
    """How it is told that an order's images are available
    (``concilium.reading.outbound.ImagesAvailable``): ``none``, ``orm``, ``omi``, ``oru``."""


class HL7Message(Base):
    """One message received or sent, kept raw for review.

    An inbound message and the acknowledgment answering it are two rows; the answer points
    at the message (``answers_id``). ``idempotency_key`` holds MSH-10 on the first message
    of a registered sender that was processed, so a repeat of it is recognised and answered
    with the same acknowledgment (``repeat_of_id``) without being processed again.
    """

    __tablename__ = "reading_hl7_messages"
    __table_args__ = (
        UniqueConstraint("sender_id", "idempotency_key"),
        Index("ix_reading_hl7_messages_site_at", "site_id", "at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    direction: Mapped[str] = mapped_column(String(3))
    """``in`` or ``out``."""
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    """When it was received or sent."""
    site_id: Mapped[int | None] = mapped_column(ForeignKey("sites.id"), nullable=True)
    """Site of its sender; None for a message of an unregistered sender."""
    sender_id: Mapped[int | None] = mapped_column(
        ForeignKey("reading_hl7_senders.id", ondelete="SET NULL"), nullable=True, index=True
    )
    sending_application: Mapped[str] = mapped_column(String(64), default="")
    """MSH-3 as read (when the header could be read)."""
    sending_facility: Mapped[str] = mapped_column(String(64), default="")
    """MSH-4 as read."""
    peer: Mapped[str] = mapped_column(String(64), default="")
    """Network address of the connection."""
    message_type: Mapped[str] = mapped_column(String(24), default="")
    """MSH-9, e.g. ``ORM^O01``."""
    control_id: Mapped[str] = mapped_column(String(199), default="")
    """MSH-10."""
    idempotency_key: Mapped[str | None] = mapped_column(String(199), nullable=True)
    """MSH-10 of a processed message of a registered sender; None otherwise."""
    ack_code: Mapped[str] = mapped_column(String(2), default="")
    """MSA-1 of the answer (on both rows): AA, AE or AR."""
    error: Mapped[str] = mapped_column(Text, default="")
    """Why it was refused (names fields, never patient data)."""
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    """The message as it travelled, without MLLP framing."""
    answers_id: Mapped[int | None] = mapped_column(
        ForeignKey("reading_hl7_messages.id"), nullable=True, index=True
    )
    """On an acknowledgment: the message it answers."""
    repeat_of_id: Mapped[int | None] = mapped_column(
        ForeignKey("reading_hl7_messages.id"), nullable=True
    )
    """On a repeated message: the first one with its control ID."""
    patient_id: Mapped[int | None] = mapped_column(
        ForeignKey("patients.id"), nullable=True, index=True
    )
    """Platform patient the message concerned, when processed (for the audit of reviews)."""


class ImagingOrderRecord(Base):
    """An imaging order of a site: one accession number (IHE RAD-4/RAD-13)."""

    __tablename__ = "reading_orders"
    __table_args__ = (UniqueConstraint("site_id", "accession_number"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), index=True)
    """Site that ordered it (the sender's)."""
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    """Platform patient (the survivor after a merge)."""
    issuer_of_patient_id: Mapped[str] = mapped_column(String(64), default="")
    """Assigning authority of the patient identifier (PID-3.4) as the order sent it."""
    accession_number: Mapped[str] = mapped_column(String(16))
    """OBR-18 (ORM) or IPC-1 (OMI); DICOM SH, 16 characters."""
    requested_procedure_id: Mapped[str] = mapped_column(String(16), default="")
    """OBR-19 or IPC-2 of the first step."""
    procedure_code: Mapped[str] = mapped_column(String(64), default="")
    """Requested procedure code (OBR-44, else OBR-4), component 1."""
    procedure_coding_system: Mapped[str] = mapped_column(String(64), default="")
    """Its coding scheme, component 3."""
    procedure_description: Mapped[str] = mapped_column(String(200), default="")
    """Its text, component 2."""
    study_instance_uid: Mapped[str] = mapped_column(String(64), default="")
    """IPC-3 or ZDS-1 when the hospital sent one; empty otherwise."""
    priority: Mapped[str] = mapped_column(String(1), default="R")
    """HL7 table 0027 code (S, A, R, P, C, T)."""
    referring_physician_name: Mapped[str] = mapped_column(String(200), default="")
    """PV1-8, as a DICOM person name (``family^given``)."""
    referring_physician_id: Mapped[str] = mapped_column(String(64), default="")
    requesting_physician_name: Mapped[str] = mapped_column(String(200), default="")
    """ORC-12 or OBR-16, as a DICOM person name."""
    requesting_physician_id: Mapped[str] = mapped_column(String(64), default="")
    reason: Mapped[str] = mapped_column(Text, default="")
    """Reason for study (OBR-31) or relevant clinical information (OBR-13)."""
    status: Mapped[str] = mapped_column(String(16), default="SCHEDULED", index=True)
    """``concilium.reading.orders.OrderStatus``."""
    order_control: Mapped[str] = mapped_column(String(2), default="NW")
    """ORC-1 of the last message that changed it."""
    scheduled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    """Start of the first step."""
    placer_order_number: Mapped[str] = mapped_column(String(64), default="")
    placer_issuer: Mapped[str] = mapped_column(String(64), default="")
    filler_order_number: Mapped[str] = mapped_column(String(64), default="")
    filler_issuer: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    steps: Mapped[list[ScheduledStepRecord]] = relationship(
        back_populates="order", lazy="selectin", order_by="ScheduledStepRecord.id"
    )


class ScheduledStepRecord(Base):
    """A scheduled procedure step of an order: one item of a modality worklist."""

    __tablename__ = "reading_scheduled_steps"
    __table_args__ = (
        UniqueConstraint("order_id", "requested_procedure_id", "step_id"),
        Index("ix_reading_scheduled_steps_station", "station_ae_title", "start_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("reading_orders.id"), index=True)
    requested_procedure_id: Mapped[str] = mapped_column(String(16))
    """Requested Procedure ID (0040,1001): IPC-2 or OBR-19."""
    step_id: Mapped[str] = mapped_column(String(16))
    """Scheduled Procedure Step ID (0040,0009): IPC-4 or OBR-20."""
    study_instance_uid: Mapped[str] = mapped_column(String(64), default="")
    """Study Instance UID of the step (IPC-3), or the order's."""
    modality: Mapped[str] = mapped_column(String(16), index=True)
    """Modality (0008,0060): IPC-5 or OBR-24."""
    station_ae_title: Mapped[str] = mapped_column(String(16), default="")
    """Scheduled Station AE Title (0040,0001): IPC-9, ORC-18 or the site's station rules."""
    station_name: Mapped[str] = mapped_column(String(16), default="")
    """Scheduled Station Name (0040,0010): IPC-7."""
    location: Mapped[str] = mapped_column(String(64), default="")
    """Scheduled Procedure Step Location (0040,0011): IPC-8."""
    start_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    """Scheduled Procedure Step Start Date and Time (0040,0002/0003)."""
    description: Mapped[str] = mapped_column(String(64), default="")
    """Scheduled Procedure Step Description (0040,0007): the protocol's text."""
    protocol_code: Mapped[str] = mapped_column(String(64), default="")
    """Scheduled Protocol Code Sequence (0040,0008) item: code value."""
    protocol_coding_system: Mapped[str] = mapped_column(String(64), default="")
    """Its coding scheme designator."""
    performing_physician_name: Mapped[str] = mapped_column(String(200), default="")
    """Scheduled Performing Physician's Name (0040,0006), when known."""
    status: Mapped[str] = mapped_column(String(16), default="SCHEDULED", index=True)
    """``concilium.reading.orders.OrderStatus``: from the orders, then from MPPS."""
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    order: Mapped[ImagingOrderRecord] = relationship(back_populates="steps")


class MergedIdentifier(Base):
    """An identifier of a site that an ADT^A40 merged away: messages still sent with it
    reach the surviving patient, never a new record."""

    __tablename__ = "reading_merged_identifiers"
    __table_args__ = (UniqueConstraint("site_id", "value"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"))
    value: Mapped[str] = mapped_column(String(64))
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    """The surviving patient."""
    merged_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class StationRule(Base):
    """Which modality station of a site performs a procedure, when the order names none:
    a rule with the procedure code wins over one with the modality only."""

    __tablename__ = "reading_station_rules"
    __table_args__ = (UniqueConstraint("site_id", "modality", "procedure_code"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), index=True)
    modality: Mapped[str] = mapped_column(String(16), default="")
    """Modality the rule applies to; empty for any."""
    procedure_code: Mapped[str] = mapped_column(String(64), default="")
    """Requested procedure code the rule applies to; empty for any."""
    station_ae_title: Mapped[str] = mapped_column(String(16))
    """Scheduled Station AE Title to give the step."""


class PerformedStepRecord(Base):
    """A Modality Performed Procedure Step of a site (PS3.4 F.7): what a modality said it
    did, by N-CREATE and N-SET. Its SOP Instance UID is unique within the site (a node sees
    and changes its own site's steps only); every attribute it was given is kept so that an
    N-SET applies to the whole instance."""

    __tablename__ = "reading_performed_steps"
    __table_args__ = (UniqueConstraint("site_id", "sop_instance_uid"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), index=True)
    """Site of the node that created it."""
    sop_instance_uid: Mapped[str] = mapped_column(String(64))
    """Affected SOP Instance UID of the N-CREATE."""
    status: Mapped[str] = mapped_column(String(16), index=True)
    """Performed Procedure Step Status (0040,0252): IN PROGRESS, COMPLETED, DISCONTINUED."""
    step_id: Mapped[str] = mapped_column(String(16), default="")
    """Performed Procedure Step ID (0040,0253)."""
    station_ae_title: Mapped[str] = mapped_column(String(16), default="")
    """Performed Station AE Title (0040,0241)."""
    modality: Mapped[str] = mapped_column(String(16), default="")
    attributes: Mapped[str] = mapped_column(Text)
    """Every attribute of the instance as created and set, in the DICOM JSON model (PS3.18
    F.2)."""
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    """When the N-CREATE was accepted."""
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    """When it last changed."""
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    """When an N-SET made it COMPLETED or DISCONTINUED (after which it never changes)."""


class ReadingGroup(Base):
    """A group of radiologists reading together, owned by a site. The site's local group
    (``local``, at most one per site) reads its exams that no routing rule sends elsewhere."""

    __tablename__ = "reading_groups"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), index=True)
    """Site that owns the group (its administrators manage it)."""
    local: Mapped[bool] = mapped_column(Boolean, default=False)
    """The group reading the owning site's exams when no rule applies."""
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class ReadingGroupMember(Base):
    """A platform user reading in a group."""

    __tablename__ = "reading_group_members"
    __table_args__ = (UniqueConstraint("group_id", "user_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    group_id: Mapped[int] = mapped_column(
        ForeignKey("reading_groups.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)


class ReadingCredential(Base):
    """A site whose exams a member of a group is credentialed to read."""

    __tablename__ = "reading_credentials"
    __table_args__ = (UniqueConstraint("member_id", "site_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    member_id: Mapped[int] = mapped_column(
        ForeignKey("reading_group_members.id", ondelete="CASCADE"), index=True
    )
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"))


class ReadingOnCall(Base):
    """One line of a group's on-call rota (``concilium.reading.rota``): a night, weekend or
    holiday shift in local wall-clock time, or a fixed period between two instants."""

    __tablename__ = "reading_on_call"
    id: Mapped[int] = mapped_column(primary_key=True)
    group_id: Mapped[int] = mapped_column(
        ForeignKey("reading_groups.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(8))
    """``night``, ``weekend``, ``holiday`` or ``fixed``."""
    start_time: Mapped[str] = mapped_column(String(5), default="")
    """Local ``HH:MM`` it begins (night, weekend; the eve's evening for a holiday)."""
    end_time: Mapped[str] = mapped_column(String(5), default="")
    """Local ``HH:MM`` it ends (night, weekend; the morning after for a holiday)."""
    weekdays: Mapped[str] = mapped_column(String(7), default="")
    """Night: the weekdays it begins, as digits (Monday 0)."""
    start_weekday: Mapped[int | None] = mapped_column(nullable=True)
    """Weekend: weekday it begins."""
    end_weekday: Mapped[int | None] = mapped_column(nullable=True)
    """Weekend: weekday it ends."""
    starts_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    """Fixed period: first instant."""
    ends_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    """Fixed period: first instant after it."""


class ReadingRoutingRule(Base):
    """Exams of a site (of a modality) go to a group while it is on call, or at any time
    (``concilium.reading.routing.RoutingRule``)."""

    __tablename__ = "reading_routing_rules"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), index=True)
    """Site whose exams it takes."""
    modality: Mapped[str] = mapped_column(String(16), default="")
    """Only this modality; empty for any."""
    group_id: Mapped[int] = mapped_column(
        ForeignKey("reading_groups.id", ondelete="CASCADE"), index=True
    )
    priority: Mapped[int] = mapped_column(default=100)
    """Lower numbers are tried first."""
    on_call_only: Mapped[bool] = mapped_column(Boolean, default=True)


class ReadingAssignment(Base):
    """The reading group an order was routed to, and who holds it for reading.

    ``claimed_by_id`` is set by one conditional UPDATE (only while it is empty), so two
    readers never hold the same exam."""

    __tablename__ = "reading_assignments"
    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(
        ForeignKey("reading_orders.id", ondelete="CASCADE"), unique=True
    )
    group_id: Mapped[int] = mapped_column(ForeignKey("reading_groups.id"), index=True)
    rule: Mapped[str] = mapped_column(String(64), default="")
    """Name of the rule that decided; empty for the local group."""
    reason: Mapped[str] = mapped_column(String(300), default="")
    """The decision in words (no patient data)."""
    decided_for: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    """Instant the rota was read at: the order's scheduled start, else its arrival."""
    routed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    claimed_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id"), nullable=True, index=True
    )
    claimed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    escalated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    """When an unclaimed urgent exam was escalated."""


class ResourceVersion(Base):
    """The version of a resource served over FHIR (``Patient``, ``ServiceRequest``): one
    more at every change, whether through FHIR or HL7, so that ``If-Match`` refuses an
    update made on a stale copy (``concilium.reading.versions``)."""

    __tablename__ = "reading_resource_versions"
    __table_args__ = (UniqueConstraint("resource_type", "resource_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    resource_type: Mapped[str] = mapped_column(String(32))
    """FHIR resource type."""
    resource_id: Mapped[int] = mapped_column()
    """The platform patient's id, or the order's."""
    version: Mapped[int] = mapped_column(default=1)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class OutboundMessage(Base):
    """An HL7 message waiting to be delivered to a hospital system, or delivered.

    ``destination_id`` is the registered system (its results host and port, read at each
    try); None when the order's site has none, the state then being ``no_destination``.
    Messages of one destination are delivered in the order of their ``id``. ``once_key``
    makes a message that must be sent once per order (images available) unique.
    """

    __tablename__ = "reading_outbound_messages"
    __table_args__ = (Index("ix_reading_outbound_messages_due", "state", "next_attempt_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), index=True)
    """Site of the order (whose administrators review the queue)."""
    destination_id: Mapped[int | None] = mapped_column(
        ForeignKey("reading_hl7_senders.id", ondelete="SET NULL"), nullable=True, index=True
    )
    order_id: Mapped[int | None] = mapped_column(
        ForeignKey("reading_orders.id"), nullable=True, index=True
    )
    """The order the message concerns."""
    patient_id: Mapped[int | None] = mapped_column(ForeignKey("patients.id"), nullable=True)
    """Platform patient of the order (for the audit of reviews)."""
    kind: Mapped[str] = mapped_column(String(24))
    """``report`` or ``images_available``."""
    message_type: Mapped[str] = mapped_column(String(24), default="")
    """MSH-9, e.g. ``ORU^R01^ORU_R01``."""
    control_id: Mapped[str] = mapped_column(String(199))
    """MSH-10, which the acknowledgment's MSA-2 must repeat."""
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    """The message as it travels, without MLLP framing."""
    state: Mapped[str] = mapped_column(String(16), default="queued", index=True)
    """``queued``, ``sending``, ``sent``, ``failed``, ``cancelled``, ``no_destination``."""
    attempts: Mapped[int] = mapped_column(default=0)
    """Tries begun."""
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    """When it is due (again)."""
    lease_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    """While ``sending``: when another delivery may take it again."""
    last_error: Mapped[str] = mapped_column(Text, default="")
    """Why the last try did not deliver it (names fields and addresses, no patient data)."""
    ack_code: Mapped[str] = mapped_column(String(2), default="")
    """MSA-1 of the last acknowledgment: AA, AE, AR, CA, CE, CR."""
    once_key: Mapped[str | None] = mapped_column(String(64), nullable=True, unique=True)
    """For a message sent once: what it is once for (``images:<order id>``)."""
    log_id: Mapped[int | None] = mapped_column(ForeignKey("reading_hl7_messages.id"), nullable=True)
    """The message log's row of its last acknowledged try."""
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    """When its acknowledgment (AA, CA) came."""
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class ReportTemplateRecord(Base):
    """A site's report template for a procedure code or a modality (IHE MRRT in spirit):
    its sections in order, each ``{"key", "title", "code"}`` (``code``: the DICOM CID 7001
    heading, empty for free text). Without one, :mod:`concilium.reading.report_templates`
    gives its defaults."""

    __tablename__ = "reading_report_templates"
    __table_args__ = (UniqueConstraint("site_id", "modality", "procedure_code"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int | None] = mapped_column(ForeignKey("sites.id"), nullable=True)
    """Site whose exams it serves; None for every site."""
    modality: Mapped[str] = mapped_column(String(16), default="")
    """Modality it serves; empty for any."""
    procedure_code: Mapped[str] = mapped_column(String(64), default="")
    """Requested procedure code it serves (wins over the modality); empty for any."""
    name: Mapped[str] = mapped_column(String(100))
    sections: Mapped[list[Any]] = mapped_column(JSON, default=list)


class ReadingReport(Base):
    """The report of an order: its working text (``draft``, then ``preliminary`` once a
    preliminary version is signed) until the final version is signed; then ``final`` and
    never changed again (addenda are new versions)."""

    __tablename__ = "reading_reports"
    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(
        ForeignKey("reading_orders.id", ondelete="CASCADE"), unique=True
    )
    status: Mapped[str] = mapped_column(String(16), default="draft", index=True)
    """``draft``, ``preliminary`` or ``final``."""
    template: Mapped[str] = mapped_column(String(100), default="")
    """Name of the template its sections come from."""
    sections: Mapped[list[Any]] = mapped_column(JSON, default=list)
    """The working text: ``{"key", "title", "code", "text"}`` in order."""
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    """Who last saved it."""
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    finding_level: Mapped[str] = mapped_column(String(16), default="", server_default="")
    """The critical or actionable finding flagged in the draft (ACR level:
    ``critical``, ``urgent``, ``actionable``), "" for none."""
    finding_text: Mapped[str] = mapped_column(String(200), default="", server_default="")
    """The finding in a line."""


class ReadingReportVersion(Base):
    """A signed version of a report: preliminary (P), final (F) or an addendum (C). Never
    changed once written; each keeps a SHA-256 digest of its content chained to the
    previous version's, its PDF, and the DICOM Encapsulated PDF it went into the archive as."""

    __tablename__ = "reading_report_versions"
    __table_args__ = (UniqueConstraint("report_id", "version"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    report_id: Mapped[int] = mapped_column(
        ForeignKey("reading_reports.id", ondelete="CASCADE"), index=True
    )
    version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(1))
    """Result status (HL7 table 0123): P, F or C."""
    sections: Mapped[list[Any]] = mapped_column(JSON, default=list)
    """The signed text: ``{"key", "title", "code", "text"}`` in order."""
    addendum: Mapped[str] = mapped_column(Text, default="")
    """An addendum's text (status C); the sections are then the final version's."""
    signed_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    signed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    digest: Mapped[str] = mapped_column(String(64))
    """SHA-256 of this version's content and the previous version's digest."""
    pdf: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    """The signed report as PDF."""
    sop_instance_uid: Mapped[str] = mapped_column(String(64))
    """SOP Instance UID of its Encapsulated PDF in the order's study."""
    archived_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    """When the archive acknowledged the Encapsulated PDF; None until then."""
    finding_level: Mapped[str] = mapped_column(String(16), default="", server_default="")
    """The flagged finding's level as signed ("" for none), part of the digest when set."""
    finding_text: Mapped[str] = mapped_column(String(200), default="", server_default="")
    """The flagged finding in a line, as signed."""


class CriticalFindingNotice(Base):
    """A flagged finding of a signed version communicated to one referring physician: when,
    by which channels, when they acknowledged it, and when (and to whom) it was escalated
    for want of an acknowledgement in time (``concilium.reading.critical_findings``)."""

    __tablename__ = "reading_critical_notices"
    __table_args__ = (UniqueConstraint("version_id", "recipient_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    version_id: Mapped[int] = mapped_column(
        ForeignKey("reading_report_versions.id", ondelete="CASCADE"), index=True
    )
    report_id: Mapped[int] = mapped_column(
        ForeignKey("reading_reports.id", ondelete="CASCADE"), index=True
    )
    level: Mapped[str] = mapped_column(String(16))
    recipient_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    """The referring (or requesting) physician told."""
    notified_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    channels: Mapped[list[Any]] = mapped_column(JSON, default=list)
    """``in_app`` and ``email`` (when they have an address)."""
    due_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    """Escalated if not acknowledged by then (the level's delay)."""
    acknowledged_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    escalated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    escalated_to: Mapped[list[Any]] = mapped_column(JSON, default=list)
    """Ids of the escalation contacts told (the ordering site's coordinators)."""

"""Images available: once the archive holds an order's study and the study is complete
(MPPS COMPLETED, or no new instance for the quiet delay), the ordering hospital's system is
told once, in the shape it asked for (ORM, OMI or ORU)."""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from concilium.imaging.tables import ImagingStudy
from concilium.platform import audit
from concilium.platform.db import transaction
from concilium.reading import senders
from concilium.reading.hl7v2 import parse_message
from concilium.reading.inbound import receive
from concilium.reading.orders import OrderStatus
from concilium.reading.outbound import OutboundSender
from concilium.reading.results import queue_images_available
from concilium.reading.tables import HL7Sender, ImagingOrderRecord, OutboundMessage
from concilium.reading.worklist_store import StepKey, set_step_status
from serving import free_port

from .hl7_orders import adt_a01, orm_o01
from .outbound_peer import His

QUIET = 600.0


def setup(world, runtime, settings, mode: str, port: int = 2575) -> None:
    settings.images_available_quiet = QUIET
    with transaction(runtime.sessions) as db:
        sender = senders.add_sender(
            db, audit.SYSTEM, site_id=world.briey.id, application="HIS", facility="CHBRIEY"
        )
        senders.set_destination(
            db, audit.SYSTEM, sender, host="127.0.0.1", port=port, images_available=mode
        )
    messages = [adt_a01("A-1")]
    messages += [orm_o01(f"O-{a}", accession=a, start="20260307023000") for a in ("ACC-1", "ACC-2")]
    for raw in messages:
        assert b"MSA|AA" in receive(runtime.sessions, raw, peer="test", now=runtime.now()).ack


def order(runtime, accession: str) -> ImagingOrderRecord:
    with runtime.sessions() as db:
        return db.execute(
            select(ImagingOrderRecord).where(ImagingOrderRecord.accession_number == accession)
        ).scalar_one()


def archive_holds(runtime, accession: str, site_id: int) -> None:
    """The archive indexed the order's study (its last instance now)."""
    uid = order(runtime, accession).study_instance_uid
    assert uid
    with transaction(runtime.sessions) as db:
        db.add(
            ImagingStudy(
                study_instance_uid=uid,
                site_id=site_id,
                accession_number=accession,
                received_at=runtime.now(),
                updated_at=runtime.now(),
            )
        )


def announce(runtime, settings) -> list[str]:
    with transaction(runtime.sessions) as db:
        announced = queue_images_available(db, settings, runtime.now())
        return [
            o.accession_number
            for o in db.execute(
                select(ImagingOrderRecord).where(ImagingOrderRecord.id.in_(announced))
            ).scalars()
        ]


def queued(runtime) -> list[OutboundMessage]:
    with runtime.sessions() as db:
        return list(db.execute(select(OutboundMessage).order_by(OutboundMessage.id)).scalars())


def test_a_quiet_study_is_announced_once_by_oru(world, runtime, settings, clock):
    port = free_port()
    setup(world, runtime, settings, "oru", port)
    assert announce(runtime, settings) == []  # the archive does not hold the study
    archive_holds(runtime, "ACC-1", world.briey.id)
    assert announce(runtime, settings) == []  # instances may still come
    clock.advance(seconds=QUIET - 1)
    assert announce(runtime, settings) == []
    clock.advance(seconds=1)
    assert announce(runtime, settings) == ["ACC-1"]
    clock.advance(days=1)
    assert announce(runtime, settings) == []  # once per order
    (message,) = queued(runtime)
    assert (message.kind, message.state, message.once_key) == (
        "images_available",
        "queued",
        f"images:{order(runtime, 'ACC-1').id}",
    )

    async def deliver() -> list[bytes]:
        async with His(port) as his:
            await OutboundSender(runtime.sessions, settings, runtime.now).deliver_due()
            return his.received

    (received,) = asyncio.run(deliver())
    oru = parse_message(received)
    assert str(oru.header.message_type) == "ORU^R01^ORU_R01"
    assert oru.require("PID").get(3) == "IPP001"
    assert (oru.require("ORC").get(1), oru.require("ORC").get(5)) == ("SC", "CM")
    obr = oru.require("OBR")
    assert (obr.get(18), obr.get(19), obr.get(20), obr.get(24), obr.get(25)) == (
        "ACC-1",
        "RP-1",
        "SPS-1",
        "CT",
        "R",
    )
    obx = oru.require("OBX")
    assert (obx.get(2), obx.get(3), obx.get(5)) == (
        "ST",
        "113014",
        order(runtime, "ACC-1").study_instance_uid,
    )
    assert queued(runtime)[0].state == "sent"


def test_a_completed_performed_step_announces_at_once_by_omi(world, runtime, settings):
    setup(world, runtime, settings, "omi")
    archive_holds(runtime, "ACC-2", world.briey.id)
    assert announce(runtime, settings) == []
    with transaction(runtime.sessions) as db:
        key = StepKey(world.briey.id, "ACC-2", "RP-1", "SPS-1")
        set_step_status(db, key, OrderStatus.COMPLETED)
    assert announce(runtime, settings) == ["ACC-2"]
    (message,) = queued(runtime)
    omi = parse_message(message.raw)
    assert str(omi.header.message_type) == "OMI^O23^OMI_O23"
    ipc = omi.require("IPC")
    assert (ipc.get(1), ipc.get(3), ipc.get(4), ipc.get(5)) == (
        "ACC-2",
        order(runtime, "ACC-2").study_instance_uid,
        "SPS-1",
        "CT",
    )


def test_orm_status_and_the_cases_told_nothing(world, runtime, settings, clock):
    setup(world, runtime, settings, "orm")
    # A study of the same UID held for another site is not this order's.
    archive_holds(runtime, "ACC-1", world.metz.id)
    archive_holds(runtime, "ACC-2", world.briey.id)
    clock.advance(seconds=QUIET)
    assert announce(runtime, settings) == ["ACC-2"]
    (message,) = queued(runtime)
    orm = parse_message(message.raw)
    assert (str(orm.header.message_type), orm.header.version) == ("ORM^O01", "2.3.1")
    assert (orm.require("ORC").get(1), orm.require("ORC").get(5)) == ("SC", "CM")
    # A system that asked for nothing is told nothing.
    with transaction(runtime.sessions) as db:
        sender = db.execute(select(HL7Sender)).scalar_one()
        senders.set_destination(
            db, audit.SYSTEM, sender, host="127.0.0.1", port=2575, images_available="none"
        )
    with transaction(runtime.sessions) as db:
        for study in db.execute(select(ImagingStudy)).scalars():
            study.site_id = world.briey.id
    clock.advance(seconds=QUIET)
    assert announce(runtime, settings) == []
    assert len(queued(runtime)) == 1

"""The outbound HL7 queue: reports queued in the caller's transaction, delivered over MLLP
to a hospital system's listener (python-hl7's asyncio MLLP server, ``outbound_peer.His``),
retried with back-off on AE and on a refused connection, failed for good on AR, in order
per destination, taken again after a crash's lease, and surviving a restart."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from concilium.platform import audit
from concilium.platform.db import transaction
from concilium.platform.errors import Conflict, InvalidInput
from concilium.reading import senders
from concilium.reading.adt import Patient, Sex
from concilium.reading.hl7v2 import parse_message
from concilium.reading.hl7v2_datatypes import (
    CodedElement,
    EntityIdentifier,
    HierarchicDesignator,
    PersonIdentifier,
    PersonName,
)
from concilium.reading.inbound import receive
from concilium.reading.oru import FINDINGS, ImagingReport, ReportSection, ResultStatus
from concilium.reading.outbound import OutboundSender
from concilium.reading.outbound_store import claim_due, retry_delay, retry_now
from concilium.reading.process import ReadingProcess
from concilium.reading.results import queue_report
from concilium.reading.tables import HL7Message, HL7Sender, ImagingOrderRecord, OutboundMessage
from serving import free_port

from .hl7_orders import adt_a01, orm_o01
from .outbound_peer import His

RETRY = 30.0


def report(status: ResultStatus = ResultStatus.FINAL, accession: str = "ACC-1") -> ImagingReport:
    """A report built by hand, as the report signer will build it."""
    return ImagingReport(
        patient=Patient(
            identifiers=(PersonIdentifier("IPP001", HierarchicDesignator("CHBRIEY"), "PI"),),
            names=(PersonName("Lefèvre", "Hélène", name_type="L"),),
            sex=Sex.FEMALE,
        ),
        accession_number=accession,
        procedure=CodedElement("TDM-THX", "Scanner thorax", "LOCAL"),
        status=status,
        observed_at=datetime(2026, 3, 7, 2, 30, tzinfo=UTC),
        reported_at=datetime(2026, 3, 7, 3, 5, tzinfo=UTC),
        sections=(ReportSection(FINDINGS, "Pas d'embolie pulmonaire."),),
        placer_order_number=EntityIdentifier("PL-ACC-1", "HIS"),
        requested_procedure_id="RP-1",
        modality="CT",
    )


@pytest.fixture
def his_port() -> int:
    return free_port()


@pytest.fixture
def site(world, runtime, settings, his_port):
    """CH Briey's hospital system registered, receiving results on ``his_port``, with one
    order (ACC-1) of its patient."""
    settings.hl7_outbound_retry = RETRY
    settings.hl7_outbound_retry_max = 3 * RETRY
    settings.hl7_outbound_timeout = 2.0
    with transaction(runtime.sessions) as db:
        sender = senders.add_sender(
            db, audit.SYSTEM, site_id=world.briey.id, application="HIS", facility="CHBRIEY"
        )
        senders.set_destination(
            db, audit.SYSTEM, sender, host="127.0.0.1", port=his_port, images_available="none"
        )
    now = runtime.now()
    for raw in (adt_a01("A-1"), orm_o01("O-1", accession="ACC-1", start="20260307023000")):
        assert b"MSA|AA" in receive(runtime.sessions, raw, peer="test", now=now).ack
    return world


def order_id(runtime) -> int:
    with runtime.sessions() as db:
        return db.execute(select(ImagingOrderRecord.id)).scalar_one()


def queue(runtime, settings, *statuses: ResultStatus) -> list[int]:
    """Queue one report message per status, each in its own transaction."""
    ids = []
    for status in statuses:
        with transaction(runtime.sessions) as db:
            message = queue_report(
                db, order_id(runtime), report(status), settings=settings, now=runtime.now()
            )
            ids.append(message.id)
    return ids


def row(runtime, message_id: int) -> OutboundMessage:
    with runtime.sessions() as db:
        found = db.get(OutboundMessage, message_id)
        assert found is not None
        return found


def sender_of(runtime) -> OutboundSender:
    return OutboundSender(runtime.sessions, runtime.settings, runtime.now)


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


def test_a_report_is_delivered_once_acknowledged_and_kept_in_the_log(
    site, runtime, settings, his_port
):
    (message_id,) = queue(runtime, settings, ResultStatus.FINAL)
    queued = row(runtime, message_id)
    assert (queued.state, queued.attempts, queued.kind) == ("queued", 0, "report")

    async def main() -> list[Any]:
        async with His(his_port) as his:
            deliveries = await sender_of(runtime).deliver_due()
            return [deliveries, his.received]

    deliveries, received = run(main())
    assert [(d.state, d.ack_code) for d in deliveries] == [("sent", "AA")]
    sent = row(runtime, message_id)
    assert (sent.state, sent.attempts, sent.ack_code, sent.sent_at) == (
        "sent",
        1,
        "AA",
        runtime.now(),
    )
    assert received == [sent.raw]
    oru = parse_message(received[0])
    assert str(oru.header.message_type) == "ORU^R01^ORU_R01"
    assert str(oru.header.receiving_application) == "HIS"
    assert str(oru.header.sending_facility) == site.briey.finess
    assert oru.require("OBR").get(18) == "ACC-1" and oru.require("OBR").get(25) == "F"
    assert oru.require("OBX").get(5) == "Pas d'embolie pulmonaire."
    with runtime.sessions() as db:
        logged = db.execute(
            select(HL7Message).where(HL7Message.sender_id.is_not(None)).order_by(HL7Message.id)
        ).scalars()
        out, ack = [m for m in logged if m.control_id in (sent.control_id, "A1")]
    assert (out.direction, out.message_type, out.ack_code, out.raw) == (
        "out",
        "ORU^R01^ORU_R01",
        "AA",
        sent.raw,
    )
    assert (ack.direction, ack.answers_id, ack.ack_code) == ("in", out.id, "AA")
    assert sent.log_id == out.id
    # Nothing is due any more.
    assert run(sender_of(runtime).deliver_due()) == []


def test_refused_connection_and_ae_are_retried_with_a_capped_back_off(
    site, runtime, settings, his_port, clock
):
    (message_id,) = queue(runtime, settings, ResultStatus.PRELIMINARY)
    start = clock.now
    # The hospital system is down: nothing listens on its port.
    (down,) = run(sender_of(runtime).deliver_due())
    first = row(runtime, message_id)
    assert (down.state, first.state, first.attempts) == ("queued", "queued", 1)
    assert first.next_attempt_at == start + timedelta(seconds=RETRY)
    assert "MllpError" in first.last_error and first.ack_code == ""
    assert run(sender_of(runtime).deliver_due()) == []  # not due yet

    clock.advance(seconds=RETRY)
    run(sender_of(runtime).deliver_due())
    second = row(runtime, message_id)
    assert second.attempts == 2
    assert second.next_attempt_at == clock.now + timedelta(seconds=2 * RETRY)

    async def up(codes: list[str | None]) -> list[bytes]:
        async with His(his_port, codes) as his:
            await sender_of(runtime).deliver_due()
            return his.received

    clock.advance(seconds=2 * RETRY)
    assert len(run(up(["AE"]))) == 1
    third = row(runtime, message_id)
    assert (third.state, third.attempts, third.ack_code) == ("queued", 3, "AE")
    assert "Unknown accession number" in third.last_error
    # Doubled again (120 s), but never more than hl7_outbound_retry_max (90 s).
    assert third.next_attempt_at == clock.now + timedelta(seconds=3 * RETRY)
    clock.advance(seconds=3 * RETRY)
    assert len(run(up([]))) == 1
    done = row(runtime, message_id)
    assert (done.state, done.attempts, done.ack_code, done.last_error) == ("sent", 4, "AA", "")
    assert retry_delay(1, RETRY, 1e9) == RETRY and retry_delay(5, RETRY, 1e9) == 16 * RETRY


def test_no_answer_in_time_is_retried(site, runtime, settings, his_port):
    settings.hl7_outbound_timeout = 0.3
    (message_id,) = queue(runtime, settings, ResultStatus.FINAL)

    async def main() -> None:
        async with His(his_port, [None]):
            await sender_of(runtime).deliver_due()

    run(main())
    silent = row(runtime, message_id)
    assert (silent.state, silent.attempts) == ("queued", 1)
    assert "MllpTimeout" in silent.last_error


def test_ar_fails_for_good_without_holding_the_next_message(
    site, runtime, settings, his_port, clock
):
    rejected, accepted = queue(runtime, settings, ResultStatus.FINAL, ResultStatus.CORRECTED)

    async def main() -> list[str]:
        async with His(his_port, ["AR"]) as his:
            sender = sender_of(runtime)
            while await sender.deliver_due():
                pass
            clock.advance(days=30)
            assert await sender.deliver_due() == []
            return his.control_ids()

    received = run(main())
    failed, sent = row(runtime, rejected), row(runtime, accepted)
    assert received == [failed.control_id, sent.control_id]
    assert (failed.state, failed.attempts, failed.ack_code) == ("failed", 1, "AR")
    assert "Unknown accession number" in failed.last_error
    assert sent.state == "sent"

    # An administrator sends the failed message again.
    with transaction(runtime.sessions) as db:
        message = db.get(OutboundMessage, rejected)
        assert message is not None
        retry_now(db, audit.SYSTEM, message, clock.now)

    async def again() -> list[bytes]:
        async with His(his_port) as his:
            await sender_of(runtime).deliver_due()
            return his.received

    assert len(run(again())) == 1
    assert row(runtime, rejected).state == "sent"


def test_messages_of_a_destination_go_in_the_order_they_were_queued(
    site, runtime, settings, his_port, clock
):
    ids = queue(
        runtime, settings, ResultStatus.PRELIMINARY, ResultStatus.FINAL, ResultStatus.CORRECTED
    )
    controls = [row(runtime, i).control_id for i in ids]

    async def main() -> list[str]:
        async with His(his_port, ["AE"]) as his:
            sender = sender_of(runtime)
            assert [d.state for d in await sender.deliver_due()] == ["queued"]
            # The first one waits for its retry: the others wait behind it.
            assert await sender.deliver_due() == []
            clock.advance(seconds=RETRY)
            while await sender.deliver_due():
                pass
            return his.control_ids()

    assert run(main()) == [controls[0], *controls]
    assert [row(runtime, i).state for i in ids] == ["sent"] * 3


def test_a_message_left_sending_by_a_crash_is_taken_again_after_its_lease(
    site, runtime, settings, his_port, clock
):
    (message_id,) = queue(runtime, settings, ResultStatus.FINAL)
    with transaction(runtime.sessions) as db:  # a delivery took it, then the process died
        assert [c.id for c in claim_due(db, clock.now, settings.hl7_outbound_lease)] == [message_id]
    assert row(runtime, message_id).state == "sending"

    async def deliver() -> list[bytes]:
        async with His(his_port) as his:
            await sender_of(runtime).deliver_due()
            return his.received

    assert run(deliver()) == []  # its lease holds
    clock.advance(seconds=settings.hl7_outbound_lease)
    assert len(run(deliver())) == 1
    done = row(runtime, message_id)
    assert (done.state, done.attempts) == ("sent", 2)


class NoArchive:
    def service(self, kind: type) -> object:
        raise LookupError(kind.__name__)


async def poll(check: Callable[[], bool], seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while not await asyncio.to_thread(check):
        assert time.monotonic() < deadline, "not reached in time"
        await asyncio.sleep(0.02)


def test_queued_messages_survive_a_restart_and_are_delivered_once(
    site, runtime, settings, his_port, clock
):
    settings.hl7_port = 0
    settings.hl7_outbound_period = 0.05
    (message_id,) = queue(runtime, settings, ResultStatus.FINAL)

    async def first_life() -> None:
        process = ReadingProcess(runtime, NoArchive())
        async with process.serve():  # the hospital system is down
            # Its first try is recorded (not merely begun: that is the lease's case).
            await poll(lambda: (r := row(runtime, message_id)).attempts and r.state == "queued")

    async def second_life() -> list[bytes]:
        clock.advance(seconds=RETRY)
        async with His(his_port) as his:
            process = ReadingProcess(runtime, NoArchive())
            async with process.serve():
                await poll(lambda: row(runtime, message_id).state == "sent")
                await asyncio.sleep(0.2)  # a few more periods: nothing else goes out
            return his.received

    run(first_life())
    assert row(runtime, message_id).state == "queued"
    received = run(second_life())
    assert len(received) == 1 and received[0] == row(runtime, message_id).raw
    assert row(runtime, message_id).attempts == 2


def test_stopping_lets_the_try_under_way_be_recorded(site, runtime, settings, his_port):
    settings.hl7_port = 0
    settings.hl7_outbound_period = 0.05
    settings.hl7_outbound_timeout = 0.5
    (message_id,) = queue(runtime, settings, ResultStatus.FINAL)

    async def main() -> None:
        # The hospital system never answers.
        async with His(his_port, [None]), ReadingProcess(runtime, NoArchive()).serve():
            await poll(lambda: row(runtime, message_id).state == "sending")

    run(main())
    stopped = row(runtime, message_id)
    assert (stopped.state, stopped.attempts) == ("queued", 1)
    assert "MllpTimeout" in stopped.last_error


def test_delivery_can_be_turned_off(site, runtime, settings, his_port):
    settings.hl7_port = 0
    settings.hl7_outbound = False
    settings.hl7_outbound_period = 0.05
    (message_id,) = queue(runtime, settings, ResultStatus.FINAL)

    async def main() -> list[bytes]:
        async with His(his_port) as his:
            async with ReadingProcess(runtime, NoArchive()).serve():
                await asyncio.sleep(0.3)
            return his.received

    assert run(main()) == []
    assert row(runtime, message_id).state == "queued"


def test_a_site_without_destination_keeps_the_report_visibly_unsent(
    world, runtime, settings, his_port, clock
):
    with transaction(runtime.sessions) as db:
        senders.add_sender(
            db, audit.SYSTEM, site_id=world.briey.id, application="HIS", facility="CHBRIEY"
        )
    for raw in (adt_a01("A-1"), orm_o01("O-1", accession="ACC-1", start="20260307023000")):
        receive(runtime.sessions, raw, peer="test", now=clock.now)
    (message_id,) = queue(runtime, settings, ResultStatus.FINAL)
    kept = row(runtime, message_id)
    assert (kept.state, kept.destination_id) == ("no_destination", None)
    assert "no results destination" in kept.last_error
    assert run(sender_of(runtime).deliver_due()) == []
    with transaction(runtime.sessions) as db, pytest.raises(Conflict):
        message = db.get(OutboundMessage, message_id)
        assert message is not None
        retry_now(db, audit.SYSTEM, message, clock.now)

    # Once the site's system has a results destination, the administrator sends it.
    with transaction(runtime.sessions) as db:
        sender = db.execute(select(HL7Sender)).scalar_one()
        senders.set_destination(
            db, audit.SYSTEM, sender, host="127.0.0.1", port=his_port, images_available="none"
        )
        message = db.get(OutboundMessage, message_id)
        assert message is not None
        retry_now(db, audit.SYSTEM, message, clock.now)

    async def main() -> list[bytes]:
        async with His(his_port) as his:
            await sender_of(runtime).deliver_due()
            return his.received

    assert len(run(main())) == 1
    assert row(runtime, message_id).state == "sent"


def test_a_report_goes_out_only_for_its_own_order(site, runtime, settings):
    with transaction(runtime.sessions) as db, pytest.raises(InvalidInput):
        queue_report(
            db, order_id(runtime), report(accession="ACC-2"), settings=settings, now=runtime.now()
        )
    with runtime.sessions() as db:
        assert db.execute(select(OutboundMessage)).first() is None


def test_a_report_commits_with_the_callers_transaction(site, runtime, settings):
    with pytest.raises(RuntimeError), transaction(runtime.sessions) as db:
        queue_report(db, order_id(runtime), report(), settings=settings, now=runtime.now())
        raise RuntimeError("the signature failed")
    with runtime.sessions() as db:
        assert db.execute(select(OutboundMessage)).first() is None


def test_destinations_are_checked(site, runtime):
    with transaction(runtime.sessions) as db:
        sender = db.execute(select(HL7Sender)).scalar_one()
        for host, port, mode in [
            ("bad host", 2575, "none"),
            ("his.example", 70000, "none"),
            ("his.example", 2575, "sometimes"),
        ]:
            with pytest.raises(InvalidInput):
                senders.set_destination(
                    db, audit.SYSTEM, sender, host=host, port=port, images_available=mode
                )
        senders.set_destination(
            db, audit.SYSTEM, sender, host="", port=None, images_available="oru"
        )
        assert (sender.results_host, sender.results_port, sender.images_available) == (
            "",
            None,
            "oru",
        )

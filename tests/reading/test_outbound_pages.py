"""The page of the outbound HL7 queue: a site's administrators see its messages per
destination, send one again or cancel it (audited), open one raw (audited); others are
refused, another site's messages look absent. A sender's results destination is set on
the senders page."""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from concilium.platform import audit
from concilium.platform.db import transaction
from concilium.platform.tables import AuditEvent
from concilium.reading import senders
from concilium.reading.inbound import receive
from concilium.reading.oru import ResultStatus
from concilium.reading.outbound import OutboundSender
from concilium.reading.results import queue_report
from concilium.reading.tables import HL7Sender, ImagingOrderRecord, OutboundMessage
from serving import free_port

from .hl7_orders import adt_a01, orm_o01
from .outbound_peer import His
from .test_outbound import report
from .test_pages import signed_in


def queued(world, runtime, settings, count: int = 2) -> list[int]:
    with transaction(runtime.sessions) as db:
        sender = senders.add_sender(
            db, audit.SYSTEM, site_id=world.briey.id, application="HIS", facility="CHBRIEY"
        )
        senders.set_destination(
            db, audit.SYSTEM, sender, host="127.0.0.1", port=9, images_available="none"
        )
    for raw in (adt_a01("A-1"), orm_o01("O-1", accession="ACC-1", start="20260307023000")):
        receive(runtime.sessions, raw, peer="test", now=runtime.now())
    ids = []
    with transaction(runtime.sessions) as db:
        order_id = db.execute(select(ImagingOrderRecord.id)).scalar_one()
        for _ in range(count):
            message = queue_report(
                db, order_id, report(ResultStatus.FINAL), settings=settings, now=runtime.now()
            )
            ids.append(message.id)
    return ids


def state(runtime, message_id: int) -> str:
    with runtime.sessions() as db:
        message = db.get(OutboundMessage, message_id)
        assert message is not None
        return message.state


def actions(runtime, kind: str) -> list[str]:
    with runtime.sessions() as db:
        return list(
            db.execute(
                select(AuditEvent.action)
                .where(AuditEvent.object_kind == kind, AuditEvent.outcome == "success")
                .order_by(AuditEvent.seq)
            ).scalars()
        )


def test_administrators_retry_and_cancel_queued_messages(app, world, runtime, settings):
    first, second = queued(world, runtime, settings)
    admin = signed_in(world, app, "briey-admin", (world.briey, "admin"))
    page = admin.get("/admin/reading/hl7/outbound")
    assert page.status_code == 200
    assert f'id="outbound-{first}"' in page.text and f'id="outbound-{second}"' in page.text
    assert "127.0.0.1:9" in page.text and "ORU^R01^ORU_R01" in page.text

    assert admin.post(f"/admin/reading/hl7/outbound/{first}/cancel").status_code == 303
    assert state(runtime, first) == "cancelled"
    # A cancelled message is sent again only when asked.
    assert admin.post(f"/admin/reading/hl7/outbound/{first}/retry").status_code == 303
    assert state(runtime, first) == "queued"
    with transaction(runtime.sessions) as db:
        sent = db.get(OutboundMessage, second)
        assert sent is not None
        sent.state = "sent"
    refused = admin.post(f"/admin/reading/hl7/outbound/{second}/cancel")
    assert refused.status_code == 409 and "can no longer be cancelled" in refused.text
    assert state(runtime, second) == "sent"
    assert actions(runtime, "hl7_outbound") == ["hl7.outbound.cancel", "hl7.outbound.retry"]

    filtered = admin.get("/admin/reading/hl7/outbound?state=sent").text
    assert f'id="outbound-{second}"' in filtered and f'id="outbound-{first}"' not in filtered

    raw = admin.get(f"/admin/reading/hl7/outbound/{first}")
    assert raw.status_code == 200 and "OBR|1|PL-ACC-1^HIS" in raw.text
    assert actions(runtime, "hl7_outbound")[-1] == "hl7.message.read"


def test_the_queue_is_refused_to_others_and_hidden_from_other_sites(app, world, runtime, settings):
    (message_id,) = queued(world, runtime, settings, 1)
    radiologist = signed_in(world, app, "briey-radio", (world.briey, "radiologist"))
    assert radiologist.get("/admin/reading/hl7/outbound").status_code == 403
    assert radiologist.post(f"/admin/reading/hl7/outbound/{message_id}/cancel").status_code == 403
    assert radiologist.get(f"/admin/reading/hl7/outbound/{message_id}").status_code == 403
    metz_admin = signed_in(world, app, "metz-admin", (world.metz, "admin"))
    assert f"outbound-{message_id}" not in metz_admin.get("/admin/reading/hl7/outbound").text
    assert metz_admin.post(f"/admin/reading/hl7/outbound/{message_id}/cancel").status_code == 404
    assert metz_admin.post(f"/admin/reading/hl7/outbound/{message_id}/retry").status_code == 404
    assert metz_admin.get(f"/admin/reading/hl7/outbound/{message_id}").status_code == 404
    assert state(runtime, message_id) == "queued"
    assert actions(runtime, "hl7_outbound") == []


def test_a_sender_gets_its_results_destination_on_the_senders_page(app, world, runtime):
    with transaction(runtime.sessions) as db:
        sender = senders.add_sender(
            db, audit.SYSTEM, site_id=world.briey.id, application="HIS", facility="CHBRIEY"
        )
        sender_id = sender.id
    admin = signed_in(world, app, "briey-admin", (world.briey, "admin"))
    assert "no results destination" in admin.get("/admin/reading/hl7").text
    url = f"/admin/reading/hl7/senders/{sender_id}/destination"
    form = {"results_host": "his.briey.example", "results_port": "2576", "images_available": "oru"}
    assert admin.post(url, data=form).status_code == 303
    page = admin.get("/admin/reading/hl7").text
    assert "his.briey.example:2576" in page and "ORU^R01 imaging results available" in page
    bad = admin.post(url, data={**form, "results_port": "x"})
    assert bad.status_code == 422 and "1-65535" in bad.text
    metz_admin = signed_in(world, app, "metz-admin", (world.metz, "admin"))
    assert metz_admin.post(url, data={**form, "results_host": "evil"}).status_code == 404
    with runtime.sessions() as db:
        stored = db.execute(select(HL7Sender)).scalar_one()
        assert (stored.results_host, stored.results_port, stored.images_available) == (
            "his.briey.example",
            2576,
            "oru",
        )
    assert actions(runtime, "hl7_sender") == ["hl7.sender.create", "hl7.sender.update"]


def test_a_delivered_message_is_in_the_log_with_the_acknowledgment_received(
    app, world, runtime, settings
):
    port = free_port()
    (message_id,) = queued(world, runtime, settings, 1)
    with transaction(runtime.sessions) as db:
        destination = db.execute(select(HL7Sender)).scalar_one()
        destination.results_port = port

    async def deliver() -> None:
        async with His(port):
            await OutboundSender(runtime.sessions, settings, runtime.now).deliver_due()

    asyncio.run(deliver())
    with runtime.sessions() as db:
        message = db.get(OutboundMessage, message_id)
        assert message is not None and message.state == "sent" and message.log_id
        log_id = message.log_id
    admin = signed_in(world, app, "briey-admin", (world.briey, "admin"))
    listed = admin.get("/admin/reading/hl7/messages?direction=out").text
    assert f"/admin/reading/hl7/messages/{log_id}" in listed
    page = admin.get(f"/admin/reading/hl7/messages/{log_id}")
    assert page.status_code == 200
    assert "Message as sent" in page.text and "Acknowledgment received" in page.text
    assert "MSA|AA|" in page.text and "OBR|1|PL-ACC-1^HIS" in page.text
    outbound = admin.get(f"/admin/reading/hl7/outbound/{message_id}").text
    assert f'href="/admin/reading/hl7/messages/{log_id}"' in outbound

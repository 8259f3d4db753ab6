"""The administration pages of HL7: senders of a site, and the message log with each
message shown raw beside its acknowledgment; cross-site access refused."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from concilium.platform import audit
from concilium.platform.db import transaction
from concilium.platform.tables import AuditEvent
from concilium.reading import senders
from concilium.reading.inbound import receive
from concilium.reading.tables import HL7Message, HL7Sender

PID = "PID|1||IPP001^^^CHBRIEY^PI||Lefèvre^Hélène||19850523|F"


def signed_in(world: Any, app: Any, username: str, *roles: tuple[Any, str], **kw: Any) -> Any:
    user = world.user(username, *roles, with_totp=True, **kw)
    browser = world.client(app)
    browser.headers["x-csrf-token"] = world.sign_in(browser, user)
    return browser


def adt(control_id: str, app: str = "HIS", facility: str = "CHBRIEY", pid: str = PID) -> bytes:
    header = (
        f"MSH|^~\\&|{app}|{facility}|CONCILIUM|GHT|20260307020000||ADT^A01^ADT_A01|{control_id}"
        "|P|2.5.1||||||UNICODE UTF-8"
    )
    return f"{header}\rEVN||20260307020000\r{pid}\r".encode()


def test_senders_are_managed_by_the_site_administrators(app, world):
    radiologist = signed_in(world, app, "briey-radio", (world.briey, "radiologist"))
    assert radiologist.get("/admin/reading/hl7").status_code == 403
    admin = signed_in(world, app, "briey-admin", (world.briey, "admin"))
    assert '<a href="/admin/reading/hl7">HL7 senders</a>' in admin.get("/").text
    page = admin.get("/admin/reading/hl7")
    assert page.status_code == 200 and "No sender registered." in page.text

    form = {"application": "HIS", "facility": "CHBRIEY", "site_id": str(world.briey.id)}
    assert admin.post("/admin/reading/hl7", data=form).status_code == 303
    listed = admin.get("/admin/reading/hl7").text
    assert "<code>HIS</code>" in listed and "<code>CHBRIEY</code>" in listed
    again = admin.post("/admin/reading/hl7", data=form)
    assert again.status_code == 409 and "already registered" in again.text
    bad = admin.post("/admin/reading/hl7", data={**form, "application": "A|B"})
    assert bad.status_code == 422 and 'value="A|B"' in bad.text
    elsewhere = admin.post("/admin/reading/hl7", data={**form, "site_id": str(world.metz.id)})
    assert elsewhere.status_code == 403

    with world.runtime.sessions() as db:
        sender = db.execute(select(HL7Sender)).scalar_one()
    # Metz's administrator neither sees nor removes Briey's sender.
    metz_admin = signed_in(world, app, "metz-admin", (world.metz, "admin"))
    assert "CHBRIEY" not in metz_admin.get("/admin/reading/hl7").text
    assert metz_admin.post(f"/admin/reading/hl7/senders/{sender.id}/remove").status_code == 404
    assert admin.post(f"/admin/reading/hl7/senders/{sender.id}/remove").status_code == 303
    with world.runtime.sessions() as db:
        assert db.execute(select(HL7Sender)).first() is None
        actions = (
            db.execute(
                select(AuditEvent.action).where(
                    AuditEvent.object_kind == "hl7_sender", AuditEvent.outcome == "success"
                )
            )
            .scalars()
            .all()
        )
    assert actions == ["hl7.sender.create", "hl7.sender.delete"]


def test_the_message_log_shows_a_site_its_own_messages_raw_with_their_acks(app, world):
    rt = world.runtime
    with transaction(rt.sessions) as db:
        senders.add_sender(
            db, audit.SYSTEM, site_id=world.briey.id, application="HIS", facility="CHBRIEY"
        )
    accepted = receive(rt.sessions, adt("OK-1"), peer="10.0.0.9:4000", now=rt.now())
    refused = receive(
        rt.sessions, adt("BAD-1", pid="PID|1||IPP002"), peer="10.0.0.9:4000", now=rt.now()
    )
    stranger = receive(rt.sessions, adt("UNK-1", app="X"), peer="10.0.0.66:4000", now=rt.now())
    assert (accepted.ack_code, refused.ack_code, stranger.ack_code) == ("AA", "AE", "AR")

    admin = signed_in(world, app, "briey-admin", (world.briey, "admin"))
    log = admin.get("/admin/reading/hl7/messages")
    assert log.status_code == 200
    assert "OK-1" in log.text and "BAD-1" in log.text
    assert "UNK-1" not in log.text  # an unregistered sender's message belongs to no site
    assert "Lefèvre" not in log.text  # the list shows no content
    errors = admin.get("/admin/reading/hl7/messages", params={"ack": "AE", "direction": "in"})
    assert "BAD-1" in errors.text and "OK-1" not in errors.text

    shown = admin.get(f"/admin/reading/hl7/messages/{accepted.message_id}")
    assert shown.status_code == 200
    assert "PID|1||IPP001^^^CHBRIEY^PI||Lefèvre^Hélène" in shown.text
    assert "MSA|AA|OK-1" in shown.text
    with rt.sessions() as db:
        opened = db.execute(
            select(AuditEvent).where(AuditEvent.action == "hl7.message.read")
        ).scalar_one()
        message = db.get(HL7Message, accepted.message_id)
        assert message is not None
        assert (opened.patient_id, opened.actor) == (message.patient_id, "briey-admin")

    # Another site's administrator, a radiologist, the platform administrator: refused.
    metz_admin = signed_in(world, app, "metz-admin", (world.metz, "admin"))
    assert "OK-1" not in metz_admin.get("/admin/reading/hl7/messages").text
    assert metz_admin.get(f"/admin/reading/hl7/messages/{accepted.message_id}").status_code == 404
    radiologist = signed_in(world, app, "briey-radio", (world.briey, "radiologist"))
    assert radiologist.get("/admin/reading/hl7/messages").status_code == 403
    it = signed_in(world, app, "it", platform_admin=True)
    assert it.get(f"/admin/reading/hl7/messages/{accepted.message_id}").status_code in (403, 404)
    # The platform administrator sees who tried to send, to register it: headers only.
    senders_page = it.get("/admin/reading/hl7").text
    assert "10.0.0.66" in senders_page and "<code>X</code>" in senders_page
    assert "Lefèvre" not in senders_page


def test_the_pages_speak_french_by_default(app, world):
    admin = signed_in(world, app, "briey-admin", (world.briey, "admin"))
    admin.headers["Accept-Language"] = "fr"
    page = admin.get("/admin/reading/hl7").text
    assert "Émetteurs HL7" in page and "Enregistrer un émetteur" in page
    assert "Messages HL7" in admin.get("/admin/reading/hl7/messages").text

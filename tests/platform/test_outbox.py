"""The outbox: a message exists only if its transaction committed, leaves through a real SMTP
server, waits and tries again while the relay is away, fails after its last try, and is
claimed by one dispatcher at a time."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import select

from concilium.assembly import Assembly
from concilium.platform import audit
from concilium.platform.db import transaction
from concilium.platform.mail import Mail, Security, SmtpRelay
from concilium.platform.outbox import Dispatcher, MailState, RetryPolicy, enqueue, open_payload
from concilium.platform.tables import AuditEvent, OutboxMail, OutboxMailEvent
from concilium.portal.process import PlatformProcess
from serving import free_port
from smtp_peer import Recorder, smtp_server

SECRET_SUBJECT = "Avis RCP pour Mme DUPONT Jeanne"
SECRET_TEXT = "Compte rendu concernant Mme DUPONT Jeanne, née le 02/02/1950."


def a_mail(to: str = "onco@chr-briey.fr", kind: str = "boards.minutes") -> Mail:
    return Mail(kind=kind, to=(to,), subject=SECRET_SUBJECT, text=SECRET_TEXT, language="fr")


def relay(port: int) -> SmtpRelay:
    return SmtpRelay(
        host="127.0.0.1",
        port=port,
        security=Security.NONE,
        sender="Concilium <concilium@chr-metz.fr>",
        timeout=5.0,
    )


def dispatcher(runtime, port: int, max_attempts: int = 3, **kwargs) -> Dispatcher:
    return Dispatcher(
        runtime.sessions,
        runtime.box,
        relay(port),
        runtime.now,
        RetryPolicy(max_attempts, timedelta(minutes=1), timedelta(hours=1)),
        lease=timedelta(minutes=5),
        poll=0.05,
        **kwargs,
    )


def queue(runtime, mail: Mail | None = None, site_id: int | None = None) -> int:
    with transaction(runtime.sessions) as db:
        return enqueue(db, runtime, mail or a_mail(), site_id=site_id).id


def row(runtime, mail_id: int) -> OutboxMail:
    with runtime.sessions() as db:
        found = db.get(OutboxMail, mail_id)
        assert found is not None
        return found


def causes(runtime, mail_id: int) -> list[tuple[str, str, int]]:
    with runtime.sessions() as db:
        events = db.execute(
            select(OutboxMailEvent)
            .where(OutboxMailEvent.mail_id == mail_id)
            .order_by(OutboxMailEvent.id)
        ).scalars()
        return [(e.cause, e.state, e.attempt) for e in events]


def test_a_message_exists_only_if_its_transaction_commits(runtime):
    port, recorder = free_port(), Recorder()
    with pytest.raises(RuntimeError), transaction(runtime.sessions) as db:
        enqueue(db, runtime, a_mail("rolled-back@chr-briey.fr"))
        raise RuntimeError("the action failed after queueing its message")
    kept = queue(runtime)
    with smtp_server(port, recorder):
        assert dispatcher(runtime, port).run_once() == 1
    assert [r.recipients for r in recorder.received] == [["onco@chr-briey.fr"]]
    with runtime.sessions() as db:
        assert db.execute(select(OutboxMail.id)).scalars().all() == [kept]
    sent = row(runtime, kept)
    assert sent.state == MailState.SENT and sent.attempts == 1 and sent.sent_at is not None
    assert causes(runtime, kept) == [
        ("queued", "pending", 0),
        ("claimed", "sending", 1),
        ("accepted", "sent", 1),
    ]
    message = recorder.received[0].message
    assert message["Subject"] == SECRET_SUBJECT
    assert message["Message-ID"] == sent.message_id


def test_the_stored_message_is_sealed_and_erased_once_sent(runtime):
    mail_id = queue(runtime)
    queued = row(runtime, mail_id)
    assert queued.payload is not None
    for secret in ("DUPONT", "1950"):
        assert secret not in queued.payload
    assert open_payload(runtime.box, queued) == a_mail()
    port, recorder = free_port(), Recorder()
    with smtp_server(port, recorder):
        dispatcher(runtime, port).run_once()
    assert row(runtime, mail_id).payload is None
    with runtime.sessions() as db:
        trail = db.execute(select(AuditEvent).where(AuditEvent.action == "mail.send")).scalars()
        [entry] = list(trail)
    assert (entry.outcome, entry.object_id) == ("success", str(mail_id))
    assert "DUPONT" not in entry.detail and "onco" not in entry.detail


def test_while_the_relay_is_down_it_waits_longer_each_time_then_delivers_once_back(
    runtime, clock, caplog
):
    port, recorder = free_port(), Recorder()
    mail_id = queue(runtime)
    sender = dispatcher(runtime, port, max_attempts=5)
    started = clock.now
    assert sender.run_once() == 1  # nothing listens
    waiting = row(runtime, mail_id)
    assert (waiting.state, waiting.attempts) == (MailState.PENDING, 1)
    assert waiting.next_attempt_at == started + timedelta(minutes=1)
    assert waiting.last_error.startswith("ConnectionRefusedError")
    assert sender.run_once() == 0  # not due yet
    clock.advance(minutes=1)
    assert sender.run_once() == 1
    waiting = row(runtime, mail_id)
    assert waiting.attempts == 2
    assert waiting.next_attempt_at == clock.now + timedelta(minutes=2)
    clock.advance(minutes=2)
    with smtp_server(port, recorder):
        assert sender.run_once() == 1
        assert sender.run_once() == 0
    assert len(recorder.received) == 1
    delivered = row(runtime, mail_id)
    assert (delivered.state, delivered.attempts) == (MailState.SENT, 3)
    assert [c for c, _s, _a in causes(runtime, mail_id)] == [
        "queued",
        "claimed",
        "try-failed",
        "claimed",
        "try-failed",
        "claimed",
        "accepted",
    ]
    # The log names the message by its id and kind, never its recipient or subject.
    logged = " ".join(f"{r.getMessage()} {vars(r)}" for r in caplog.records)
    assert str(mail_id) in logged
    assert "onco@" not in logged and "DUPONT" not in logged


def test_after_its_last_try_a_message_is_failed_and_audited(runtime, clock):
    mail_id = queue(runtime)
    sender = dispatcher(runtime, free_port(), max_attempts=2)
    sender.run_once()
    clock.advance(minutes=1)
    sender.run_once()
    clock.advance(hours=2)
    assert sender.run_once() == 0
    failed = row(runtime, mail_id)
    assert (failed.state, failed.attempts, failed.next_attempt_at) == (MailState.FAILED, 2, None)
    assert failed.last_error.startswith("ConnectionRefusedError")
    assert failed.payload is not None  # kept, so that an administrator can try again
    with runtime.sessions() as db:
        outcomes = db.execute(
            select(AuditEvent.outcome).where(AuditEvent.action == "mail.send")
        ).scalars()
        assert list(outcomes) == ["failure"]


def test_a_recipient_the_relay_refuses_fails_at_once_and_the_others_still_go(runtime):
    port, recorder = free_port(), Recorder(refuse={"gone@chr-briey.fr"})
    refused = queue(runtime, a_mail("gone@chr-briey.fr"))
    accepted = queue(runtime)
    with smtp_server(port, recorder):
        assert dispatcher(runtime, port).run_once() == 2
    gone = row(runtime, refused)
    assert (gone.state, gone.attempts) == (MailState.FAILED, 1)
    assert gone.last_error == "recipients refused: 550 5.1.1"
    assert row(runtime, accepted).state == MailState.SENT
    assert len(recorder.received) == 1


def test_an_expired_lease_is_claimed_again_and_the_late_holder_changes_nothing(runtime, clock):
    port, recorder = free_port(), Recorder()
    mail_id = queue(runtime)
    stalled = dispatcher(runtime, port, holder="stalled:1:aa")
    claimed = stalled._claim(set())  # it claims, then stops answering
    assert claimed is not None and row(runtime, mail_id).holder == "stalled:1:aa"
    taker = dispatcher(runtime, port, holder="taker:2:bb")
    assert taker.run_once() == 0  # the lease still runs
    clock.advance(minutes=6)
    with smtp_server(port, recorder):
        assert taker.run_once() == 1
    done = row(runtime, mail_id)
    assert (done.state, done.attempts, done.holder) == (MailState.SENT, 2, None)
    assert ("lease-expired", "sending", 1) in causes(runtime, mail_id)
    # The stalled process comes back and reports a failure: the row is no longer its own.
    from concilium.platform.mail import DeliveryError

    stalled._failed(claimed, DeliveryError("late", permanent=False, connection=True))
    assert row(runtime, mail_id).state == MailState.SENT


def test_a_lease_expiring_on_the_last_try_fails_the_message(runtime, clock):
    mail_id = queue(runtime)
    stalled = dispatcher(runtime, free_port(), max_attempts=1)
    assert stalled._claim(set()) is not None
    clock.advance(minutes=6)
    assert dispatcher(runtime, free_port(), max_attempts=1).run_once() == 0
    failed = row(runtime, mail_id)
    assert failed.state == MailState.FAILED
    assert "stopped mid-send" in failed.last_error


def test_dispatchers_side_by_side_send_each_message_once(runtime):
    port, recorder = free_port(), Recorder()
    ids = [queue(runtime, a_mail(f"doctor{n}@chr-briey.fr")) for n in range(12)]
    senders = [dispatcher(runtime, port, holder=f"worker:{n}:00") for n in range(3)]
    with smtp_server(port, recorder):
        threads = [threading.Thread(target=s.run_once) for s in senders]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    received = sorted(r.recipients[0] for r in recorder.received)
    assert received == sorted(f"doctor{n}@chr-briey.fr" for n in range(12))
    assert all(row(runtime, i).state == MailState.SENT for i in ids)
    assert all(row(runtime, i).attempts == 1 for i in ids)


def test_the_serving_process_sends_what_is_queued(runtime, settings):
    port, recorder = free_port(), Recorder()
    serving = runtime
    serving.settings = settings.model_copy(
        update={
            "smtp_host": "127.0.0.1",
            "smtp_port": port,
            "smtp_security": "none",
            "mail_from": "Concilium <concilium@chr-metz.fr>",
            "mail_poll_seconds": 0.05,
        }
    )
    process = Assembly.build(serving.settings, serving).service(PlatformProcess)
    assert process.mail is not None
    queue(runtime)

    async def serve_until_sent() -> None:
        async with process.serve():
            deadline = time.monotonic() + 20
            while not recorder.received and time.monotonic() < deadline:
                await asyncio.sleep(0.05)

    with smtp_server(port, recorder):
        asyncio.run(serve_until_sent())
    assert len(recorder.received) == 1


def test_administrators_try_again_or_cancel_waiting_messages(runtime, clock):
    failed_id = queue(runtime)
    dispatcher(runtime, free_port(), max_attempts=1).run_once()
    pending_id = queue(runtime)
    admin = audit.Actor(None, "admin")
    from concilium.platform import outbox
    from concilium.platform.errors import Conflict

    with transaction(runtime.sessions) as db:
        outbox.retry_now(db, admin, outbox.get_mail(db, failed_id), clock.now)
        outbox.cancel(db, admin, outbox.get_mail(db, pending_id), clock.now)
    assert row(runtime, failed_id).state == MailState.PENDING
    cancelled = row(runtime, pending_id)
    assert (cancelled.state, cancelled.payload) == (MailState.CANCELLED, None)
    with pytest.raises(Conflict), transaction(runtime.sessions) as db:
        outbox.retry_now(db, admin, outbox.get_mail(db, pending_id), clock.now)
    port, recorder = free_port(), Recorder()
    with smtp_server(port, recorder):
        assert dispatcher(runtime, port).run_once() == 1  # the cancelled one stays
    assert row(runtime, failed_id).state == MailState.SENT
    assert len(recorder.received) == 1


def test_a_message_that_cannot_be_read_fails_without_holding_up_the_others(runtime):
    from concilium.platform.encryption import SecretBox

    altered = queue(runtime)
    foreign = queue(runtime)
    fine = queue(runtime)
    with transaction(runtime.sessions) as db:
        first, second = db.get(OutboxMail, altered), db.get(OutboxMail, foreign)
        first.payload = runtime.box.seal("{}", f"mail:{first.message_id}")  # no fields
        second.payload = SecretBox(bytes(32)).seal(a_mail().to_json(), f"mail:{second.message_id}")
    port, recorder = free_port(), Recorder()
    with smtp_server(port, recorder):
        assert dispatcher(runtime, port).run_once() == 1
    assert (row(runtime, altered).state, row(runtime, altered).last_error) == ("failed", "KeyError")
    assert row(runtime, foreign).last_error == "cannot be opened with this installation's key"
    assert row(runtime, foreign).state == MailState.FAILED
    assert row(runtime, fine).state == MailState.SENT and len(recorder.received) == 1

"""A dispatcher killed with SIGKILL in the middle of a send (``concilium mail dispatch`` in a
process of its own): the next dispatcher delivers the message once its lease has run out.

Delivery is at least once: killed before the relay had the whole message, the message
arrives once; killed after the relay had it but before the row was marked sent, it arrives
twice, both copies with the same Message-ID."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import timedelta

import pytest
from sqlalchemy import select

from concilium.platform.db import transaction
from concilium.platform.mail import Mail, Security, SmtpRelay
from concilium.platform.outbox import Dispatcher, MailState, RetryPolicy, enqueue
from concilium.platform.tables import OutboxMail, OutboxMailEvent
from serving import free_port
from smtp_peer import Recorder, smtp_server

SENDER = "Concilium <concilium@chr-metz.fr>"


def read(runtime, mail_id: int) -> OutboxMail:
    with runtime.sessions() as db:
        found = db.get(OutboxMail, mail_id)
        assert found is not None
        return found


@pytest.mark.parametrize(
    ("held_at", "copies"),
    [("rcpt", 1), ("data", 2)],
    ids=["before-the-relay-had-it", "after-the-relay-had-it"],
)
def test_a_dispatcher_killed_mid_send_leaves_the_message_to_the_next(
    runtime, settings, clock, held_at, copies
):
    mail = Mail("boards.minutes", ("onco@chr-briey.fr",), "Compte rendu", "Texte.")
    with transaction(runtime.sessions) as db:
        mail_id = enqueue(db, runtime, mail).id
    port, recorder = free_port(), Recorder(hold=held_at)
    env = {
        **os.environ,
        "CONCILIUM_DATA_DIR": str(settings.data_dir),
        "CONCILIUM_DATABASE_URL": settings.effective_database_url,
        "CONCILIUM_SMTP_HOST": "127.0.0.1",
        "CONCILIUM_SMTP_PORT": str(port),
        "CONCILIUM_SMTP_SECURITY": "none",
        "CONCILIUM_MAIL_FROM": SENDER,
        "CONCILIUM_MAIL_POLL_SECONDS": "0.2",
        "CONCILIUM_LOG_LEVEL": "WARNING",
    }
    with smtp_server(port, recorder):
        worker = subprocess.Popen(
            [sys.executable, "-m", "concilium", "mail", "dispatch"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            if not recorder.arrived.wait(60):
                worker.kill()
                pytest.fail(f"the worker never reached the relay: {worker.communicate()[1]!r}")
            held = read(runtime, mail_id)
            assert held.state == MailState.SENDING and f":{worker.pid}:" in (held.holder or "")
            os.kill(worker.pid, signal.SIGKILL)
            assert worker.wait(10) == -signal.SIGKILL
        finally:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
        recorder.hold = ""
        recorder.release.set()
        assert len(recorder.received) == copies - 1
        # Still held: the dead worker's lease runs for another few minutes.
        relay = SmtpRelay("127.0.0.1", port, Security.NONE, SENDER)
        successor = Dispatcher(
            runtime.sessions,
            runtime.box,
            relay,
            runtime.now,
            RetryPolicy(5, timedelta(minutes=1), timedelta(hours=1)),
            lease=timedelta(minutes=5),
            poll=1.0,
        )
        assert successor.run_once() == 0
        clock.advance(minutes=10)
        assert successor.run_once() == 1
    assert len(recorder.received) == copies
    assert {r.message["Message-ID"] for r in recorder.received} == {
        read(runtime, mail_id).message_id
    }
    done = read(runtime, mail_id)
    assert (done.state, done.attempts, done.holder) == (MailState.SENT, 2, None)
    with runtime.sessions() as db:
        events = db.execute(
            select(OutboxMailEvent.cause)
            .where(OutboxMailEvent.mail_id == mail_id)
            .order_by(OutboxMailEvent.id)
        ).scalars()
        assert list(events) == ["queued", "claimed", "lease-expired", "claimed", "accepted"]

"""The outgoing mail page: administrators see the queue (their sites' messages, or all of them
for the platform's), try a message again or cancel it (audited); others are refused."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from concilium.platform.db import transaction
from concilium.platform.mail import Mail, Security, SmtpRelay
from concilium.platform.outbox import Dispatcher, MailState, RetryPolicy, enqueue
from concilium.platform.tables import AuditEvent, OutboxMail
from serving import free_port


def queue(runtime, to: str, site_id: int | None) -> int:
    mail = Mail(kind="boards.minutes", to=(to,), subject="Compte rendu", text="Texte.")
    with transaction(runtime.sessions) as db:
        return enqueue(db, runtime, mail, site_id=site_id).id


def send_to_nobody(runtime) -> None:
    """A pass with the relay away and one try allowed: what is due is failed."""
    relay = SmtpRelay("127.0.0.1", free_port(), Security.NONE, "Concilium <c@chr-metz.fr>")
    Dispatcher(
        runtime.sessions,
        runtime.box,
        relay,
        runtime.now,
        RetryPolicy(1, timedelta(minutes=1), timedelta(hours=1)),
        lease=timedelta(minutes=5),
        poll=1.0,
    ).run_once()


def state(runtime, mail_id: int) -> str:
    with runtime.sessions() as db:
        return db.get(OutboxMail, mail_id).state


def audited(runtime, action: str) -> list[tuple[str, str]]:
    with runtime.sessions() as db:
        rows = db.execute(select(AuditEvent).where(AuditEvent.action == action)).scalars()
        return [(row.actor, row.object_id) for row in rows]


def test_the_platform_administrator_sees_a_failed_message_and_tries_it_again(app, world):
    rt = world.runtime
    failed = queue(rt, "onco@chr-briey.fr", world.metz.id)
    send_to_nobody(rt)
    waiting = queue(rt, "radio@chr-briey.fr", world.briey.id)
    admin = world.user("padmin", (world.metz, "admin"), platform_admin=True, with_totp=True)
    browser = world.client(app)
    del browser.headers["Accept-Language"]  # a browser that states no language
    csrf = world.sign_in(browser, admin)

    page = browser.get("/admin/outbox")
    assert page.status_code == 200
    text = page.text
    assert "Courriels sortants" in text  # French by default
    assert 'href="/admin/outbox"' in text  # in the menu
    assert "onco@chr-briey.fr" in text and "radio@chr-briey.fr" in text
    assert "boards.minutes" in text
    assert "En échec" in text and "ConnectionRefusedError" in text
    assert 'class="stack"' in text and 'data-label="Dernière erreur"' in text
    assert f'action="/admin/outbox/{failed}/retry?state="' in text
    assert "<script>" not in text and "style=" not in text  # the CSP allows neither

    only_failed = browser.get("/admin/outbox?state=failed").text
    assert "onco@chr-briey.fr" in only_failed and "radio@chr-briey.fr" not in only_failed

    refused = browser.post(f"/admin/outbox/{failed}/retry", data={"x": "1"})
    assert refused.status_code == 403 and state(rt, failed) == MailState.FAILED

    retried = browser.post(f"/admin/outbox/{failed}/retry", data={"csrf_token": csrf})
    assert retried.status_code == 303 and retried.headers["location"] == "/admin/outbox"
    assert state(rt, failed) == MailState.PENDING
    cancelled = browser.post(
        f"/admin/outbox/{waiting}/cancel?state=pending", data={"csrf_token": csrf}
    )
    assert cancelled.headers["location"] == "/admin/outbox?state=pending"
    assert state(rt, waiting) == MailState.CANCELLED
    assert audited(rt, "outbox.retry") == [("padmin", str(failed))]
    assert audited(rt, "outbox.cancel") == [("padmin", str(waiting))]

    again = browser.post(f"/admin/outbox/{waiting}/retry", data={"csrf_token": csrf})
    assert again.status_code == 409  # a cancelled message stays cancelled
    history = browser.get("/admin/outbox").text
    assert "Nouvel essai demandé" in history and "Annulé" in history


def test_a_site_administrator_sees_and_acts_on_their_sites_messages_only(app, world):
    rt = world.runtime
    metz = queue(rt, "onco@chr-metz.fr", world.metz.id)
    briey = queue(rt, "radio@chr-briey.fr", world.briey.id)
    platform = queue(rt, "someone@example.org", None)
    admin = world.user("briey-admin", (world.briey, "admin"), with_totp=True)
    browser = world.client(app)
    csrf = world.sign_in(browser, admin)
    text = browser.get("/admin/outbox").text
    assert "radio@chr-briey.fr" in text
    assert "onco@chr-metz.fr" not in text and "someone@example.org" not in text
    for mail_id in (metz, platform):
        response = browser.post(f"/admin/outbox/{mail_id}/cancel", data={"csrf_token": csrf})
        assert response.status_code == 403
        assert state(rt, mail_id) == MailState.PENDING
    assert browser.post(f"/admin/outbox/{briey}/cancel", data={"csrf_token": csrf}).status_code == (
        303
    )


def test_people_who_are_not_administrators_are_refused(app, world):
    rt = world.runtime
    mail_id = queue(rt, "onco@chr-metz.fr", world.metz.id)
    doctor = world.user("radio", (world.metz, "radiologist"), with_totp=True)
    browser = world.client(app)
    csrf = world.sign_in(browser, doctor)
    assert browser.get("/admin/outbox").status_code == 403
    retry = browser.post(f"/admin/outbox/{mail_id}/retry", data={"csrf_token": csrf})
    assert retry.status_code == 403
    assert 'href="/admin/outbox"' not in browser.get("/").text
    assert state(rt, mail_id) == MailState.PENDING


def test_the_page_shows_no_text_outside_the_catalogues():
    from test_translations import SRC, _untranslated

    template = SRC / "portal" / "templates" / "outbox.html"
    assert _untranslated(template.read_text(encoding="utf-8")) == []

"""E-mail messages and their delivery to a real SMTP server: STARTTLS or implicit TLS with a
verified certificate, AUTH LOGIN and PLAIN, an invitation read back by a calendar library."""

from __future__ import annotations

import smtplib
import ssl
from datetime import UTC, datetime, timedelta

import icalendar
import pytest
from pydantic import ValidationError

from concilium.config import Settings
from concilium.platform.calendar_ics import CalendarEvent, CalendarUser, Method, invitation
from concilium.platform.mail import (
    Attachment,
    Mail,
    Security,
    SmtpConnection,
    SmtpRelay,
    build_message,
    calendar_attachment,
    delivery_error,
)
from concilium.platform.outbox import RetryPolicy
from serving import free_port
from smtp_peer import PASSWORD, USERNAME, Recorder, make_pki, smtp_server

SENDER = "Concilium CHR Metz <concilium@chr-metz.fr>"
PDF = b"%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


def relay(port: int, pki=None, security=Security.STARTTLS, **changes) -> SmtpRelay:
    values = {
        "host": "127.0.0.1",
        "port": port,
        "security": security,
        "sender": SENDER,
        "reply_to": "Secrétariat RCP <rcp@chr-metz.fr>",
        "username": USERNAME,
        "password": PASSWORD,
        "ca_file": pki.ca_file if pki else None,
        "timeout": 10.0,
    }
    values.update(changes)
    return SmtpRelay(**values)


def meeting_invitation() -> bytes:
    start = datetime(2026, 3, 12, 13, 0, tzinfo=UTC)
    return invitation(
        CalendarEvent(
            uid="board-meeting-rcp.2026-03-12@concilium.chr-metz.fr",
            start=start,
            end=start + timedelta(hours=2),
            summary="RCP digestive",
            stamp=start - timedelta(days=7),
            organizer=CalendarUser("rcp@chr-metz.fr", "Coordination RCP"),
            attendees=(CalendarUser("onco@chr-briey.fr", "Dr Oncologue"),),
        )
    )


def mail(**changes) -> Mail:
    values = {
        "kind": "boards.invitation",
        "to": ("Dr Élise Oncologue <onco@chr-briey.fr>",),
        "subject": "Réunion de concertation du 12/03/2026 à 14:00",
        "text": "Bonjour,\n\nVous êtes invitée à la réunion.\n",
        "html": "<p>Bonjour,</p><p>Vous êtes invitée à la <b>réunion</b>.</p>",
        "attachments": (
            calendar_attachment(meeting_invitation(), Method.REQUEST),
            Attachment("ordre-du-jour.pdf", PDF, "application/pdf"),
        ),
        "language": "fr",
    }
    values.update(changes)
    return Mail(**values)


def send(relay: SmtpRelay, message: Mail, message_id: str = "<m1@chr-metz.fr>") -> None:
    built = build_message(
        message,
        sender=relay.sender,
        reply_to=relay.reply_to,
        message_id=message_id,
        date=datetime(2026, 3, 5, 8, 30, tzinfo=UTC),
    )
    with SmtpConnection(relay) as connection:
        assert connection.send(built, message.addresses) == {}


@pytest.fixture
def pki(tmp_path):
    return make_pki(tmp_path / "pki")


@pytest.mark.parametrize("mechanism", ["LOGIN", "PLAIN"])
def test_starttls_and_login_deliver_text_html_an_invitation_and_a_pdf(pki, mechanism):
    port, recorder = free_port(), Recorder()
    with smtp_server(port, recorder, pki=pki, auth=mechanism):
        send(relay(port, pki), mail())
    [received] = recorder.received
    assert received.login == USERNAME
    assert received.sender == "concilium@chr-metz.fr"
    assert received.recipients == ["onco@chr-briey.fr"]
    message = received.message
    assert message["From"] == SENDER
    assert message["To"] == "Dr Élise Oncologue <onco@chr-briey.fr>"
    assert message["Reply-To"] == "Secrétariat RCP <rcp@chr-metz.fr>"
    assert message["Subject"] == "Réunion de concertation du 12/03/2026 à 14:00"
    assert message["Message-ID"] == "<m1@chr-metz.fr>"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["Content-Language"] == "fr"
    assert message["Date"].datetime == datetime(2026, 3, 5, 8, 30, tzinfo=UTC)
    # Every line 7-bit: any relay takes it.
    assert all(byte < 128 for byte in received.raw)
    assert message.get_content_type() == "multipart/mixed"
    alternative = next(message.iter_parts())
    assert alternative.get_content_type() == "multipart/alternative"
    text, html, calendar = alternative.iter_parts()
    # Line ends in their canonical MIME form (CRLF, RFC 2045 section 6.1).
    assert text.get_content() == "Bonjour,\r\n\r\nVous êtes invitée à la réunion.\r\n"
    assert "<b>réunion</b>" in html.get_content()
    # iMIP (RFC 6047): the invitation is an alternative calendar clients act on...
    assert calendar.get_content_type() == "text/calendar"
    assert calendar.get_param("method") == "REQUEST"
    parsed = icalendar.Calendar.from_ical(calendar.get_content())
    assert parsed["METHOD"] == "REQUEST"
    [event] = parsed.walk("VEVENT")
    assert str(event["SUMMARY"]) == "RCP digestive"
    assert event["DTSTART"].dt == datetime(2026, 3, 12, 13, 0, tzinfo=UTC)
    # ...and the same object an .ics file for the others, with the PDF beside it.
    attachments = {part.get_filename(): part for part in message.iter_attachments()}
    assert set(attachments) == {"invitation.ics", "ordre-du-jour.pdf"}
    ics = attachments["invitation.ics"].get_content()
    assert icalendar.Calendar.from_ical(ics)["METHOD"] == "REQUEST"
    assert attachments["ordre-du-jour.pdf"].get_content_type() == "application/pdf"
    assert attachments["ordre-du-jour.pdf"].get_content() == PDF


def test_implicit_tls_delivers(pki):
    port, recorder = free_port(), Recorder()
    with smtp_server(port, recorder, pki=pki, implicit_tls=True, auth="PLAIN"):
        send(relay(port, pki, Security.TLS), mail(html="", attachments=()))
    [received] = recorder.received
    assert received.login == USERNAME
    assert received.message.get_content_type() == "text/plain"


def test_a_relay_whose_certificate_another_authority_issued_is_refused(pki, tmp_path):
    impostor = make_pki(tmp_path / "impostor", "Impostor CA")
    port, recorder = free_port(), Recorder()
    with (
        smtp_server(port, recorder, pki=impostor, auth="PLAIN"),
        pytest.raises(ssl.SSLCertVerificationError) as failure,
    ):
        send(relay(port, pki), mail())
    assert recorder.received == []
    error = delivery_error(failure.value)
    assert error.reason.startswith("relay certificate refused")
    assert not error.permanent and error.connection


def test_a_relay_not_offering_starttls_gets_nothing_in_the_clear(pki):
    port, recorder = free_port(), Recorder()
    with (
        smtp_server(port, recorder),  # no TLS at all
        pytest.raises(smtplib.SMTPNotSupportedError) as failure,
    ):
        send(relay(port, pki, username="", password=""), mail())
    assert recorder.received == []
    assert delivery_error(failure.value).reason.startswith("relay lacks a required extension")


def test_a_wrong_password_is_refused_and_worth_trying_again_later(pki):
    port, recorder = free_port(), Recorder()
    with (
        smtp_server(port, recorder, pki=pki, auth="LOGIN"),
        pytest.raises(smtplib.SMTPAuthenticationError) as failure,
    ):
        send(relay(port, pki, password="wrong"), mail())
    assert recorder.received == []
    error = delivery_error(failure.value)
    assert error.reason.startswith("authentication refused: 535")
    assert not error.permanent and error.connection


def test_a_refused_recipient_is_a_permanent_failure_that_names_no_address(pki):
    port, recorder = free_port(), Recorder(refuse={"onco@chr-briey.fr"})
    with (
        smtp_server(port, recorder, pki=pki, auth="PLAIN"),
        pytest.raises(smtplib.SMTPRecipientsRefused) as failure,
    ):
        send(relay(port, pki), mail())
    error = delivery_error(failure.value)
    assert error.reason == "recipients refused: 550 5.1.1"
    assert error.permanent and not error.connection
    assert "onco" not in error.reason


def test_nothing_listening_is_a_connection_failure_worth_trying_again():
    with pytest.raises(OSError) as failure:
        send(relay(free_port(), username="", password="", security=Security.NONE), mail())
    error = delivery_error(failure.value)
    assert error.reason.startswith("ConnectionRefusedError")
    assert not error.permanent and error.connection


# --- what a message may be --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"subject": "Objet\r\nBcc: everyone@example.org"}, "one line"),
        ({"to": ()}, "at least one recipient"),
        ({"to": ("not an address",)}, "not a mailbox"),
        ({"to": ("a@b.fr\r\nBcc: c@d.fr",)}, "one line"),
        ({"kind": "Boards Invitation"}, "area.what"),
        ({"text": "  "}, "plain-text body"),
    ],
)
def test_a_malformed_mail_is_refused_at_construction(changes, problem):
    with pytest.raises(ValueError, match=problem):
        mail(**changes)


def test_a_mail_survives_its_json_form():
    original = mail()
    assert Mail.from_json(original.to_json()) == original


def test_mail_settings_are_checked_and_the_password_masked():
    with pytest.raises(ValidationError, match="mail_from"):
        Settings(smtp_host="relay.example.org")
    with pytest.raises(ValidationError, match="only sent over TLS"):
        Settings(smtp_host="h", mail_from=SENDER, smtp_security="none", smtp_username="u")
    with pytest.raises(ValidationError, match="mailbox"):
        Settings(mail_from="Concilium")
    settings = Settings(smtp_host="h", mail_from=SENDER, smtp_username="u", smtp_password="p")
    shown = settings.masked()
    assert shown["smtp_password"] == "****"
    assert "p" not in str(shown["smtp_password"])
    relay_ = SmtpRelay.from_settings(settings)
    assert relay_ is not None and relay_.security is Security.STARTTLS and relay_.port == 587
    assert "p'" not in repr(relay_)  # the password is left out of its repr
    assert SmtpRelay.from_settings(Settings()) is None


def test_waits_double_up_to_the_longest():
    policy = RetryPolicy(5, timedelta(minutes=1), timedelta(minutes=5))
    assert [policy.delay(n) for n in range(1, 6)] == [
        timedelta(minutes=1),
        timedelta(minutes=2),
        timedelta(minutes=4),
        timedelta(minutes=5),
        timedelta(minutes=5),
    ]
    assert not policy.gives_up(4, permanent=False)
    assert policy.gives_up(5, permanent=False)
    assert policy.gives_up(1, permanent=True)

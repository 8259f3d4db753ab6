"""The ``mail`` command group: send the outbox from a worker process, check the relay."""

from __future__ import annotations

import signal
import threading
from email.utils import make_msgid
from types import FrameType

import click

from concilium.commands import Group, cli_settings, speak_terminal_language
from concilium.platform import i18n
from concilium.platform.db import utcnow
from concilium.platform.i18n import N_, _, ngettext
from concilium.platform.mail import SmtpConnection, SmtpRelay, build_message, delivery_error
from concilium.platform.notify import Recipient, compose
from concilium.platform.outbox import Dispatcher, message_id_domain
from concilium.platform.runtime import Runtime


@click.group(
    "mail",
    cls=Group,
    help=N_("Outgoing e-mail (the SMTP relay is set by the CONCILIUM_SMTP_* settings)."),
)
@click.pass_context
def mail(ctx: click.Context) -> None:
    speak_terminal_language(ctx)


def _mail_is_off() -> click.ClickException:
    return click.ClickException(_("e-mail is off: set CONCILIUM_SMTP_HOST"))


@mail.command(
    "dispatch",
    help=N_(
        "Send the outbox's messages until stopped (SIGTERM or Ctrl-C). 'concilium serve' "
        "already does this; run it in processes of its own when e-mail should leave from "
        "elsewhere, or in several at once on PostgreSQL (each claims other messages)."
    ),
)
@click.option("--once", is_flag=True, help=N_("Send what is due now, then exit."))
def dispatch(once: bool) -> None:
    from concilium.web.observability import configure_logging

    settings = cli_settings()
    configure_logging(settings.log_level)
    runtime = Runtime.start(settings)
    try:
        dispatcher = Dispatcher.for_runtime(runtime)
        if dispatcher is None:
            raise _mail_is_off()
        if once:
            tried = dispatcher.run_once()
            click.echo(
                ngettext("%(num)d message tried", "%(num)d messages tried", tried) % {"num": tried}
            )
            return
        stopping = threading.Event()

        def stop(_signal: int, _frame: FrameType | None) -> None:
            stopping.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        dispatcher.start()
        click.echo(_("sending the outbox as %(holder)s") % {"holder": dispatcher.holder}, err=True)
        while not stopping.wait(1.0):
            pass
        dispatcher.stop()
    finally:
        runtime.close()


@mail.command(
    "test",
    help=N_(
        "Send one message straight through the relay, and say what the relay answered. "
        "Nothing is queued: use it to check the relay's settings (TLS, certificate, login, "
        "the sender it accepts)."
    ),
)
@click.option("--to", "address", required=True, help=N_("Address to send a test message to."))
@click.option(
    "--language",
    type=click.Choice(i18n.LOCALES),
    default=i18n.DEFAULT_LOCALE,
    show_default=True,
    help=N_("Language of the test message."),
)
def test(address: str, language: str) -> None:
    settings = cli_settings()
    relay = SmtpRelay.from_settings(settings)
    if relay is None:
        raise _mail_is_off()
    try:
        recipient = Recipient(address, language)
        with i18n.using_locale(language):
            values = {
                "name": address,
                "subject": i18n.gettext(N_("Concilium test message")),
                "text": i18n.gettext(
                    N_(
                        "This message checks that Concilium can send e-mail through its "
                        "relay. No action is needed."
                    )
                ),
                "link": settings.public_url,
                "link_label": "Concilium",
            }
        message = compose("mail.test", recipient, "notice", values)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    built = build_message(
        message,
        sender=relay.sender,
        reply_to=relay.reply_to,
        message_id=make_msgid("test", domain=message_id_domain(settings)),
        date=utcnow(),
    )
    try:
        with SmtpConnection(relay) as connection:
            refused = connection.send(built, message.addresses)
    except Exception as exc:
        error = delivery_error(exc)
        raise click.ClickException(_("not sent: %(reason)s") % {"reason": error.reason}) from exc
    if refused:
        raise click.ClickException(_("the relay refused the recipient"))
    sent = {"host": relay.host, "port": relay.port, "sender": relay.sender_address}
    click.echo(_("sent to %(host)s:%(port)s as %(sender)s") % sent)

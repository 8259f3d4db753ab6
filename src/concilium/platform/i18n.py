"""Words and times as people read them: French by default, English on request, every time
in the reader's zone.

Messages are written in English in the code and templates (``_("...")``, ``{% trans %}``)
and translated through gettext catalogues (``<package>/locale/<lang>/LC_MESSAGES/
messages.po``), one per service, read when the process starts. The language of a request is
the reader's choice, else their browser's (``Accept-Language``), else French; it is held in
a context variable for the request's whole work, so that domain errors raised deep in a
service, problem titles and pages all speak the reader's language.
"""

from __future__ import annotations

import gettext as _gettext
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_date, format_datetime, format_time
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LOCALES = ("fr", "en")
"""Languages of the interface, the default first."""
DEFAULT_LOCALE = "fr"
"""Language of the interface when nobody chose another."""
DEFAULT_ZONE = "Europe/Paris"
"""Zone of a site, and of a reader, when none was set."""
DOMAIN = "messages"
"""Name of every catalogue file."""
_BABEL_LOCALES = {"fr": Locale.parse("fr_FR"), "en": Locale.parse("en_GB")}
"""Formatting conventions: French, and British English (24-hour clock, day first)."""

_current: ContextVar[str] = ContextVar("concilium_locale", default=DEFAULT_LOCALE)
_catalogues: dict[str, _gettext.NullTranslations] = {}
_script_ids: set[str | tuple[str, str]] = set()
"""Messages the browser scripts use (singular, or singular and plural)."""


def load_catalogues(folders: Iterable[Path]) -> None:
    """Read every ``<folder>/<lang>/LC_MESSAGES/messages.po`` into the process's catalogues
    (the process assembly calls this once, with the platform's and each service's folder).

    Catalogues are read from their ``.po`` source, so a checkout needs no build step.
    """
    merged: dict[str, _gettext.NullTranslations] = {}
    scripts: set[str | tuple[str, str]] = set()
    for lang in LOCALES:
        chain: _gettext.NullTranslations | None = None
        for folder in folders:
            po = folder / lang / "LC_MESSAGES" / f"{DOMAIN}.po"
            if not po.is_file():
                continue
            translations = _read(po, lang, scripts)
            if chain is None:
                chain = translations
            else:
                chain.add_fallback(translations)
        merged[lang] = chain or _gettext.NullTranslations()
    _catalogues.clear()
    _catalogues.update(merged)
    _script_ids.clear()
    _script_ids.update(scripts)


def _read(po: Path, lang: str, scripts: set[str | tuple[str, str]]) -> _gettext.GNUTranslations:
    import io

    with po.open("rb") as handle:
        catalog = read_po(handle, locale=lang, domain=DOMAIN)
    for message in catalog:
        if message.id and any(where.endswith(".js") for where, _line in message.locations):
            if isinstance(message.id, str):
                scripts.add(message.id)
            else:
                scripts.add((message.id[0], message.id[1]))
    buffer = io.BytesIO()
    write_mo(buffer, catalog, use_fuzzy=False)
    buffer.seek(0)
    return _gettext.GNUTranslations(buffer)


def current_locale() -> str:
    """The language of the work under way (a request, a command, a message being sent)."""
    return _current.get()


@contextmanager
def using_locale(locale: str) -> Iterator[str]:
    """Run a block in ``locale`` (a known one, else the default)."""
    token = _current.set(locale if locale in LOCALES else DEFAULT_LOCALE)
    try:
        yield _current.get()
    finally:
        _current.reset(token)


def set_locale(locale: str) -> None:
    """Set the language for the rest of the current context (a request's, a command's)."""
    _current.set(locale if locale in LOCALES else DEFAULT_LOCALE)


def _translations() -> _gettext.NullTranslations:
    return _catalogues.get(_current.get()) or _gettext.NullTranslations()


def gettext(message: str) -> str:
    """``message`` in the current language."""
    return _translations().gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    """The singular or the plural of a message for ``n``, in the current language's rule
    (in French, 0 and 1 take the singular)."""
    return _translations().ngettext(singular, plural, n)


def pgettext(context: str, message: str) -> str:
    """``message`` in the current language, told apart from the same English words used
    elsewhere with another meaning by ``context``."""
    return _translations().pgettext(context, message)


_ = gettext


def N_(message: str) -> str:  # noqa: N802 - the name gettext tools look for
    """Mark ``message`` for the catalogues where it is declared; it is translated where it
    is shown (menu labels, constant tables)."""
    return message


def script_messages() -> dict[str, object]:
    """What the browser scripts of a page need, in the current language: each of their
    messages translated, and the language's plural rule (see ``/static/i18n.js``)."""
    translations = _translations()
    singular: dict[str, str] = {}
    plural: dict[str, list[str]] = {}
    for message in _script_ids:
        if isinstance(message, str):
            singular[message] = translations.gettext(message)
        else:
            one, many = message
            plural[one] = [translations.ngettext(one, many, 1), translations.ngettext(one, many, 2)]
    return {"locale": _current.get(), "messages": singular, "plurals": plural}


def negotiate(accept_language: str) -> str:
    """The interface language a browser asks for (``Accept-Language``, RFC 9110 12.5.4)."""
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate(accept_language.split(",")):
        tag, _sep, params = part.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            key, _eq, value = param.strip().partition("=")
            if key == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        language = tag.strip().lower().split("-")[0]
        if language in LOCALES and quality > 0:
            ranked.append((-quality, index, language))
    return sorted(ranked)[0][2] if ranked else DEFAULT_LOCALE


def zone(name: str | None) -> ZoneInfo:
    """The IANA zone ``name`` (the default zone when empty)."""
    return ZoneInfo(name or DEFAULT_ZONE)


def _babel() -> Locale:
    return _BABEL_LOCALES.get(_current.get(), _BABEL_LOCALES[DEFAULT_LOCALE])


def show_datetime(value: datetime, where: ZoneInfo, form: str = "short") -> str:
    """A moment as a reader in zone ``where`` reads it: ``29/03/2026 14:00`` (24-hour clock)."""
    return format_datetime(value, form, tzinfo=where, locale=_babel())


def show_date(value: date | datetime, where: ZoneInfo, form: str = "short") -> str:
    """A day as a reader reads it (``29/03/2026``; ``long``: ``29 mars 2026``)."""
    if isinstance(value, datetime):
        value = value.astimezone(where).date()
    return format_date(value, form, locale=_babel())


def show_time(value: datetime | time, where: ZoneInfo) -> str:
    """A time of day on the 24-hour clock (``14:00``)."""
    if isinstance(value, datetime):
        value = value.astimezone(where)
    return format_time(value, "HH:mm", locale=_babel())

"""French first: every message people read is in the catalogues, translated into French, and
shown in the reader's language; every time in the reader's zone."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import re
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from jinja2 import Environment

from concilium.platform import i18n
from concilium.services import LOCALE_FOLDERS

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "concilium"


def _tool():
    loader = importlib.machinery.SourceFileLoader("i18n_tool", str(ROOT / "tools" / "i18n"))
    spec = importlib.util.spec_from_loader("i18n_tool", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["i18n_tool"] = module
    loader.exec_module(module)
    return module


def test_every_message_of_the_code_is_in_the_catalogues_and_translated_into_french():
    tool = _tool()
    problems = [str(p) for package in tool.PACKAGES for p in tool.check(package)]
    assert problems == [], "run tools/i18n update, then translate:\n" + "\n".join(problems)


def test_no_message_is_translated_two_ways_by_two_packages():
    tool = _tool()
    problems = [str(p) for p in tool.disagreements()]
    assert problems == [], "give the message a context or other words:\n" + "\n".join(problems)


def test_the_check_finds_a_message_two_packages_translate_differently(tmp_path, monkeypatch):
    tool = _tool()
    for package, french in (("one", "soumis"), ("two", "soumise")):
        folder = tmp_path / package / "locale" / "fr" / "LC_MESSAGES"
        folder.mkdir(parents=True)
        (folder / "messages.po").write_text(
            f'msgid ""\nmsgstr ""\n\nmsgid "submitted"\nmsgstr "{french}"\n', encoding="utf-8"
        )
    monkeypatch.setattr(tool, "SRC", tmp_path)
    monkeypatch.setattr(tool, "PACKAGES", ("one", "two"))
    monkeypatch.setattr(tool, "LANGUAGES", ("fr",))
    problems = [str(p) for p in tool.disagreements()]
    assert len(problems) == 1
    assert "'submitted'" in problems[0] and "soumise" in problems[0]


# Text a person reads, outside any tag: at least two letters in a row.
_WORDS = re.compile(r"[^\W\d_]{2,}")
# Attributes people read (tooltips, labels for assistive technology, placeholders, prompts).
_READ_ATTRIBUTES = re.compile(
    r'\b(title|alt|placeholder|aria-label|data-confirm)="([^"]*[^\W\d_]{2,}[^"]*)"'
)
_NOT_WORDS = frozenset(
    {"Concilium", "DICOM", "DICOMweb", "OHIF", "FINESS", "RPPS", "HL7", "TLS", "ms", "Hz", "mm"}
)
"""Names, and units of the International System, the same in every language."""


def _untranslated(source: str) -> list[str]:
    """Literal text of a template that no ``_()``/``{% trans %}`` carries."""
    Environment(extensions=["jinja2.ext.i18n"]).parse(source)  # a template that compiles
    text = re.sub(r"{%-?\s*trans\b.*?{%-?\s*endtrans\s*-?%}", "0", source, flags=re.S)
    text = re.sub(r"{{.*?}}|{%.*?%}|{#.*?#}", "0", text, flags=re.S)
    text = re.sub(r"<script\b.*?</script>|<style\b.*?</style>", " ", text, flags=re.S)
    found = [f'{name}="{value}"' for name, value in _READ_ATTRIBUTES.findall(text)]
    visible = re.sub(r"<[^>]*>", " ", text)
    visible = re.sub(r"&\w+;|&#\d+;", " ", visible)
    for line in visible.splitlines():
        words = [w for w in _WORDS.findall(line) if w not in _NOT_WORDS]
        if words:
            found.append(" ".join(line.split())[:80])
    return found


@pytest.mark.parametrize(
    "template",
    sorted(SRC.glob("*/templates/**/*.html")),
    ids=lambda p: str(p.relative_to(SRC)),
)
def test_templates_show_no_text_outside_the_catalogues(template):
    assert _untranslated(template.read_text(encoding="utf-8")) == []


def test_the_check_finds_untranslated_text_and_attributes():
    assert _untranslated('<p>{{ _("Hello") }}</p><p title="{{ _("x") }}">5</p>') == []
    assert _untranslated("<p>Hello there</p>") == ["Hello there"]
    assert _untranslated('<button data-confirm="Really delete?">x</button>') == [
        'data-confirm="Really delete?"'
    ]


def test_french_is_the_default_and_english_is_there_on_request():
    i18n.load_catalogues(LOCALE_FOLDERS)
    assert i18n.current_locale() == "fr"
    assert i18n.gettext("Sign out") == "Se déconnecter"
    with i18n.using_locale("en"):
        assert i18n.gettext("Sign out") == "Sign out"
    with i18n.using_locale("de"):
        assert i18n.current_locale() == "fr"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("", "fr"),
        ("en-GB,en;q=0.9", "en"),
        ("de-DE,de;q=0.9,en;q=0.5,fr;q=0.7", "fr"),
        ("fr-FR", "fr"),
        ("en;q=0", "fr"),
        ("*", "fr"),
        ("en;q=abc", "fr"),
    ],
)
def test_the_browser_language_is_negotiated(header, expected):
    assert i18n.negotiate(header) == expected


def test_times_are_shown_in_the_reader_zone_on_the_24_hour_clock_across_dst():
    paris = i18n.zone("Europe/Paris")
    # The last Sunday of March 2026: 01:00 UTC is 03:00 in Paris (02:00 never happened).
    spring = datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    # The last Sunday of October 2026: 00:30 UTC and 01:30 UTC are both 02:30 in Paris.
    autumn_first = datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    autumn_second = datetime(2026, 10, 25, 1, 30, tzinfo=UTC)
    afternoon = datetime(2026, 12, 7, 13, 0, tzinfo=UTC)
    with i18n.using_locale("fr"):
        assert i18n.show_datetime(spring, paris) == "29/03/2026 03:00"
        assert i18n.show_time(autumn_first, paris) == "02:30"
        assert i18n.show_time(autumn_second, paris) == "02:30"
        assert i18n.show_datetime(afternoon, paris) == "07/12/2026 14:00"
        assert i18n.show_date(afternoon, paris, "long") == "7 décembre 2026"
    with i18n.using_locale("en"):
        assert i18n.show_datetime(afternoon, paris) == "07/12/2026, 14:00"
        assert i18n.show_date(afternoon, paris, "long") == "7 December 2026"

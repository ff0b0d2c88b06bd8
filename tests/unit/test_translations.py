"""Every string the portals show has a Chinese translation, and pages switch language."""

from __future__ import annotations

from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from tuike.web.portals import i18n

ROOT = Path(__file__).resolve().parents[2]
PORTALS = ROOT / "src" / "tuike" / "web" / "portals"
METHOD_MAP = [("**.py", "python"), ("templates/**.html", "jinja2")]
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None}


def _source_messages() -> dict[str, str]:
    found: dict[str, str] = {}
    for filename, lineno, message, _comments, _context in extract_from_dir(
        str(PORTALS), METHOD_MAP, keywords=KEYWORDS
    ):
        for msgid in message if isinstance(message, tuple) else (message,):
            if msgid:
                found.setdefault(msgid, f"{filename}:{lineno}")
    return found


def test_the_sources_mark_the_strings_the_pages_show():
    found = _source_messages()
    assert len(found) > 200
    assert "Dashboard" in found and "Send a test conversion" in found and "approved" in found


def test_every_portal_string_has_a_chinese_translation():
    with (PORTALS / "locale" / "zh_CN" / "LC_MESSAGES" / "messages.po").open("rb") as f:
        catalog = read_po(f, locale="zh_CN")
    untranslated = [
        f"{msgid!r} ({where})"
        for msgid, where in sorted(_source_messages().items())
        if not (catalog.get(msgid) and catalog.get(msgid).string) or catalog.get(msgid).fuzzy
    ]
    assert not untranslated, "run scripts/messages and translate: " + ", ".join(untranslated)


def test_placeholders_survive_translation():
    zh = i18n.translations("zh_CN")
    for msgid, where in _source_messages().items():
        if "%(" in msgid:
            names = sorted(part.split(")")[0] for part in msgid.split("%(")[1:])
            translated = zh.gettext(msgid)
            assert sorted(p.split(")")[0] for p in translated.split("%(")[1:]) == names, where


def test_locale_negotiation_prefers_the_switcher_then_the_user_then_the_browser():
    assert i18n.negotiate("zh_CN", "en-US", "en") == "zh_CN"
    assert i18n.negotiate(None, "en-US", "zh_CN") == "zh_CN"
    assert i18n.negotiate(None, "zh-TW,zh;q=0.9", "") == "zh_CN"
    assert i18n.negotiate("xx", "fr-FR", "") == "en"


def test_money_numbers_and_dates_follow_the_locale():
    from datetime import date
    from decimal import Decimal

    en, zh = i18n.Formatter("en"), i18n.Formatter("zh_CN")
    assert en.money(Decimal("1234.5"), "CNY") == "CN¥1,234.50"
    assert zh.money(Decimal("1234.5"), "CNY") == "¥1,234.50"
    assert en.money("9.9", "USD") == "$9.90" and zh.money("9.9", "USD") == "US$9.90"
    assert en.day(date(2026, 11, 11)) == "Nov 11, 2026"
    assert zh.day(date(2026, 11, 11)) == "2026年11月11日"
    assert en.percent(Decimal("0.0123")) == "1.23%"
    assert en.number(1234567) == "1,234,567"

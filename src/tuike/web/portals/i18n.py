"""Languages of the portals: gettext catalogs compiled from the .po files, and formatting.

The catalogs are read from ``locale/<lang>/LC_MESSAGES/messages.po`` when first used
and compiled in memory, so the repository holds no binary .mo files.
"""

from __future__ import annotations

import gettext
import io
from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

from babel import Locale, dates, numbers
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

LOCALES = ("en", "zh_CN")
LOCALE_NAMES = {"en": "English", "zh_CN": "简体中文"}
LOCALE_DIR = Path(__file__).parent / "locale"
LANG_COOKIE = "tk_lang"


@lru_cache
def translations(locale: str) -> gettext.NullTranslations:
    """Return the message catalog of a locale (English is the source language)."""
    po = LOCALE_DIR / locale / "LC_MESSAGES" / "messages.po"
    if locale == "en" or not po.exists():
        return gettext.NullTranslations()
    with po.open("rb") as f:
        catalog = read_po(f, locale=locale)
    buf = io.BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    return Translations(buf)


def negotiate(cookie: str | None, accept_language: str | None, preferred: str = "") -> str:
    """Pick the locale: the switcher's cookie, then the user's choice, then the browser's."""
    for choice in (cookie, preferred):
        if choice in LOCALES:
            return choice  # type: ignore[return-value]
    for part in (accept_language or "").split(","):
        tag = part.split(";")[0].strip().lower()
        if tag.startswith("zh"):
            return "zh_CN"
        if tag.startswith("en"):
            return "en"
    return "en"


class Formatter:
    """Numbers, money and dates written the way a locale writes them."""

    def __init__(self, locale: str, tz: str = "UTC") -> None:
        self.locale = Locale.parse(locale)
        self.tz = ZoneInfo(tz)

    def number(self, value: int | Decimal | float | None) -> str:
        """Format a count or a plain number."""
        return "–" if value is None else numbers.format_decimal(value, locale=self.locale)

    def money(self, amount: Decimal | str | None, currency: str) -> str:
        """Format an amount with its currency sign (CN¥1,234.50 / ¥1,234.50)."""
        if amount is None or not currency:
            return "–"
        return numbers.format_currency(Decimal(amount), currency, locale=self.locale)

    def percent(self, ratio: Decimal | str | None) -> str:
        """Format a ratio (0.0123) as a percentage."""
        if ratio is None:
            return "–"
        return numbers.format_percent(Decimal(ratio), format="#,##0.00%", locale=self.locale)

    def day(self, value: date | str) -> str:
        """Format a calendar day."""
        if isinstance(value, str):
            value = date.fromisoformat(value)
        return dates.format_date(value, format="medium", locale=self.locale)

    def moment(self, value: datetime | None) -> str:
        """Format a time in the viewer's time zone."""
        if value is None:
            return "–"
        return dates.format_datetime(
            value.astimezone(self.tz), format="short", tzinfo=self.tz, locale=self.locale
        )

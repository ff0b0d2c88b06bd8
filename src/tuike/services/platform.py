"""Platform settings the operator changes at run time, over the ``platform_settings`` table.

Environment settings (``tuike.config``) describe the installation and need a restart;
these describe the platform's policy and change while it runs. Each key has a type, a
default and a check; a key never written reads as its default, and a stored value that no
longer passes its check (an older version wrote it) reads as the default too.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.exc import SQLAlchemyError

from tuike.domain.errors import InvalidField
from tuike.services import audit
from tuike.services.catalog import EMAIL
from tuike.services.clock import utcnow
from tuike.storage import tables as t
from tuike.storage import versions
from tuike.storage.db import Database, insert_for

log = logging.getLogger("tuike.platform")
VERSION_KEY = "platform"


@dataclass(frozen=True, slots=True)
class PlatformSettings:
    """The effective platform settings (defaults where the operator set nothing)."""

    affiliate_signup_open: bool = True
    merchant_signup_open: bool = True
    platform_name: str = "tuike"
    support_email: str = ""
    default_cookie_days: int = 30

    def as_dict(self) -> dict[str, Any]:
        """Return the settings as a key → value mapping."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


def _flag(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise InvalidField(key, "must be true or false")
    return value


def _name(key: str, value: Any) -> str:
    if not isinstance(value, str):
        raise InvalidField(key, "must be text")
    value = value.strip()
    if not 1 <= len(value) <= 60:
        raise InvalidField(key, "must be 1 to 60 characters")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise InvalidField(key, "must not contain control characters")
    return value


def _email_or_empty(key: str, value: Any) -> str:
    if not isinstance(value, str):
        raise InvalidField(key, "must be text")
    value = value.strip().lower()
    if value and (not EMAIL.match(value) or len(value) > 254):
        raise InvalidField(key, "must be an email address, or empty")
    return value


def _days(key: str, value: Any) -> int:
    # The same bounds as a program's own cookie_days (services/catalog.py).
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 365:
        raise InvalidField(key, "must be a whole number of days from 0 to 365")
    return value


@dataclass(frozen=True, slots=True)
class Setting:
    """One key of the registry: its type, what it does, and its check."""

    key: str
    kind: type
    summary: str
    check: Callable[[str, Any], Any]

    @property
    def default(self) -> Any:
        """Return the value the key has until the operator sets it."""
        return getattr(PlatformSettings(), self.key)


REGISTRY: tuple[Setting, ...] = (
    Setting(
        "affiliate_signup_open",
        bool,
        "Affiliates may sign up (portal and API); closed answers 403.",
        _flag,
    ),
    Setting(
        "merchant_signup_open",
        bool,
        "Merchants may sign up (portal and API); closed answers 403.",
        _flag,
    ),
    Setting(
        "platform_name",
        str,
        "The name the portals and mails show (1–60 characters).",
        _name,
    ),
    Setting(
        "support_email",
        str,
        "Where people write for help, shown in every page's footer and in mails; empty hides it.",
        _email_or_empty,
    ),
    Setting(
        "default_cookie_days",
        int,
        "Cookie window (0–365 days) of a new program created without cookie_days.",
        _days,
    ),
)
BY_KEY: dict[str, Setting] = {s.key: s for s in REGISTRY}


def load(conn: Connection) -> PlatformSettings:
    """Return the effective settings: stored values over the defaults."""
    values: dict[str, Any] = {}
    for row in conn.execute(select(t.platform_settings.c.key, t.platform_settings.c.value)):
        spec = BY_KEY.get(row.key)
        if spec is None:
            continue  # a key a newer or older version knew: ignored, kept
        try:
            values[row.key] = spec.check(row.key, row.value)
        except InvalidField:
            log.warning("platform setting %s has a bad stored value; using the default", row.key)
    return PlatformSettings(**values)


def check(changes: Mapping[str, Any]) -> dict[str, Any]:
    """Return the changes normalised, or raise InvalidField for the first bad one."""
    out: dict[str, Any] = {}
    for key, value in changes.items():
        spec = BY_KEY.get(key)
        if spec is None:
            raise InvalidField(key, "is not a platform setting")
        out[key] = spec.check(key, value)
    return out


def update(conn: Connection, changes: Mapping[str, Any], *, actor: str) -> PlatformSettings:
    """Validate and store changed settings, audit-logged; nothing is stored if one is bad."""
    clean = check(changes)
    current = load(conn)
    changed = {k: v for k, v in clean.items() if getattr(current, k) != v}
    if not changed:
        return current
    now = utcnow()
    table = t.platform_settings
    for key, value in changed.items():
        stmt = insert_for(conn, table).values(
            key=key, value=value, updated_at=now, updated_by=actor[:64]
        )
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=[table.c.key],
                set_={"value": value, "updated_at": now, "updated_by": actor[:64]},
            )
        )
    versions.bump(conn, VERSION_KEY)
    audit.record(
        conn,
        actor,
        "platform.update_settings",
        "platform",
        changes={k: {"from": getattr(current, k), "to": v} for k, v in changed.items()},
    )
    return replace(current, **changed)


@dataclass(frozen=True, slots=True)
class StoredSetting:
    """When and by whom a key was last set."""

    key: str
    updated_at: Any
    updated_by: str


def history(conn: Connection) -> dict[str, StoredSetting]:
    """Return when each stored key was last changed, and by whom."""
    return {
        r.key: StoredSetting(r.key, r.updated_at, r.updated_by)
        for r in conn.execute(select(t.platform_settings))
    }


class SettingsCache:
    """The settings in memory for page renders: re-read when their version moves.

    The version counter is read at most once per ``poll_seconds``, so a page render costs
    no query most of the time, and a change made by another worker process is seen within
    about that time. The process that writes calls ``invalidate`` and sees it at once.
    """

    def __init__(self, db: Database, *, poll_seconds: float = 1.0) -> None:
        self._db = db
        self._poll = poll_seconds
        self._value = PlatformSettings()
        self._version = -1
        self._checked = float("-inf")
        self._lock = threading.Lock()

    def get(self) -> PlatformSettings:
        """Return the settings, reading the database at most once per poll period."""
        now = time.monotonic()
        with self._lock:
            due = now - self._checked >= self._poll
            if due:
                self._checked = now  # one caller polls; the others use what is known
            known = self._version >= 0
        if due or not known:
            self._refresh()
        return self._value

    def _refresh(self) -> None:
        try:
            with self._db.read() as conn:
                version = versions.current(conn, VERSION_KEY)
                if version != self._version:
                    value = load(conn)
                    with self._lock:
                        self._value, self._version = value, version
        except SQLAlchemyError as exc:
            # Pages such as the operator's system page must render with the database down.
            log.warning("platform settings unreadable, using the last known: %s", exc)

    def invalidate(self) -> None:
        """Make the next read poll the database (after a change in this process)."""
        with self._lock:
            self._checked = float("-inf")

"""Identifiers: time-ordered ULIDs for clicks and conversions, random base62 link codes."""

from __future__ import annotations

import os
import secrets
import time
from datetime import UTC, datetime, timedelta

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
ULID_LENGTH = 26
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
_PAIRS = [a + b for a in _CROCKFORD for b in _CROCKFORD]
_SHIFTS = range(120, -1, -10)


def new_ulid(at: datetime | None = None) -> str:
    """Return a new ULID: 48-bit millisecond time + 80 random bits, Crockford base32."""
    if at is None:
        ms = time.time_ns() // 1_000_000
    else:
        # Exact integer milliseconds (float timestamps lose precision); naive = local time.
        ms = ((at if at.tzinfo is not None else at.astimezone()) - _EPOCH) // _MS
    value = (ms << 80) | int.from_bytes(os.urandom(10), "big")
    # Two characters (10 bits) per step: this runs once per click.
    return "".join([_PAIRS[(value >> shift) & 1023] for shift in _SHIFTS])


def ulid_floor(at: datetime) -> str:
    """Return the smallest ULID of a moment: ids ``>=`` it were made at ``at`` or later."""
    return new_ulid(at)[:10] + "0" * 16


def ulid_time(ulid: str) -> datetime:
    """Return the UTC time encoded in a ULID (raises ValueError if it is not one)."""
    if not is_ulid(ulid):
        raise ValueError(f"not a ULID: {ulid!r}")
    value = 0
    for ch in ulid[:10]:
        value = value * 32 + _CROCKFORD.index(ch)
    try:
        return _EPOCH + value * _MS
    except OverflowError:
        raise ValueError(f"ULID time of {ulid!r} is out of range") from None


def is_ulid(value: str) -> bool:
    """Tell whether a string is a well-formed ULID."""
    return (
        isinstance(value, str)
        and len(value) == ULID_LENGTH
        and value[0] in "01234567"
        and all(ch in _CROCKFORD for ch in value)
    )


def new_link_code(length: int = 8) -> str:
    """Return a random, non-sequential base62 link code."""
    return "".join(secrets.choice(_BASE62) for _ in range(length))


def is_link_code(value: str) -> bool:
    """Tell whether a string has the shape of a link code (7-32 URL-safe characters)."""
    return 7 <= len(value) <= 32 and all(ch in _BASE62 or ch in "-_" for ch in value)


def new_public_id(prefix: str) -> str:
    """Return a random public identifier such as ``prg_3kQ9x2mZ``."""
    return f"{prefix}_{new_link_code(12)}"

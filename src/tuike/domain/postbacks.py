"""Affiliate postback URL templates: the macros, their validation and rendering.

A template is an absolute http(s) URL with macros such as ``{click_id}`` in its path,
query or fragment. Rendering replaces each macro with its value percent-encoded (every
byte but ``A-Z a-z 0-9 - . _ ~``), so a value can never add a query parameter, a path
segment or change the host.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote, urlsplit

from tuike.domain.errors import InvalidField

MACROS = (
    "click_id",
    "aff_click_id",
    "sub1",
    "sub2",
    "sub3",
    "sub4",
    "sub5",
    "event",
    "order_id",
    "payout",
    "currency",
    "status",
)
MAX_TEMPLATE = 2048
MAX_URL = 4096  # postback_deliveries.url
_MACRO = re.compile(r"\{([^{}]*)\}")
FIELD = "url_template"

# Delivery statuses: pending (waiting for its next attempt), delivered (a 2xx answer),
# failed (every attempt failed), refused (the address is not allowed; never retried).
PENDING, DELIVERED, FAILED, REFUSED = "pending", "delivered", "failed", "refused"
DELIVERY_STATUSES = (PENDING, DELIVERED, FAILED, REFUSED)
# Waits after the 1st, 2nd … failed attempt; after the last one the delivery is failed.
RETRY_DELAYS_SECONDS = (60, 300, 1800, 7200, 43200)
MAX_ATTEMPTS = len(RETRY_DELAYS_SECONDS) + 1


@dataclass(frozen=True, slots=True)
class PostbackUrl:
    """An affiliate's postback URL template, for one program or (program_id 0) all."""

    affiliate_id: int
    program_id: int
    url_template: str
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Delivery:
    """One outgoing postback and what became of it."""

    id: int
    affiliate_id: int
    conversion_id: str | None
    url: str
    status: str
    is_test: bool
    attempts: int
    next_attempt_at: datetime
    last_code: int | None
    last_error: str
    response_snippet: str
    created_at: datetime
    delivered_at: datetime | None


def check_template(template: str) -> str:
    """Return a valid template (trimmed), or raise InvalidField naming what is wrong."""
    if not isinstance(template, str):
        raise InvalidField(FIELD, "must be a string")
    template = template.strip()
    if not template:
        raise InvalidField(FIELD, "is required")
    if len(template) > MAX_TEMPLATE:
        raise InvalidField(FIELD, f"must be at most {MAX_TEMPLATE} characters")
    if any(ord(ch) < 33 or ch in "\\\x7f" for ch in template):
        raise InvalidField(FIELD, "must not contain spaces, control characters or '\\'")
    unknown = [m for m in _MACRO.findall(template) if m not in MACROS]
    if unknown:
        known = ", ".join("{" + m + "}" for m in MACROS)
        raise InvalidField(FIELD, f"unknown macro {{{unknown[0]}}}; the macros are {known}")
    bare = _MACRO.sub("", template)
    if "{" in bare or "}" in bare:
        raise InvalidField(FIELD, "has a '{' or '}' that does not belong to a macro")
    try:
        parts = urlsplit(template)
        port = parts.port  # raises ValueError for a port that is not 0-65535
    except ValueError:
        raise InvalidField(FIELD, "is not a valid URL") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise InvalidField(FIELD, "must be an absolute http:// or https:// URL")
    if "{" in parts.netloc or "}" in parts.netloc:
        raise InvalidField(FIELD, "macros may only be used in the path and the query")
    if parts.username is not None or parts.password is not None:
        raise InvalidField(FIELD, "must not carry user credentials")
    try:
        parts.hostname.encode("idna")
    except UnicodeError:
        raise InvalidField(FIELD, f"{parts.hostname!r} is not a valid host name") from None
    if port == 0:
        raise InvalidField(FIELD, "port 0 is not a valid port")
    return template


def render(template: str, values: Mapping[str, str]) -> str:
    """Return the template with every macro replaced by its percent-encoded value.

    A macro without a value is replaced by nothing; text is encoded as UTF-8 (a lone
    surrogate, which JSON can carry, becomes "?").
    """
    return _MACRO.sub(
        lambda m: quote(str(values.get(m.group(1), "")), safe="", errors="replace"), template
    )


def sample_values(currency: str, *, click_id: str, payout: str) -> dict[str, str]:
    """Return the macro values of a test postback (recognisably not a real conversion)."""
    return {
        "click_id": click_id,
        "aff_click_id": "test-aff-click-id",
        **{f"sub{i}": f"test-sub{i}" for i in range(1, 6)},
        "event": "sale",
        "order_id": f"TEST-{click_id[-8:]}",
        "payout": payout,
        "currency": currency,
        "status": "pending",
    }


def retry_delay(attempts: int) -> int | None:
    """Return the seconds to wait after ``attempts`` failed attempts (None: give up)."""
    if attempts < 1 or attempts > len(RETRY_DELAYS_SECONDS):
        return None
    return RETRY_DELAYS_SECONDS[attempts - 1]

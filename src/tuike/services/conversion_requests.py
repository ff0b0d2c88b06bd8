"""Conversion reports as merchants send them: validate every field against the program.

The API, the server-to-server postback (``/pb``) and the pixel all come through
``parse_request``; a bad field raises ``InvalidField`` naming it, before anything is read
or written.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from tuike.domain import ids
from tuike.domain.catalog import Program
from tuike.domain.commission import EVENT_KEY, Item
from tuike.domain.errors import InvalidField
from tuike.domain.lifecycle import PENDING, check_status
from tuike.domain.money import check_currency, parse_amount

MAX_ITEMS = 200


@dataclass(frozen=True, slots=True)
class ConversionRequest:
    """A validated conversion request."""

    event: str
    order_id: str
    click_id: str | None
    cookie_click_id: str | None
    amount: Decimal
    currency: str
    status: str
    refund_amount: Decimal | None
    items: tuple[Item, ...]
    coupon: str | None
    customer_id: str | None
    occurred_at: datetime | None
    amount_given: bool = True
    # The buyer's address, browser and device (fraud evidence, kept only as hashes).
    ip: str | None = None
    user_agent: str | None = None
    device_id: str | None = None


def _str_field(data: Mapping[str, Any], name: str, max_len: int, required: bool = False) -> str:
    value = data.get(name)
    if value is None or value == "":
        if required:
            raise InvalidField(name, "is required")
        return ""
    if not isinstance(value, str):
        raise InvalidField(name, "must be a string")
    value = value.strip()
    if len(value) > max_len:
        raise InvalidField(name, f"must be at most {max_len} characters")
    if any(ord(ch) < 32 for ch in value):
        raise InvalidField(name, "must not contain control characters")
    return value


def _parse_time(raw: Any, now: datetime, max_future: timedelta) -> datetime | None:
    if raw in (None, ""):
        return None
    if not isinstance(raw, str):
        raise InvalidField("occurred_at", "must be an ISO 8601 time with an offset")
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidField("occurred_at", f"{raw!r} is not an ISO 8601 time") from None
    if value.tzinfo is None:
        raise InvalidField("occurred_at", "must carry a UTC offset (e.g. +08:00 or Z)")
    try:
        value = value.astimezone(UTC)
    except OverflowError:  # e.g. 9999-12-31T23:00:00-12:00
        raise InvalidField("occurred_at", "lies too far in the future") from None
    if value > now + max_future:
        raise InvalidField("occurred_at", "lies too far in the future")
    if value.year < 2000:
        raise InvalidField("occurred_at", "lies too far in the past")
    return value


def parse_request(
    data: Mapping[str, Any],
    program: Program,
    *,
    now: datetime,
    max_future: timedelta,
    cookie_click_id: str | None = None,
    client: tuple[str | None, str | None] | None = None,
) -> ConversionRequest:
    """Validate a conversion request's fields against a program (raises InvalidField).

    ``client`` is the (address, user agent) of the browser that sent it (the pixel): it
    replaces any ``ip`` and ``user_agent`` in ``data``.
    """
    event = _str_field(data, "event", 40) or "sale"
    if not EVENT_KEY.match(event) or event not in program.plan.events():
        raise InvalidField("event", f"unknown event {event!r} for this program")
    order_id = _str_field(data, "order_id", 128, required=True)
    currency = _str_field(data, "currency", 3) or program.currency
    check_currency(currency)  # another currency is converted when recorded (services/fx)
    raw_amount = data.get("amount")
    amount = parse_amount("0" if raw_amount in (None, "") else raw_amount, currency, "amount")
    status = _str_field(data, "status", 16) or PENDING
    check_status(status)
    refund_amount = None
    if data.get("refund_amount") not in (None, ""):
        refund_amount = parse_amount(data["refund_amount"], currency, "refund_amount")
    click_id = _str_field(data, "click_id", 64) or None
    if click_id is not None and not ids.is_ulid(click_id):
        raise InvalidField("click_id", "is not a tuike click id")
    items = _parse_items(data.get("items"), currency)
    if client is not None:
        ip, user_agent = (client[0] if _valid_ip(client[0]) else None), client[1]
        user_agent = user_agent.strip()[:512] if user_agent else None
    else:
        ip = _str_field(data, "ip", 64) or None
        if ip is not None and not _valid_ip(ip):
            raise InvalidField("ip", "is not an IPv4 or IPv6 address")
        user_agent = _str_field(data, "user_agent", 512) or None
    return ConversionRequest(
        event=event,
        order_id=order_id,
        click_id=click_id,
        cookie_click_id=cookie_click_id
        if cookie_click_id and ids.is_ulid(cookie_click_id)
        else None,
        amount=amount,
        currency=currency,
        status=status,
        refund_amount=refund_amount,
        items=items,
        coupon=_str_field(data, "coupon", 64) or None,
        customer_id=_str_field(data, "customer_id", 255) or None,
        occurred_at=_parse_time(data.get("occurred_at"), now, max_future),
        amount_given=raw_amount not in (None, ""),
        ip=ip,
        user_agent=user_agent,
        device_id=_str_field(data, "device_id", 128) or None,
    )


def _valid_ip(value: str | None) -> bool:
    try:
        ipaddress.ip_address(value or "")
    except ValueError:
        return False
    return True


def _parse_items(raw: Any, currency: str) -> tuple[Item, ...]:
    if raw in (None, ""):
        return ()
    if not isinstance(raw, list) or len(raw) > MAX_ITEMS:
        raise InvalidField("items", f"must be a list of at most {MAX_ITEMS} items")
    items = []
    for i, entry in enumerate(raw):
        where = f"items[{i}]"
        if not isinstance(entry, Mapping):
            raise InvalidField(where, "must be an object")
        quantity = entry.get("quantity", 1)
        if (
            not isinstance(quantity, int)
            or isinstance(quantity, bool)
            or not 1 <= quantity <= 10**6
        ):
            raise InvalidField(f"{where}.quantity", "must be a whole number from 1")
        items.append(
            Item(
                sku=_str_field(entry, "sku", 128) or f"#{i + 1}",
                category=_str_field(entry, "category", 64),
                amount=parse_amount(entry.get("amount"), currency, f"{where}.amount"),
                quantity=quantity,
            )
        )
    return tuple(items)

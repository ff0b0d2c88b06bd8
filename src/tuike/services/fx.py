"""Foreign-exchange rates: conversions in another currency, converted when recorded.

The operator records rates (``1 base = rate quote`` from ``valid_from``). A conversion
reported in another currency than its program's is converted at the rate in force at its
``occurred_at``: amounts (and item amounts) are multiplied and rounded ROUND_HALF_UP to
the program currency's minor unit, the house rule. The conversion keeps the original
currency, amount and the rate used; later refunds in the original currency are converted
at that same stored rate, so a full refund always reverses the whole converted amount.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, insert, select

from tuike.domain.errors import InvalidField
from tuike.domain.money import check_currency, round_money, to_minor
from tuike.services.clock import utcnow
from tuike.storage import tables as t

if TYPE_CHECKING:
    from tuike.services.conversion_requests import ConversionRequest


@dataclass(frozen=True, slots=True)
class FxUse:
    """What a converted conversion keeps: the original currency, amount and the rate."""

    currency: str
    amount_minor: int
    rate: Decimal


def parse_rate(raw: Any) -> Decimal:
    """A positive decimal rate given as a string."""
    if not isinstance(raw, str):
        raise InvalidField("rate", 'must be a decimal string such as "7.1234"')
    try:
        rate = Decimal(raw.strip())
    except InvalidOperation:
        raise InvalidField("rate", f"{raw!r} is not a number") from None
    if not rate.is_finite() or rate <= 0 or rate >= 10**9:
        raise InvalidField("rate", "must be a positive number")
    if rate.as_tuple().exponent < -12:  # type: ignore[operator]
        raise InvalidField("rate", "has at most 12 decimal places")
    return rate


def set_rate(
    conn: Connection, base: str, quote: str, rate: Decimal, valid_from: datetime | None = None
) -> None:
    """Record a rate: 1 ``base`` = ``rate`` ``quote`` from ``valid_from`` (now)."""
    check_currency(base, "base")
    check_currency(quote, "quote")
    if base == quote:
        raise InvalidField("quote", "must differ from base")
    now = utcnow()
    conn.execute(
        insert(t.fx_rates).values(
            base=base, quote=quote, rate=str(rate), valid_from=valid_from or now, created_at=now
        )
    )


def rate_at(conn: Connection, base: str, quote: str, at: datetime) -> Decimal | None:
    """The rate in force at ``at`` (the latest one valid from before it), or None."""
    r = t.fx_rates
    found = conn.execute(
        select(r.c.rate)
        .where(r.c.base == base, r.c.quote == quote, r.c.valid_from <= at)
        .order_by(r.c.valid_from.desc(), r.c.id.desc())
        .limit(1)
    ).scalar()
    return Decimal(found) if found is not None else None


def convert(req: ConversionRequest, currency: str, rate: Decimal) -> ConversionRequest:
    """The request with its amounts in ``currency`` at ``rate`` (half up per amount)."""

    def conv(amount: Decimal) -> Decimal:
        return round_money(amount * rate, currency)

    return dataclasses.replace(
        req,
        currency=currency,
        amount=conv(req.amount),
        refund_amount=None if req.refund_amount is None else conv(req.refund_amount),
        items=tuple(dataclasses.replace(i, amount=conv(i.amount)) for i in req.items),
    )


def in_program_currency(
    conn: Connection, req: ConversionRequest, currency: str, existing: Any, now: datetime
) -> tuple[ConversionRequest, FxUse | None]:
    """Bring a request into the program currency; raise InvalidField if it cannot be."""
    if req.currency == currency:
        return req, None
    if existing is not None and not _supersedable(existing):
        if existing.original_currency != req.currency or existing.fx_rate is None:
            raise InvalidField(
                "currency",
                f"this conversion was recorded in {existing.original_currency or currency}",
            )
        rate = Decimal(existing.fx_rate)
    else:
        found = rate_at(conn, req.currency, currency, req.occurred_at or now)
        if found is None:
            raise InvalidField(
                "currency",
                f"no {req.currency}→{currency} exchange rate is recorded for that time; "
                "the operator adds rates with POST /api/v1/fx-rates",
            )
        rate = found
    return convert(req, currency, rate), FxUse(
        req.currency, to_minor(req.amount, req.currency), rate
    )


def _supersedable(existing: Any) -> bool:
    return existing.source == "pixel"

"""Merchant funding: prepaid merchants' programs pause when funds plus credit run out.

A prepaid merchant's spendable money in a currency is its ``funds`` balance (top-ups minus
what conversions reserved or charged) plus its credit limit there. When that drops below
zero, every active program of the merchant in that currency is paused (``paused_reason``
"unfunded": the tracker sends new clicks to the fallback page) and the merchant and the
operator are told; conversions keep being recorded and posted. When a top-up brings it
back to zero or more, the programs tuike paused itself resume, and both are told again.
Postpaid merchants (the default) are invoiced and never paused.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, insert, select, update

from tuike.domain import ledger as L
from tuike.domain.catalog import ACTIVE, PAUSED
from tuike.domain.money import format_minor
from tuike.services.catalog import bump_version
from tuike.services.clock import utcnow
from tuike.storage import tables as t

UNFUNDED = "unfunded"
OPERATOR_ID = 0


def spendable(conn: Connection, merchant_id: int, currency: str) -> int:
    """Funds plus credit limit, minor units (negative: the merchant is over its limit)."""
    from tuike.services import ledger

    funds = ledger.balance(conn, L.Account(L.MERCHANT, merchant_id, L.FUNDS, currency))
    limit = conn.execute(
        select(t.merchant_credit_limits.c.limit_minor).where(
            t.merchant_credit_limits.c.merchant_id == merchant_id,
            t.merchant_credit_limits.c.currency == currency,
        )
    ).scalar()
    return funds + int(limit or 0)


def notify(
    conn: Connection, recipient_type: str, recipient_id: int, kind: str, message: str, now: datetime
) -> None:
    """Leave a message in the outbox."""
    conn.execute(
        insert(t.notifications).values(
            recipient_type=recipient_type,
            recipient_id=recipient_id,
            kind=kind,
            message=message,
            created_at=now,
        )
    )


def check(conn: Connection, merchant_id: int, currency: str, now: datetime | None = None) -> None:
    """Pause or resume a prepaid merchant's programs in a currency as its money allows."""
    prepaid = conn.execute(
        select(t.merchants.c.prepaid).where(t.merchants.c.id == merchant_id)
    ).scalar()
    if not prepaid:
        return
    now = now or utcnow()
    left = spendable(conn, merchant_id, currency)
    p = t.programs
    mine = (p.c.merchant_id == merchant_id) & (p.c.currency == currency)
    if left < 0:
        paused = conn.execute(
            update(p)
            .where(mine, p.c.status == ACTIVE)
            .values(status=PAUSED, paused_reason=UNFUNDED, updated_at=now)
        ).rowcount
        if paused:
            bump_version(conn)
            message = (
                f"Funds and credit for {currency} are used up ({format_minor(left, currency)} "
                f"{currency}): {paused} program(s) paused. Conversions are still recorded; "
                f"top up to resume."
            )
            for recipient, rid in ((L.MERCHANT, merchant_id), ("operator", OPERATOR_ID)):
                notify(conn, recipient, rid, "programs_paused_unfunded", message, now)
        return
    resumed = conn.execute(
        update(p)
        .where(mine, p.c.status == PAUSED, p.c.paused_reason == UNFUNDED)
        .values(status=ACTIVE, paused_reason="", updated_at=now)
    ).rowcount
    if resumed:
        bump_version(conn)
        message = f"{currency} funds restored: {resumed} program(s) resumed."
        for recipient, rid in ((L.MERCHANT, merchant_id), ("operator", OPERATOR_ID)):
            notify(conn, recipient, rid, "programs_resumed", message, now)

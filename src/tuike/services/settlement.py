"""Settlement: closing a period into affiliate statements and merchant invoices.

A period is a month (``2026-11``, from the cut-off day at midnight in the settlement time
zone to the same day of the next month) or an ISO week (``2026-W47``). Closing reads the
ledger (transactions dated inside the period) and writes, in one database transaction:

- per affiliate and currency, a statement of the ``available`` balance: opening,
  commissions (gross), fees withheld (``deducted`` programs), reversals (refunds),
  clawbacks, overrides, payouts, other, closing; opening plus the lines is the closing,
  which is the balance at the period's end;
- per merchant and currency, an invoice: commissions charged, fees (``on_top``
  programs), reversals (refunds credited), and the total in ``closing``.

Closing is idempotent: a closed period is not closed again, and a crash midway rolls the
whole close back, so running it again is safe. Aggregation happens in SQL, grouped per
transaction kind, so the cost grows with the ledger, not with Python loops over it.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, and_, case, func, insert, select

from tuike.domain import ledger as L
from tuike.domain.errors import InvalidField
from tuike.services.clock import utcnow
from tuike.storage import tables as t

_MONTH = re.compile(r"\A(\d{4})-(\d{2})\Z")
_WEEK = re.compile(r"\A(\d{4})-W(\d{2})\Z")
LINES = ("commissions", "fees", "reversals", "clawbacks", "overrides", "payouts", "other")
_KIND_LINE = {
    "approve": "commissions",
    "refund": "reversals",
    "refund_partial": "reversals",
    "clawback": "clawbacks",
    "payout": "payouts",
    "payout_failed": "payouts",
}


@dataclass(frozen=True, slots=True)
class Period:
    """A settlement period: [starts_at, ends_at) in UTC."""

    label: str
    starts_at: datetime
    ends_at: datetime


def parse_period(label: str, tz: str, cutoff_day: int = 1) -> Period:
    """Parse ``YYYY-MM`` (monthly from the cut-off day) or ``YYYY-Www`` (ISO week)."""
    zone = ZoneInfo(tz)
    if not 1 <= cutoff_day <= 28:
        raise InvalidField("cutoff_day", "must be from 1 to 28")
    if m := _MONTH.match(label):
        year, month = int(m.group(1)), int(m.group(2))
        if not 1 <= month <= 12:
            raise InvalidField("period", f"{label!r} has no month {month}")
        start = date(year, month, cutoff_day)
        end = date(year + month // 12, month % 12 + 1, cutoff_day)
    elif m := _WEEK.match(label):
        try:
            start = date.fromisocalendar(int(m.group(1)), int(m.group(2)), 1)
        except ValueError:
            raise InvalidField("period", f"{label!r} is not an ISO week") from None
        end = start + timedelta(days=7)
    else:
        raise InvalidField("period", "must be a month (2026-11) or an ISO week (2026-W47)")

    def midnight(d: date) -> datetime:
        return datetime(d.year, d.month, d.day, tzinfo=zone)

    return Period(label, midnight(start), midnight(end))


@dataclass
class CloseResult:
    """What closing did."""

    period: Period
    closed_now: bool
    statements: int
    invoices: int


def close_period(conn: Connection, period: Period, *, now: datetime | None = None) -> CloseResult:
    """Close a period once: write its statements and invoices (see the module docstring)."""
    now = now or utcnow()
    sp = t.settlement_periods
    existing = conn.execute(select(sp.c.id).where(sp.c.label == period.label)).scalar()
    if existing is not None:
        counts = dict(
            conn.execute(
                select(t.statements.c.owner_type, func.count())
                .where(t.statements.c.period_id == existing)
                .group_by(t.statements.c.owner_type)
            ).all()
        )
        return CloseResult(period, False, counts.get(L.AFFILIATE, 0), counts.get(L.MERCHANT, 0))
    if period.ends_at > now:
        raise InvalidField("period", f"{period.label} has not ended yet")
    period_id = conn.execute(
        insert(sp).values(
            label=period.label, starts_at=period.starts_at, ends_at=period.ends_at, closed_at=now
        )
    ).inserted_primary_key[0]
    rows = [
        {"period_id": period_id, **row}
        for row in [*_affiliate_statements(conn, period), *_merchant_invoices(conn, period)]
    ]
    if rows:
        conn.execute(insert(t.statements), rows)
    n_aff = sum(r["owner_type"] == L.AFFILIATE for r in rows)
    return CloseResult(period, True, n_aff, len(rows) - n_aff)


_E, _T, _A = t.ledger_entries, t.ledger_transactions, t.ledger_accounts


def _in(period: Period) -> Any:
    return and_(_T.c.created_at >= period.starts_at, _T.c.created_at < period.ends_at)


def _fees_by(conn: Connection, period: Period, owner: Any, mode: str) -> dict[tuple, int]:
    """Fee revenue entries in the period per (owner id, currency, transaction kind)."""
    c, p = t.conversions, t.programs
    rows = conn.execute(
        select(owner, _T.c.currency, _T.c.kind, func.sum(_E.c.amount_minor))
        .select_from(
            _E.join(_A, _E.c.account_id == _A.c.id)
            .join(_T, _E.c.transaction_id == _T.c.id)
            .join(c, c.c.id == _T.c.conversion_id)
            .join(p, p.c.id == c.c.program_id)
        )
        .where(_in(period), _A.c.owner_type == L.PLATFORM, _A.c.kind == L.FEE_REVENUE)
        .where(c.c.fee_mode == mode)
        .group_by(owner, _T.c.currency, _T.c.kind)
    )
    return {(o, cur, kind): int(v) for o, cur, kind, v in rows}


def _affiliate_statements(conn: Connection, period: Period) -> list[dict[str, Any]]:
    available = and_(_A.c.owner_type == L.AFFILIATE, _A.c.kind == L.AVAILABLE)
    before = func.sum(case((_T.c.created_at < period.starts_at, _E.c.amount_minor), else_=0))
    opening = {
        (o, cur): -int(v or 0)
        for o, cur, v in conn.execute(
            select(_A.c.owner_id, _A.c.currency, before)
            .select_from(
                _E.join(_A, _E.c.account_id == _A.c.id).join(_T, _E.c.transaction_id == _T.c.id)
            )
            .where(available, _T.c.created_at < period.ends_at)
            .group_by(_A.c.owner_id, _A.c.currency)
        )
    }
    c = t.conversions
    # An entry on a conversion of another affiliate is the recruiter's override.
    as_recruiter = case((c.c.affiliate_id != _A.c.owner_id, 1), else_=0)
    moves = conn.execute(
        select(_A.c.owner_id, _A.c.currency, _T.c.kind, as_recruiter, func.sum(_E.c.amount_minor))
        .select_from(
            _E.join(_A, _E.c.account_id == _A.c.id)
            .join(_T, _E.c.transaction_id == _T.c.id)
            .outerjoin(c, c.c.id == _T.c.conversion_id)
        )
        .where(available, _in(period))
        .group_by(_A.c.owner_id, _A.c.currency, _T.c.kind, as_recruiter)
    )
    fees = _fees_by(conn, period, t.conversions.c.affiliate_id, "deducted")
    lines: dict[tuple, dict[str, int]] = defaultdict(lambda: dict.fromkeys(LINES, 0))
    for owner, cur, kind, recruiter, total in moves:
        shown = -int(total)  # credit-normal: what the affiliate has
        if recruiter:
            lines[(owner, cur)]["overrides"] += shown
            continue
        fee = fees.get((owner, cur, kind), 0)  # the fee's entry, shown as the affiliate's
        line = _KIND_LINE.get(kind, "other")
        lines[(owner, cur)][line] += shown - fee  # gross of the fee withheld
        lines[(owner, cur)]["fees"] += fee
    out = []
    for key in sorted(set(opening) | set(lines)):
        owner, cur = key
        ls = lines[key]
        start = opening.get(key, 0)
        out.append(
            {
                "owner_type": L.AFFILIATE,
                "owner_id": owner,
                "currency": cur,
                "opening_minor": start,
                **{f"{name}_minor": ls[name] for name in LINES},
                "closing_minor": start + sum(ls.values()),
            }
        )
    return out


def _merchant_invoices(conn: Connection, period: Period) -> list[dict[str, Any]]:
    charged = and_(_A.c.owner_type == L.MERCHANT, _A.c.kind.in_((L.FUNDS, L.COMMISSIONS_PAYABLE)))
    moves = conn.execute(
        select(_A.c.owner_id, _A.c.currency, _T.c.kind, func.sum(_E.c.amount_minor))
        .select_from(
            _E.join(_A, _E.c.account_id == _A.c.id).join(_T, _E.c.transaction_id == _T.c.id)
        )
        .where(charged, _in(period), _T.c.conversion_id.is_not(None))
        .group_by(_A.c.owner_id, _A.c.currency, _T.c.kind)
    )
    fees = _fees_by(conn, period, t.programs.c.merchant_id, "on_top")
    lines: dict[tuple, dict[str, int]] = defaultdict(lambda: dict.fromkeys(LINES, 0))
    for owner, cur, kind, total in moves:
        if not total:
            continue  # reservations and their releases charge nothing
        fee = -fees.get((owner, cur, kind), 0)  # the merchant pays the fee on top
        line = "reversals" if kind in ("refund", "refund_partial", "clawback") else "commissions"
        if kind not in ("approve", "refund", "refund_partial", "clawback"):
            line = "other"
        lines[(owner, cur)][line] += int(total) - fee
        lines[(owner, cur)]["fees"] += fee
    return [
        {
            "owner_type": L.MERCHANT,
            "owner_id": owner,
            "currency": cur,
            "opening_minor": 0,
            **{f"{name}_minor": ls[name] for name in LINES},
            "closing_minor": sum(ls.values()),  # the invoice's total
        }
        for (owner, cur), ls in sorted(lines.items())
    ]


def statements_of(conn: Connection, owner_type: str, owner_id: int) -> list[Any]:
    """An owner's statements (or invoices), newest period first."""
    s, sp = t.statements, t.settlement_periods
    return conn.execute(
        select(sp.c.label, sp.c.starts_at, sp.c.ends_at, s)
        .join(sp, sp.c.id == s.c.period_id)
        .where(s.c.owner_type == owner_type, s.c.owner_id == owner_id)
        .order_by(sp.c.starts_at.desc(), s.c.currency)
    ).all()

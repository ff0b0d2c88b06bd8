"""The ledger's use cases: post a transaction once, read balances, check the books.

``post`` is idempotent on the transaction's key (a repeat is a no-op, also when two
requests race: the key is unique in the database). Entries are inserted, never updated
or deleted; each account keeps the running sum of its entries, updated in the same
transaction in account order (so that concurrent postings lock accounts in one order).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, and_, func, insert, select, update

from tuike.domain import ids
from tuike.domain import ledger as L
from tuike.domain.lifecycle import ConversionState
from tuike.domain.money import from_minor
from tuike.services.clock import utcnow
from tuike.storage import tables as t
from tuike.storage.db import insert_ignore

_A = t.ledger_accounts
_T = t.ledger_transactions
_E = t.ledger_entries


def account_id(conn: Connection, account: L.Account) -> int:
    """Return the id of an account, opening it on first use."""
    where = and_(
        _A.c.owner_type == account.owner_type,
        _A.c.owner_id == account.owner_id,
        _A.c.kind == account.kind,
        _A.c.currency == account.currency,
    )
    found = conn.execute(select(_A.c.id).where(where)).scalar()
    if found is not None:
        return int(found)
    insert_ignore(
        conn,
        _A,
        {
            "owner_type": account.owner_type,
            "owner_id": account.owner_id,
            "kind": account.kind,
            "currency": account.currency,
            "balance_minor": 0,
        },
        ("owner_type", "owner_id", "kind", "currency"),
    )
    return int(conn.execute(select(_A.c.id).where(where)).scalar_one())


def post(
    conn: Connection,
    posting: L.Posting,
    *,
    conversion_id: str | None = None,
    now: datetime | None = None,
) -> bool:
    """Post a balanced transaction once; return False when its key was posted before."""
    if not posting.entries:
        return False
    now = now or utcnow()
    tx_id = ids.new_ulid(now)
    inserted = insert_ignore(
        conn,
        _T,
        {
            "id": tx_id,
            "key": posting.key,
            "kind": posting.kind,
            "currency": posting.currency,
            "conversion_id": conversion_id,
            "created_at": now,
        },
        ("key",),
    )
    if inserted == 0:
        return False
    lines = sorted(((account_id(conn, a), amount) for a, amount in posting.entries))
    conn.execute(
        insert(_E),
        [{"transaction_id": tx_id, "account_id": a, "amount_minor": amount} for a, amount in lines],
    )
    for a, amount in lines:
        conn.execute(
            update(_A).where(_A.c.id == a).values(balance_minor=_A.c.balance_minor + amount)
        )
    return True


def fee_terms(row: Any) -> L.FeeTerms:
    """The fee and override terms a conversion row was recorded with."""
    return L.FeeTerms(
        rate=Decimal(row.fee_rate_ppm) / 1_000_000,
        mode=row.fee_mode,
        override_rate=Decimal(row.override_rate_ppm) / 1_000_000,
    )


def split_of(row: Any) -> L.Split:
    """A conversion row's current commission split into merchant cost, share and fee."""
    return L.split(from_minor(row.commission_minor, row.currency), row.currency, fee_terms(row))


def parties_of(row: Any, merchant_id: int) -> L.Parties:
    """Who a conversion row's money moves between."""
    return L.Parties(merchant_id, row.affiliate_id, row.currency, row.recruiter_id)


def conversion_position(row: Any, merchant_id: int, state: ConversionState | None = None) -> dict:
    """What the ledger should hold for a conversion row (or for ``state`` of it)."""
    status = state.status if state else row.status
    commission = state.commission if state else from_minor(row.commission_minor, row.currency)
    return L.position(status, commission, parties_of(row, merchant_id), fee_terms(row))


def post_conversion_move(
    conn: Connection,
    row: Any,
    merchant_id: int,
    *,
    old_status: str | None,
    old_commission_minor: int,
    new_status: str,
    new_commission_minor: int,
    refunded_minor: int,
    now: datetime,
) -> None:
    """Post what a conversion's move from one state to another changes in the ledger.

    The key names the move (from, to, refunded so far): the conversion's own
    compare-and-set already makes each move happen once; the key makes a replay harmless.
    """
    parties = parties_of(row, merchant_id)
    terms = fee_terms(row)
    old = (
        {}
        if old_status is None
        else L.position(old_status, from_minor(old_commission_minor, row.currency), parties, terms)
    )
    new = L.position(new_status, from_minor(new_commission_minor, row.currency), parties, terms)
    entries = L.difference(new, old)
    if not entries:
        return
    kind = L.transition_kind(old_status, new_status, from_minor(old_commission_minor, row.currency))
    if kind.startswith("refund") and old_status == "approved" and row.affiliate_id is not None:
        available = L.Account(L.AFFILIATE, row.affiliate_id, L.AVAILABLE, row.currency)
        taken = next((-amount for a, amount in entries if a == available), 0)
        if taken < 0 and balance(conn, available) < -taken:
            kind = "clawback"  # more than the affiliate holds: the balance goes negative
    key = f"conversion:{row.id}:{old_status or 'new'}>{new_status}:{refunded_minor}"
    post(
        conn,
        L.Posting(key=key, kind=kind, currency=row.currency, entries=entries),
        conversion_id=row.id,
        now=now,
    )


def post_replacement(
    conn: Connection, old_row: Any, new_row: Any, merchant_id: int, *, now: datetime
) -> None:
    """Post the change when an authoritative report replaces a pixel's conversion."""
    old = conversion_position(old_row, merchant_id)
    new = conversion_position(new_row, merchant_id)
    by_currency: dict[str, list[tuple[L.Account, int]]] = defaultdict(list)
    for a, amount in L.difference(new, old):
        by_currency[a.currency].append((a, amount))
    for currency, entries in by_currency.items():
        post(
            conn,
            L.Posting(
                key=f"conversion:{new_row.id}:replaced:{old_row.updated_at.isoformat()}:{currency}",
                kind="replace",
                currency=currency,
                entries=tuple(entries),
            ),
            conversion_id=new_row.id,
            now=now,
        )


def balance(conn: Connection, account: L.Account) -> int:
    """An account's balance as its owner reads it (see ``ledger.shown``), minor units."""
    raw = conn.execute(
        select(_A.c.balance_minor).where(
            _A.c.owner_type == account.owner_type,
            _A.c.owner_id == account.owner_id,
            _A.c.kind == account.kind,
            _A.c.currency == account.currency,
        )
    ).scalar()
    return L.shown(account, int(raw or 0))


def balances(conn: Connection, owner_type: str, owner_id: int) -> dict[str, dict[str, Decimal]]:
    """Every balance of an owner: {currency: {kind: amount}} as the owner reads them."""
    out: dict[str, dict[str, Decimal]] = defaultdict(dict)
    rows = conn.execute(
        select(_A.c.kind, _A.c.currency, _A.c.balance_minor).where(
            _A.c.owner_type == owner_type, _A.c.owner_id == owner_id
        )
    )
    for kind, currency, raw in rows:
        account = L.Account(owner_type, owner_id, kind, currency)
        out[currency][kind] = from_minor(L.shown(account, int(raw)), currency)
    return dict(out)


@dataclass
class CheckReport:
    """What `tuike ledger check` found; ``ok`` when every list is empty."""

    transactions: int = 0
    entries: int = 0
    conversions: int = 0
    currency_sums: dict[str, int] = field(default_factory=dict)
    unbalanced_currencies: list[str] = field(default_factory=list)
    unbalanced_transactions: list[str] = field(default_factory=list)
    drifted_accounts: list[str] = field(default_factory=list)
    unreconciled_conversions: list[str] = field(default_factory=list)
    double_commissions: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Tell whether the books hold every invariant."""
        return not (
            self.unbalanced_currencies
            or self.unbalanced_transactions
            or self.drifted_accounts
            or self.unreconciled_conversions
            or self.double_commissions
        )


def check(conn: Connection, *, limit: int = 20) -> CheckReport:
    """Verify every invariant of the books and reconcile conversions with their entries."""
    report = CheckReport()
    report.transactions = conn.execute(select(func.count()).select_from(_T)).scalar_one()
    report.entries = conn.execute(select(func.count()).select_from(_E)).scalar_one()
    # 1. Entries sum to zero per currency.
    per_currency = conn.execute(
        select(_A.c.currency, func.coalesce(func.sum(_E.c.amount_minor), 0))
        .select_from(_E.join(_A, _E.c.account_id == _A.c.id))
        .group_by(_A.c.currency)
    ).all()
    report.currency_sums = {c: int(s) for c, s in per_currency}
    report.unbalanced_currencies = [c for c, s in report.currency_sums.items() if s != 0]
    # 2. Every transaction balances, in its own currency only.
    bad = conn.execute(
        select(_T.c.key)
        .select_from(
            _E.join(_T, _E.c.transaction_id == _T.c.id).join(_A, _E.c.account_id == _A.c.id)
        )
        .group_by(_T.c.id, _T.c.key)
        .having(
            (func.sum(_E.c.amount_minor) != 0)
            | (func.max(_A.c.currency) != func.min(_A.c.currency))
            | (func.max(_A.c.currency) != func.max(_T.c.currency))
        )
        .limit(limit)
    ).scalars()
    report.unbalanced_transactions = list(bad)
    # 3. Each account's running balance is the sum of its entries.
    sums = (
        select(_E.c.account_id, func.sum(_E.c.amount_minor).label("total"))
        .group_by(_E.c.account_id)
        .subquery()
    )
    drifted = conn.execute(
        select(
            _A.c.owner_type,
            _A.c.owner_id,
            _A.c.kind,
            _A.c.currency,
            _A.c.balance_minor,
            sums.c.total,
        )
        .select_from(_A.outerjoin(sums, sums.c.account_id == _A.c.id))
        .where(_A.c.balance_minor != func.coalesce(sums.c.total, 0))
        .limit(limit)
    ).all()
    report.drifted_accounts = [
        f"{r.owner_type}:{r.owner_id}:{r.kind}:{r.currency} balance {r.balance_minor} "
        f"!= entries {r.total or 0}"
        for r in drifted
    ]
    # 4. No conversion was approved (commission posted) twice.
    twice = conn.execute(
        select(_T.c.conversion_id)
        .where(_T.c.kind == "approve")
        .group_by(_T.c.conversion_id)
        .having(func.count() > 1)
        .limit(limit)
    ).scalars()
    report.double_commissions = list(twice)
    # 5. Each conversion's entries equal the position of its current state.
    report.unreconciled_conversions = _reconcile(conn, limit)
    report.conversions = conn.execute(select(func.count()).select_from(t.conversions)).scalar_one()
    return report


def _reconcile(conn: Connection, limit: int, chunk: int = 5000) -> list[str]:
    """Compare each conversion's entries with its position, a chunk of conversions at a
    time (in id order, entries fetched by id range): memory stays bounded by the chunk."""
    c = t.conversions
    problems: list[str] = []
    last = ""
    while len(problems) < limit:
        rows = conn.execute(
            select(c, t.programs.c.merchant_id)
            .join(t.programs, t.programs.c.id == c.c.program_id)
            .where(c.c.id > last)
            .order_by(c.c.id)
            .limit(chunk)
        ).all()
        if not rows:
            break
        held: dict[str, dict[L.Account, int]] = defaultdict(dict)
        sums = conn.execute(
            select(
                _T.c.conversion_id,
                _A.c.owner_type,
                _A.c.owner_id,
                _A.c.kind,
                _A.c.currency,
                func.sum(_E.c.amount_minor),
            )
            .select_from(
                _E.join(_T, _E.c.transaction_id == _T.c.id).join(_A, _E.c.account_id == _A.c.id)
            )
            .where(_T.c.conversion_id.between(rows[0].id, rows[-1].id))
            .group_by(_T.c.conversion_id, _A.c.owner_type, _A.c.owner_id, _A.c.kind, _A.c.currency)
        )
        for conv_id, owner_type, owner_id, kind, currency, total in sums:
            if total:
                held[conv_id][L.Account(owner_type, owner_id, kind, currency)] = int(total)
        for row in rows:
            want = {a: v for a, v in conversion_position(row, row.merchant_id).items() if v}
            have = held.get(row.id, {})
            if want != have:
                problems.append(
                    f"conversion {row.id} ({row.status}): ledger {_fmt(have)} != {_fmt(want)}"
                )
                if len(problems) >= limit:
                    break
        last = rows[-1].id
    return problems


def _fmt(position: dict[L.Account, int]) -> str:
    return (
        "{" + ", ".join(f"{a.owner_type}:{a.kind}={v}" for a, v in sorted(position.items())) + "}"
    )


def entries_of(conn: Connection, owner_type: str, owner_id: int) -> Iterable[Any]:
    """Every entry of an owner's accounts, oldest first, with its transaction."""
    return conn.execute(
        select(
            _T.c.created_at,
            _T.c.kind,
            _T.c.key,
            _T.c.conversion_id,
            _A.c.kind.label("account"),
            _A.c.currency,
            _E.c.amount_minor,
        )
        .select_from(
            _E.join(_T, _E.c.transaction_id == _T.c.id).join(_A, _E.c.account_id == _A.c.id)
        )
        .where(_A.c.owner_type == owner_type, _A.c.owner_id == owner_id)
        .order_by(_T.c.created_at, _E.c.id)
    ).all()

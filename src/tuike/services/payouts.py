"""Payout batches: who is paid, files for the payout rails, and the rails' results.

A batch takes every affiliate whose available balance in a currency reaches the minimum
payout (smaller balances carry over to the next batch). Each item is posted at once
(available → payout clearing). The rails are an adapter port (``PayoutFile``); the
built-in implementations write files: a bank-transfer CSV, an Alipay-style batch-transfer
file and a PayPal Payouts CSV. Importing a result file marks items paid (clearing → cash)
or failed (the money returns to the affiliate's available balance). Every step is
idempotent: an item's posting keys name the item, and an item moves only from ``sent``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Connection, insert, select, update

from tuike.domain import ids
from tuike.domain import ledger as L
from tuike.domain.errors import Conflict, InvalidField, NotFound
from tuike.domain.money import format_minor
from tuike.services import ledger
from tuike.services.clock import utcnow
from tuike.storage import tables as t

SENT, PAID, FAILED = "sent", "paid", "failed"


@dataclass(frozen=True, slots=True)
class Batch:
    """A payout batch as created."""

    id: str
    currency: str
    items: int
    total_minor: int


def create_batch(
    conn: Connection, *, currency: str, minimum_minor: int, now: datetime | None = None
) -> Batch:
    """Pay every affiliate whose available balance reaches ``minimum_minor``."""
    if minimum_minor < 1:
        raise InvalidField("minimum", "must be at least one minor unit")
    now = now or utcnow()
    a = t.ledger_accounts
    due = select(a.c.owner_id, a.c.balance_minor).where(
        a.c.owner_type == L.AFFILIATE,
        a.c.kind == L.AVAILABLE,
        a.c.currency == currency,
        # Credit-normal: the affiliate holds -balance_minor.
        -a.c.balance_minor >= minimum_minor,
    )
    if conn.dialect.name == "postgresql":
        due = due.with_for_update()
    rows = conn.execute(due.order_by(a.c.owner_id)).all()
    batch_id = ids.new_ulid(now)
    affiliates = {
        r.id: r
        for r in conn.execute(
            select(t.affiliates).where(t.affiliates.c.id.in_([r.owner_id for r in rows]))
        )
    }
    total = 0
    items = []
    for row in rows:
        amount = -int(row.balance_minor)
        aff = affiliates[row.owner_id]
        item_id = ids.new_ulid(now)
        items.append(
            {
                "id": item_id,
                "batch_id": batch_id,
                "affiliate_id": aff.id,
                "currency": currency,
                "amount_minor": amount,
                "status": SENT,
                "method": aff.payout_method,
                "account": aff.payout_account or aff.email,
                "name": aff.payout_name or aff.name,
                "note": "",
                "updated_at": now,
            }
        )
        total += amount
    conn.execute(
        insert(t.payout_batches).values(
            id=batch_id, currency=currency, items=len(items), total_minor=total, created_at=now
        )
    )
    if items:
        conn.execute(insert(t.payout_items), items)
    for item in items:
        ledger.post(
            conn,
            L.payout_sent(
                item["affiliate_id"], currency, item["amount_minor"], f"payout:{item['id']}"
            ),
            now=now,
        )
    return Batch(batch_id, currency, len(items), total)


def batch_items(conn: Connection, batch_id: str) -> list[Any]:
    """The items of a batch, in affiliate order."""
    if (
        conn.execute(select(t.payout_batches.c.id).where(t.payout_batches.c.id == batch_id)).first()
        is None
    ):
        raise NotFound("payout batch")
    return conn.execute(
        select(t.payout_items)
        .where(t.payout_items.c.batch_id == batch_id)
        .order_by(t.payout_items.c.affiliate_id)
    ).all()


class PayoutFile(Protocol):
    """A payout rail's file format (the adapter port)."""

    name: str

    def render(self, batch_id: str, items: Sequence[Any]) -> str:
        """The file's text for a batch."""
        ...


def _cell(value: str) -> str:
    """A CSV cell a spreadsheet will not run as a formula (names are free text)."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


class BankCsv:
    """A plain CSV for a bank's bulk transfer upload."""

    name = "bank"

    def render(self, batch_id: str, items: Sequence[Any]) -> str:
        out = io.StringIO()
        w = csv.writer(out, lineterminator="\n")
        w.writerow(["item_id", "beneficiary", "account", "amount", "currency", "reference"])
        for i in items:
            w.writerow(
                [
                    i.id,
                    _cell(i.name),
                    _cell(i.account),
                    format_minor(i.amount_minor, i.currency),
                    i.currency,
                    f"tuike {batch_id[-8:]}",
                ]
            )
        return out.getvalue()


class AlipayBatch:
    """An Alipay-style batch transfer file: a summary line, then one line per payee."""

    name = "alipay"

    def render(self, batch_id: str, items: Sequence[Any]) -> str:
        out = io.StringIO()
        w = csv.writer(out, lineterminator="\n")
        total = sum(i.amount_minor for i in items)
        currency = items[0].currency if items else "CNY"
        w.writerow(["批次号", "付款日期", "总笔数", "总金额"])
        w.writerow(
            [batch_id, utcnow().strftime("%Y%m%d"), len(items), format_minor(total, currency)]
        )
        w.writerow(["商户流水号", "收款方支付宝账号", "收款方姓名", "金额", "备注"])
        for i in items:
            w.writerow(
                [
                    i.id,
                    _cell(i.account),
                    _cell(i.name),
                    format_minor(i.amount_minor, i.currency),
                    "推客佣金",
                ]
            )
        return out.getvalue()


class PayPalCsv:
    """PayPal Payouts' CSV: recipient, amount, currency, your id, note."""

    name = "paypal"

    def render(self, batch_id: str, items: Sequence[Any]) -> str:
        out = io.StringIO()
        w = csv.writer(out, lineterminator="\n")
        for i in items:
            w.writerow(
                [
                    _cell(i.account),
                    format_minor(i.amount_minor, i.currency),
                    i.currency,
                    i.id,
                    "Affiliate commission",
                ]
            )
        return out.getvalue()


FORMATS: dict[str, PayoutFile] = {f.name: f for f in (BankCsv(), AlipayBatch(), PayPalCsv())}


def export(conn: Connection, batch_id: str, fmt: str) -> str:
    """Render a batch for a payout rail."""
    if fmt not in FORMATS:
        raise InvalidField("format", f"must be one of {', '.join(FORMATS)}")
    return FORMATS[fmt].render(batch_id, batch_items(conn, batch_id))


@dataclass
class ImportReport:
    """What an import did."""

    paid: int = 0
    failed: int = 0
    unchanged: int = 0


def parse_results(text: str) -> list[tuple[str, str, str]]:
    """Read a result file: CSV with columns item_id, status (paid|failed)[, note]."""
    rows = []
    for n, rec in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not rec or (n == 1 and rec[0].strip().lower() == "item_id"):
            continue
        if len(rec) < 2:
            raise InvalidField("file", f"line {n}: expected item_id,status[,note]")
        item_id, status = rec[0].strip(), rec[1].strip().lower()
        if status not in (PAID, FAILED):
            raise InvalidField("file", f"line {n}: status must be paid or failed, not {status!r}")
        rows.append((item_id, status, (rec[2] if len(rec) > 2 else "")[:500]))
    return rows


def import_results(
    conn: Connection, results: Iterable[tuple[str, str, str]], *, now: datetime | None = None
) -> ImportReport:
    """Mark items paid or failed (money back to available); a repeat changes nothing.

    An unknown item, or an item already settled the other way, refuses the whole file.
    """
    now = now or utcnow()
    report = ImportReport()
    it = t.payout_items
    for item_id, status, note in results:
        row = conn.execute(select(it).where(it.c.id == item_id)).first()
        if row is None:
            raise NotFound(f"payout item {item_id}")
        if row.status == status:
            report.unchanged += 1
            continue
        if row.status != SENT:
            raise Conflict(f"payout item {item_id} is already {row.status}")
        moved = conn.execute(
            update(it)
            .where(it.c.id == item_id, it.c.status == SENT)
            .values(status=status, note=note, updated_at=now)
        ).rowcount
        if moved != 1:
            raise Conflict(f"payout item {item_id} changed meanwhile; import again")
        make = L.payout_paid if status == PAID else L.payout_failed
        ledger.post(
            conn,
            make(row.affiliate_id, row.currency, row.amount_minor, f"payout:{item_id}:{status}"),
            now=now,
        )
        if status == PAID:
            report.paid += 1
        else:
            report.failed += 1
    return report

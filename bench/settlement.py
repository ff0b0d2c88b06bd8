"""Settlement benchmark: close a month with 1,000,000 conversions across 10,000 affiliates.

    .venv/bin/python bench/settlement.py [--conversions 1000000] [--affiliates 10000]
        [--pg postgresql+psycopg://postgres@127.0.0.1:5432/test]

Fills a fresh database (a temp SQLite file, and a scratch PostgreSQL database when
``--pg`` is given) with approved conversions and their ledger postings, written in bulk
with the same posting rules the services use, then closes the period in a separate
process (``tuike settle``'s code path) and prints the time and the peak memory (max RSS)
of that process. Figures, not thresholds; the target in the money issue is under 60 s and
1 GiB.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from tuike.domain import ids
from tuike.domain import ledger as L
from tuike.storage import tables as t
from tuike.storage.clicks import _sqlite_time
from tuike.storage.db import Database

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scratch import scratch_databases

PERIOD = "2026-10"
START = datetime(2026, 9, 30, 16, tzinfo=UTC)  # 2026-10-01 00:00 in Asia/Shanghai


def bulk(conn: Any, table: Any, columns: list[str], rows: list[tuple]) -> None:
    """Insert rows fast: COPY on PostgreSQL, executemany on SQLite."""
    if conn.dialect.name == "postgresql":
        raw = conn.connection.driver_connection
        names = ", ".join(columns)
        with raw.cursor() as cur, cur.copy(f"COPY {table.name} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return
    rows = [tuple(_sqlite_time(v) if isinstance(v, datetime) else v for v in r) for r in rows]
    marks = ", ".join("?" * len(columns))
    conn.exec_driver_sql(
        f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({marks})",  # noqa: S608
        rows,
    )


def fill(url: str, n: int, n_aff: int) -> None:
    """Merchants, programs, affiliates, n approved conversions and their postings."""
    db = Database(url)
    rng = random.Random(1)
    now = datetime.now(UTC)
    with db.write() as conn:
        merchants = list(range(1, 11))
        bulk(
            conn,
            t.merchants,
            ["id", "name", "timezone", "created_at"],
            [(m, f"M{m}", "Asia/Shanghai", now) for m in merchants],
        )
        bulk(
            conn,
            t.programs,
            [
                "id", "public_id", "merchant_id", "name", "currency", "landing_url",
                "allowed_domains", "cookie_days", "lock_days", "commission_plan",
                "postback_secret", "timezone", "fee_rate_ppm", "fee_mode", "created_at",
                "updated_at",
            ],
            [
                (m, f"prg_{m}", m, f"P{m}", "CNY", "https://shop.example.com/",
                 json.dumps(["shop.example.com"]), 30, 30, json.dumps({"cps_percent": "10"}),
                 "s" * 64, "Asia/Shanghai", 100_000, ("on_top", "deducted")[m % 2], now, now)
                for m in merchants
            ],
        )  # fmt: skip
        bulk(
            conn,
            t.affiliates,
            ["id", "name", "email", "status", "timezone", "created_at"],
            [
                (a, f"A{a}", f"a{a}@example.com", "active", "Asia/Shanghai", now)
                for a in range(1, n_aff + 1)
            ],
        )
        if conn.dialect.name == "postgresql":
            for table in ("merchants", "programs", "affiliates"):
                conn.exec_driver_sql(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608
                    f"(SELECT max(id) FROM {table}))"
                )
    accounts: dict[L.Account, int] = {}
    balances: dict[int, int] = {}

    def account(a: L.Account) -> int:
        if a not in accounts:
            accounts[a] = len(accounts) + 1
        return accounts[a]

    chunk = 50_000
    for start in range(0, n, chunk):
        conversions, transactions, entries = [], [], []
        for i in range(start, min(n, start + chunk)):
            m = rng.choice(merchants)
            aff = rng.randrange(1, n_aff + 1)
            at = START + timedelta(seconds=rng.randrange(31 * 86400))
            amount = rng.randrange(1_000, 500_000)
            commission = amount // 10
            conv_id = ids.new_ulid(at)
            mode = ("on_top", "deducted")[m % 2]
            conversions.append(
                (conv_id, m, "sale", f"O{i}", "approved", "api", aff, "click_id", "CNY",
                 amount, 0, commission, commission, at, 100_000, mode, at, at)
            )  # fmt: skip
            tx_id = ids.new_ulid(at)
            transactions.append((tx_id, f"conversion:{conv_id}:new>approved:0", "approve",
                                 "CNY", conv_id, at))  # fmt: skip
            parties = L.Parties(m, aff, "CNY")
            terms = L.FeeTerms(Decimal("0.1"), mode)
            pos = L.position("approved", Decimal(commission) / 100, parties, terms)
            for acc, value in pos.items():
                aid = account(acc)
                balances[aid] = balances.get(aid, 0) + value
                entries.append((tx_id, aid, value))
        with db.write() as conn:
            bulk(
                conn,
                t.conversions,
                [
                    "id", "program_id", "event", "order_id", "status", "source",
                    "affiliate_id", "attribution", "currency", "amount_minor", "refunded_minor",
                    "original_commission_minor", "commission_minor", "occurred_at",
                    "fee_rate_ppm", "fee_mode", "created_at", "updated_at",
                ],
                conversions,
            )  # fmt: skip
            bulk(
                conn,
                t.ledger_transactions,
                ["id", "key", "kind", "currency", "conversion_id", "created_at"],
                transactions,
            )
            known = {r[0] for r in conn.exec_driver_sql("SELECT id FROM ledger_accounts")}
            missing = [(aid, a) for a, aid in accounts.items() if aid not in known]
            if missing:
                bulk(
                    conn,
                    t.ledger_accounts,
                    ["id", "owner_type", "owner_id", "kind", "currency", "balance_minor"],
                    [(aid, a.owner_type, a.owner_id, a.kind, a.currency, 0) for aid, a in missing],
                )
            bulk(conn, t.ledger_entries, ["transaction_id", "account_id", "amount_minor"], entries)
        print(f"  {min(n, start + chunk):,} conversions written", flush=True)
    mark = "?" if db.is_sqlite else "%s"
    with db.write() as conn:
        conn.exec_driver_sql(
            f"UPDATE ledger_accounts SET balance_minor = {mark} WHERE id = {mark}",  # noqa: S608
            [(value, aid) for aid, value in balances.items()],
        )
        if not db.is_sqlite:
            conn.exec_driver_sql(
                "SELECT setval(pg_get_serial_sequence('ledger_accounts', 'id'), "
                "(SELECT max(id) FROM ledger_accounts))"
            )
            conn.exec_driver_sql("ANALYZE")
    db.dispose()


def close_in_child(url: str) -> dict[str, Any]:
    """Close the period in a fresh process, then check the books; times and peak RSS."""
    code = f"""
import json, resource, time
from tuike.services import settlement
from tuike.storage.db import Database
db = Database({url!r})
started = time.perf_counter()
with db.write() as conn:
    result = settlement.close_period(conn, settlement.parse_period({PERIOD!r}, "Asia/Shanghai"))
seconds = time.perf_counter() - started
close_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
from tuike.services import ledger
started = time.perf_counter()
with db.read() as conn:
    report = ledger.check(conn)
print(json.dumps({{"seconds": seconds, "statements": result.statements,
                   "invoices": result.invoices, "max_rss_mib": close_rss,
                   "check_seconds": time.perf_counter() - started, "check_ok": report.ok,
                   "check_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    """Fill each database, close the period, print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversions", type=int, default=1_000_000)
    parser.add_argument("--affiliates", type=int, default=10_000)
    parser.add_argument("--pg", help="admin URL of a PostgreSQL server to create a db in")
    args = parser.parse_args()
    rows = []
    with scratch_databases(args.pg, "tuike_settle") as targets:
        for label, url in targets:
            print(f"{label}: filling {args.conversions:,} conversions …", flush=True)
            started = time.perf_counter()
            fill(url, args.conversions, args.affiliates)
            print(f"  filled in {time.perf_counter() - started:.0f} s", flush=True)
            r = close_in_child(url)
            rows.append(
                f"| {label} | {args.conversions:,} | {args.affiliates:,} | {r['seconds']:.1f} s "
                f"| {r['max_rss_mib']:.0f} MiB | {r['statements']:,} statements, "
                f"{r['invoices']:,} invoices | {r['check_seconds']:.1f} s, "
                f"{'ok' if r['check_ok'] else 'DRIFT'}, {r['check_rss_mib']:.0f} MiB |"
            )
    print(
        "| database | conversions | affiliates | close time | peak memory (max RSS) | output "
        "| then `ledger check` (time, result, max RSS) |"
    )
    print("|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    filled = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    print(f"(the filling process peaked at {filled} MiB)")


if __name__ == "__main__":
    main()

"""Random sequences of conversion reports against the real services and database.

Sales in the program currency or in USD (converted at a stored rate), attributed to one
of two affiliates; duplicates, approvals, rejections, partial and full refunds, refunds
after payout, payout batches, payout results (paid or failed) and period closes, in any
order. After every step:
the entries of each currency sum to zero, every conversion reconciles with its entries,
no conversion has two commission postings, and each affiliate's available balance is
what the model says: the affiliate's share of approved commissions (after fees and
refunds) minus what was paid out.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from factories.money import NO_CTIT
from factories.world import make_world
from tuike.domain import ledger as L
from tuike.domain.errors import DomainError
from tuike.domain.money import from_minor
from tuike.domain.tracking import ClickParams
from tuike.services import catalog as svc
from tuike.services import fx, ledger, payouts, settlement
from tuike.services.clicks import Resolved, UniqueFilter, Visit, build_click, record_clicks
from tuike.services.conversion_requests import parse_request
from tuike.services.conversions import record_conversion
from tuike.storage import tables

CNY = "CNY"


def run(db: Any) -> None:
    class Books(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            mode = ("on_top", "deducted")[uuid.uuid4().int % 2]
            self.w = make_world(db, tag=uuid.uuid4().hex[:8], fee_rate="0.10", fee_mode=mode)
            with db.write() as conn:
                second = svc.create_link(
                    conn, program=self.w.program, affiliate_id=self.w.other_affiliate_id
                )
            self.links = {self.w.affiliate_id: self.w.link, self.w.other_affiliate_id: second}
            self.orders: list[str] = []
            self.paid = {aff: 0 for aff in self.links}
            self.sent: list[tuple[str, int, int]] = []  # payout items not yet settled
            self.weeks = 0
            with db.write() as conn:
                fx.set_rate(conn, "USD", "CNY", Decimal("7.1234"), datetime(2020, 1, 1, tzinfo=UTC))

        def _click(self, affiliate_id: int) -> str:
            link = self.links[affiliate_id]
            record = build_click(
                Resolved(link=link, program=self.w.program, membership_ok=True),
                ClickParams(subs=("", "", "", "", ""), deep_link=None, aff_click_id=""),
                Visit("10.0.0.1", "UA", "", "CN", None),
                at=datetime.now(UTC),
                ip_storage="truncated",
                privacy_salt="s",
                uniques=UniqueFilter(window=timedelta(hours=1), max_entries=10),
            )
            with db.write() as conn:
                record_clicks(conn, [record])
            return record.id

        def _send(self, **data: Any) -> None:
            now = datetime.now(UTC)
            try:
                with db.write() as conn:
                    req = parse_request(data, self.w.program, now=now, max_future=timedelta(1))
                    record_conversion(
                        conn,
                        self.w.program,
                        req,
                        source="api",
                        privacy_salt="s",
                        now=now,
                        checks=NO_CTIT,
                    )
            except DomainError:
                pass  # an illegal move: refused, and the invariants show nothing changed

        @rule(
            cents=st.integers(min_value=0, max_value=10**7),
            first=st.booleans(),
            approved=st.booleans(),
            currency=st.sampled_from([CNY, CNY, "USD"]),
        )
        def sale(self, cents: int, first: bool, approved: bool, currency: str) -> None:
            order = f"O-{len(self.orders)}"
            self.orders.append(order)
            aff = self.w.affiliate_id if first else self.w.other_affiliate_id
            self._send(
                order_id=order,
                amount=str(from_minor(cents, currency)),
                currency=currency,
                click_id=self._click(aff),
                status="approved" if approved else "pending",
            )

        @rule(data=st.data())
        def duplicate(self, data: st.DataObject) -> None:
            if self.orders:
                order = data.draw(st.sampled_from(self.orders))
                self._send(order_id=order, amount="1.00")

        @rule(data=st.data(), status=st.sampled_from(["approved", "rejected", "pending"]))
        def move(self, data: st.DataObject, status: str) -> None:
            if self.orders:
                self._send(order_id=data.draw(st.sampled_from(self.orders)), status=status)

        @rule(data=st.data(), share=st.fractions(min_value=0, max_value=1))
        def refund(self, data: st.DataObject, share: Any) -> None:
            if not self.orders:
                return
            order = data.draw(st.sampled_from(self.orders))
            with db.read() as conn:
                row = conn.execute(
                    tables.conversions.select().where(
                        tables.conversions.c.program_id == self.w.program.id,
                        tables.conversions.c.order_id == order,
                    )
                ).first()
            if row is None:
                return
            cents = row.refunded_minor + int(
                (row.amount_minor - row.refunded_minor) * share.numerator // share.denominator
            )
            self._send(order_id=order, status="refunded", refund_amount=str(from_minor(cents, CNY)))

        @rule(minimum=st.integers(min_value=1, max_value=5000))
        def payout_batch(self, minimum: int) -> None:
            # Other examples' affiliates may be paid too: only ours are tracked.
            with db.write() as conn:
                batch = payouts.create_batch(conn, currency=CNY, minimum_minor=minimum)
                for item in payouts.batch_items(conn, batch.id):
                    if item.affiliate_id in self.paid:
                        self.paid[item.affiliate_id] += item.amount_minor
                        self.sent.append((item.id, item.affiliate_id, item.amount_minor))

        @rule(data=st.data(), ok=st.booleans())
        def payout_result(self, data: st.DataObject, ok: bool) -> None:
            if not self.sent:
                return
            item_id, aff, amount = self.sent.pop(data.draw(st.integers(0, len(self.sent) - 1)))
            with db.write() as conn:
                payouts.import_results(conn, [(item_id, "paid" if ok else "failed", "")])
            if not ok:
                self.paid[aff] -= amount  # the money went back to the affiliate

        @rule()
        def settle(self) -> None:
            # Close the next past week (periods close once; these have ended long ago).
            self.weeks += 1
            with db.write() as conn:
                period = settlement.parse_period(f"2020-W{self.weeks:02d}", "UTC")
                settlement.close_period(conn, period)

        @invariant()
        def books_hold(self) -> None:
            with db.read() as conn:
                report = ledger.check(conn)
                assert report.ok, report
                rows = conn.execute(
                    tables.conversions.select().where(
                        tables.conversions.c.program_id == self.w.program.id
                    )
                ).all()
                for aff in self.links:
                    earned = sum(
                        -ledger.conversion_position(row, self.w.merchant_id).get(
                            L.Account(L.AFFILIATE, aff, L.AVAILABLE, CNY), 0
                        )
                        for row in rows
                    )
                    shown = ledger.balance(conn, L.Account(L.AFFILIATE, aff, L.AVAILABLE, CNY))
                    assert shown == earned - self.paid[aff], (aff, shown, earned, self.paid)

    run_state_machine_as_test(
        Books,
        settings=settings(
            max_examples=15,
            stateful_step_count=25,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        ),
    )


def test_random_sequences_keep_the_books(db):
    run(db)  # the checks are the state machine's invariants, after every step

"""The demo's sales: the requests the shops send about the month's orders and installs.

A converting click becomes a request a little after the conversion occurred (an app
install may be followed by a registration or an in-game purchase); some sales are
refunded later (in full, in part, or in two cumulative steps) and a few conversions are
rejected while still in their lock period. Nightly approval runs share the timeline.
Pure planning: ``services.demo`` sends the requests through the conversion services.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from decimal import Decimal
from itertools import accumulate
from typing import Any

from tuike.services.demo_world import DAYS, PROGRAMS, TZ, ProgramSpec, order

CENT = Decimal("0.01")
REFUND_DECK = 12  # one sale in twelve (8.3 %) is refunded, dealt like cards
ORDER_PREFIX = ("HY", "HYG", "GM", "GMO", "LD", "SS")  # by program index
# (at, source, sequence, kind, program index, request body). Kinds: new, refund,
# refund2, reject, and approve (the nightly job: no program, no body). Sorting by the
# first three fields gives one order, whichever process planned the events.
Event = tuple[datetime, int, int, str, int, dict[str, Any] | None]


def delay(rng: random.Random, event: str) -> timedelta:
    """Return how long after the click (or the install) an event happens."""
    r = rng.random()
    if event == "install":
        return timedelta(minutes=1 + 29 * r)
    if event in ("lead", "register"):
        return timedelta(minutes=2 + 118 * r)
    if event == "purchase":
        return timedelta(hours=0.2 + 72 * r)
    if r < 0.55:
        return timedelta(minutes=2 + 58 * rng.random())
    if r < 0.85:
        return timedelta(hours=1 + 23 * rng.random())
    return timedelta(hours=24 + 24 * rng.random())


class SalesPlanner:
    """Plan the requests that follow conversions, numbering orders per source."""

    def __init__(self, rng: random.Random, source: int, now: datetime) -> None:
        self._rng = rng
        self._source = source
        self._now = now
        self._seq = 0
        self._numbers = [0] * len(PROGRAMS)
        self._deck: list[bool] = []

    def _refunded(self) -> bool:
        # A shuffled deck rather than a coin per sale: even a small world gets refunds.
        if not self._deck:
            self._deck = [True] + [False] * (REFUND_DECK - 1)
            self._rng.shuffle(self._deck)
        return self._deck.pop()

    def after_click(self, at: datetime, pi: int, event: str, click_id: str) -> list[Event]:
        """Return the requests about a click that converts (and what follows it)."""
        out: list[Event] = []
        occurred = at + delay(self._rng, event)
        self.convert(out, occurred, pi, event, click_id=click_id)
        for after, follow, probability in PROGRAMS[pi].followups:
            if after == event and self._rng.random() < probability:
                later = occurred + delay(self._rng, follow)
                self.convert(out, later, pi, follow, click_id=click_id)
        return out

    def convert(
        self, out: list[Event], occurred: datetime, pi: int, event: str, **evidence: str
    ) -> None:
        """Append the request reporting one conversion, and its refund or rejection."""
        if occurred >= self._now:
            return  # it has not happened yet
        rng, spec = self._rng, PROGRAMS[pi]
        self._numbers[pi] += 1
        local = occurred.astimezone(TZ)
        number = f"{local:%y%m%d}{self._source}{self._numbers[pi]:05d}"
        data: dict[str, Any] = {
            "event": event,
            "order_id": f"{ORDER_PREFIX[pi]}-{event[0].upper()}{number}",
            "currency": "CNY",
            "status": "pending",
            "occurred_at": local.isoformat(timespec="seconds"),
            "amount": "0.00",
            **evidence,
        }
        if event == "sale":
            data["amount"], items = order(rng, spec)
            if items:
                data["items"] = items
            data["customer_id"] = f"cust-{rng.randrange(40_000):05d}"
        elif event == "purchase":
            data["amount"] = f"{rng.choice(spec.purchase_amounts)}.00"
        reported = min(self._now, occurred + timedelta(seconds=rng.uniform(3, 120)))
        out.append(self._event(reported, "new", pi, data))
        self._aftermath(out, spec, pi, data, occurred, reported)

    def _event(self, at: datetime, kind: str, pi: int, data: dict[str, Any]) -> Event:
        self._seq += 1
        return (at, self._source, self._seq, kind, pi, data)

    def _aftermath(
        self,
        out: list[Event],
        spec: ProgramSpec,
        pi: int,
        data: dict[str, Any],
        occurred: datetime,
        reported: datetime,
    ) -> None:
        rng, now = self._rng, self._now
        update = {k: data[k] for k in ("event", "order_id", "amount", "currency")}
        if data["event"] == "sale" and self._refunded():
            at = occurred + timedelta(hours=rng.uniform(6, 24 * 14))
            if at >= now:
                at = reported + (now - reported) * rng.uniform(0.2, 0.95)
            if at <= reported:
                return
            refund = update | {"status": "refunded"}
            if rng.random() < 0.6:
                if rng.random() < 0.5:
                    refund["refund_amount"] = data["amount"]  # the same as leaving it out
                out.append(self._event(at, "refund", pi, refund))
                return
            amount = Decimal(data["amount"])
            part = (amount * rng.randrange(20, 70) / 100).quantize(CENT)
            out.append(self._event(at, "refund", pi, refund | {"refund_amount": str(part)}))
            if rng.random() < 0.25:
                # refund_amount is cumulative: the second call carries the total so far.
                more = (amount * rng.randrange(70, 101) / 100).quantize(CENT)
                later = at + (now - at) * rng.uniform(0.3, 0.9)
                out.append(self._event(later, "refund2", pi, refund | {"refund_amount": str(more)}))
            return
        rate = 0.08 if data["event"] == "lead" else spec.reject_rate
        if spec.lock_days and rng.random() < rate:
            # Rejected while still pending: strictly inside the lock period.
            at = occurred + timedelta(days=spec.lock_days) * rng.uniform(0.1, 0.9)
            if reported < at < now:
                out.append(self._event(at, "reject", pi, update | {"status": "rejected"}))


def coupon_orders(
    planner: SalesPlanner,
    rng: random.Random,
    coupons: list[tuple[int, str, float]],
    count: int,
    now: datetime,
) -> list[Event]:
    """Return orders placed with an affiliate's coupon code and no click at all."""
    out: list[Event] = []
    if coupons:
        start = now - timedelta(days=DAYS)
        cw = list(accumulate(weight for _, _, weight in coupons))
        for pi, code, _ in rng.choices(coupons, cum_weights=cw, k=count):
            planner.convert(out, start + (now - start) * rng.random(), pi, "sale", coupon=code)
    return out


def approval_runs(now: datetime, source: int) -> list[Event]:
    """Return the nightly approval job's runs (04:00 Asia/Shanghai) over the month."""
    start = now - timedelta(days=DAYS)
    night = datetime.combine(start.astimezone(TZ).date(), datetime.min.time(), TZ)
    out: list[Event] = []
    while night < now:
        run = night + timedelta(hours=4)
        if start < run < now:
            out.append((run, source, len(out), "approve", -1, None))
        night += timedelta(days=1)
    return out

"""Conversion-stage traffic-quality rules (see docs/fraud-rules.md).

Pure: ``services/screening.py`` gathers the evidence of a new attributed conversion with
a few indexed reads, and ``evaluate`` decides which rules fire and with what evidence.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from tuike.domain.fraud import Rule, Signal

CTIT = "ctit_too_short"
SELF_REFERRAL = "self_referral"
DUPLICATE = "duplicate_like_order"
COUPON_LEAKAGE = "coupon_leakage"

RULES: tuple[Rule, ...] = (
    Rule(
        CTIT,
        "conversion",
        "Converted too soon after the click (click injection, coupon poaching)",
        "TUIKE_FRAUD_CTIT_SALE_SECONDS",
        60,
    ),
    Rule(
        SELF_REFERRAL,
        "conversion",
        "The buyer looks like the affiliate (address, device, email or payout account)",
        "TUIKE_FRAUD_SELF_REFERRAL_DAYS",
        80,
    ),
    Rule(
        DUPLICATE,
        "conversion",
        "Another order of the same amount by the same buyer under another order id",
        "TUIKE_FRAUD_DUPLICATE_WINDOW_HOURS",
        50,
    ),
    Rule(
        COUPON_LEAKAGE,
        "conversion",
        "A coupon attributed the order, but its buyer never clicked its owner's links",
        "TUIKE_FRAUD_COUPON_MIN_CLICKS",
        50,
    ),
)
WEIGHTS = {r.code: r.weight for r in RULES}
# A code whose owner sent no traffic at all may be shared by voice or video (influencers):
# weaker evidence, below the default hold score.
COUPON_NO_TRAFFIC_WEIGHT = 30
# Whether a coupon's buyer clicked its owner's links (Evidence.coupon_buyer)
COUPON_CLICKED, COUPON_NOT_CLICKED, COUPON_SHARED = "clicked", "no", "shared"


@dataclass(frozen=True, slots=True)
class Thresholds:
    """The thresholds of the conversion rules (``TUIKE_FRAUD_*`` settings); 0 turns off."""

    ctit_sale: timedelta = timedelta(seconds=5)
    ctit_install: timedelta = timedelta(seconds=30)
    ctit_other: timedelta = timedelta(seconds=3)  # leads and custom events
    self_referral_days: int = 180
    duplicate_window: timedelta = timedelta(hours=24)
    coupon_min_clicks: int = 1

    def ctit_floor(self, event: str) -> timedelta:
        """Return the shortest believable click-to-conversion time of an event."""
        if event == "sale":
            return self.ctit_sale
        if event == "install":
            return self.ctit_install
        return self.ctit_other


@dataclass(frozen=True, slots=True)
class Match:
    """An identity of the buyer that is also one of the affiliate's.

    ``kind``: ip | device | email | payout; ``source``: where the buyer's side came from
    (``buyer``: the conversion report; ``click``: the click that attributed it); ``weak``:
    a user agent only, shared by many people.
    """

    kind: str
    source: str
    weak: bool = False


@dataclass(frozen=True, slots=True)
class Evidence:
    """What is known of a new attributed conversion when it is recorded."""

    event: str
    attribution: str  # click_id | cookie | coupon
    ctit: timedelta | None = None  # from the attributing click to the conversion
    matches: tuple[Match, ...] = ()
    duplicates: tuple[str, ...] = ()  # order ids of duplicate-like orders
    duplicate_basis: str = ""  # customer | device | address
    coupon: str | None = None
    coupon_owner_clicks: int | None = None  # the owner's clicks in the window (coupons)
    # Whether the buyer (address and browser) is among the owner's clickers: clicked, no,
    # shared (an address shared by many, which tells nothing); None: unknown
    coupon_buyer: str | None = None
    window_days: int = 0  # the program's cookie window


def _seconds(value: timedelta) -> str:
    s = value.total_seconds()
    return f"{s:.0f} s" if abs(s) >= 10 else f"{s:.1f} s"


def _ctit(e: Evidence, t: Thresholds) -> Signal | None:
    floor = t.ctit_floor(e.event)
    if e.ctit is None or floor <= timedelta(0) or e.ctit >= floor:
        return None
    if e.ctit < timedelta(0):
        text = f"reported {_seconds(-e.ctit)} before its click"
    else:
        text = f"{_seconds(e.ctit)} after its click"
    return Signal(CTIT, WEIGHTS[CTIT], f"{e.event} {text} (under {_seconds(floor)})")


_KIND_WORDS = {
    "ip": "address",
    "device": "device",
    "email": "email address",
    "payout": "payout account",
}


def _self_referral(e: Evidence, t: Thresholds) -> Signal | None:
    if not e.matches or t.self_referral_days <= 0:
        return None
    parts = []
    for m in sorted(set(e.matches), key=lambda m: (m.kind, m.source, m.weak)):
        whose = "the buyer's" if m.source == "buyer" else "the click's"
        if m.kind in ("email", "payout"):
            parts.append(f"{whose} customer id is the affiliate's {_KIND_WORDS[m.kind]}")
        else:
            what = "browser (user agent only)" if m.weak else _KIND_WORDS.get(m.kind, m.kind)
            parts.append(f"{whose} {what} is one the affiliate signed in from")
    weight = WEIGHTS[SELF_REFERRAL]
    if all(m.weak for m in e.matches):
        weight //= 2  # a user agent alone is shared by many people
    return Signal(SELF_REFERRAL, weight, "; ".join(parts))


def _duplicate(e: Evidence, t: Thresholds) -> Signal | None:
    if not e.duplicates or t.duplicate_window <= timedelta(0):
        return None
    basis = {"customer": "customer", "device": "device"}.get(
        e.duplicate_basis, "buyer address and browser"
    )
    hours = t.duplicate_window.total_seconds() / 3600
    listed = ", ".join(e.duplicates[:3]) + (" …" if len(e.duplicates) > 3 else "")
    return Signal(
        DUPLICATE,
        WEIGHTS[DUPLICATE],
        f"same amount and {basis} as order {listed} within {hours:g} h",
    )


def _coupon(e: Evidence, t: Thresholds) -> Signal | None:
    if e.attribution != "coupon" or e.coupon_owner_clicks is None or t.coupon_min_clicks <= 0:
        return None
    if e.coupon_owner_clicks < t.coupon_min_clicks:
        return Signal(
            COUPON_LEAKAGE,
            COUPON_NO_TRAFFIC_WEIGHT,
            f"coupon {e.coupon}: its owner sent {e.coupon_owner_clicks} clicks to the program "
            f"in the {e.window_days} days before",
        )
    if e.coupon_buyer == COUPON_NOT_CLICKED:
        why = "the buyer's address and browser are not among"
    elif e.coupon_buyer == COUPON_SHARED:
        why = "the buyer's address is shared by many browsers: nothing ties the buyer to"
    else:
        return None
    return Signal(
        COUPON_LEAKAGE,
        WEIGHTS[COUPON_LEAKAGE],
        f"coupon {e.coupon}: {why} the {e.coupon_owner_clicks} clicks its owner sent the "
        f"program in the {e.window_days} days before",
    )


def evaluate(
    evidence: Evidence, thresholds: Thresholds, disabled: frozenset[str] = frozenset()
) -> list[Signal]:
    """Return the signals of the conversion rules that fire on this evidence."""
    signals = []
    for code, rule in (
        (CTIT, _ctit),
        (SELF_REFERRAL, _self_referral),
        (DUPLICATE, _duplicate),
        (COUPON_LEAKAGE, _coupon),
    ):
        if code in disabled:
            continue
        signal = rule(evidence, thresholds)
        if signal is not None:
            signals.append(signal)
    return signals


def action(score: int, hold_score: int, reject_score: int | None) -> str:
    """Return what a conversion's score calls for: ``reject``, ``hold`` or ``none``."""
    if reject_score is not None and score >= reject_score:
        return "reject"
    if score >= hold_score:
        return "hold"
    return "none"

"""Attribution: which affiliate, if any, earns a conversion.

Order of evidence: an explicit click id, then the click-id cookie, then a coupon owned
by an affiliate. A click attributes only inside the program's cookie window and only if
it came before the conversion (a small clock skew is tolerated). The click id in hand is
the last click: the tracker overwrites the cookie on every click. A click filtered as
invalid traffic (docs/fraud-rules.md) counts as no click: the tracker does not set its
cookie, and a conversion naming it is not attributed by it (its note says why).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

CLOCK_SKEW = timedelta(minutes=10)


@dataclass(frozen=True, slots=True)
class ClickRef:
    """What attribution needs to know of a click."""

    click_id: str
    program_id: int
    affiliate_id: int
    link_id: int
    clicked_at: datetime


@dataclass(frozen=True, slots=True)
class Attribution:
    """The outcome: who earns, by which evidence, or why nobody does."""

    affiliate_id: int | None
    method: str  # click_id | cookie | coupon | none
    click: ClickRef | None = None
    reason: str = ""

    @property
    def attributed(self) -> bool:
        """Tell whether an affiliate earns this conversion."""
        return self.affiliate_id is not None


def click_in_window(click: ClickRef, occurred_at: datetime, window: timedelta) -> bool:
    """Tell whether a click may attribute a conversion that occurred at ``occurred_at``."""
    return click.clicked_at - CLOCK_SKEW <= occurred_at <= click.clicked_at + window


def attribute(
    *,
    program_id: int,
    occurred_at: datetime,
    window: timedelta,
    explicit_click: ClickRef | None = None,
    cookie_click: ClickRef | None = None,
    coupon_affiliate_id: int | None = None,
    eligible: frozenset[int] | None = None,
) -> Attribution:
    """Choose the attribution for a conversion from the evidence at hand.

    ``eligible`` is the set of affiliates with an approved membership (None: all are).
    """
    reasons: list[str] = []

    def ok(affiliate_id: int) -> bool:
        return eligible is None or affiliate_id in eligible

    for method, click in (("click_id", explicit_click), ("cookie", cookie_click)):
        if click is None:
            continue
        if click.program_id != program_id:
            reasons.append(f"{method}: click of another program")
        elif not click_in_window(click, occurred_at, window):
            reasons.append(f"{method}: click outside the cookie window")
        elif not ok(click.affiliate_id):
            reasons.append(f"{method}: affiliate not approved in the program")
        else:
            return Attribution(affiliate_id=click.affiliate_id, method=method, click=click)
    if coupon_affiliate_id is not None:
        if ok(coupon_affiliate_id):
            return Attribution(affiliate_id=coupon_affiliate_id, method="coupon")
        reasons.append("coupon: affiliate not approved in the program")
    return Attribution(affiliate_id=None, method="none", reason="; ".join(reasons))

"""The conversion status lifecycle, partial refunds included.

pending → approved | rejected | refunded;  approved → refunded.
A refund carries the cumulative amount refunded so far (``refund_amount``; the whole
amount when absent). A partial refund keeps the status and reduces the commission pro
rata; refunding the whole amount moves the conversion to ``refunded``. Repeating a call
changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from tuike.domain.commission import prorate
from tuike.domain.errors import Conflict, InvalidField
from tuike.domain.money import round_money

PENDING, APPROVED, REJECTED, REFUNDED = "pending", "approved", "rejected", "refunded"
STATUSES = (PENDING, APPROVED, REJECTED, REFUNDED)
INITIAL_STATUSES = (PENDING, APPROVED, REJECTED)
MOVES: dict[str, frozenset[str]] = {
    PENDING: frozenset({APPROVED, REJECTED, REFUNDED}),
    APPROVED: frozenset({REFUNDED}),
    REJECTED: frozenset(),
    REFUNDED: frozenset(),
}


@dataclass(frozen=True, slots=True)
class ConversionState:
    """The money-relevant state of a stored conversion."""

    status: str
    amount: Decimal
    refunded_amount: Decimal
    original_commission: Decimal
    commission: Decimal
    currency: str


def check_status(status: str, field: str = "status") -> str:
    """Return a known status or raise InvalidField."""
    if status not in STATUSES:
        raise InvalidField(field, f"must be one of {', '.join(STATUSES)}")
    return status


def initial_commission(status: str, computed: Decimal, currency: str) -> Decimal:
    """Return the commission a new conversion starts with in a given status."""
    if status == REJECTED:
        return round_money(Decimal(0), currency)
    return computed


def apply_status(
    state: ConversionState, new_status: str, refund_amount: Decimal | None = None
) -> ConversionState | None:
    """Return the state after a status update, None when it brings nothing new.

    Raise Conflict for an illegal move or an impossible refund; nothing changes then.
    """
    check_status(new_status)
    if refund_amount is not None and new_status != REFUNDED:
        raise InvalidField("refund_amount", "is only allowed with status refunded")
    if new_status == REFUNDED:
        return _refund(state, refund_amount)
    if new_status == state.status:
        return None
    if new_status not in MOVES[state.status]:
        raise Conflict(f"illegal status move {state.status} → {new_status}")
    commission = state.commission
    if new_status == REJECTED:
        commission = round_money(Decimal(0), state.currency)
    return ConversionState(
        status=new_status,
        amount=state.amount,
        refunded_amount=state.refunded_amount,
        original_commission=state.original_commission,
        commission=commission,
        currency=state.currency,
    )


def _refund(state: ConversionState, refund_amount: Decimal | None) -> ConversionState | None:
    total = state.amount if refund_amount is None else refund_amount
    if state.status == REJECTED:
        raise Conflict("illegal status move rejected → refunded")
    if total > state.amount:
        raise Conflict(f"refund_amount {total} is larger than the conversion amount {state.amount}")
    if total < state.refunded_amount:
        raise Conflict(
            f"refund_amount is the total refunded so far; {total} is less than the "
            f"{state.refunded_amount} already refunded"
        )
    # The same total again changes nothing, unless it refunds the whole of a zero amount.
    if total == state.refunded_amount and (state.status == REFUNDED or total < state.amount):
        return None
    if state.status == REFUNDED:
        return None
    full = total == state.amount
    return ConversionState(
        status=REFUNDED if full else state.status,
        amount=state.amount,
        refunded_amount=total,
        original_commission=state.original_commission,
        commission=prorate(state.original_commission, state.amount, total, state.currency),
        currency=state.currency,
    )

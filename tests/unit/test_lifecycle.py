"""The conversion status lifecycle: legal moves, idempotency and partial refunds."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tuike.domain.commission import prorate
from tuike.domain.errors import Conflict, InvalidField
from tuike.domain.lifecycle import (
    ConversionState,
    apply_status,
    check_status,
    initial_commission,
)

D = Decimal


def state(
    status: str = "pending",
    amount: str = "199.00",
    commission: str = "19.90",
    refunded: str = "0.00",
    currency: str = "CNY",
) -> ConversionState:
    return ConversionState(
        status=status,
        amount=D(amount),
        refunded_amount=D(refunded),
        original_commission=D(commission),
        commission=D(commission),
        currency=currency,
    )


# --- moves ------------------------------------------------------------------------------


def test_pending_to_approved_keeps_commission() -> None:
    after = apply_status(state("pending"), "approved")
    assert after is not None
    assert after.status == "approved"
    assert after.commission == D("19.90")
    assert after.refunded_amount == 0


def test_pending_to_rejected_zeroes_commission() -> None:
    after = apply_status(state("pending"), "rejected")
    assert after is not None
    assert after.status == "rejected"
    assert after.commission == D("0.00")
    assert str(after.commission) == "0.00"
    # The original commission is kept for the record.
    assert after.original_commission == D("19.90")


@pytest.mark.parametrize("start", ["pending", "approved"])
def test_full_refund_moves_to_refunded_with_zero_commission(start: str) -> None:
    after = apply_status(state(start), "refunded")
    assert after is not None
    assert after.status == "refunded"
    assert after.refunded_amount == D("199.00")
    assert after.commission == D("0.00")
    assert after.original_commission == D("19.90")


@pytest.mark.parametrize(
    ("start", "target"),
    [
        ("rejected", "approved"),
        ("rejected", "pending"),
        ("rejected", "refunded"),
        ("approved", "pending"),
        ("approved", "rejected"),
        ("refunded", "approved"),
        ("refunded", "pending"),
        ("refunded", "rejected"),
    ],
)
def test_illegal_moves_conflict(start: str, target: str) -> None:
    with pytest.raises(Conflict):
        apply_status(state(start), target)


def test_rejected_cannot_be_partially_refunded() -> None:
    with pytest.raises(Conflict):
        apply_status(state("rejected"), "refunded", D("10.00"))


@pytest.mark.parametrize("status", ["pending", "approved", "rejected"])
def test_repeating_the_same_status_brings_nothing_new(status: str) -> None:
    assert apply_status(state(status), status) is None


def test_repeating_a_full_refund_brings_nothing_new() -> None:
    refunded = apply_status(state("approved"), "refunded")
    assert refunded is not None
    assert apply_status(refunded, "refunded") is None
    assert apply_status(refunded, "refunded", D("199.00")) is None


def test_unknown_status_is_invalid_field() -> None:
    with pytest.raises(InvalidField) as err:
        apply_status(state(), "cancelled")
    assert err.value.field == "status"
    with pytest.raises(InvalidField):
        check_status("APPROVED")
    assert check_status("approved") == "approved"


@pytest.mark.parametrize("target", ["approved", "rejected", "pending"])
def test_refund_amount_only_with_status_refunded(target: str) -> None:
    with pytest.raises(InvalidField) as err:
        apply_status(state("pending"), target, D("10.00"))
    assert err.value.field == "refund_amount"


# --- partial refunds -----------------------------------------------------------------------


def test_partial_refund_keeps_status_and_prorates_commission() -> None:
    after = apply_status(state("approved"), "refunded", D("99.00"))
    assert after is not None
    assert after.status == "approved"
    assert after.refunded_amount == D("99.00")
    assert after.commission == D("10.00")  # 19.90 x 100/199
    assert after.original_commission == D("19.90")


def test_partial_refund_of_pending_stays_pending_and_can_then_be_approved() -> None:
    partial = apply_status(state("pending"), "refunded", D("99.00"))
    assert partial is not None
    assert partial.status == "pending"
    approved = apply_status(partial, "approved")
    assert approved is not None
    assert approved.status == "approved"
    assert approved.commission == D("10.00")
    assert approved.refunded_amount == D("99.00")


def test_refund_amount_is_cumulative() -> None:
    first = apply_status(state("approved"), "refunded", D("50.00"))
    assert first is not None
    assert first.commission == D("14.90")  # 19.90 x 149/199 = 14.90
    # The same total again is a retry: nothing new.
    assert apply_status(first, "refunded", D("50.00")) is None
    # A larger total refunds more, computed from the original commission.
    second = apply_status(first, "refunded", D("99.00"))
    assert second is not None
    assert second.refunded_amount == D("99.00")
    assert second.commission == D("10.00")
    # A smaller total than already refunded contradicts the state.
    with pytest.raises(Conflict):
        apply_status(second, "refunded", D("50.00"))
    # Refunding the rest moves to refunded.
    last = apply_status(second, "refunded", D("199.00"))
    assert last is not None
    assert last.status == "refunded"
    assert last.commission == D("0.00")


def test_refund_without_amount_after_partial_refunds_the_rest() -> None:
    partial = apply_status(state("approved"), "refunded", D("99.00"))
    assert partial is not None
    full = apply_status(partial, "refunded")
    assert full is not None
    assert full.status == "refunded"
    assert full.refunded_amount == D("199.00")
    assert full.commission == D("0.00")


def test_refund_larger_than_amount_conflicts() -> None:
    with pytest.raises(Conflict):
        apply_status(state("approved"), "refunded", D("199.01"))
    with pytest.raises(Conflict):
        apply_status(state("pending"), "refunded", D("1000.00"))


def test_refund_of_zero_brings_nothing_new() -> None:
    assert apply_status(state("approved"), "refunded", D("0.00")) is None
    assert apply_status(state("pending"), "refunded", D("0")) is None


def test_zero_amount_conversion_can_be_refunded() -> None:
    # A lead pays a fixed commission on an amount of 0; refunding it cancels the commission.
    lead = state("approved", amount="0.00", commission="3.00")
    after = apply_status(lead, "refunded")
    assert after is not None
    assert after.status == "refunded"
    assert after.commission == D("0.00")
    assert apply_status(after, "refunded") is None
    explicit = apply_status(lead, "refunded", D("0.00"))
    assert explicit is not None
    assert explicit.status == "refunded"


def test_partial_refund_in_yen_rounds_to_whole_yen() -> None:
    after = apply_status(
        state("approved", amount="3000", commission="100", refunded="0", currency="JPY"),
        "refunded",
        D("1000"),
    )
    assert after is not None
    assert str(after.commission) == "67"  # 66.67 -> 67


def test_initial_commission() -> None:
    assert initial_commission("pending", D("19.90"), "CNY") == D("19.90")
    assert initial_commission("approved", D("19.90"), "CNY") == D("19.90")
    assert str(initial_commission("rejected", D("19.90"), "CNY")) == "0.00"


# --- hypothesis -------------------------------------------------------------------------


@st.composite
def refund_sequences(draw: st.DrawFn) -> tuple:
    currency, exponent = draw(st.sampled_from([("CNY", 2), ("JPY", 0), ("KWD", 3)]))
    amount_minor = draw(st.integers(min_value=1, max_value=10**9))
    commission_minor = draw(st.integers(min_value=0, max_value=amount_minor))
    totals = draw(
        st.lists(st.integers(min_value=0, max_value=amount_minor), min_size=1, max_size=8)
    )
    status = draw(st.sampled_from(["pending", "approved"]))

    def money(minor: int) -> Decimal:
        return Decimal(minor).scaleb(-exponent)

    start = ConversionState(
        status=status,
        amount=money(amount_minor),
        refunded_amount=money(0),
        original_commission=money(commission_minor),
        commission=money(commission_minor),
        currency=currency,
    )
    return start, [money(t) for t in sorted(totals)]


@given(refund_sequences())
def test_cumulative_partial_refunds(case: tuple) -> None:
    current, totals = case
    original = current.original_commission
    for total in totals:
        before = current
        after = apply_status(current, "refunded", total)
        if after is None:
            assert total == before.refunded_amount or before.status == "refunded"
        else:
            assert after.commission <= before.commission
            assert after.refunded_amount == total
            assert after.original_commission == original
            current = after
    last = totals[-1]
    assert current.commission == prorate(original, current.amount, last, current.currency)
    assert current.refunded_amount == last
    assert (current.status == "refunded") == (last == current.amount)
    if last < current.amount:
        assert current.status == case[0].status


@given(refund_sequences())
def test_refund_going_backwards_conflicts(case: tuple) -> None:
    start, totals = case
    current = apply_status(start, "refunded", totals[-1]) or start
    if current.refunded_amount > 0:
        step = Decimal(1).scaleb(current.amount.as_tuple().exponent)
        with pytest.raises(Conflict):
            apply_status(current, "refunded", current.refunded_amount - step)

"""Posting rules: every conversion move balances, and the moves add up to the position."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tuike.domain import ledger as L
from tuike.domain.lifecycle import APPROVED, PENDING, REFUNDED, REJECTED
from tuike.domain.money import to_minor

CNY = "CNY"
parties = L.Parties(merchant_id=7, affiliate_id=11, currency=CNY, recruiter_id=5)
commissions = st.decimals(min_value=0, max_value=10**7, places=2).map(Decimal)
terms = st.builds(
    L.FeeTerms,
    rate=st.decimals(min_value=0, max_value=1, places=4).map(Decimal),
    mode=st.sampled_from(L.FEE_MODES),
    override_rate=st.decimals(min_value=0, max_value=1, places=4).map(Decimal),
)
states = st.tuples(st.sampled_from([PENDING, APPROVED, REJECTED, REFUNDED]), commissions)


@given(commissions, terms)
def test_the_merchant_pays_exactly_what_the_affiliate_and_the_platform_get(c, fee):
    s = L.split(c, CNY, fee)
    assert s.merchant_pays == s.affiliate_gets + s.fee
    assert s.fee >= 0 and s.affiliate_gets >= 0
    assert (s.merchant_pays if fee.mode == "deducted" else s.affiliate_gets) == to_minor(c, CNY)


@given(st.lists(states, min_size=1, max_size=12), terms)
def test_any_sequence_of_moves_balances_and_adds_up_to_the_last_states_position(seq, fee):
    held: dict[L.Account, int] = {}
    previous: dict = {}
    for status, commission in seq:
        target = L.position(status, commission, parties, fee)
        assert sum(target.values()) == 0
        entries = L.difference(target, previous)
        posting = L.Posting(key="k", kind="x", currency=CNY, entries=entries)  # balances
        for account, amount in posting.entries:
            held[account] = held.get(account, 0) + amount
        previous = target
    assert {a: v for a, v in held.items() if v} == {a: v for a, v in previous.items() if v}


def test_the_fee_is_rounded_half_up_at_the_fee_line():
    # 10 % of 0.05 is 0.005: half a fen rounds up to 0.01.
    assert L.split(Decimal("0.05"), CNY, L.FeeTerms(Decimal("0.10"))).fee == 1
    assert L.split(Decimal("0.04"), CNY, L.FeeTerms(Decimal("0.10"))).fee == 0


def test_an_unbalanced_or_mixed_currency_transaction_is_refused():
    a = L.Account(L.MERCHANT, 1, L.FUNDS, CNY)
    b = L.Account(L.AFFILIATE, 2, L.AVAILABLE, CNY)
    with pytest.raises(ValueError, match="unbalanced"):
        L.Posting(key="k", kind="x", currency=CNY, entries=((a, 5), (b, -4)))
    usd = L.Account(L.AFFILIATE, 2, L.AVAILABLE, "USD")
    with pytest.raises(ValueError, match="mixes currencies"):
        L.Posting(key="k", kind="x", currency=CNY, entries=((a, 5), (usd, -5)))
    with pytest.raises(ValueError, match="no 'fee_revenue' account for a 'merchant'"):
        L.Account(L.MERCHANT, 1, L.FEE_REVENUE, CNY)


def test_nothing_is_held_for_an_unattributed_rejected_or_zero_conversion():
    none = L.Parties(merchant_id=7, affiliate_id=None, currency=CNY)
    assert L.position(APPROVED, Decimal("5.00"), none, L.FeeTerms()) == {}
    assert L.position(REJECTED, Decimal("5.00"), parties, L.FeeTerms()) == {}
    assert L.position(PENDING, Decimal("0.00"), parties, L.FeeTerms()) == {}

"""The conversion-time fraud rules, as pure functions of their evidence."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from tuike.domain.fraud import conversion as rules
from tuike.domain.fraud import score
from tuike.domain.fraud.conversion import Evidence, Match, Thresholds, action, evaluate
from tuike.domain.privacy import device_hash, identity_hash, ip_hash, store_ip

T = Thresholds()
S = timedelta(seconds=1)


def codes(evidence: Evidence, thresholds: Thresholds = T, off: frozenset = frozenset()) -> dict:
    return {s.code: s for s in evaluate(evidence, thresholds, off)}


@pytest.mark.parametrize(
    ("event", "seconds", "fires"),
    [
        ("sale", 2, True),
        ("sale", 4.9, True),
        ("sale", 5, False),
        ("sale", 600, False),
        ("install", 25, True),
        ("install", 30, False),
        ("lead", 2, True),
        ("lead", 10, False),
        ("register", 1, True),  # custom events take the "other" threshold
        ("sale", -30, True),  # reported before its click
    ],
)
def test_ctit_thresholds_per_event(event, seconds, fires):
    found = codes(Evidence(event=event, attribution="click_id", ctit=seconds * S))
    assert (rules.CTIT in found) is fires
    if fires:
        assert found[rules.CTIT].weight == 60
        assert event in found[rules.CTIT].evidence


def test_ctit_needs_a_click_and_zero_turns_it_off():
    assert codes(Evidence(event="sale", attribution="coupon")) == {}
    off = Thresholds(ctit_sale=timedelta(0))
    assert codes(Evidence(event="sale", attribution="click_id", ctit=S), off) == {}
    found = codes(Evidence(event="sale", attribution="click_id", ctit=-3 * S))
    assert "before its click" in found[rules.CTIT].evidence


def test_self_referral_is_strong_unless_only_a_user_agent_matched():
    strong = codes(Evidence("sale", "click_id", matches=(Match("ip", "buyer"),)))
    assert strong[rules.SELF_REFERRAL].weight == 80
    assert "address is one the affiliate signed in from" in strong[rules.SELF_REFERRAL].evidence
    weak = codes(Evidence("sale", "click_id", matches=(Match("device", "click", weak=True),)))
    assert weak[rules.SELF_REFERRAL].weight == 40
    both = codes(
        Evidence(
            "sale", "cookie", matches=(Match("device", "buyer", True), Match("payout", "buyer"))
        )
    )
    assert both[rules.SELF_REFERRAL].weight == 80
    assert "payout account" in both[rules.SELF_REFERRAL].evidence
    assert codes(Evidence("sale", "click_id")) == {}
    assert (
        codes(
            Evidence("sale", "click_id", matches=(Match("ip", "buyer"),)),
            Thresholds(self_referral_days=0),
        )
        == {}
    )


def test_duplicates_and_coupon_leakage():
    dup = codes(Evidence("sale", "click_id", duplicates=("A-1", "A-2"), duplicate_basis="customer"))
    assert dup[rules.DUPLICATE].weight == 50
    assert "A-1, A-2" in dup[rules.DUPLICATE].evidence
    assert "customer" in dup[rules.DUPLICATE].evidence
    leak = codes(Evidence("sale", "coupon", coupon="ANNA", coupon_owner_clicks=0, window_days=30))
    assert leak[rules.COUPON_LEAKAGE].weight == 30
    assert "coupon ANNA" in leak[rules.COUPON_LEAKAGE].evidence
    sent = Evidence("sale", "coupon", coupon="ANNA", coupon_owner_clicks=1, window_days=30)
    assert codes(sent) == {}  # the buyer unknown (no address or browser reported)
    assert codes(replace(sent, coupon_buyer=rules.COUPON_CLICKED)) == {}
    # The owner sends traffic, but not this buyer: the code is used outside its audience.
    leak = codes(replace(sent, coupon_buyer=rules.COUPON_NOT_CLICKED))[rules.COUPON_LEAKAGE]
    assert leak.weight == 50
    assert leak.evidence == (
        "coupon ANNA: the buyer's address and browser are not among the 1 clicks its owner "
        "sent the program in the 30 days before"
    )
    shared = codes(replace(sent, coupon_buyer=rules.COUPON_SHARED))[rules.COUPON_LEAKAGE]
    assert shared.weight == 50 and "shared by many browsers" in shared.evidence
    # A click attributed it: the coupon's owner did send traffic.
    assert codes(Evidence("sale", "click_id", coupon="ANNA", coupon_owner_clicks=0)) == {}


def test_disabled_rules_do_not_fire_and_scores_decide_the_action():
    evidence = Evidence(
        "sale", "click_id", ctit=S, matches=(Match("ip", "buyer"),), duplicates=("A",)
    )
    signals = evaluate(evidence, T)
    assert score(signals) == 100
    assert [s.code for s in evaluate(evidence, T, frozenset({rules.SELF_REFERRAL}))] == [
        rules.CTIT,
        rules.DUPLICATE,
    ]
    assert action(0, 50, None) == "none"
    assert action(49, 50, None) == "none"
    assert action(50, 50, None) == "hold"
    assert action(100, 50, None) == "hold"
    assert action(90, 50, 90) == "reject"
    assert action(60, 70, 60) == "reject"  # a reject score below the hold score wins


def test_identity_hashes():
    salt = "salt"
    assert ip_hash("203.0.113.9", salt) == store_ip("203.0.113.9", "hashed", salt)
    assert ip_hash("::ffff:203.0.113.9", salt) == ip_hash("203.0.113.9", salt)
    assert ip_hash("testclient", salt) is None and ip_hash("", salt) is None
    assert device_hash(device_id="IDFA-1", user_agent="UA", salt=salt).startswith("d:")
    assert device_hash(device_id=None, user_agent="UA", salt=salt).startswith("u:")
    assert device_hash(device_id=" ", user_agent="", salt=salt) is None
    assert identity_hash(" Anna@Example.com ", salt) == identity_hash("anna@example.com", salt)
    assert identity_hash("6222 0000 1111", salt) == identity_hash("622200001111", salt)
    assert identity_hash("x", salt) != identity_hash("x", "other")

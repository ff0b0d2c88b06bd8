"""The eval's labelled traffic is the same for a seed, and its counting is right."""

from __future__ import annotations

from collections import Counter

from tuike.services.fraud_evaluation import (
    TYPES,
    ClickOutcome,
    ConversionOutcome,
    evaluate,
    markdown,
)
from tuike.services.fraud_traffic import FRAUD_TYPES, Click, Conversion, plan


def test_a_seed_makes_the_same_plan_and_every_fraud_type_is_in_it():
    one, again, other = plan(1, "small"), plan(1, "small"), plan(2, "small")
    assert one.events == again.events and one.affiliates == again.affiliates
    assert one.events != other.events
    assert [e.at for e in one.events] == sorted(e.at for e in one.events)
    labels = Counter(e.label for e in one.events if isinstance(e, (Click, Conversion)))
    assert set(FRAUD_TYPES) <= set(labels) and labels["organic"] > 1000
    assert {t.code for t in TYPES} == set(FRAUD_TYPES)
    # Many phones behind each carrier-NAT address, in the organic traffic.
    nat = Counter(e.visitor.ip for e in one.events if isinstance(e, Click) and e.label == "organic")
    assert nat.most_common(1)[0][1] > 50


def test_precision_recall_and_organic_false_positives_are_counted_per_level():
    clicks = [
        *[ClickOutcome("bots", True, ("bot_user_agent",))] * 9,
        ClickOutcome("bots", False),
        *[ClickOutcome("datacenter", True, ("datacenter_asn",))] * 10,
        *[ClickOutcome("organic", False)] * 97,
        ClickOutcome("organic", True, ("datacenter_asn",)),
        ClickOutcome("organic", True, ("ip_velocity",)),  # fits device_farm
        ClickOutcome("organic", True, ("something_new",)),  # fits none: counts for all
    ]
    conversions = [
        *[ConversionOutcome("self_referral", True, ("self_referral",))] * 4,
        ConversionOutcome("self_referral", True, ("duplicate_order",)),  # not a fitting reason
        *[ConversionOutcome("click_flooding", False, (), flagged=True)] * 3,
        *[ConversionOutcome("organic", False)] * 8,
        ConversionOutcome("organic", True, ("self_referral",)),
        ConversionOutcome("organic", False, (), flagged=True),  # a flagged organic affiliate
    ]
    report = evaluate(clicks, conversions, organic_affiliates=5, organic_affiliates_flagged=1)
    rows = {r.code: r for r in report.rows}
    assert (rows["bots"].units, rows["bots"].caught, rows["bots"].organic_caught) == (10, 9, 1)
    assert rows["bots"].recall == 0.9 and rows["bots"].precision == 0.9
    assert rows["datacenter"].organic_caught == 2 and rows["datacenter"].recall == 1.0
    assert rows["device_farm"].units == 0 and rows["device_farm"].recall is None
    assert (rows["self_referral"].caught, rows["self_referral"].organic_caught) == (4, 1)
    assert rows["click_flooding"].caught == 3 and rows["click_flooding"].organic_caught == 1
    assert report.organic_fp_rate == (3 + 1) / (100 + 10)
    assert not report.meets
    text = markdown(report)
    assert "| bots | clicks | 10 | 9 | 0.90 | 0.90 | – |" in text
    assert "organic affiliates flagged: 1 of 5" in text and "NOT met" in text

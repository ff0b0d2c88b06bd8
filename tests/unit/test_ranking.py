"""The directory's ranking: EPC index against the programs' means, shrinkage, quality,
flags and bands (no database)."""

from __future__ import annotations

import pytest

from tuike.domain.ranking import (
    BOTTOM_50,
    PRIOR_CLICKS,
    TOP_10,
    TOP_25,
    TOP_50,
    UNRATED,
    Candidate,
    Earnings,
    Index,
    bands,
    epc_indexes,
    rank,
)


def test_the_index_measures_against_each_programs_mean_whatever_its_currency() -> None:
    # Program 1 pays in a currency of large numbers, program 2 in small ones; the average
    # affiliate of each has index 1.0, and twice the mean EPC shows the same in both.
    books = [
        Earnings(1, 1, clicks=10_000, commission_minor=1_000_000),
        Earnings(2, 1, clicks=10_000, commission_minor=3_000_000),
        Earnings(3, 2, clicks=10_000, commission_minor=100),
        Earnings(4, 2, clicks=10_000, commission_minor=300),
    ]
    idx = epc_indexes(books, prior_clicks=0)
    assert idx[1].value == pytest.approx(0.5) and idx[3].value == pytest.approx(0.5)
    assert idx[2].value == pytest.approx(1.5) and idx[4].value == pytest.approx(1.5)
    assert idx[1].clicks == 10_000


def test_an_affiliate_in_several_programs_is_weighed_by_its_clicks_in_each() -> None:
    books = [
        Earnings(1, 1, clicks=100, commission_minor=200),  # program 1 mean: 1.0 per click
        Earnings(2, 1, clicks=100, commission_minor=0),
        Earnings(1, 2, clicks=300, commission_minor=30),  # program 2 mean: 0.1 per click
    ]
    idx = epc_indexes(books, prior_clicks=0)
    # 200 / 1.0 + 30 / 0.1 = 500 clicks' worth at the means, on 400 clicks
    assert idx[1].value == pytest.approx(500 / 400)
    assert idx[2].value == pytest.approx(0.0)


def test_few_clicks_are_shrunk_toward_the_mean() -> None:
    books = [
        Earnings(1, 1, clicks=5, commission_minor=50),  # one lucky sale on 5 clicks
        Earnings(2, 1, clicks=5_000, commission_minor=7_500),  # steadily 1.5 times the mean
        Earnings(3, 1, clicks=5_000, commission_minor=2_500),
    ]
    mean = 10_050 / 10_005
    raw = epc_indexes(books, prior_clicks=0)
    shrunk = epc_indexes(books)
    assert raw[1].value == pytest.approx(50 / mean / 5)
    assert shrunk[1].value == pytest.approx((50 / mean + PRIOR_CLICKS) / (5 + PRIOR_CLICKS))
    assert raw[1].value > raw[2].value, "raw, the lucky one would lead"
    assert shrunk[2].value > shrunk[1].value > 1.0, "shrunk, volume wins over luck"
    assert shrunk[2].value == pytest.approx(raw[2].value, rel=0.03)


def test_programs_without_commission_or_clicks_rate_nobody() -> None:
    books = [
        Earnings(1, 1, clicks=1_000, commission_minor=0),  # nobody earned in program 1
        Earnings(2, 2, clicks=0, commission_minor=500),  # coupon sales only in program 2
        Earnings(3, 3, clicks=100, commission_minor=100),
    ]
    assert set(epc_indexes(books)) == {3}


def test_quality_scales_the_score_flagged_come_last_unrated_after_rated() -> None:
    idx = {
        1: Index(1.5, 1_000),
        2: Index(1.5, 1_000),
        3: Index(3.0, 1_000),  # the best EPC, but flagged
        4: Index(0.6, 1_000),
    }
    ranked = rank(
        [
            Candidate(1, quality_score=100),
            Candidate(2, quality_score=50),
            Candidate(3, quality_score=40, flagged=True),
            Candidate(4, quality_score=None),
            Candidate(5, quality_score=100),  # no rated clicks
        ],
        idx,
    )
    assert [r.affiliate_id for r in ranked] == [1, 2, 4, 5, 3]
    assert [r.score for r in ranked] == pytest.approx([1.5, 0.75, 0.6, 1.0, 1.2])
    assert ranked[3].band == UNRATED and ranked[3].index is None
    assert ranked[-1].flagged and ranked[-1].band == TOP_10


def test_bands_split_the_rated_network_and_ties_share_the_better_band() -> None:
    idx = {a: Index(100.0 - a, 1_000) for a in range(20)}  # 0 is the best
    got = bands(idx)
    assert [got[a] for a in range(20)] == [TOP_10] * 2 + [TOP_25] * 3 + [TOP_50] * 5 + [
        BOTTOM_50
    ] * 10
    assert bands({1: Index(1.0, 5)}) == {1: TOP_10}
    assert bands({1: Index(1.0, 5), 2: Index(1.0, 5)}) == {1: TOP_10, 2: TOP_10}
    assert bands({1: Index(2.0, 5), 2: Index(1.0, 5)}) == {1: TOP_10, 2: BOTTOM_50}

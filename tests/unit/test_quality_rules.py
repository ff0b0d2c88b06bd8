"""The affiliate quality rules and the Beta-binomial test they stand on (no database)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tuike.domain.fraud import all_rules
from tuike.domain.fraud.outliers import BetaPrior, fit_prior, lower_tail, upper_tail
from tuike.domain.fraud.quality import (
    ABUSE_REPORTS,
    CLICK_FLOODING,
    CONVERSION_RATE_OUTLIER,
    INVALID_CLICK_SHARE,
    LOW_CONVERSION_RATE,
    REFUND_RATE_OUTLIER,
    Book,
    QualityReason,
    QualitySettings,
    Reports,
    assess,
    quality_of,
    reasons_of,
    reasons_seen_by,
)

S = QualitySettings()
priors = st.builds(
    BetaPrior,
    alpha=st.floats(0.05, 500, allow_nan=False),
    beta=st.floats(0.05, 5000, allow_nan=False),
)


def brute_pmf(k: int, n: int, a: float, b: float) -> float:
    return math.comb(n, k) * math.exp(
        math.lgamma(k + a) + math.lgamma(n - k + b) - math.lgamma(n + a + b)
        + math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
    )  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(prior=priors, n=st.integers(0, 60), data=st.data())
def test_tails_match_a_brute_force_sum(prior: BetaPrior, n: int, data) -> None:
    k = data.draw(st.integers(0, n))
    pmf = [brute_pmf(j, n, prior.alpha, prior.beta) for j in range(n + 1)]
    assert math.isclose(sum(pmf), 1.0, rel_tol=1e-9)
    assert math.isclose(upper_tail(k, n, prior), min(1.0, sum(pmf[k:])), abs_tol=1e-9)
    assert math.isclose(lower_tail(k, n, prior), min(1.0, sum(pmf[: k + 1])), abs_tol=1e-9)


@settings(max_examples=200, deadline=None)
@given(prior=priors, n=st.integers(1, 20_000), data=st.data())
def test_p_values_are_probabilities_and_monotone_in_the_count(prior, n, data) -> None:
    k = data.draw(st.integers(0, n - 1))
    up, up_next = upper_tail(k, n, prior), upper_tail(k + 1, n, prior)
    low, low_next = lower_tail(k, n, prior), lower_tail(k + 1, n, prior)
    for p in (up, up_next, low, low_next):
        assert 0.0 <= p <= 1.0
    assert up_next <= up + 1e-12, "a higher count is never less extreme upwards"
    assert low <= low_next + 1e-12, "a lower count is never less extreme downwards"
    # P(K >= k+1) + P(K <= k) = 1
    assert math.isclose(up_next + low, 1.0, abs_tol=1e-6)


def test_tails_at_the_edges() -> None:
    prior = BetaPrior(2, 98)
    assert upper_tail(0, 100, prior) == 1.0 and lower_tail(100, 100, prior) == 1.0
    assert upper_tail(101, 100, prior) == 0.0 and lower_tail(-1, 100, prior) == 0.0
    # Huge books stay fast and finite; the peers' spread, not n alone, sets the bar.
    assert 0.01 < upper_tail(30_000, 1_000_000, BetaPrior(20, 980)) < 0.05
    assert upper_tail(30_000, 1_000_000, BetaPrior(2000, 98000)) < 1e-12
    assert lower_tail(10_000, 1_000_000, BetaPrior(2000, 98000)) < 1e-12
    assert 0.3 < upper_tail(20_000, 1_000_000, BetaPrior(2000, 98000)) < 0.7


def test_a_prior_fits_its_peers_and_needs_three() -> None:
    assert fit_prior([(1, 10), (2, 10)]) is None
    assert fit_prior([(1, 10), (2, 10), (3, 9), (5, 5)], min_trials=10) is None
    alike = fit_prior([(50, 1000)] * 10)
    assert alike is not None and math.isclose(alike.mean, 0.05, rel_tol=0.01)
    assert alike.alpha + alike.beta == pytest.approx(1e6), "no spread: a binomial"
    spread = fit_prior([(r, 1000) for r in (10, 30, 50, 70, 90, 20, 40, 60, 80, 100)])
    assert spread is not None and spread.alpha + spread.beta < 1000
    # The extremes are trimmed: one wild peer does not move the baseline much.
    wild = fit_prior([(50, 1000)] * 9 + [(900, 1000)])
    assert wild is not None and wild.mean < 0.06


def peers(program: int = 1, n: int = 8, **fields) -> list[Book]:
    base = dict(clicks=2000, converting_clicks=60, with_click=60, late=9, early=30,
                sales=60, refunds=5)  # fmt: skip
    out = []
    for i in range(n):
        jitter = {k: v + (i % 3) for k, v in base.items()}
        out.append(Book(affiliate_id=100 + i, program_id=program, **(jitter | fields)))
    return out


def codes(quality) -> set[str]:
    return {s.code for s in quality.signals}


def test_normal_affiliates_are_clean() -> None:
    result = assess(peers(), {}, S)
    assert len(result) == 8
    assert all(q.score == 100 and not q.flagged and not q.signals for q in result.values())


@pytest.mark.parametrize(
    ("book", "code"),
    [
        (dict(with_click=60, late=55, early=1), CLICK_FLOODING),
        (dict(clicks=50_000, converting_clicks=40, with_click=40, late=6, early=20),
         LOW_CONVERSION_RATE),
        (dict(clicks=2000, converting_clicks=400, with_click=400, late=60, early=200),
         CONVERSION_RATE_OUTLIER),
        (dict(sales=60, refunds=30), REFUND_RATE_OUTLIER),
        (dict(clicks=1400, invalid_clicks=600), INVALID_CLICK_SHARE),
    ],
)  # fmt: skip
def test_each_book_rule_fires_on_its_outlier(book: dict, code: str) -> None:
    base = dict(clicks=2000, converting_clicks=60, with_click=60, late=9, early=30,
                sales=60, refunds=5)  # fmt: skip
    odd = Book(affiliate_id=1, program_id=1, **(base | book))
    result = assess([*peers(), odd], {}, S, program_names={1: "Shop"})
    assert codes(result[1]) == {code}, result[1]
    signal = result[1].signals[0]
    assert signal.weight == all_rules()[code].weight and "in Shop" in signal.evidence
    assert result[1].score == 100 - signal.weight and result[1].flagged
    assert all(not q.signals for a, q in result.items() if a != 1)


def test_small_books_are_not_judged_and_programs_can_disable_rules() -> None:
    tiny = Book(affiliate_id=1, program_id=1, clicks=50, converting_clicks=40, with_click=8,
                late=8, sales=8, refunds=8)  # fmt: skip
    assert assess([*peers(), tiny], {}, S)[1].score == 100
    odd = Book(affiliate_id=1, program_id=1, clicks=2000, converting_clicks=60, with_click=60,
               late=9, early=30, sales=60, refunds=40)  # fmt: skip
    off = assess([*peers(), odd], {}, S, disabled={1: frozenset({REFUND_RATE_OUTLIER})})
    assert off[1].score == 100


def test_a_rule_counts_once_across_programs_and_reports_count() -> None:
    refunds = dict(sales=60, refunds=40)
    books = [
        *peers(1),
        *peers(2),
        Book(affiliate_id=1, program_id=1, **refunds),
        Book(affiliate_id=1, program_id=2, **refunds),
    ]
    result = assess(books, {1: Reports(upheld=1), 7: Reports(open=2), 8: Reports(open=3)}, S)
    assert codes(result[1]) == {REFUND_RATE_OUTLIER, ABUSE_REPORTS}
    assert result[1].score == 40 and result[1].flagged
    assert result[7].score == 100 and not result[7].flagged
    assert codes(result[8]) == {ABUSE_REPORTS} and result[8].score == 70


def test_the_score_has_a_floor_and_a_flag_threshold() -> None:
    from tuike.domain.fraud import Signal

    many = [Signal(c, 40, "") for c in "abc"]
    assert quality_of(1, many, S).score == 0
    assert not quality_of(1, [Signal("a", 25, "")], S).flagged
    assert quality_of(1, [Signal("a", 26, "")], S).flagged


def test_the_settings_defaults_are_the_rules_defaults() -> None:
    from tuike.config import Settings

    assert Settings().quality_settings() == QualitySettings()


def test_the_reasons_are_the_signals_with_their_program() -> None:
    books = [Book(a, 1, clicks=1000, converting_clicks=30) for a in range(1, 6)]
    books.append(Book(9, 1, clicks=1000, converting_clicks=30, invalid_clicks=900))
    q = assess(books, {9: Reports(upheld=1)}, S, program_names={1: "Shop"})[9]
    assert reasons_of(q) == [
        {
            "code": ABUSE_REPORTS,
            "weight": 30,
            "evidence": "1 upheld and 0 open abuse reports",
            "program_id": None,
        },
        {
            "code": INVALID_CLICK_SHARE,
            "weight": 30,
            "evidence": "900 of 1900 clicks filtered (47 %) in Shop",
            "program_id": 1,
        },
    ]
    assert reasons_of(quality_of(1, [], S)) is None


def test_a_viewer_reads_the_evidence_of_its_own_programs_only() -> None:
    mine = QualityReason(REFUND_RATE_OUTLIER, 30, "8 of 12 sales refunded in Mine", 1)
    theirs = QualityReason(CLICK_FLOODING, 40, "34 of 40 conversions late in Theirs", 2)
    reports = QualityReason(ABUSE_REPORTS, 30, "1 upheld and 0 open abuse reports")
    reasons = (theirs, mine, reports)
    assert reasons_seen_by(reasons, None) == reasons
    assert reasons_seen_by(reasons, {1}) == (
        QualityReason(CLICK_FLOODING, 40, "", None, withheld=True),
        mine,
        reports,
    )
    assert all(r.withheld for r in reasons_seen_by((mine, theirs), ()))
    assert QualityReason.parse(mine.as_dict()) == mine
    assert QualityReason.parse(reports.as_dict()) == reports

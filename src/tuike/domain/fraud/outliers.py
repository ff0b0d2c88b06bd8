"""Outliers against a baseline: a Beta-binomial test of one count among its peers.

A program's affiliates each show ``k`` successes in ``n`` trials (refunds among sales,
converting clicks among clicks …). Their rates give a Beta prior, fitted by the method of
moments; an affiliate's count is an outlier when, under the prior's posterior predictive
(the Beta-binomial for its own ``n``), a count at least as extreme is improbable.

The spread between affiliates is part of the baseline: a program whose affiliates differ
a lot tolerates more than one where they are all alike, and a small ``n`` is never an
outlier on luck alone. Pure Python in log space (``math.lgamma``): no SciPy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

# Bounds of the prior's concentration (alpha + beta): below, the prior says almost
# nothing; above, it is a plain binomial at the mean.
MIN_CONCENTRATION = 2.0
MAX_CONCENTRATION = 1e6
# The share of the peers' rates winsorized at each end (at least one from five peers on)
# before the moments are taken.
TRIM = 0.2


@dataclass(frozen=True, slots=True)
class BetaPrior:
    """A Beta(alpha, beta) baseline rate."""

    alpha: float
    beta: float

    @property
    def mean(self) -> float:
        """The baseline rate."""
        return self.alpha / (self.alpha + self.beta)


def fit_prior(counts: Sequence[tuple[int, int]], *, min_trials: int = 1) -> BetaPrior | None:
    """Fit a Beta prior to peers' (successes, trials) by the method of moments.

    Peers with fewer than ``min_trials`` trials are left out; the others' rates are
    winsorized (the lowest and highest ``TRIM``, at least one each from five peers on,
    are set to the nearest rate kept), so that the few outliers being looked for neither
    move the baseline nor widen it. Every peer weighs the same, whatever its volume: one
    huge affiliate is not the program. The binomial noise expected from each peer's own
    ``n`` is taken off the observed variance, so that only the spread between peers
    remains. Returns None with fewer than three peers: there is no baseline to speak of.
    """
    usable = sorted((k / n, n) for k, n in counts if n >= max(1, min_trials) and 0 <= k <= n)
    m = len(usable)
    if m < 3:
        return None
    cut = max(1, round(m * TRIM)) if m >= 5 else 0
    low, high = usable[cut][0], usable[m - 1 - cut][0]
    rates = [min(high, max(low, rate)) for rate, _ in usable]
    trials = sum(n for _, n in usable)
    # Never exactly 0 or 1: every other count would be impossible rather than improbable.
    edge = 0.5 / trials
    mean = min(1 - edge, max(edge, sum(rates) / m))
    variance = sum((rate - mean) ** 2 for rate in rates) / (m - 1)
    noise = sum(mean * (1 - mean) / n for _, n in usable) / m
    between = variance - noise
    if between <= 0:
        concentration = MAX_CONCENTRATION
    else:
        concentration = mean * (1 - mean) / between - 1
        concentration = min(MAX_CONCENTRATION, max(MIN_CONCENTRATION, concentration))
    return BetaPrior(alpha=mean * concentration, beta=(1 - mean) * concentration)


def _log_pmf(k: int, n: int, a: float, b: float) -> float:
    return (
        math.lgamma(n + 1)
        - math.lgamma(k + 1)
        - math.lgamma(n - k + 1)
        + math.lgamma(k + a)
        + math.lgamma(n - k + b)
        - math.lgamma(n + a + b)
        - math.lgamma(a)
        - math.lgamma(b)
        + math.lgamma(a + b)
    )


def _tail_sum(start: int, stop: int, step: int, n: int, a: float, b: float) -> float:
    """Sum the Beta-binomial pmf from ``start`` towards ``stop`` (inclusive) by ``step``.

    Each term comes from the previous one by the pmf's ratio, in plain floats, scaled so
    that the first term is 1; the sum is multiplied back at the end. When the pmf only
    falls along the way (alpha, beta >= 1 make it unimodal and we walk away from its
    mode) the walk stops once the terms no longer count.
    """
    log_first = _log_pmf(start, n, a, b)
    unimodal = a >= 1 and b >= 1
    total = term = 1.0
    j = start
    while j != stop:
        if step > 0:
            ratio = (n - j) * (j + a) / ((j + 1) * (n - j - 1 + b))
        else:
            ratio = j * (n - j + b) / ((n - j + 1) * (j - 1 + a))
        term *= ratio
        j += step
        total += term
        if unimodal and ratio < 1 and term < total * 1e-17:
            break
        if total > 1e250:  # walking uphill from a tiny first term: rescale, never overflow
            log_first += math.log(1e250)
            total /= 1e250
            term /= 1e250
    return min(1.0, math.exp(log_first + math.log(total)))


def _mode(n: int, a: float, b: float) -> float:
    # Only picks the side to sum (both are exact); the Beta's mode or mean scaled to n.
    return n * (a - 1) / (a + b - 2) if a > 1 and b > 1 else n * a / (a + b)


def upper_tail(k: int, n: int, prior: BetaPrior) -> float:
    """Return P(K >= k) for K ~ BetaBinomial(n, alpha, beta): small when k is high."""
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    a, b = prior.alpha, prior.beta
    if k >= _mode(n, a, b):
        return _tail_sum(k, n, +1, n, a, b)
    return max(0.0, 1.0 - _tail_sum(k - 1, 0, -1, n, a, b))


def lower_tail(k: int, n: int, prior: BetaPrior) -> float:
    """Return P(K <= k) for K ~ BetaBinomial(n, alpha, beta): small when k is low."""
    if k >= n:
        return 1.0
    if k < 0:
        return 0.0
    a, b = prior.alpha, prior.beta
    if k <= _mode(n, a, b):
        return _tail_sum(k, 0, -1, n, a, b)
    return max(0.0, 1.0 - _tail_sum(k + 1, n, +1, n, a, b))

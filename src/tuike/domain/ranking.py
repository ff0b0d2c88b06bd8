"""The affiliate directory's ranking: quality-adjusted performance (docs/fraud-rules.md).

Pure: an affiliate's valid clicks and commission per program in, a ranked list out.

- **EPC index.** Each program's mean EPC (its commission over its valid clicks, every
  affiliate's) is the yardstick of the affiliates' clicks in that program: an affiliate's
  index is the commission it earned divided by what the program's mean EPC would have paid
  for the same clicks, summed over its programs. 1.0 is the mean; the index is the same in
  every currency and does not favour affiliates of high-paying programs.
- **Shrinkage.** ``PRIOR_CLICKS`` clicks at the mean are added to every affiliate's own,
  so that a handful of lucky clicks does not top the list: (earned + prior) / (clicks +
  prior), in units of the programs' mean EPC.
- **Ranking score** = index × quality score / 100 (an affiliate not yet assessed counts as
  100). Flagged affiliates come last; affiliates without rated clicks (none in a program
  that paid commission in the window) after those with.
- **Band.** Merchants see the index as a band of the network, never a figure: the share of
  rated affiliates with a strictly higher index decides top 10 %, 25 %, 50 % or bottom half.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

PRIOR_CLICKS = 200  # clicks at the programs' mean EPC added to every affiliate's own
TOP_10, TOP_25, TOP_50, BOTTOM_50, UNRATED = "top_10", "top_25", "top_50", "bottom_50", "unrated"
BANDS = (TOP_10, TOP_25, TOP_50, BOTTOM_50, UNRATED)
_CUTS = ((0.10, TOP_10), (0.25, TOP_25), (0.50, TOP_50))


@dataclass(frozen=True, slots=True)
class Earnings:
    """An affiliate's valid clicks and commission (program currency, minor units) in one
    program over the window."""

    affiliate_id: int
    program_id: int
    clicks: int = 0
    commission_minor: int = 0


@dataclass(frozen=True, slots=True)
class Candidate:
    """An affiliate to rank, with its quality (score None: not assessed yet)."""

    affiliate_id: int
    quality_score: int | None = None
    flagged: bool = False


@dataclass(frozen=True, slots=True)
class Index:
    """An affiliate's shrunk EPC index and the rated clicks it stands on."""

    value: float
    clicks: int


@dataclass(frozen=True, slots=True)
class Ranked:
    """An affiliate's place: its ranking score, EPC index (None: unrated) and band."""

    affiliate_id: int
    score: float
    index: float | None
    band: str
    flagged: bool


def epc_indexes(earnings: Iterable[Earnings], prior_clicks: int = PRIOR_CLICKS) -> dict[int, Index]:
    """Return the shrunk EPC index of every affiliate with clicks in a program that paid."""
    rows = list(earnings)
    clicks: dict[int, int] = defaultdict(int)
    paid: dict[int, int] = defaultdict(int)
    for e in rows:
        clicks[e.program_id] += e.clicks
        paid[e.program_id] += e.commission_minor
    # A program with no clicks or no commission has no mean EPC to measure against.
    means = {p: paid[p] / clicks[p] for p in clicks if clicks[p] > 0 and paid[p] > 0}
    earned: dict[int, float] = defaultdict(float)  # in clicks at the program's mean EPC
    rated: dict[int, int] = defaultdict(int)
    for e in rows:
        mean = means.get(e.program_id)
        if mean is None:
            continue
        earned[e.affiliate_id] += e.commission_minor / mean
        rated[e.affiliate_id] += e.clicks
    return {
        a: Index((earned[a] + prior_clicks) / (n + prior_clicks), n)
        for a, n in rated.items()
        if n > 0
    }


def bands(indexes: Mapping[int, Index]) -> dict[int, str]:
    """Return each rated affiliate's band by the share of affiliates with a higher index."""
    negated = sorted(-i.value for i in indexes.values())  # ascending: the highest first
    n = len(negated)
    out: dict[int, str] = {}
    for affiliate_id, index in indexes.items():
        above = bisect_left(negated, -index.value)  # ties share the better band
        out[affiliate_id] = next((band for cut, band in _CUTS if above < cut * n), BOTTOM_50)
    return out


def rank(candidates: Iterable[Candidate], indexes: Mapping[int, Index]) -> list[Ranked]:
    """Rank the candidates: flagged last, unrated after rated, then by score, best first."""
    everyone = list(candidates)
    band_of = bands(
        {c.affiliate_id: indexes[c.affiliate_id] for c in everyone if c.affiliate_id in indexes}
    )
    out = []
    for c in everyone:
        index = indexes.get(c.affiliate_id)
        quality = 100 if c.quality_score is None else c.quality_score
        score = (index.value if index else 1.0) * quality / 100
        out.append(
            Ranked(
                affiliate_id=c.affiliate_id,
                score=score,
                index=index.value if index else None,
                band=band_of.get(c.affiliate_id, UNRATED),
                flagged=c.flagged,
            )
        )
    out.sort(key=lambda r: (r.flagged, r.index is None, -r.score, r.affiliate_id))
    return out

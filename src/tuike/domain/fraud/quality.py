"""Quality-stage (an affiliate's whole book) traffic-quality rules (see docs/fraud-rules.md).

Pure functions over counts aggregated per affiliate and program over a window (a
``Book``). Each program's affiliates are the baseline its books are judged against: a
Beta prior per rate (``outliers.fit_prior``), and an affiliate's count is an outlier when
its Beta-binomial tail probability is below ``alpha`` *and* its rate is off the baseline
by ``ratio`` or more (a huge book makes tiny differences significant without making them
fraud). A rule fires at most once per affiliate (its strongest program); the quality
score is 100 minus the weights of the rules that fired, floor 0.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tuike.domain.fraud import MAX_SCORE, Rule, Signal
from tuike.domain.fraud.outliers import BetaPrior, fit_prior, lower_tail, upper_tail

CLICK_FLOODING = "click_flooding"
LOW_CONVERSION_RATE = "low_conversion_rate"
CONVERSION_RATE_OUTLIER = "conversion_rate_outlier"
REFUND_RATE_OUTLIER = "refund_rate_outlier"
ABUSE_REPORTS = "abuse_reports"
INVALID_CLICK_SHARE = "invalid_click_share"

RULES: tuple[Rule, ...] = (
    Rule(
        CLICK_FLOODING,
        "quality",
        "Most conversions long after the click, spread flat instead of soon after it",
        "TUIKE_FRAUD_QUALITY_LATE_SHARE",
        40,
    ),
    Rule(
        LOW_CONVERSION_RATE,
        "quality",
        "Many clicks, a conversion rate far below the program's",
        "TUIKE_FRAUD_QUALITY_MIN_CLICKS",
        30,
    ),
    Rule(
        CONVERSION_RATE_OUTLIER,
        "quality",
        "A conversion rate far above the program's",
        "TUIKE_FRAUD_QUALITY_ALPHA",
        30,
    ),
    Rule(
        REFUND_RATE_OUTLIER,
        "quality",
        "A refund rate far above the program's",
        "TUIKE_FRAUD_QUALITY_ALPHA",
        30,
    ),
    Rule(
        ABUSE_REPORTS,
        "quality",
        "Upheld or repeated abuse reports against the affiliate's links",
        "TUIKE_FRAUD_QUALITY_OPEN_REPORTS",
        30,
    ),
    Rule(
        INVALID_CLICK_SHARE,
        "quality",
        "A large share of the affiliate's clicks filtered as invalid",
        "TUIKE_FRAUD_QUALITY_INVALID_SHARE",
        30,
    ),
)
WEIGHTS = {rule.code: rule.weight for rule in RULES}


@dataclass(frozen=True, slots=True)
class QualitySettings:
    """The thresholds of the quality rules (``TUIKE_FRAUD_QUALITY_*``)."""

    alpha: float = 0.001  # tail probability under which a count is an outlier
    ratio: float = 2.0  # and how far off the baseline its rate must be, as a factor
    min_clicks: int = 200  # clicks in a program before click-based rules judge
    min_conversions: int = 10  # conversions in a program before conversion-based rules
    late_share: float = 0.5  # share of conversions > 24 h after the click (flooding)
    invalid_share: float = 0.3  # share of clicks filtered
    open_reports: int = 3  # open abuse reports that count as much as one upheld
    flag_below: int = 75  # a score under this flags the affiliate for the operator


@dataclass(frozen=True, slots=True)
class Book:
    """An affiliate's counts in one program over the window.

    ``clicks`` are billable clicks and ``invalid_clicks`` the filtered ones apart from
    declared bots; ``converting_clicks`` the distinct clicks that led to a conversion.
    ``with_click`` conversions have a click, so a click-to-conversion time: ``late``
    more than 24 h, ``early`` less than 1 h. ``sales`` have an amount; ``refunds`` of
    them were refunded in full or in part.
    """

    affiliate_id: int
    program_id: int
    clicks: int = 0
    invalid_clicks: int = 0
    converting_clicks: int = 0
    with_click: int = 0
    late: int = 0
    early: int = 0
    sales: int = 0
    refunds: int = 0


@dataclass(frozen=True, slots=True)
class Reports:
    """Abuse reports against an affiliate's links in the window, by status."""

    upheld: int = 0
    open: int = 0


@dataclass(frozen=True, slots=True)
class Quality:
    """An affiliate's quality: score (100 is clean), whether flagged, and why."""

    affiliate_id: int
    score: int
    flagged: bool
    signals: tuple[Signal, ...] = field(default=())


def _pct(x: float) -> str:
    return f"{100 * x:.1f} %" if x < 0.1 else f"{100 * x:.0f} %"


def _p(p: float) -> str:
    return "p < 0.0001" if p < 0.0001 else f"p = {p:.4f}"


@dataclass(frozen=True, slots=True)
class Baselines:
    """A program's baseline rates, fitted from its affiliates' books (None: too few)."""

    cr: BetaPrior | None
    refunds: BetaPrior | None
    late: BetaPrior | None
    early: BetaPrior | None


def baselines(books: Sequence[Book], s: QualitySettings) -> Baselines:
    """Fit the program's baselines from its affiliates' books."""
    return Baselines(
        cr=fit_prior([(b.converting_clicks, b.clicks) for b in books], min_trials=s.min_clicks),
        refunds=fit_prior([(b.refunds, b.sales) for b in books], min_trials=s.min_conversions),
        late=fit_prior([(b.late, b.with_click) for b in books], min_trials=s.min_conversions),
        early=fit_prior([(b.early, b.with_click) for b in books], min_trials=s.min_conversions),
    )


def judge_book(
    book: Book, base: Baselines, s: QualitySettings, program: str = ""
) -> list[tuple[Signal, float]]:
    """Apply the book rules to one affiliate's book in one program.

    Returns each signal with its tail probability (lower is stronger), which picks the
    strongest program when a rule fires in several.
    """
    where = f" in {program}" if program else ""
    out: list[tuple[Signal, float]] = []

    def fire(code: str, evidence: str, strength: float) -> None:
        signal = Signal(code, WEIGHTS[code], evidence + where, program_id=book.program_id)
        out.append((signal, strength))

    if book.with_click >= s.min_conversions and base.late and base.early:
        late = book.late / book.with_click
        early = book.early / book.with_click
        p = upper_tail(book.late, book.with_click, base.late)
        if (
            late >= s.late_share
            and late >= s.ratio * base.late.mean
            and early * s.ratio <= base.early.mean
            and p < s.alpha
        ):
            fire(
                CLICK_FLOODING,
                f"{book.late} of {book.with_click} conversions ({_pct(late)}) more than 24 h "
                f"after the click (program {_pct(base.late.mean)}), {_pct(early)} within the "
                f"hour (program {_pct(base.early.mean)}); {_p(p)}",
                p,
            )
    if book.clicks >= s.min_clicks and base.cr:
        k = min(book.converting_clicks, book.clicks)
        cr, mean = k / book.clicks, base.cr.mean
        low = lower_tail(k, book.clicks, base.cr)
        if cr * s.ratio <= mean and low < s.alpha:
            fire(
                LOW_CONVERSION_RATE,
                f"{book.clicks} clicks, conversion rate {_pct(cr)} (program {_pct(mean)}); "
                f"{_p(low)}",
                low,
            )
        high = upper_tail(k, book.clicks, base.cr)
        if cr >= s.ratio * mean and high < s.alpha:
            fire(
                CONVERSION_RATE_OUTLIER,
                f"conversion rate {_pct(cr)} on {book.clicks} clicks (program {_pct(mean)}); "
                f"{_p(high)}",
                high,
            )
    if book.sales >= s.min_conversions and base.refunds:
        rate, mean = book.refunds / book.sales, base.refunds.mean
        p = upper_tail(book.refunds, book.sales, base.refunds)
        if rate >= s.ratio * mean and p < s.alpha:
            fire(
                REFUND_RATE_OUTLIER,
                f"{book.refunds} of {book.sales} sales refunded ({_pct(rate)}, program "
                f"{_pct(mean)}); {_p(p)}",
                p,
            )
    total = book.clicks + book.invalid_clicks
    if total >= s.min_clicks:
        share = book.invalid_clicks / total
        if share >= s.invalid_share:
            fire(
                INVALID_CLICK_SHARE,
                f"{book.invalid_clicks} of {total} clicks filtered ({_pct(share)})",
                1 - share,
            )
    return out


def judge_reports(reports: Reports, s: QualitySettings) -> Signal | None:
    """Fire ``abuse_reports`` for an upheld report, or for enough open ones."""
    if reports.upheld >= 1 or reports.open >= s.open_reports:
        return Signal(
            ABUSE_REPORTS,
            WEIGHTS[ABUSE_REPORTS],
            f"{reports.upheld} upheld and {reports.open} open abuse reports",
        )
    return None


def quality_of(affiliate_id: int, signals: Iterable[Signal], s: QualitySettings) -> Quality:
    """Turn an affiliate's signals into its score and flag."""
    kept = tuple(sorted(signals, key=lambda sig: (-sig.weight, sig.code)))
    score = max(0, MAX_SCORE - sum(sig.weight for sig in kept))
    return Quality(affiliate_id, score, score < s.flag_below, kept)


def assess(
    books: Iterable[Book],
    reports: Mapping[int, Reports],
    settings: QualitySettings,
    *,
    disabled: Mapping[int, frozenset[str]] | None = None,
    program_names: Mapping[int, str] | None = None,
) -> dict[int, Quality]:
    """Score every affiliate with a book or a report.

    ``disabled``: rule codes a program switched off (``FraudConfig.disabled``), by
    program id; ``program_names`` name the program in the evidence.
    """
    by_program: dict[int, list[Book]] = defaultdict(list)
    for book in books:
        by_program[book.program_id].append(book)
    best: dict[int, dict[str, tuple[Signal, float]]] = defaultdict(dict)
    for program_id, program_books in sorted(by_program.items()):
        base = baselines(program_books, settings)
        off = (disabled or {}).get(program_id, frozenset())
        name = (program_names or {}).get(program_id, f"program {program_id}")
        for book in program_books:
            for signal, strength in judge_book(book, base, settings, name):
                if signal.code in off:
                    continue
                kept = best[book.affiliate_id].get(signal.code)
                if kept is None or strength < kept[1]:
                    best[book.affiliate_id][signal.code] = (signal, strength)
    out: dict[int, Quality] = {}
    everyone = {b.affiliate_id for bs in by_program.values() for b in bs} | set(reports)
    for affiliate_id in sorted(everyone):
        signals = [signal for signal, _ in best.get(affiliate_id, {}).values()]
        reported = judge_reports(reports.get(affiliate_id, Reports()), settings)
        if reported is not None:
            signals.append(reported)
        out[affiliate_id] = quality_of(affiliate_id, signals, settings)
    return out


@dataclass(frozen=True, slots=True)
class QualityReason:
    """A rule behind an affiliate's quality score, as stored (``affiliates.quality_reasons``)
    and shown: its code, weight, evidence and the program the evidence comes from.

    ``withheld``: the evidence comes from a program the viewer does not run, so only the
    code and weight are kept (``evidence`` empty, ``program_id`` None).
    """

    code: str
    weight: int
    evidence: str
    program_id: int | None = None
    withheld: bool = False

    def as_dict(self) -> dict[str, Any]:
        """Return the JSON form (what ``parse`` reads back)."""
        return {
            "code": self.code,
            "weight": self.weight,
            "evidence": self.evidence,
            "program_id": self.program_id,
        }

    @classmethod
    def parse(cls, data: Mapping[str, Any]) -> QualityReason:
        """Read one stored reason."""
        program_id = data.get("program_id")
        return cls(
            code=str(data["code"]),
            weight=int(data["weight"]),
            evidence=str(data.get("evidence") or ""),
            program_id=int(program_id) if program_id is not None else None,
        )


def reasons_of(quality: Quality) -> list[dict[str, Any]] | None:
    """Return what the job stores for a quality: its signals as JSON, None when none fired."""
    if not quality.signals:
        return None
    return [
        QualityReason(s.code, s.weight, s.evidence, s.program_id).as_dict() for s in quality.signals
    ]


def reasons_seen_by(
    reasons: Iterable[QualityReason], program_ids: Collection[int] | None
) -> tuple[QualityReason, ...]:
    """Return the reasons as a viewer running ``program_ids`` may read them (None: all).

    Evidence from another merchant's program names that program and quotes its figures, so
    of such a reason only the code and weight are shown: the score stays explained without
    telling one merchant another's numbers. Evidence tied to no program (abuse reports)
    quotes no merchant's figures and is shown.
    """
    if program_ids is None:
        return tuple(reasons)
    return tuple(
        r
        if r.program_id is None or r.program_id in program_ids
        else QualityReason(r.code, r.weight, "", None, withheld=True)
        for r in reasons
    )

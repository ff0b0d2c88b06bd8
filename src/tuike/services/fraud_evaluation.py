"""How well the fraud rules did on labelled traffic: precision and recall per fraud type.

Pure: it takes what was sent (labels) and what tuike made of it (filtered clicks, held or
rejected conversions with their reasons, flagged affiliates) and counts. What counts as
caught depends on where a fraud type can be caught (``TYPES``):

- **click** (bots, data-center traffic, device farms): the unit is the click; caught when
  the click is filtered (``clicks.invalid``, or ``is_bot``, which already keeps it out of
  billable clicks).
- **conversion** (click injection, self-referral, coupon leakage): the unit is the
  conversion; caught when it is held for review or rejected *with a fitting reason* (a
  rule code containing one of the type's words).
- **affiliate** (click flooding, cookie stuffing): the unit is the conversion the fraud
  steals; caught when the affiliate credited with it is flagged by the quality job, or
  the conversion is held or rejected with a fitting reason.

Precision of a type: its caught units over those plus the organic units caught the same
way (at its level, with a reason that fits it; at click level an organic click filtered
for a reason that fits no type counts against every click type). Units of other fraud
types are left out: a crawler from a data center is fraud either way. The organic false
positive rate: organic clicks filtered plus organic conversions held or rejected, over
all organic clicks and conversions.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

ORGANIC = "organic"
PRECISION_TARGET = 0.95
RECALL_TARGET = 0.90
ORGANIC_FP_TARGET = 0.01


@dataclass(frozen=True, slots=True)
class FraudType:
    """Where a fraud type is judged, and the words of the rule codes that fit it."""

    code: str
    level: str  # click | conversion | affiliate
    fits: tuple[str, ...]


TYPES: tuple[FraudType, ...] = (
    FraudType("click_flooding", "affiliate", ("flood", "late")),
    FraudType("click_injection", "conversion", ("inject", "short", "ctit", "fast", "quick")),
    FraudType("cookie_stuffing", "affiliate", ("stuff", "referer", "cookie")),
    FraudType("bots", "click", ("bot", "crawler", "user_agent", "head", "prefetch")),
    FraudType("datacenter", "click", ("datacenter", "data_center", "hosting", "asn", "cloud")),
    FraudType("self_referral", "conversion", ("self",)),
    FraudType("coupon_leakage", "conversion", ("coupon", "leak")),
    FraudType("device_farm", "click", ("burst", "subnet", "device", "farm", "velocity")),
)
BY_CODE = {t.code: t for t in TYPES}


@dataclass(frozen=True, slots=True)
class ClickOutcome:
    """A labelled click as tuike recorded it."""

    label: str
    filtered: bool
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ConversionOutcome:
    """A labelled conversion as tuike recorded it; ``flagged``: its credited affiliate is."""

    label: str
    held: bool  # held for review or rejected
    reasons: tuple[str, ...] = ()
    flagged: bool = False
    planned_affiliate_flagged: bool = False


@dataclass(frozen=True, slots=True)
class Row:
    """One fraud type's figures."""

    code: str
    level: str
    units: int
    caught: int
    organic_caught: int
    affiliate_flagged: int

    @property
    def recall(self) -> float | None:
        """Caught units over all units of the type."""
        return self.caught / self.units if self.units else None

    @property
    def precision(self) -> float | None:
        """Caught units over everything caught the same way (None: nothing caught)."""
        total = self.caught + self.organic_caught
        return self.caught / total if total else None

    @property
    def meets(self) -> bool:
        """Whether the type reaches both targets."""
        return (
            self.precision is not None
            and self.recall is not None
            and self.precision >= PRECISION_TARGET
            and self.recall >= RECALL_TARGET
        )


@dataclass(frozen=True, slots=True)
class Report:
    """Every type's row and the organic figures."""

    rows: tuple[Row, ...]
    organic_clicks: int
    organic_clicks_filtered: int
    organic_conversions: int
    organic_conversions_held: int
    organic_affiliates: int
    organic_affiliates_flagged: int

    @property
    def organic_fp_rate(self) -> float:
        """Organic clicks filtered and conversions held, over all organic ones."""
        total = self.organic_clicks + self.organic_conversions
        bad = self.organic_clicks_filtered + self.organic_conversions_held
        return bad / total if total else 0.0

    @property
    def meets(self) -> bool:
        """Whether every type and the organic false-positive rate reach their targets."""
        return all(r.meets for r in self.rows) and self.organic_fp_rate <= ORGANIC_FP_TARGET


def fits(kind: FraudType, reasons: Iterable[str]) -> bool:
    """Tell whether one of the rule codes fits a fraud type."""
    return any(word in code.lower() for code in reasons for word in kind.fits)


def _fits_none(reasons: Sequence[str], level: str) -> bool:
    return not any(fits(t, reasons) for t in TYPES if t.level == level)


def evaluate(
    clicks: Sequence[ClickOutcome],
    conversions: Sequence[ConversionOutcome],
    *,
    organic_affiliates: int,
    organic_affiliates_flagged: int,
) -> Report:
    """Count precision and recall per fraud type, and the organic false positives."""
    organic_clicks = [c for c in clicks if c.label == ORGANIC]
    organic_convs = [c for c in conversions if c.label == ORGANIC]
    rows = []
    for kind in TYPES:
        if kind.level == "click":
            units = [c for c in clicks if c.label == kind.code]
            n = len(units)
            caught = sum(c.filtered for c in units)
            organic = sum(
                c.filtered and (fits(kind, c.reasons) or _fits_none(c.reasons, "click"))
                for c in organic_clicks
            )
            flagged = 0
        else:
            units_c = [c for c in conversions if c.label == kind.code]
            n = len(units_c)
            if kind.level == "conversion":
                caught = sum(c.held and fits(kind, c.reasons) for c in units_c)
                organic = sum(c.held and fits(kind, c.reasons) for c in organic_convs)
            else:
                caught = sum(c.flagged or (c.held and fits(kind, c.reasons)) for c in units_c)
                organic = sum(
                    c.flagged or (c.held and fits(kind, c.reasons)) for c in organic_convs
                )
            flagged = sum(c.planned_affiliate_flagged for c in units_c)
        rows.append(Row(kind.code, kind.level, n, caught, organic, flagged))
    return Report(
        rows=tuple(rows),
        organic_clicks=len(organic_clicks),
        organic_clicks_filtered=sum(c.filtered for c in organic_clicks),
        organic_conversions=len(organic_convs),
        organic_conversions_held=sum(c.held for c in organic_convs),
        organic_affiliates=organic_affiliates,
        organic_affiliates_flagged=organic_affiliates_flagged,
    )


def _ratio(x: float | None) -> str:
    return "–" if x is None else f"{x:.2f}"


def markdown(report: Report) -> str:
    """Return the report as a Markdown table and the organic figures under it."""
    lines = [
        "| fraud type | judged on | units | caught | precision | recall | fraudster flagged |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in report.rows:
        level = {"click": "clicks", "conversion": "conversions"}.get(
            r.level, "conversions (affiliate flagged)"
        )
        flag = f"{r.affiliate_flagged}/{r.units}" if r.level != "click" else "–"
        lines.append(
            f"| {r.code} | {level} | {r.units} | {r.caught} | {_ratio(r.precision)} | "
            f"{_ratio(r.recall)} | {flag} |"
        )
    lines.append("")
    lines.append(
        f"Organic false positives: {report.organic_fp_rate:.2%} "
        f"({report.organic_clicks_filtered} of {report.organic_clicks} clicks filtered, "
        f"{report.organic_conversions_held} of {report.organic_conversions} conversions held); "
        f"organic affiliates flagged: {report.organic_affiliates_flagged} of "
        f"{report.organic_affiliates}."
    )
    lines.append(
        f"Targets: precision >= {PRECISION_TARGET}, recall >= {RECALL_TARGET} per type, organic "
        f"false positives <= {ORGANIC_FP_TARGET:.0%}: {'met' if report.meets else 'NOT met'}."
    )
    return "\n".join(lines)

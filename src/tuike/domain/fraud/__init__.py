"""Traffic quality: the rule registry, signals and how they add up to a score.

Every rule is documented in docs/fraud-rules.md (tests/unit/test_fraud_rules_doc.py fails
when one is missing). A rule fires a ``Signal``: its code, its weight (points out of 100)
and the evidence in words a merchant understands. A click's or a conversion's score is the
sum of its signals' weights, capped at 100; the program's ``FraudConfig`` decides what a
score does (filter a click, hold a conversion for review, reject it).

Rules live by stage, one module each: ``click`` (at click time, no database read),
``conversion`` (when a conversion is recorded) and ``quality`` (over an affiliate's book).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tuike.domain.errors import InvalidField

STAGES = ("click", "conversion", "quality")
MAX_SCORE = 100


@dataclass(frozen=True, slots=True)
class Rule:
    """A documented rule: its code, stage, what it means, its setting and default weight."""

    code: str
    stage: str
    title: str
    setting: str = ""  # the TUIKE_* setting of its threshold, if it has one
    weight: int = 50


@dataclass(frozen=True, slots=True)
class Signal:
    """A rule that fired, with the evidence (e.g. "3 clicks from 1.2.3.0/24 in 10 s")."""

    code: str
    weight: int
    evidence: str
    # The program the evidence comes from, when a rule judges one program's book: it names
    # that program, so it is shown only to its merchant and the operator.
    program_id: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """The JSON form stored with a conversion."""
        return {"rule": self.code, "weight": self.weight, "evidence": self.evidence}


def score(signals: Iterable[Signal]) -> int:
    """Add up the weights of the signals, at most 100."""
    return min(MAX_SCORE, sum(s.weight for s in signals))


@dataclass(frozen=True, slots=True)
class FraudConfig:
    """A program's tuning (``programs.fraud_config``); every field has a default.

    - ``target_countries``: ISO codes the program buys traffic from (empty: anywhere).
    - ``invalid_click_score``: a click scoring this much or more is filtered.
    - ``hold_score``: a conversion scoring this much or more waits for review.
    - ``reject_score``: a conversion scoring this much or more is rejected at once
      (``None``: never automatically).
    - ``disabled``: rule codes switched off for this program.
    """

    target_countries: frozenset[str] = frozenset()
    invalid_click_score: int = 60
    hold_score: int = 50
    reject_score: int | None = None
    disabled: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def parse(cls, data: Mapping[str, Any] | None) -> FraudConfig:
        """Build and validate a config from its JSON form (raises InvalidField)."""
        if data is None:
            return cls()
        if not isinstance(data, Mapping):
            raise InvalidField("fraud_config", "must be an object")
        unknown = set(data) - {
            "target_countries",
            "invalid_click_score",
            "hold_score",
            "reject_score",
            "disabled",
        }
        if unknown:
            raise InvalidField("fraud_config", f"unknown keys {sorted(unknown)}")
        countries = data.get("target_countries") or []
        if not isinstance(countries, list) or not all(
            isinstance(c, str) and len(c) == 2 and c.isalpha() for c in countries
        ):
            raise InvalidField("fraud_config.target_countries", "must be two-letter codes")

        def points(name: str, default: int | None) -> int | None:
            value = data.get(name, default)
            if value is None and name == "reject_score":
                return None
            if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 100:
                raise InvalidField(f"fraud_config.{name}", "must be a whole number 1 to 100")
            return value

        disabled = data.get("disabled") or []
        if not isinstance(disabled, list) or not all(isinstance(c, str) for c in disabled):
            raise InvalidField("fraud_config.disabled", "must be a list of rule codes")
        unknown_rules = set(disabled) - set(all_rules())
        if unknown_rules:
            raise InvalidField("fraud_config.disabled", f"unknown rules {sorted(unknown_rules)}")
        return cls(
            target_countries=frozenset(c.upper() for c in countries),
            invalid_click_score=points("invalid_click_score", 60) or 60,
            hold_score=points("hold_score", 50) or 50,
            reject_score=points("reject_score", None),
            disabled=frozenset(disabled),
        )

    def as_dict(self) -> dict[str, Any]:
        """The JSON form (what ``parse`` reads back)."""
        return {
            "target_countries": sorted(self.target_countries),
            "invalid_click_score": self.invalid_click_score,
            "hold_score": self.hold_score,
            "reject_score": self.reject_score,
            "disabled": sorted(self.disabled),
        }


def all_rules() -> dict[str, Rule]:
    """Every rule of every stage, by code."""
    from tuike.domain.fraud import click, conversion, quality

    rules: dict[str, Rule] = {}
    for module in (click, conversion, quality):
        for rule in module.RULES:
            assert rule.code not in rules, f"two rules are called {rule.code}"
            assert rule.stage in STAGES
            rules[rule.code] = rule
    return rules

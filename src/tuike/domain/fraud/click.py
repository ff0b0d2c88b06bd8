"""Click-stage traffic-quality rules (see docs/fraud-rules.md)."""

from __future__ import annotations

from tuike.domain.fraud import Rule

RULES: tuple[Rule, ...] = ()

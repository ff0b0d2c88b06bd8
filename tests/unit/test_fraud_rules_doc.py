"""docs/fraud-rules.md lists every traffic-quality rule, and the program settings parse."""

from __future__ import annotations

from pathlib import Path

import pytest

from tuike.domain.errors import InvalidField
from tuike.domain.fraud import FraudConfig, Signal, all_rules, score

DOC = Path(__file__).resolve().parents[2] / "docs" / "fraud-rules.md"


def test_every_rule_is_documented_with_its_setting():
    text = DOC.read_text()
    for code, rule in all_rules().items():
        assert f"| `{code}` |" in text, f"docs/fraud-rules.md does not list the rule {code}"
        if rule.setting:
            assert rule.setting in text, f"{code}: its setting {rule.setting} is not documented"


def test_scores_add_up_and_stop_at_100():
    assert score([]) == 0
    assert score([Signal("a", 30, ""), Signal("b", 45, "")]) == 75
    assert score([Signal("a", 80, ""), Signal("b", 80, "")]) == 100


def test_program_fraud_settings_parse_and_refuse_nonsense():
    assert FraudConfig.parse(None) == FraudConfig()
    config = FraudConfig.parse({"target_countries": ["cn", "HK"], "reject_score": 90})
    assert config.target_countries == {"CN", "HK"} and config.reject_score == 90
    assert FraudConfig.parse(config.as_dict()) == config
    for bad in (
        {"hold_score": 0},
        {"hold_score": "50"},
        {"target_countries": ["China"]},
        {"disabled": ["no_such_rule"]},
        {"surprise": 1},
        [],
    ):
        with pytest.raises(InvalidField):
            FraudConfig.parse(bad)

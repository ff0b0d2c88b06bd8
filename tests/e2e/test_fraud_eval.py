"""`tuike fraud eval` and `tuike fraud quality` as an operator runs them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tuike.services.fraud_evaluation import TYPES

BIN = Path(sys.executable).parent / "tuike"


def run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TUIKE_DATABASE_URL": f"sqlite:///{tmp_path}/tuike.db"}
    return subprocess.run(
        [str(BIN), *args], env=env, capture_output=True, text=True, timeout=300, check=False
    )


def test_eval_replays_labelled_traffic_and_prints_a_row_per_fraud_type(tmp_path):
    done = run(tmp_path, "fraud", "eval", "--seed", "1", "--scale", "small")
    assert done.returncode == 0, done.stderr + done.stdout
    out = done.stdout
    assert out.startswith("| fraud type | judged on | units | caught | precision | recall |")
    for kind in TYPES:
        (row,) = [line for line in out.splitlines() if line.startswith(f"| {kind.code} |")]
        units = int(row.split("|")[3])
        assert units > 0, row  # every kind of fraud was sent and is counted
    assert "Organic false positives:" in out and "(0 refused)" in out
    # The rules are not asserted here (they are tuned elsewhere); bots are caught by the
    # user-agent check that has been there from the start.
    (bots,) = [line for line in out.splitlines() if line.startswith("| bots |")]
    assert bots.split("|")[6].strip() == "1.00", bots
    assert not (tmp_path / "tuike.db").exists(), "the eval works in a scratch database"


def test_the_full_evaluation_meets_the_targets(tmp_path):
    # The figures of docs/fraud-rules.md: every fraud type caught with precision >= 0.95
    # and recall >= 0.90, organic false positives <= 1 % (--check exits 1 otherwise).
    done = run(tmp_path, "fraud", "eval", "--seed", "1", "--check")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "organic false positives <= 1%: met." in done.stdout


def test_quality_runs_once_from_the_command_line(tmp_path):
    assert run(tmp_path, "migrate").returncode == 0
    done = run(tmp_path, "fraud", "quality")
    assert done.returncode == 0, done.stderr
    assert "0 affiliates with traffic in the last 30 days assessed, 0 flagged" in done.stdout

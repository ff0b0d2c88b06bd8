"""The `tuike` command as a newcomer runs it: migrate, demo, keys, errors in one line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent / "tuike"


def run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TUIKE_DATABASE_URL": f"sqlite:///{tmp_path}/var/tuike.db"}
    env.pop("TUIKE_ENV", None)
    return subprocess.run(
        [str(BIN), *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_migrate_demo_and_refusals(tmp_path):
    assert run(tmp_path, "migrate").returncode == 0
    assert run(tmp_path, "migrate").returncode == 0, "migrate must be safe to run twice"
    done = run(tmp_path, "demo", "--scale", "0.01")
    assert done.returncode == 0, done.stderr
    assert "demo loaded" in done.stdout and "tk_op_" in done.stdout
    keys = (tmp_path / "var" / "demo-keys.txt").read_text()
    assert "example_link\thttp://127.0.0.1:8000/c/" in keys

    again = run(tmp_path, "demo")
    assert again.returncode == 1
    assert again.stderr.strip().count("\n") == 0 and "not empty" in again.stderr
    assert run(tmp_path, "demo", "--if-empty").returncode == 0

    bad = run(tmp_path, "keys", "create", "--role", "merchant", "--owner", "999", "--name", "x")
    assert bad.returncode == 1 and "there is no merchant 999" in bad.stderr
    assert bad.stderr.strip().count("\n") == 0


def test_production_refuses_default_secrets(tmp_path):
    env = {
        **os.environ,
        "TUIKE_ENV": "production",
        "TUIKE_DATABASE_URL": f"sqlite:///{tmp_path}/x.db",
    }
    done = subprocess.run(
        [str(BIN), "migrate"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 1
    assert "TUIKE_SECRET_KEY must be set in production" in done.stderr


def test_serve_refuses_a_database_that_is_not_migrated(tmp_path):
    done = run(tmp_path, "serve", "--port", "1")
    assert done.returncode == 1
    assert "run `tuike migrate` first" in done.stderr and done.stderr.strip().count("\n") == 0

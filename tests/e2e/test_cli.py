"""The `tuike` command as a newcomer runs it: migrate, demo, keys, errors in one line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent / "tuike"


def run(tmp_path: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TUIKE_DATABASE_URL": f"sqlite:///{tmp_path}/var/tuike.db"}
    env.pop("TUIKE_ENV", None)
    return subprocess.run(
        [str(BIN), *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def one_line_error(done: subprocess.CompletedProcess[str], text: str) -> None:
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stderr.strip().count("\n") == 0 and text in done.stderr, done.stderr


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


def test_users_create_an_operator_and_reset_a_password(tmp_path):
    from tuike.services import audit
    from tuike.services.users import find_user, verify_password
    from tuike.storage.db import Database

    assert run(tmp_path, "migrate").returncode == 0
    assert run(tmp_path, "users", "--help").returncode == 0
    made = run(
        tmp_path,
        *("users", "create-operator", "--email", "Ops@Example.com", "--password-stdin"),
        stdin="correct horse battery\n",
    )
    assert made.returncode == 0, made.stderr
    assert "operator ops@example.com created" in made.stdout
    assert "correct horse" not in made.stdout + made.stderr

    again = run(
        tmp_path,
        *("users", "create-operator", "--email", "ops@example.com", "--password-stdin"),
        stdin="another good password\n",
    )
    one_line_error(again, "exists already")
    short = run(
        tmp_path,
        *("users", "create-operator", "--email", "b@example.com", "--password-stdin"),
        stdin="short\n",
    )
    one_line_error(short, "at least 10 characters")
    # Without --password-stdin and without a terminal, it says how instead of hanging.
    one_line_error(
        run(tmp_path, "users", "create-operator", "--email", "c@example.com"), "--password-stdin"
    )
    one_line_error(
        run(
            tmp_path,
            *("users", "create-operator", "--email", "not-an-address", "--password-stdin"),
            stdin="correct horse battery\n",
        ),
        "email",
    )

    reset = run(
        tmp_path,
        *("users", "reset-password", "--email", "ops@example.com", "--password-stdin"),
        stdin="a new long passphrase\n",
    )
    assert reset.returncode == 0, reset.stderr
    one_line_error(
        run(
            tmp_path,
            *("users", "reset-password", "--email", "who@example.com", "--password-stdin"),
            stdin="a new long passphrase\n",
        ),
        "not found",
    )

    db = Database(f"sqlite:///{tmp_path}/var/tuike.db")
    try:
        with db.write() as conn:
            user = find_user(conn, "ops@example.com")
            assert (user.role, user.owner_id, user.status) == ("operator", None, "active")
            assert verify_password(conn, "ops@example.com", "correct horse battery") is None
            assert verify_password(conn, "ops@example.com", "a new long passphrase") is not None
            assert find_user(conn, "b@example.com") is None
            actions = [(e.actor, e.action) for e in audit.recent(conn)]
        assert actions == [("cli", "user.reset_password"), ("cli", "user.create_operator")]
    finally:
        db.dispose()

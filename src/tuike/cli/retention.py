"""`tuike purge`: delete the security data past its retention (services/retention.py).

Registered on the main app by ``main``; its shared helpers (settings, one-line failures,
the database) are imported when the command runs, since ``main`` imports this module.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import typer
from rich.console import Console

console = Console()


def purge(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count what would go; change nothing.")
    ] = False,
) -> None:
    """Delete identity marks, login attempts and postback log entries past their retention,
    and clear old abuse reporters' contact details; print the counts (for cron)."""
    from tuike.cli.main import _database, _settings
    from tuike.services import retention
    from tuike.workers.retention import purge as run

    settings = _settings()
    keep = retention.windows(settings)
    with _database(settings) as db:
        done = run(db, settings, dry_run=dry_run)
    verb = "would delete" if dry_run else "deleted"
    lines = [
        (
            "identity_marks",
            f"{verb} {done.identity_marks:,}",
            _why(keep.identity_marks, "not seen for {}", "FRAUD_SELF_REFERRAL_DAYS"),
        ),
        (
            "login_attempts",
            f"{verb} {done.login_attempts:,}",
            _why(keep.login_attempts, "older than {}", ""),
        ),
        (
            "postback_deliveries",
            f"{verb} {done.postback_deliveries:,}",
            _why(keep.postback_log, "finished more than {} ago", "POSTBACK_LOG_DAYS"),
        ),
        (
            "abuse_reports",
            f"{'would clear' if dry_run else 'cleared'} the reporter of {done.abuse_reports:,}",
            _why(keep.abuse_reporter, "filed more than {} ago", "ABUSE_REPORTER_DAYS"),
        ),
    ]
    for table, what, why in lines:
        console.print(f"{table:<20} {what} ({why})", highlight=False)


def _why(window: timedelta | None, template: str, setting: str) -> str:
    if window is None:
        return f"kept: TUIKE_{setting} is 0"
    parts = [f"{window.days} day{'s' if window.days != 1 else ''}"] if window.days else []
    hours, minutes = divmod(window.seconds // 60, 60)
    parts += [f"{hours} h"] if hours else []
    parts += [f"{minutes} min"] if minutes else []
    return template.format(" ".join(parts) or "0 min")

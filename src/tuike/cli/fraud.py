"""`tuike fraud quality | eval`: affiliate quality scores, and the fraud rules' evaluation.

The shared helpers (settings, one-line failures, the database) live in ``main``; they are
imported when a command runs, since ``main`` imports this module to register it.
"""

from __future__ import annotations

import typer
from rich.console import Console

fraud_app = typer.Typer(
    help="Traffic quality: affiliate quality scores, evaluation of the rules.",
    no_args_is_help=True,
)
console = Console()


@fraud_app.command("quality")
def quality() -> None:
    """Recompute every affiliate's quality score now (for cron) and list the flagged ones."""
    from tuike.cli.main import _database, _settings
    from tuike.workers.quality import score_affiliates

    settings = _settings()
    with _database(settings) as db:
        run = score_affiliates(db, settings)
    flagged = run.flagged
    console.print(
        f"{len(run.qualities)} affiliates with traffic in the last "
        f"{settings.fraud_quality_window_days} days assessed, {len(flagged)} flagged "
        f"(quality below {settings.fraud_quality_flag_below})",
        highlight=False,
    )
    for q in flagged:
        console.print(f"  affiliate {q.affiliate_id}: quality {q.score}", highlight=False)
        for s in q.signals:
            console.print(
                f"    {s.code} (-{s.weight}): {s.evidence}", highlight=False, soft_wrap=True
            )

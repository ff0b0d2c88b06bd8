"""`tuike fraud quality | eval`: affiliate quality scores, and the fraud rules' evaluation.

The shared helpers (settings, one-line failures, the database) live in ``main``; they are
imported when a command runs, since ``main`` imports this module to register it.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

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


class Scale(StrEnum):
    """How much traffic `tuike fraud eval` replays."""

    small = "small"
    full = "full"


@fraud_app.command("eval")
def evaluate(
    seed: Annotated[int, typer.Option(help="Random seed of the labelled traffic.")] = 1,
    database: Annotated[
        str | None,
        typer.Option(help="An empty database to use (default: a temporary SQLite file)."),
    ] = None,
    scale: Annotated[
        Scale, typer.Option(help="small (~5k requests) or full (~27k requests).")
    ] = Scale.full,
    check: Annotated[bool, typer.Option("--check", help="Exit 1 when a target is missed.")] = False,
) -> None:
    """Send labelled traffic (organic and eight kinds of fraud) through the real tracker and
    conversion API, and print precision and recall per fraud type."""
    from tuike.cli.fraud_eval import EvalError, run_eval
    from tuike.cli.main import _fail, _settings
    from tuike.services.fraud_evaluation import markdown

    settings = _settings()
    try:
        outcome = run_eval(settings, seed=seed, scale=scale.value, database=database)
    except EvalError as exc:
        raise _fail(str(exc)) from None
    print(markdown(outcome.report))
    print()
    flagged = ", ".join(f"{k} ({', '.join(v)})" for k, v in outcome.flagged.items()) or "none"
    print(f"Flagged affiliates: {flagged}.")
    buyer = "sent" if outcome.buyer_fields else "refused by this build's API, left out"
    print(
        f"`tuike fraud eval --seed {seed} --scale {scale.value}`: {outcome.requests} requests "
        f"({outcome.refused} refused), buyer ip/user_agent {buyer}, {outcome.seconds:.0f} s."
    )
    if check and not outcome.report.meets:
        raise typer.Exit(1)

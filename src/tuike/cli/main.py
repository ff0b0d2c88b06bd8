"""The `tuike` command: serve, migrate, demo, keys, users, approve-due, deliver-postbacks,
purge, settle, payouts, fraud …"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from tuike.cli.fraud import fraud_app
from tuike.cli.retention import purge
from tuike.cli.users import users_app
from tuike.config import Settings, get_settings, redact_url

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from tuike.storage.db import Database

app = typer.Typer(
    help="tuike: open-source affiliate marketing platform.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
keys_app = typer.Typer(help="API keys.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
ledger_app = typer.Typer(help="The double-entry ledger.", no_args_is_help=True)
app.add_typer(ledger_app, name="ledger")
payouts_app = typer.Typer(help="Payout batches and the payout rails' files.", no_args_is_help=True)
app.add_typer(payouts_app, name="payouts")
app.add_typer(users_app, name="users")
app.add_typer(fraud_app, name="fraud")
app.command("purge")(purge)
console = Console()
err_console = Console(stderr=True)


def _fail(message: str) -> typer.Exit:
    err_console.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(1)


def _settings() -> Settings:
    try:
        return get_settings()
    except Exception as exc:  # pydantic's message names the field and the reason
        lines = [ln.strip() for ln in str(exc).splitlines()[1:] if ln.strip()]
        reason = "; ".join(ln for ln in lines if not ln.startswith("For further"))
        raise _fail(f"bad settings: {reason} (see docs/settings.md)") from None


def _db(settings: Settings) -> Database:
    from tuike.storage.db import Database

    return Database(settings.database_url, echo=settings.database_echo)


@app.command()
def migrate() -> None:
    """Bring the database schema up to date (safe to run twice)."""
    from tuike.storage.migrate import upgrade

    settings = _settings()
    try:
        upgrade(settings.database_url)
    except Exception as exc:
        raise _fail(f"migration failed: {exc}".splitlines()[0]) from None
    console.print(f"database is up to date: {redact_url(settings.database_url)}")


@app.command()
def demo(
    seed: Annotated[int, typer.Option(help="Random seed of the demo world.")] = 7,
    if_empty: Annotated[
        bool, typer.Option("--if-empty", help="Do nothing (exit 0) if data exists.")
    ] = False,
    scale: Annotated[float, typer.Option(help="Traffic volume factor (1.0 = ~300k clicks).")] = 1.0,
) -> None:
    """Load the demo world (merchants, programs, affiliates, 30 days of traffic)."""
    from tuike.services.demo import DemoError, load_demo
    from tuike.storage.catalog import has_merchants

    settings = _settings()
    db = _db(settings)
    with db.read() as conn:
        has_data = has_merchants(conn)
    if has_data:
        if if_empty:
            console.print("demo: the database already has data; nothing loaded.")
            return
        raise _fail("the database is not empty; `tuike demo` loads into an empty database")
    started = time.monotonic()
    with Progress(
        TextColumn("[bold]{task.description:<12}"),
        BarColumn(),
        TextColumn("{task.completed:>9,}/{task.total:,}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as progress:
        tasks: dict[str, int] = {}

        def report(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = progress.add_task(stage, total=total)
            progress.update(tasks[stage], completed=done, total=total)

        try:
            summary = load_demo(db, settings, seed=seed, progress=report, scale=scale)
        except DemoError as exc:
            raise _fail(str(exc)) from None
    elapsed = time.monotonic() - started
    console.print(
        f"demo loaded in {elapsed:.1f} s: {summary.merchants} merchants, "
        f"{summary.programs} programs, {summary.affiliates} affiliates, {summary.links} links, "
        f"{summary.clicks:,} clicks, {summary.conversions:,} conversions"
    )
    _print_credentials(summary, settings)


def _print_credentials(summary: Any, settings: Settings) -> None:
    from tuike.storage import catalog as repo

    base = settings.public_url.rstrip("/")
    console.print("\n[bold]Demo API keys[/bold] (Authorization: Bearer <key>)")
    for label, key in summary.keys:
        console.print(f"  {key}  {label}", highlight=False, soft_wrap=True)
    console.print("\n[bold]Demo logins[/bold] (portals)")
    for role, email, password in summary.logins:
        console.print(f"  {role:<10} {email:<32} {password}", highlight=False, soft_wrap=True)
    with _db(settings).read() as conn:
        links = repo.list_links(conn, affiliate_id=None)
    example = f"{base}/c/{links[0].code}" if links else ""
    if example:
        console.print(f"\nTry a tracking link: {example}", highlight=False, soft_wrap=True)
    console.print(f"\nThe keys are also saved in {settings_keys_file(settings)}")
    settings_keys_file(settings).write_text(
        "\n".join(f"{label}\t{key}" for label, key in summary.keys)
        + "\n"
        + "\n".join(f"login\t{role}\t{email}\t{pw}" for role, email, pw in summary.logins)
        + f"\nbase_url\t{base}\n"
        + (f"example_link\t{example}\n" if example else "")
    )


def settings_keys_file(settings: Settings) -> Path:
    """Return where `tuike demo` keeps the demo keys (next to the SQLite file)."""
    path = settings.sqlite_path()
    folder = path.parent if path is not None else Path("var")
    folder.mkdir(parents=True, exist_ok=True)
    return folder / "demo-keys.txt"


class Server(StrEnum):
    """The ASGI servers `tuike serve` can run (uvicorn: faster with tuike in bench/tracker)."""

    uvicorn = "uvicorn"
    granian = "granian"


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
    reload: Annotated[bool, typer.Option(help="Reload on code change (development).")] = False,
    server: Annotated[
        Server,
        typer.Option(help="ASGI server; granian needs the extra: pip install 'tuike[granian]'."),
    ] = Server.uvicorn,
) -> None:
    """Serve the tracker, the REST API and the portals."""
    from tuike.storage.migrate import pending

    settings = _settings()
    try:
        behind = pending(settings.database_url)
    except Exception as exc:
        raise _fail(f"cannot reach the database: {str(exc).splitlines()[0]}") from None
    if behind:
        raise _fail("the database schema is not up to date: run `tuike migrate` first")
    if settings.is_sqlite and workers > 1:
        console.print(
            "[yellow]note:[/yellow] SQLite serialises writes; extra workers share one writer."
        )
    base = f"http://{host}:{port}"
    console.print(
        f"tuike on {base}\n  portals   {base}/  ({base}/merchant, /affiliate, /operator)\n"
        f"  API docs  {base}/api/v1/docs\n  tracker   {base}/c/<code>, {base}/pb, {base}/px.gif",
        highlight=False,
        soft_wrap=True,
    )
    keys_file = settings_keys_file(settings)
    # Demo keys are for a laptop; never print secrets into a production log.
    if keys_file.exists() and settings.env == "development":
        console.print(
            f"\n[bold]Demo keys and logins[/bold] (from {keys_file})",
            highlight=False,
            soft_wrap=True,
        )
        for line in keys_file.read_text().splitlines():
            console.print("  " + line.replace("\t", "  "), highlight=False, soft_wrap=True)
    target = "tuike.web.app:create_server_app"  # behind TUIKE_FORWARDED_ALLOW_IPS
    if server is Server.uvicorn:
        import uvicorn

        uvicorn.run(
            target,
            factory=True,
            host=host,
            port=port,
            workers=workers,
            reload=reload,
            proxy_headers=False,  # the app applies them itself, the same on both servers
            loop="uvloop",
            http="httptools",
            log_level="info",
            access_log=False,
        )
        return
    try:
        from granian import Granian
        from granian.constants import HTTPModes, Interfaces, Loops
    except ImportError:
        raise _fail("granian is not installed: pip install 'tuike[granian]'") from None

    Granian(
        target,
        factory=True,
        address=host,
        port=port,
        interface=Interfaces.ASGI,
        workers=workers,
        loop=Loops.uvloop,
        http=HTTPModes.http1,
        websockets=False,
        log_access=False,
        respawn_failed_workers=True,  # a crashed worker is replaced, its port stays open
        reload=reload,
    ).serve()


@app.command("approve-due")
def approve_due() -> None:
    """Approve pending conversions whose lock period has passed (for cron)."""
    from sqlalchemy.exc import SQLAlchemyError

    from tuike.workers.approvals import approve_due as run

    try:
        n = run(_db(_settings()))
    except SQLAlchemyError as exc:
        raise _fail(_db_reason(exc)) from None
    console.print(f"approved {n} conversions")


@app.command("deliver-postbacks")
def deliver_postbacks() -> None:
    """Send the affiliate postbacks that are due, with their retries (for cron)."""
    from sqlalchemy.exc import SQLAlchemyError

    from tuike.workers.postbacks import deliver_due

    settings = _settings()
    try:
        n = deliver_due(_db(settings), settings)
    except SQLAlchemyError as exc:
        raise _fail(_db_reason(exc)) from None
    console.print(f"sent {n} postbacks")


@ledger_app.command("check")
def ledger_check() -> None:
    """Verify the ledger's invariants and reconcile conversions; exit 1 on any drift."""
    from tuike.services import ledger

    with _database() as db, db.read() as conn:
        report = ledger.check(conn)
    console.print(
        f"{report.transactions:,} transactions, {report.entries:,} entries, "
        f"{report.conversions:,} conversions",
        highlight=False,
    )
    sums = ", ".join(f"{c} {v:+d}" for c, v in sorted(report.currency_sums.items())) or "none"
    console.print(f"entries per currency (minor units, must be 0): {sums}", highlight=False)
    checks = [
        ("every currency sums to zero", report.unbalanced_currencies),
        ("every transaction balances in one currency", report.unbalanced_transactions),
        ("every account balance equals its entries", report.drifted_accounts),
        ("no conversion has two commission postings", report.double_commissions),
        ("every conversion reconciles with its entries", report.unreconciled_conversions),
    ]
    for label, problems in checks:
        mark = "[green]ok[/green]  " if not problems else "[red]FAIL[/red]"
        console.print(f"{mark} {label}", highlight=False)
        for problem in problems:
            console.print(f"       {problem}", highlight=False, soft_wrap=True)
    if not report.ok:
        raise typer.Exit(1)


def payout_minimum(settings: Settings, currency: str) -> int:
    """The minimum payout of a currency in minor units, from TUIKE_PAYOUT_MINIMUMS."""
    from tuike.domain.money import parse_amount, to_minor

    for part in settings.payout_minimums.split(","):
        code, _, amount = part.strip().partition(":")
        if code == currency:
            return to_minor(parse_amount(amount, currency, "payout_minimums"), currency)
    raise _fail(f"TUIKE_PAYOUT_MINIMUMS names no minimum for {currency}; pass --minimum")


@app.command()
def settle(
    period: Annotated[str, typer.Option(help="A month (2026-11) or an ISO week (2026-W47).")],
) -> None:
    """Close a settlement period: statements per affiliate, invoices per merchant (once)."""
    from tuike.services import settlement

    settings = _settings()
    with _database(settings) as db:
        span = settlement.parse_period(
            period, settings.default_timezone, settings.settlement_cutoff_day
        )
        with db.write() as conn:
            result = settlement.close_period(conn, span)
    what = "closed" if result.closed_now else "was already closed"
    console.print(
        f"period {span.label} ({span.starts_at:%Y-%m-%d %H:%M %Z} to "
        f"{span.ends_at:%Y-%m-%d %H:%M %Z}) {what}: {result.statements} affiliate statements, "
        f"{result.invoices} merchant invoices",
        highlight=False,
    )


@payouts_app.command("create")
def payouts_create(
    currency: Annotated[str, typer.Option(help="ISO 4217 code.")] = "CNY",
    minimum: Annotated[
        str | None, typer.Option(help="Smallest payout, e.g. 100.00 (default: settings).")
    ] = None,
) -> None:
    """Create a batch paying every affiliate whose available balance reaches the minimum."""
    from tuike.domain.money import check_currency, format_minor, parse_amount, to_minor
    from tuike.services import payouts

    settings = _settings()
    with _database(settings) as db:
        check_currency(currency)
        floor = (
            to_minor(parse_amount(minimum, currency, "minimum"), currency)
            if minimum is not None
            else payout_minimum(settings, currency)
        )
        with db.write() as conn:
            batch = payouts.create_batch(conn, currency=currency, minimum_minor=floor)
    console.print(
        f"batch {batch.id}: {batch.items} payouts, {format_minor(batch.total_minor, currency)} "
        f"{currency} (balances under {format_minor(floor, currency)} carry over)",
        highlight=False,
    )
    print(batch.id)


@payouts_app.command("export")
def payouts_export(
    batch: Annotated[str, typer.Argument(help="The batch id printed by `payouts create`.")],
    format: Annotated[str, typer.Option(help="bank | alipay | paypal")] = "bank",
    output: Annotated[Path | None, typer.Option(help="File to write (default: stdout).")] = None,
) -> None:
    """Write a batch as a file for a payout rail."""
    from tuike.services import payouts

    with _database() as db, db.read() as conn:
        text = payouts.export(conn, batch, format)
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")
        console.print(f"wrote {output}", highlight=False)


@payouts_app.command("import")
def payouts_import(
    file: Annotated[Path, typer.Argument(help="Result CSV: item_id,status(paid|failed)[,note]")],
) -> None:
    """Mark payout items paid or failed from the rail's result file (all or nothing)."""
    from tuike.services import payouts

    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise _fail(f"cannot read {file}: {exc.strerror}") from None
    with _database() as db:
        rows = payouts.parse_results(text)
        with db.write() as conn:
            report = payouts.import_results(conn, rows)
    console.print(
        f"{report.paid} paid, {report.failed} failed (money back to available), "
        f"{report.unchanged} already recorded",
        highlight=False,
    )


@contextmanager
def _database(settings: Settings | None = None) -> Iterator[Database]:
    """The database for one command: a refused input or a database error becomes one
    `error: …` line and exit status 1, and the connections are closed either way."""
    from sqlalchemy.exc import SQLAlchemyError

    from tuike.domain.errors import DomainError

    db = _db(settings or _settings())
    try:
        yield db
    except DomainError as exc:
        raise _fail(str(exc)) from None
    except SQLAlchemyError as exc:
        raise _fail(_db_reason(exc)) from None
    finally:
        db.dispose()


def _db_reason(exc: Exception) -> str:
    first = str(exc).splitlines()[0]
    return f"database error: {first} (is the URL right, and did `tuike migrate` run?)"


@keys_app.command("create")
def keys_create(
    role: Annotated[str, typer.Option(help="operator | merchant | affiliate | program")],
    name: Annotated[str, typer.Option(help="A label for the key.")],
    owner: Annotated[int | None, typer.Option(help="Merchant, affiliate or program id.")] = None,
) -> None:
    """Create an API key and print it once (only its hash is stored)."""
    from sqlalchemy.exc import SQLAlchemyError

    from tuike.domain.errors import DomainError
    from tuike.services.keys import create_key

    db = _db(_settings())
    try:
        with db.write() as conn:
            _check_owner(conn, role, owner)
            raw = create_key(conn, role=role, owner_id=owner, name=name)
    except DomainError as exc:
        raise _fail(str(exc)) from None
    except SQLAlchemyError as exc:
        raise _fail(_db_reason(exc)) from None
    sys.stdout.write(raw + "\n")


def _check_owner(conn: Connection, role: str, owner: int | None) -> None:
    from tuike.domain.errors import InvalidField
    from tuike.storage import catalog as repo

    lookup = {
        "merchant": repo.get_merchant,
        "affiliate": repo.get_affiliate,
        "program": repo.get_program,
    }.get(role)
    if lookup is not None and owner is not None and lookup(conn, owner) is None:
        raise InvalidField("owner", f"there is no {role} {owner}")


if __name__ == "__main__":
    app()

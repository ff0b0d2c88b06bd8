"""Tracker benchmark: clicks per second of tuike against a bare ASGI 302 and nginx.

    .venv/bin/python bench/tracker.py [--duration 20] [--links 10000] [--write-docs]
        [--servers uvicorn,granian] [--only abcdef] [--rounds 3]

Runs `wrk -t1 -c64 -d<duration>s --latency` with a Lua script rotating over the link
codes against (a) tuike durable on SQLite, (b) tuike durable on PostgreSQL, (c) tuike
fast on PostgreSQL, (d) a bare ASGI app answering a fixed 302 on the same server and
worker count, (e) nginx `return 302`, (f) tuike durable on SQLite with the click-time
fraud checks off (`TUIKE_FRAUD_CLICK_CHECKS=false`): (a) against (f) is what the checks
cost. Requests carry real browser user agents (fake-useragent's data, 2 % of them bots)
and visitors' addresses in `X-Forwarded-For` (random public IPv4, 10 % IPv6), so the
checks look up real user agents and networks and count many keys. After each tuike run it
waits for the writer to drain and compares the clicks stored with the 302s wrk received.
With ``--in-process N`` it first times N calls of `build_click` with the checks on and
off in this process (no HTTP). Installs wrk and nginx from Debian packages when they are
missing (needs root). Loopback only. With ``--servers uvicorn,granian`` (a)-(d) run on
both servers, each tuike run compared with the bare app on its own server: the figures
that chose the server `tuike serve` runs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from tuike.config import Settings
from tuike.services import catalog as svc
from tuike.services.click_quality import ClickChecks
from tuike.storage import tables
from tuike.storage.db import Database
from tuike.storage.migrate import upgrade

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PG_ADMIN = os.environ.get(
    "TUIKE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
DONE_LUA = """
done = function(summary, latency, requests)
  io.write(string.format("TUIKE requests=%d status_errors=%d socket_errors=%d\\n",
    summary.requests, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
"""


def ensure_tools() -> None:
    """Install wrk and nginx from Debian packages if they are missing."""
    missing = [
        p
        for p in ("wrk", "nginx")
        if shutil.which(p) is None and not Path(f"/usr/sbin/{p}").exists()
    ]
    if missing:
        print(f"installing {' '.join(missing)} from Debian packages", flush=True)
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_links(url: str, n: int) -> list[str]:
    """Create one merchant, program and affiliate with n links; return their codes."""
    db = Database(url)
    with db.write() as conn:
        m = svc.create_merchant(conn, name="Bench", timezone="Asia/Shanghai")
        program = svc.create_program(
            conn,
            merchant_id=m.id,
            currency="CNY",
            name="Bench",
            landing_url="https://shop.example.com/",
            commission_plan={"cps_percent": "10"},
        )
        aff = svc.create_affiliate(
            conn, name="Bench", email="bench@example.com", timezone="Asia/Shanghai"
        )
        svc.decide_membership(
            conn,
            svc.apply_to_program(conn, program=program, affiliate_id=aff.id),
            status="approved",
        )
        codes = [
            svc.create_link(conn, program=program, affiliate_id=aff.id, subs=[f"s{i % 50}"]).code
            for i in range(n)
        ]
    db.dispose()
    return codes


BOTS = (
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "python-requests/2.31.0",
    "curl/8.4.0",
    "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
)


def visitors(n: int, seed: int = 7) -> list[tuple[str, str]]:
    """Return n (user agent, address) pairs: real browsers by share, 2 % bots, public IPs."""
    from importlib import resources

    rng = random.Random(seed)
    data = resources.files("fake_useragent") / "data" / "browsers.jsonl"
    rows = [json.loads(line) for line in data.read_text().splitlines() if line]
    agents = rng.choices([r["useragent"] for r in rows], [r["percent"] for r in rows], k=n)
    out = []
    for i, ua in enumerate(agents):
        if rng.random() < 0.02:
            ua = BOTS[i % len(BOTS)]
        if rng.random() < 0.1:
            ip = f"2001:db8:{rng.randrange(65536):x}:{rng.randrange(65536):x}::{i % 65536:x}"
        else:
            ip = f"{rng.choice((1, 14, 27, 36, 42, 58, 101, 112, 120, 175, 183, 223))}." + ".".join(
                str(rng.randrange(256)) for _ in range(3)
            )
        out.append((ua, ip))
    return out


def lua_script(codes: list[str], pairs: list[tuple[str, str]]) -> str:
    """A wrk script rotating over the links and, independently, over the visitors."""

    def quote(value: str) -> str:
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'

    return (
        "codes = {" + ",".join(quote(c) for c in codes) + "}\n"
        "uas = {" + ",".join(quote(ua) for ua, _ in pairs) + "}\n"
        "ips = {" + ",".join(quote(ip) for _, ip in pairs) + "}\n"
        "local i = 0\nrequest = function()\n  i = i + 1\n"
        "  local v = (i * 7919 % #uas) + 1\n"
        '  return wrk.format("GET", "/c/" .. codes[(i % #codes) + 1], '
        '{["User-Agent"] = uas[v], ["X-Forwarded-For"] = ips[v]})\nend\n' + DONE_LUA
    )


def in_process(url: str, n: int, rounds: int = 5) -> dict[str, float]:
    """Time build_click per click with the checks on and off, interleaved; medians in µs."""
    from datetime import timedelta

    from tuike.domain.tracking import NO_PARAMS
    from tuike.services.clicks import LinkCache, UniqueFilter, Visit, build_click

    upgrade(url)
    code = make_links(url, 1)[0]
    db = Database(url)
    cache = LinkCache(db)
    cache.warm()
    resolved = cache.resolve(code)
    pairs = visitors(n, seed=11)
    checks = {
        "on": ClickChecks.from_settings(Settings(fraud_click_checks=True)),
        "off": ClickChecks.from_settings(Settings(fraud_click_checks=False)),
    }
    times: dict[str, list[float]] = {"on": [], "off": []}
    start = datetime.now(UTC)
    for round_ in range(rounds):
        for mode in ("off", "on"):
            uniques = UniqueFilter(window=timedelta(hours=24), max_entries=10**6)
            visits = [
                Visit(ip=ip, user_agent=ua, referer="", country="CN", visitor_cookie=None)
                for ua, ip in pairs
            ]
            at = start + timedelta(minutes=round_)
            began = time.perf_counter()
            for visit in visits:
                build_click(
                    resolved,
                    NO_PARAMS,
                    visit,
                    at=at,
                    ip_storage="truncated",
                    privacy_salt="bench",
                    uniques=uniques,
                    checks=checks[mode],
                )
            times[mode].append((time.perf_counter() - began) / n * 1e6)
    db.dispose()
    return {mode: statistics.median(ts) for mode, ts in times.items()}


def stored_clicks(url: str) -> int:
    db = Database(url)
    with db.read() as conn:
        n = conn.execute(select(func.count()).select_from(tables.clicks)).scalar_one()
    db.dispose()
    return int(n)


def wait_ready(url: str, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer")


def run_wrk(base: str, script: Path, duration: int) -> dict[str, float]:
    out = subprocess.run(
        ["wrk", "-t1", "-c64", f"-d{duration}s", "--latency", "-s", str(script), base],
        capture_output=True,
        text=True,
        check=True,
    ).stdout

    def latency(label: str) -> float:
        m = re.search(rf"^\s*{label}\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        value, unit = float(m.group(1)), m.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    done = re.search(r"TUIKE requests=(\d+) status_errors=(\d+) socket_errors=(\d+)", out)
    requests, status_errors = int(done.group(1)), int(done.group(2))
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50": latency("50%"),
        "p99": latency("99%"),
        "answered": requests - status_errors,
        "refused": status_errors,
        "socket_errors": int(done.group(3)),
    }


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()


def server_command(server: str, target: str, port: int) -> list[str]:
    """The command serving the bare ASGI ``target`` on ``port`` with one worker, configured
    as `tuike serve` configures that server."""
    if server == "granian":
        return [
            str(BIN / "granian"),
            "--interface",
            "asgi",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--http",
            "1",
            "--loop",
            "uvloop",
            "--no-ws",
            "--log-level",
            "warning",
            "--no-access-log",
            target,
        ]
    return [
        str(BIN / "uvicorn"),
        target,
        "--port",
        str(port),
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
        "--log-level",
        "warning",
    ]


def bench_tuike(
    label: str, url: str, mode: str, script: Path, duration: int, server: str, checks: bool = True
) -> dict:
    port = free_port()
    env = {
        **os.environ,
        "TUIKE_DATABASE_URL": url,
        "TUIKE_TRACKER_MODE": mode,
        "TUIKE_APPROVE_INTERVAL_SECONDS": "0",
        "TUIKE_ENV": "test",
        "TUIKE_FRAUD_CLICK_CHECKS": "true" if checks else "false",
    }
    before = stored_clicks(url)
    command = [str(BIN / "tuike"), "serve", "--port", str(port), "--server", server]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_ready(f"http://127.0.0.1:{port}/healthz", proc)
        cpu = cpu_seconds(proc.pid)
        result = run_wrk(f"http://127.0.0.1:{port}", script, duration)
        # The server process's own CPU (event loop and threads; not the writer process)
        # per answered click: what the handler costs, whoever else shares the cores.
        result["cpu_us"] = (cpu_seconds(proc.pid) - cpu) / max(result["answered"], 1) * 1e6
    finally:
        stop(proc)  # shutdown drains the writer
    result["stored"] = stored_clicks(url) - before
    result["label"] = label
    result["server"] = server
    return result


def cpu_seconds(pid: int) -> float:
    """Return the user + system CPU seconds a process has used (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench_bare(script: Path, duration: int, server: str) -> dict:
    port = free_port()
    proc = subprocess.Popen(
        server_command(server, "bench.bare:app", port),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_ready(f"http://127.0.0.1:{port}/", proc)
        result = run_wrk(f"http://127.0.0.1:{port}", script, duration)
    finally:
        stop(proc)
    return result | {"label": "(d) bare ASGI 302", "server": server}


def bench_nginx(script: Path, duration: int) -> dict:
    port = free_port()
    prefix = Path(tempfile.mkdtemp())
    (prefix / "logs").mkdir()
    conf = prefix / "nginx.conf"
    conf.write_text(f"""daemon off; worker_processes 1; error_log {prefix}/logs/error.log;
pid {prefix}/nginx.pid;
events {{ worker_connections 1024; }}
http {{ access_log off; server {{ listen 127.0.0.1:{port};
  location / {{ return 302 https://shop.example.com/?tk_click=01JD3R6Z0Q8W5N2K4M7P9T1VXB; }} }} }}
""")
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    proc = subprocess.Popen(
        [nginx, "-p", str(prefix), "-c", str(conf)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_ready(f"http://127.0.0.1:{port}/", proc)
        result = run_wrk(f"http://127.0.0.1:{port}", script, duration)
    finally:
        stop(proc)
    return result | {"label": "(e) nginx return 302", "server": "nginx"}


def checks_table(
    results: list[dict], runs: list[dict], measured: dict[str, float] | None, args: Any
) -> str:
    """The click-time checks on and off: (a) against (f), and build_click in process.

    The machine's speed drifts (other work on the same cores), so besides the medians the
    table gives the ratio of each round's pair, run back to back, and of all clicks.
    """
    on = next((r for r in results if r["label"].startswith("(a)")), None)
    off = next((r for r in results if r["label"].startswith("(f)")), None)
    lines = [
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.node()} ({os.cpu_count()} "
        f"cores, Python {platform.python_version()}): `bench/tracker.py --only af --rounds "
        f"{args.rounds} --duration {args.duration}"
        + (f" --in-process {args.in_process}" if measured else "")
        + "`, medians of interleaved rounds:",
        "",
        "| what | checks on | checks off | on / off |",
        "|---|---|---|---|",
    ]
    if on and off:
        pairs = {}
        for r in runs:
            if r["label"][1] in "af":
                pairs.setdefault(r["round"], {})[r["label"][1]] = r["rps"]
        per_round = sorted(p["a"] / p["f"] for p in pairs.values() if len(p) == 2)
        lines.append(
            f"| tracker, durable SQLite, requests/s (wrk -c64), median | {on['rps']:,.0f} "
            f"| {off['rps']:,.0f} | {on['rps'] / off['rps']:.1%} |"
        )
        lines.append(
            f"| the same, each round's pair (median; lowest–highest) | | "
            f"| {statistics.median(per_round):.1%} ({per_round[0]:.0%}–{per_round[-1]:.0%}) |"
        )
        lines.append(
            f"| clicks answered in all rounds | {on['answered']:,} | {off['answered']:,} "
            f"| {on['answered'] / off['answered']:.1%} |"
        )
        lines.append(
            f"| server process CPU per click (event loop and threads), median "
            f"| {on['cpu_us']:.0f} µs | {off['cpu_us']:.0f} µs "
            f"| +{on['cpu_us'] / off['cpu_us'] - 1:.1%} |"
        )
        lines.append(f"| tracker p99 | {on['p99']:.1f} ms | {off['p99']:.1f} ms | |")
    if measured:
        lines.append(
            f"| build_click in process, per click | {measured['on']:.1f} µs "
            f"| {measured['off']:.1f} µs | +{measured['on'] - measured['off']:.1f} µs |"
        )
    return "\n".join(lines)


def ratio(value: float, base: float | None) -> str:
    """``value`` as a percentage of ``base``; empty when there is no base in this run."""
    return "" if base is None or base != base else f"{value / base:.0%}"


def median_of_rounds(runs: list[dict]) -> list[dict]:
    """One row per target and server: median rate and latencies, summed click counts."""
    rows: dict[tuple[str, str], list[dict]] = {}
    for r in runs:
        rows.setdefault((r["label"], r["server"]), []).append(r)
    out = []
    for (label, server), rs in rows.items():
        row = {"label": label, "server": server}
        for key in ("rps", "p50", "p99", "cpu_us"):
            if key in rs[0]:
                row[key] = statistics.median(r[key] for r in rs)
        for key in ("stored", "answered", "refused"):
            if key in rs[0]:
                row[key] = sum(r[key] for r in rs)
        out.append(row)
    return out


def table(results: list[dict], duration: int, links: int, rounds: int = 1) -> str:
    bare = {r["server"]: r["rps"] for r in results if r["label"].startswith("(d)")}
    nginx = next((r["rps"] for r in results if r["label"].startswith("(e)")), float("nan"))
    lines = [
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.node()} ({os.cpu_count()} cores, "
        f"Python {platform.python_version()}), {links:,} links, "
        f"`wrk -t1 -c64 -d{duration}s --latency` on the same cores"
        + (f", median of {rounds} interleaved rounds (clicks summed)" if rounds > 1 else "")
        + ":",
        "",
        "| target | server (1 worker) | requests/s | p50 | p99 | stored / answered "
        "| vs bare ASGI | vs nginx |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        stored = (
            f"{r['stored']:,} / {r['answered']:,} ({r['stored'] - r['answered']:+,}"
            f"{', refused ' + format(r['refused'], ',') if r['refused'] else ''})"
            if "stored" in r
            else ""
        )
        lines.append(
            f"| {r['label']} | {r['server']} | {r['rps']:,.0f} | {r['p50']:.1f} ms "
            f"| {r['p99']:.1f} ms | {stored} "
            f"| {ratio(r['rps'], bare.get(r['server']))} | {ratio(r['rps'], nginx)} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=20)
    parser.add_argument("--links", type=int, default=10_000)
    parser.add_argument("--write-docs", action="store_true", help="update docs/performance.md")
    parser.add_argument(
        "--only",
        default="abcdef",
        help="which targets to run, e.g. 'af' for the click checks on and off (default: all)",
    )
    parser.add_argument(
        "--in-process",
        type=int,
        default=0,
        metavar="N",
        help="also time N build_click calls with the checks on and off, in this process",
    )
    parser.add_argument(
        "--rounds", type=int, default=1, help="run every target this many times, interleaved"
    )
    parser.add_argument(
        "--servers",
        default="uvicorn",
        help="ASGI servers to run (a)-(d) on, comma-separated: uvicorn (the default of "
        "`tuike serve`), granian (`tuike serve --server granian`, the granian extra)",
    )
    args = parser.parse_args()
    servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    if not set(servers) <= {"uvicorn", "granian"}:
        parser.error("--servers takes uvicorn and/or granian")
    ensure_tools()
    work = Path(tempfile.mkdtemp())
    sqlite_url = f"sqlite:///{work}/bench.db"
    upgrade(sqlite_url)
    name = f"tuike_bench_{int(time.time())}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    pg_url = make_url(PG_ADMIN).set(database=name).render_as_string(hide_password=False)
    try:
        upgrade(pg_url)
        measured = None
        if args.in_process:
            print(f"in process: {args.in_process:,} build_click calls, checks on and off …")
            measured = in_process(f"sqlite:///{work}/in-process.db", args.in_process)
        codes = make_links(sqlite_url, args.links)
        pg_codes = make_links(pg_url, args.links)
        pairs = visitors(5000)
        scripts = []
        for label, cs in (("sqlite", codes), ("pg", pg_codes)):
            path = work / f"{label}.lua"
            path.write_text(lua_script(cs, pairs))
            scripts.append(path)
        runs: list[dict] = []
        # Rounds interleave the targets, so that a slow spell of the machine hits all.
        for round_ in range(1, args.rounds + 1):
            for server in servers:
                targets = [
                    ("(a) tuike durable, SQLite", sqlite_url, "durable", scripts[0], True),
                    (
                        "(f) tuike durable, SQLite, checks off",
                        sqlite_url,
                        "durable",
                        scripts[0],
                        False,
                    ),
                    ("(b) tuike durable, PostgreSQL", pg_url, "durable", scripts[1], True),
                    ("(c) tuike fast, PostgreSQL", pg_url, "fast", scripts[1], True),
                ]
                if round_ % 2 == 0:  # (f) first every other round: drift hits both alike
                    targets[0], targets[1] = targets[1], targets[0]
                for label, url, mode, script, checks in targets:
                    if label[1] not in args.only:
                        continue
                    print(f"round {round_}: {label} on {server} …", flush=True)
                    run = bench_tuike(label, url, mode, script, args.duration, server, checks)
                    runs.append(run | {"round": round_})
                    print(
                        f"  {run['rps']:,.0f}/s p50 {run['p50']:.1f} ms p99 {run['p99']:.1f} ms "
                        f"CPU {run['cpu_us']:.0f} µs per click",
                        flush=True,
                    )
                if "d" in args.only:
                    print(f"round {round_}: (d) bare ASGI on {server} …", flush=True)
                    runs.append(bench_bare(scripts[0], args.duration, server))
            if "e" in args.only:
                print(f"round {round_}: (e) nginx …", flush=True)
                runs.append(bench_nginx(scripts[0], args.duration))
        results = median_of_rounds(runs)
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    out = table(results, args.duration, args.links, args.rounds)
    print(out)
    compared = None
    if measured or "f" in args.only:
        compared = checks_table(results, runs, measured, args)
        print()
        print(compared)
    if args.write_docs:
        doc = ROOT / "docs" / "performance.md"
        body = doc.read_text()
        # The main table only for a run of the usual targets (not for the on/off comparison).
        blocks = [("bench/tracker", out)] if set(args.only) & set("bcde") else []
        if compared:
            blocks.append(("bench/tracker-checks", compared))
        for name, text_ in blocks:
            start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
            block = f"{start}\n{text_}\n{end}"
            body = (
                re.sub(
                    re.escape(start) + ".*?" + re.escape(end),
                    lambda _, b=block: b,
                    body,
                    flags=re.S,
                )
                if start in body
                else body + "\n" + block + "\n"
            )
        doc.write_text(body)


if __name__ == "__main__":
    main()

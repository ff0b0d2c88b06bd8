"""Time every portal page on the demo data, server side, against a bare health check.

    .venv/bin/python bench/portals.py [--database sqlite:///var/tuike.db] [--rounds 15]

Without --database it loads the demo (`tuike demo`, about a minute) into a scratch SQLite
file. Each page is rendered in-process through the whole ASGI stack (routing, session,
CSRF, queries, Jinja) with Starlette's test client: no network, no browser. It prints
the median and the 90th percentile per page in English and Chinese, and the ratio to
/healthz through the same stack (the baseline). Figures, not thresholds.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from factories.portal import login  # noqa: E402
from tuike.services.demo_world import PASSWORD  # noqa: E402

PAGES = {
    "affiliate": (
        "aff010@demo.tuike.dev",
        [
            "/affiliate",
            "/affiliate/programs",
            "/affiliate/links",
            "/affiliate/reports",
            "/affiliate/reports?group_by=sub1",
            "/affiliate/postbacks",
            "/affiliate/profile",
            "/affiliate/news",
            "/account/keys",
        ],
    ),
    "merchant": (
        "beauty@demo.tuike.dev",
        [
            "/merchant",
            "/merchant/programs",
            "/merchant/programs/{pid}",
            "/merchant/programs/{pid}/integration",
            "/merchant/programs/{pid}/creatives",
            "/merchant/programs/{pid}/coupons",
            "/merchant/programs/{pid}/groups",
            "/merchant/programs/{pid}/invites",
            "/merchant/programs/{pid}/announcements",
            "/merchant/affiliates",
            "/merchant/conversions",
            "/merchant/team",
        ],
    ),
    "operator": (
        "operator@demo.tuike.dev",
        [
            "/operator",
            "/operator/merchants",
            "/operator/affiliates",
            "/operator/programs",
            "/operator/audit",
            "/operator/outbox",
            "/operator/settings",
        ],
    ),
}


def _demo_database() -> str:
    url = f"sqlite:///{tempfile.mkdtemp()}/portals.db"
    env = {**os.environ, "TUIKE_DATABASE_URL": url}
    bin_dir = Path(sys.executable).parent
    for args in (["migrate"], ["demo"]):
        subprocess.run([str(bin_dir / "tuike"), *args], env=env, check=True, capture_output=True)
    return url


def _time(client, path: str, rounds: int) -> tuple[float, list[float]]:
    client.app.state.tuike.cache.clear()  # the first call computes cached figures
    started = time.perf_counter()
    assert client.get(path).status_code == 200, path
    first = (time.perf_counter() - started) * 1000
    assert client.get(path).status_code == 200, path
    out = []
    for _ in range(rounds):
        started = time.perf_counter()
        r = client.get(path)
        out.append((time.perf_counter() - started) * 1000)
        assert r.status_code == 200, (path, r.status_code)
    return first, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database", help="a database holding the demo (default: load one)")
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    url = args.database or _demo_database()

    from fastapi.testclient import TestClient

    from tuike.config import Settings
    from tuike.web.app import create_app

    settings = Settings(database_url=url, approve_interval_seconds=0, writer_process=False)
    rows = []
    with TestClient(create_app(settings), follow_redirects=False) as client:
        base = statistics.median(_time(client, "/healthz", args.rounds)[1])
        for role, (email, paths) in PAGES.items():
            client.cookies.clear()
            assert login(client, email, PASSWORD).status_code == 303, email
            pid = ""
            if role == "merchant":
                pid = re.search(r'/merchant/programs/(\d+)"', client.get(paths[1]).text).group(1)
            for path in paths:
                path = path.format(pid=pid)
                for lang in ("en", "zh_CN"):
                    client.cookies.set("tk_lang", lang)
                    first, times = _time(client, path, args.rounds)
                    times.sort()
                    p90 = times[int(len(times) * 0.9) - 1]
                    rows.append((path, lang, first, statistics.median(times), p90))
    print(
        f"database: {url.split('///')[0]}  rounds: {args.rounds}  /healthz median: {base:.1f} ms\n"
    )
    print("| page | language | first call | median | p90 | median vs /healthz |")
    print("|---|---|---|---|---|---|")
    for path, lang, first, median, p90 in rows:
        print(
            f"| `{path}` | {lang} | {first:.1f} ms | {median:.1f} ms | {p90:.1f} ms "
            f"| {median / base:.0f}× |"
        )
    worst = max(rows, key=lambda r: max(r[2], r[4]))
    print(f"\nslowest: {worst[0]} ({worst[1]}) first {worst[2]:.1f} ms, p90 {worst[4]:.1f} ms")


if __name__ == "__main__":
    main()

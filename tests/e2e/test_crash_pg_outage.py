"""PostgreSQL stopped mid-load: every click gets a stored 302 or a 503, none is lost.

The test starts its own throwaway PostgreSQL (initdb in a temporary folder, a free port),
never the machine's shared server, and stops it for a few seconds under load.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import select

from factories.server import free_port, start_server, stop_server
from factories.world import make_world
from tuike.storage import tables
from tuike.storage.db import Database
from tuike.storage.migrate import upgrade

pytestmark = pytest.mark.e2e
PG_BIN = sorted(glob.glob("/usr/lib/postgresql/*/bin"))


class Cluster:
    """A throwaway PostgreSQL cluster run as the postgres user when we are root."""

    def __init__(self, root: Path, port: int) -> None:
        self.root, self.port = root, port
        self.data = root / "data"
        self.bin = Path(PG_BIN[-1])
        self.as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def _run(self, *args: str) -> None:
        subprocess.run([*self.as_postgres, *args], check=True, capture_output=True, timeout=60)

    def init(self) -> None:
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres")

    def start(self) -> None:
        opts = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            opts,
            "-w",
            "-l",
            str(self.root / "pg.log"),
            "start",
        )

    def stop(self) -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    if not PG_BIN:
        if os.environ.get("TUIKE_REQUIRE_POSTGRES") == "1":
            pytest.fail("initdb not found: install PostgreSQL's server binaries")
        pytest.skip("initdb not found")
    root = Path(tempfile.mkdtemp(prefix="tuike-pg-", dir="/tmp"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")  # initdb refuses to run as root
    c = Cluster(root, free_port())
    c.init()
    c.start()
    try:
        yield c
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            c.stop()
        shutil.rmtree(root, ignore_errors=True)


def test_postgres_outage_refuses_clicks_instead_of_losing_them(cluster, tmp_path):
    url = f"postgresql+psycopg://postgres@127.0.0.1:{cluster.port}/postgres"
    upgrade(url)
    db = Database(url)
    w = make_world(db)
    port = free_port()
    proc = start_server(url, port, tmp_path / "server.log")
    acknowledged: list[str] = []
    counts = {"sent": 0, "refused": 0, "other": 0}
    lock = threading.Lock()
    stop = threading.Event()

    def client() -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            while not stop.is_set():
                r = http.get(f"/c/{w.link.code}")
                with lock:
                    counts["sent"] += 1
                    if r.status_code == 302:
                        query = parse_qs(urlsplit(r.headers["location"]).query)
                        acknowledged.append(query["tk_click"][0])
                    elif r.status_code == 503:
                        counts["refused"] += 1
                    else:
                        counts["other"] += 1

    threads = [threading.Thread(target=client) for _ in range(8)]
    for t in threads:
        t.start()
    try:
        while len(acknowledged) < 300:
            time.sleep(0.05)
        cluster.stop()
        time.sleep(3)
        cluster.start()
        after = len(acknowledged)
        deadline = time.monotonic() + 20
        while len(acknowledged) < after + 300 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        for t in threads:
            t.join()
        stop_server(proc)
    with db.read() as conn:
        stored = set(conn.execute(select(tables.clicks.c.id)).scalars())
    db.dispose()
    lost = [c for c in acknowledged if c not in stored]
    print(
        f"\npostgres outage: sent {counts['sent']}, acknowledged {len(acknowledged)}, "
        f"stored {len(stored)}, refused (503) {counts['refused']}, other {counts['other']}, "
        f"lost {len(lost)}"
    )
    assert lost == []
    assert counts["refused"] > 0, "the outage should have refused some clicks"
    assert counts["other"] == 0
    assert len(acknowledged) >= after + 300, "clicks should flow again after the restart"

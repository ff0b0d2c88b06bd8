"""Crash proof: a click whose 302 was sent is stored, even if the server is SIGKILLed."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import select

from factories.world import make_world
from tuike.storage import tables

pytestmark = pytest.mark.e2e
BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(db, port: int, log: Path) -> subprocess.Popen:
    env = {**os.environ, "TUIKE_DATABASE_URL": db.url, "TUIKE_APPROVE_INTERVAL_SECONDS": "0"}
    proc = subprocess.Popen(
        [str(BIN / "tuike"), "serve", "--port", str(port)],
        env=env,
        stdout=log.open("a"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(log.read_text())


def test_sigkill_mid_load_loses_no_acknowledged_click(db, tmp_path):
    w = make_world(db)
    port = _free_port()
    log = tmp_path / "server.log"
    proc = _start(db, port, log)
    acknowledged: list[str] = []
    refused = failed = 0
    sent = 0
    lock = threading.Lock()
    stop = threading.Event()

    def client() -> None:
        nonlocal refused, failed, sent
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:
            while not stop.is_set():
                with lock:
                    sent += 1
                try:
                    r = http.get(f"/c/{w.link.code}")
                except httpx.TransportError:
                    with lock:
                        failed += 1
                    continue
                with lock:
                    if r.status_code == 302:
                        query = parse_qs(urlsplit(r.headers["location"]).query)
                        acknowledged.append(query["tk_click"][0])
                    else:
                        refused += 1

    threads = [threading.Thread(target=client) for _ in range(8)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 20
    while len(acknowledged) < 1500 and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)  # no shutdown, no drain
    proc.wait()
    time.sleep(0.5)
    stop.set()
    for t in threads:
        t.join()
    restarted = _start(db, port, log)
    try:
        with db.read() as conn:
            stored = set(conn.execute(select(tables.clicks.c.id)).scalars())
    finally:
        restarted.terminate()
        restarted.wait(10)
    lost = [c for c in acknowledged if c not in stored]
    print(
        f"\ncrash test ({db.url.split(':')[0]}): sent {sent}, acknowledged {len(acknowledged)}, "
        f"stored {len(stored)}, refused {refused}, connection errors {failed}, lost {len(lost)}"
    )
    assert len(acknowledged) >= 500
    assert lost == []

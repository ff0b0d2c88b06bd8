"""Crash proof: a click whose 302 was sent is stored, even if the server is SIGKILLed."""

from __future__ import annotations

import threading
import time
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import select

from factories.server import free_port, kill_server, start_server, stop_server
from factories.world import make_world
from tuike.storage import tables

pytestmark = pytest.mark.e2e


def test_sigkill_mid_load_loses_no_acknowledged_click(db, tmp_path):
    w = make_world(db)
    port = free_port()
    log = tmp_path / "server.log"
    proc = start_server(db.url, port, log)
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
    # The server, its worker and its writer process at once: no shutdown, no drain.
    kill_server(proc)
    time.sleep(0.5)
    stop.set()
    for t in threads:
        t.join()
    restarted = start_server(db.url, port, log)
    try:
        with db.read() as conn:
            stored = set(conn.execute(select(tables.clicks.c.id)).scalars())
    finally:
        stop_server(restarted)
    lost = [c for c in acknowledged if c not in stored]
    print(
        f"\ncrash test ({db.url.split(':')[0]}): sent {sent}, acknowledged {len(acknowledged)}, "
        f"stored {len(stored)}, refused {refused}, connection errors {failed}, lost {len(lost)}"
    )
    assert len(acknowledged) >= 500
    assert lost == []

"""`tuike serve` itself: the visitor's address behind a trusted proxy, on both servers."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select

from factories.server import free_port, start_server, stop_server
from factories.world import make_world
from tuike.storage import tables

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("server", ["granian", "uvicorn"])
@pytest.mark.parametrize(
    ("allow", "stored_ip"),
    [("127.0.0.1", "203.0.113.0"), ("192.0.2.1", "127.0.0.0")],
    ids=["trusted-proxy", "untrusted-peer"],
)
def test_the_visitor_address_comes_from_a_trusted_proxy_only(
    db, tmp_path, server, allow, stored_ip
):
    w = make_world(db)
    port = free_port()
    proc = start_server(
        db.url, port, tmp_path / "server.log", TUIKE_FORWARDED_ALLOW_IPS=allow, server=server
    )
    try:
        r = httpx.get(
            f"http://127.0.0.1:{port}/c/{w.link.code}",
            headers={"X-Forwarded-For": "203.0.113.77"},
            timeout=10,
        )
        assert r.status_code == 302
    finally:
        stop_server(proc)
    with db.read() as conn:
        ips = conn.execute(select(tables.clicks.c.ip)).scalars().all()
    # Truncated (the default): /24. A peer not in the list cannot choose its address.
    assert ips == [stored_ip]

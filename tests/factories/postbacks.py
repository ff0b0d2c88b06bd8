"""Postback test helpers: settings that reach loopback, templates and the delivery log."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qs, urlsplit

from factories.http import click, convert
from factories.world import World
from tuike.config import Settings
from tuike.domain import postbacks as P
from tuike.services import postbacks as svc
from tuike.storage import postbacks as store
from tuike.storage.db import Database


def allow_loopback(settings: Settings) -> Settings:
    """Return settings that let postbacks reach a receiver on 127.0.0.1."""
    return settings.model_copy(update={"outbound_allow_networks": "127.0.0.0/8"})


@contextmanager
def app_client(db: Database, settings: Settings) -> Iterator[Any]:
    """Run a test client of the application with these settings."""
    from fastapi.testclient import TestClient

    from tuike.web.app import create_app

    with TestClient(create_app(settings, db), follow_redirects=False) as test_client:
        yield test_client


def set_url(db: Database, affiliate_id: int, template: str, program_id: int = 0) -> None:
    """Set an affiliate's postback URL template through the service."""
    with db.write() as conn:
        svc.set_postback_url(conn, affiliate_id, program_id, template)


def deliveries(db: Database, affiliate_id: int) -> list[P.Delivery]:
    """Return the affiliate's deliveries, oldest first."""
    with db.read() as conn:
        return list(reversed(store.list_deliveries(conn, affiliate_id, 500)))


def query(url: str) -> dict[str, str]:
    """Return the decoded query parameters of a URL (or of a request path)."""
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query, keep_blank_values=True).items()}


def sale_for(client: Any, w: World, order_id: str, **click_params: str) -> dict[str, Any]:
    """Record a 199.00 sale attributed to affiliate A by a fresh click."""
    return convert(client, w.program_key, order_id, click(client, w.link.code, **click_params))

"""Helpers the integration tests share: API calls, tracker clicks and database read-backs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final
from urllib.parse import parse_qs, urlencode, urlsplit

from sqlalchemy import Table, func, select

from factories.world import World
from tuike.storage import tables
from tuike.storage.db import Database
from tuike.storage.tables import metadata

if TYPE_CHECKING:
    from fastapi.testclient import TestClient
    from httpx import Response
    from sqlalchemy.engine import Row

API: Final = "/api/v1"
CONVERSIONS: Final = f"{API}/conversions"


class _Unchecked:
    """The type of UNCHECKED: assert_error was given no field to check."""


UNCHECKED: Final = _Unchecked()


def bearer(key: str) -> dict[str, str]:
    """Return the Authorization header that presents an API key."""
    return {"Authorization": f"Bearer {key}"}


def assert_error(r: Response, status: int, field: str | _Unchecked | None = UNCHECKED) -> None:
    """Assert an error answer: its status, a message and, if given, its field (None: no field)."""
    assert r.status_code == status, (r.request.method, r.request.url, r.text)
    error = r.json()["error"]
    assert isinstance(error["message"], str) and error["message"], error
    if not isinstance(field, _Unchecked):
        assert error.get("field") == field, error


def click(client: TestClient, code: str, **params: str) -> str:
    """Follow the tracking link with these query parameters; return the click id it sets."""
    query = f"?{urlencode(params)}" if params else ""
    r = client.get(f"/c/{code}{query}")
    assert r.status_code == 302, r.text
    return parse_qs(urlsplit(r.headers["location"]).query)["tk_click"][0]


def sale(order_id: str = "A-1", **fields: Any) -> dict[str, Any]:
    """Return the body of a 199.00 CNY sale conversion, with fields added or replaced."""
    return {
        "event": "sale",
        "order_id": order_id,
        "amount": "199.00",
        "currency": "CNY",
        **fields,
    }


def post(client: TestClient, w: World, body: dict[str, Any], **headers: str) -> Response:
    """POST a conversion body with the world's program key (and any extra headers)."""
    return client.post(CONVERSIONS, json=body, headers={**bearer(w.program_key), **headers})


def convert(
    client: TestClient, key: str, order_id: str, click_id: str | None = None, **fields: Any
) -> dict[str, Any]:
    """Record a 199.00 conversion (fields added or replaced) and return it; it must be new."""
    body = {"order_id": order_id, "amount": "199.00", **fields}
    if click_id:
        body["click_id"] = click_id
    r = client.post(CONVERSIONS, json=body, headers=bearer(key))
    assert r.status_code == 201, r.text
    return r.json()


def read_back(client: TestClient, w: World, conversion_id: str) -> dict[str, Any]:
    """GET a conversion as the world's merchant; it must not be marked duplicate."""
    r = client.get(f"{CONVERSIONS}/{conversion_id}", headers=bearer(w.merchant_key))
    assert r.status_code == 200, r.text
    body = r.json()
    assert not body.pop("duplicate", None)
    return body


def memberships(client: TestClient, key: str, **params: Any) -> list[dict[str, Any]]:
    """List the memberships this key sees, filtered by the query parameters."""
    r = client.get(f"{API}/memberships", params=params, headers=bearer(key))
    assert r.status_code == 200, r.text
    return r.json()


def membership_id(client: TestClient, w: World, affiliate_id: int) -> int:
    """Return the id of the affiliate's membership in the world's program."""
    r = client.get(f"{API}/memberships?program_id={w.program.id}", headers=bearer(w.merchant_key))
    assert r.status_code == 200, r.text
    (mid,) = [m["id"] for m in r.json() if m["affiliate_id"] == affiliate_id]
    return mid


def patch_program(client: TestClient, w: World, **fields: Any) -> None:
    """PATCH the world's program as its merchant; it must succeed."""
    r = client.patch(f"{API}/programs/{w.program.id}", json=fields, headers=bearer(w.merchant_key))
    assert r.status_code == 200, r.text


def count(db: Database, table: Table) -> int:
    """Return the number of rows in a table."""
    with db.read() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar()


def stored(db: Database) -> tuple[int, int, int]:
    """Return (conversions, conversion events, conversions counted in the rollups)."""
    with db.read() as conn:
        rolled = conn.execute(
            select(func.coalesce(func.sum(tables.conversion_rollups.c.conversions), 0))
        ).scalar()
    return count(db, tables.conversions), count(db, tables.conversion_events), int(rolled)


def row_of(db: Database, order_id: str, event: str = "sale") -> Row[Any]:
    """Return the one stored conversion of this order and event."""
    c = tables.conversions.c
    with db.read() as conn:
        return conn.execute(
            select(tables.conversions).where(c.order_id == order_id, c.event == event)
        ).one()


def snapshot(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Return every row of every table: a refused request must leave all of it alone."""
    out = {}
    with db.read() as conn:
        for table in metadata.sorted_tables:
            key = next(iter(table.primary_key.columns))
            out[table.name] = [tuple(r) for r in conn.execute(select(table).order_by(key))]
    return out

"""Portal factories: users for a world, and a browser-like client that signs in with CSRF."""

from __future__ import annotations

import re
from typing import Any

from tuike.services.users import create_user
from tuike.storage.db import Database

PASSWORD = "correct horse battery"
CSRF = re.compile(r'name="csrf" value="([0-9a-f]{64})"')


def csrf_of(html: str) -> str:
    """Return the CSRF token of the first form in a page."""
    match = CSRF.search(html)
    assert match, "the page has no form with a CSRF token"
    return match.group(1)


def make_user(db: Database, role: str, owner_id: int | None, email: str, **extra: Any) -> str:
    """Create a portal user with the factory password; return its email."""
    member_role = extra.pop("member_role", "owner" if role == "merchant" else "")
    with db.write() as conn:
        create_user(
            conn,
            email=email,
            password=PASSWORD,
            role=role,
            owner_id=owner_id,
            name=email.split("@")[0],
            member_role=member_role,
            **extra,
        )
    return email


def login(client: Any, email: str, password: str = PASSWORD) -> Any:
    """Sign a test client in through the login form; return the answer of the POST."""
    page = client.get("/login")
    return client.post(
        "/login", data={"email": email, "password": password, "csrf": csrf_of(page.text)}
    )


def post_form(client: Any, page_path: str, action: str, data: dict[str, Any]) -> Any:
    """Open a page, then post one of its forms with the page's CSRF token."""
    page = client.get(page_path)
    return client.post(action, data={**data, "csrf": csrf_of(page.text)})

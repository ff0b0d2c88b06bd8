"""The portals the server serves today: a home page and one placeholder page per role."""

from __future__ import annotations

import pytest

from tuike.web.portals.routes import PORTALS, home_context, portal_context


def test_home_links_every_portal_and_the_api(client):
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    for role in PORTALS:
        assert f'href="/{role}"' in r.text
    assert 'href="/api/v1/docs"' in r.text and 'href="/api/v1/openapi.json"' in r.text
    assert home_context(None)["portals"] is PORTALS  # type: ignore[arg-type]


@pytest.mark.parametrize("role", ["merchant", "affiliate", "operator"])
def test_each_role_has_a_page_saying_what_is_coming(client, role):
    context = portal_context(role)
    assert context["role"] == role and context["coming"]
    r = client.get(f"/{role}")
    assert r.status_code == 200
    assert f"<h1>{context['title']}</h1>" in r.text
    for item in context["coming"]:
        assert item in r.text


def test_health_and_openapi_are_served(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    spec = client.get("/api/v1/openapi.json").json()
    assert "/api/v1/conversions" in spec["paths"] and "/api/v1/reports" in spec["paths"]

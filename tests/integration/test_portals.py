"""The home page, health, assets, and HTML error pages of the portals."""

from __future__ import annotations

from tuike.web.portals.routes import PORTALS, home_context


def test_home_links_every_portal_its_sign_up_and_the_api(client):
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    for role, portal in PORTALS.items():
        assert f'href="/{role}"' in r.text
        if portal["join"]:
            assert f'href="{portal["join"]}"' in r.text
    assert 'href="/api/v1/docs"' in r.text and 'href="/api/v1/openapi.json"' in r.text
    assert home_context(None)["portals"] is PORTALS


def test_assets_are_served_from_the_package_not_a_cdn(client):
    home = client.get("/").text
    assert "https://cdn" not in home and "//unpkg" not in home and "jsdelivr" not in home
    for asset in ("tabler.min.css", "htmx.min.js", "echarts.min.js"):
        r = client.get(f"/static/vendor/{asset}")
        assert r.status_code == 200 and len(r.content) > 10_000


def test_health_and_openapi_are_served(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    spec = client.get("/api/v1/openapi.json").json()
    assert "/api/v1/conversions" in spec["paths"] and "/api/v1/reports" in spec["paths"]
    assert not any(p.startswith(("/merchant", "/affiliate", "/operator")) for p in spec["paths"])


def test_unknown_pages_answer_an_html_404_and_the_api_keeps_json(client):
    page = client.get("/no-such-page")
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    api = client.get("/api/v1/no-such-thing")
    assert api.status_code == 404 and api.json()["error"]["message"]

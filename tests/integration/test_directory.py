"""The affiliate directory ("Find affiliates") on both databases: the network's active
affiliates ranked by quality-adjusted EPC from the rollups, filtered and paged, for
merchants and the operator, with EPC as a band and no other merchant's figures."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import insert, update

from factories.http import assert_error, bearer
from factories.portal import login, make_user
from factories.world import World, make_world
from tuike.services import catalog as svc
from tuike.services.clock import utcnow
from tuike.storage import tables as t
from tuike.web.portals import directory as portal

DIRECTORY = "/api/v1/affiliates/directory"


def _rollup(conn: Any, program_id: int, affiliate_id: int, clicks: int, commission: int,
            *, days_ago: int = 2, status: str = "approved") -> None:  # fmt: skip
    hour = (utcnow() - timedelta(days=days_ago)).replace(minute=0, second=0, microsecond=0)
    keys = {"hour": hour, "program_id": program_id, "affiliate_id": affiliate_id}
    keys |= {"link_id": 0, "creative_id": 0}
    conn.execute(insert(t.click_rollups).values(**keys, clicks=clicks, invalid_clicks=clicks))
    conn.execute(
        insert(t.conversion_rollups).values(
            **keys,
            event="sale",
            status=status,
            currency="CNY",
            conversions=1,
            amount_minor=commission * 10,
            commission_minor=commission,
        )
    )


@pytest.fixture
def network(db) -> dict[str, Any]:
    """Affiliates 1 and 2 (both programs), 3 (website, the other merchant's program), 4
    (banned), 5 (flagged, merchant A's program), 6 (no traffic, an app)."""
    w: World = make_world(db)
    p, q = w.program.id, w.other_program.id
    ids = {1: w.affiliate_id, 2: w.other_affiliate_id}
    with db.write() as conn:
        conn.execute(update(t.programs).where(t.programs.c.id == p).values(category="electronics"))
        conn.execute(update(t.programs).where(t.programs.c.id == q).values(category="beauty"))
        for n, channels, programs in (
            (3, [("website", "https://www.deals.example/best?x=1"), ("sns", "@deals")], [q]),
            (4, [("blog", "https://banned.example")], [q]),
            (5, [("blog", "https://flagged.example")], [p]),
            (6, [("app", "com.example.app")], []),
        ):
            aff = svc.create_affiliate(
                conn,
                name=f"Affiliate {n}",
                email=f"aff{n}@example.com",
                timezone="Asia/Shanghai",
                channels=[{"kind": k, "name": f"C{n}", "url": u} for k, u in channels],
            )
            ids[n] = aff.id
            for program in (w.program, w.other_program):
                if program.id in programs:
                    m = svc.apply_to_program(conn, program=program, affiliate_id=aff.id)
                    svc.decide_membership(conn, m, status="approved")
        a = t.affiliates.c
        conn.execute(update(t.affiliates).where(a.id == ids[4]).values(status="banned"))
        conn.execute(
            update(t.affiliates)
            .where(a.id == ids[5])
            .values(quality_score=40, quality_flagged=True)
        )
        conn.execute(update(t.affiliates).where(a.id == ids[2]).values(quality_score=60))
        # The other merchant's program: mean EPC 21000 / 4000 clicks.
        for n, commission in ((1, 1000), (2, 3000), (3, 8000), (4, 9000)):
            _rollup(conn, q, ids[n], 1000, commission)
        # Merchant A's program: mean EPC 5500 / 1500 clicks.
        _rollup(conn, p, ids[1], 500, 500)
        _rollup(conn, p, ids[5], 1000, 5000)
        # Neither rejected commission nor traffic older than 30 days counts.
        _rollup(conn, p, ids[1], 0, 900_000, days_ago=3, status="rejected")
        _rollup(conn, q, ids[2], 100_000, 9_000_000, days_ago=40)
    return {"w": w, "ids": ids}


def _listed(client, key: str, **params: Any) -> list[dict[str, Any]]:
    r = client.get(DIRECTORY, params=params, headers=bearer(key))
    assert r.status_code == 200, r.text
    return r.json()


def test_the_directory_ranks_by_quality_adjusted_epc_flagged_last(client, network):
    w, ids = network["w"], network["ids"]
    name = {v: k for k, v in ids.items()}
    body = _listed(client, w.merchant_key)
    # 3: index 1.44; 2: 0.64 x quality 60 %; 1: 0.31; 6: no traffic; 5: flagged. 4: banned.
    assert [name[e["affiliate_id"]] for e in body] == [3, 2, 1, 6, 5]
    assert [e["rank"] for e in body] == [1, 2, 3, 4, 5]
    by = {name[e["affiliate_id"]]: e for e in body}
    assert {n: e["epc_band"] for n, e in by.items()} == {
        3: "top_10",
        5: "top_50",
        2: "bottom_50",
        1: "bottom_50",
        6: "unrated",
    }
    assert by[5]["quality_flagged"] and by[5]["quality_score"] == 40
    assert by[6]["quality_score"] is None and not by[6]["quality_flagged"]
    assert by[3]["channels"] == [
        {"kind": "website", "host": "www.deals.example"},
        {"kind": "sns", "host": None},
    ]
    assert by[1]["channels"] == [{"kind": "blog", "host": "blog1.example"}]
    assert by[1]["categories"] == ["beauty", "electronics"] and by[6]["categories"] == []
    # No figure of any program, nor a program's name, nor anyone's email.
    assert all(
        set(e) == {"rank", "affiliate_id", "name", "channels", "categories", "quality_score",
                   "quality_flagged", "epc_band"}
        for e in body
    )  # fmt: skip
    r = client.get(DIRECTORY, headers=bearer(w.merchant_key))
    assert "Other CPS" not in r.text and "example.com" not in r.text and "@deals" not in r.text
    # The operator sees the same list; affiliates may not look.
    assert _listed(client, w.operator_key) == body
    assert_error(client.get(DIRECTORY, headers=bearer(w.affiliate_key)), 403)


def test_the_directory_filters_by_category_and_channel_and_pages(client, network):
    w, ids = network["w"], network["ids"]
    name = {v: k for k, v in ids.items()}

    def names(**params: Any) -> list[int]:
        return [name[e["affiliate_id"]] for e in _listed(client, w.merchant_key, **params)]

    assert names(category="electronics") == [2, 1, 5]
    assert names(category="beauty") == [3, 2, 1]
    assert names(category="toys") == []
    assert names(channel="website") == [3]
    assert names(channel="blog") == [2, 1, 5]
    assert names(channel="blog", category="beauty") == [2, 1]
    page = _listed(client, w.merchant_key, limit=2, offset=1)
    assert [(name[e["affiliate_id"]], e["rank"]) for e in page] == [(2, 2), (1, 3)]
    assert names(offset=5) == []
    assert_error(client.get(DIRECTORY, params={"channel": "tv"}, headers=bearer(w.merchant_key)),
                 400, "channel")  # fmt: skip
    r = client.get(DIRECTORY, params={"limit": 0}, headers=bearer(w.merchant_key))
    assert r.status_code in (400, 422)


def test_the_merchant_finds_affiliates_in_the_console(db, client, network, monkeypatch):
    w, ids = network["w"], network["ids"]
    login(client, make_user(db, "merchant", w.merchant_id, "boss@example.com"))
    affiliates_page = client.get("/merchant/affiliates").text
    assert 'href="/merchant/affiliates/discover"' in affiliates_page

    page = client.get("/merchant/affiliates/discover").text
    rows = re.findall(
        r'<tr data-affiliate="([^"]*)"( class="table-danger" data-flagged="1")?', page
    )
    assert [n for n, _ in rows] == [f"Affiliate {n}" for n in (3, 2, 1, 6, 5)]
    assert [bool(flag) for _, flag in rows] == [False] * 4 + [True]
    assert re.findall(r'data-band="(\w+)"', page) == [
        "top_10", "bottom_50", "bottom_50", "unrated", "top_50"
    ]  # fmt: skip
    assert "top 10 %" in page and "website: www.deals.example" in page
    # Invitations are per program: the merchant's own programs' tabs, not another's.
    assert f'href="/merchant/programs/{w.program.id}/invites"' in page
    assert f"/merchant/programs/{w.other_program.id}/" not in page and "Other CPS" not in page

    filtered = client.get(
        "/merchant/affiliates/discover", params={"category": "electronics", "channel": "blog"}
    ).text
    assert re.findall(r'<tr data-affiliate="([^"]*)"', filtered) == [
        "Affiliate 2", "Affiliate 1", "Affiliate 5"
    ]  # fmt: skip

    monkeypatch.setattr(portal, "PAGE_ROWS", 2)
    first = client.get("/merchant/affiliates/discover").text
    assert re.findall(r'<tr data-affiliate="([^"]*)"', first) == ["Affiliate 3", "Affiliate 2"]
    (next_page,) = re.findall(r'href="(\?offset=2)"', first)
    second = client.get("/merchant/affiliates/discover" + next_page).text
    assert re.findall(r'<tr data-affiliate="([^"]*)"', second) == ["Affiliate 1", "Affiliate 6"]
    assert 'href="?offset=0"' in second
    assert ids  # every affiliate made above is named in the assertions

"""The affiliate quality job on both databases: books read with aggregated queries, scores
written, and shown to merchants, operators and the API."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import select, update

from factories.http import bearer, convert, post, sale
from factories.portal import login, make_user
from factories.world import make_world
from tuike.domain.tracking import ClickParams
from tuike.services import catalog as svc
from tuike.services.clicks import Resolved, UniqueFilter, Visit, build_click, record_clicks
from tuike.services.clock import utcnow
from tuike.services.quality import load_books, run_quality
from tuike.storage import tables as t

PLAIN = ClickParams(subs=("", "", "", "", ""), deep_link=None, aff_click_id="")
SALES = 12


def _clicks(db, program, links, ago: dict[int, timedelta]) -> dict[int, list[str]]:
    """Record SALES clicks per link, each made ``ago[affiliate]`` before now; return ids."""
    now = utcnow()
    uniques = UniqueFilter(window=timedelta(hours=24), max_entries=10_000)
    out: dict[int, list[str]] = {}
    records = []
    for link in links:
        resolved = Resolved(link=link, program=program, membership_ok=True)
        for i in range(SALES):
            visit = Visit(f"203.0.113.{i + 1}", "Mozilla/5.0 (iPhone)", "", "CN", None)
            at = now - ago.get(link.affiliate_id, timedelta(minutes=30)) - timedelta(seconds=i)
            record = build_click(
                resolved,
                PLAIN,
                visit,
                at=at,
                ip_storage="truncated",
                privacy_salt="salt",
                uniques=uniques,
            )
            records.append(record)
            out.setdefault(link.affiliate_id, []).append(record.id)
    with db.write() as conn:
        record_clicks(conn, records)
    return out


def test_an_outlying_refund_rate_and_late_conversions_are_flagged(db, client, settings):
    world = make_world(db)
    with db.write() as conn:
        links = [world.link]
        other = world.other_affiliate_id  # approved in both programs by make_world
        links.append(svc.create_link(conn, program=world.program, affiliate_id=other))
        for n in range(6):
            aff = svc.create_affiliate(
                conn, name=f"Peer {n}", email=f"peer{n}@example.com", timezone="Asia/Shanghai"
            )
            m = svc.apply_to_program(conn, program=world.program, affiliate_id=aff.id)
            svc.decide_membership(conn, m, status="approved")
            links.append(svc.create_link(conn, program=world.program, affiliate_id=aff.id))
    refunder, flooder = links[2].affiliate_id, links[3].affiliate_id
    clicks = _clicks(db, world.program, links, {flooder: timedelta(days=3)})
    occurred = (utcnow() - timedelta(minutes=5)).isoformat()
    for affiliate_id, click_ids in clicks.items():
        for i, click_id in enumerate(click_ids):
            order = f"O-{affiliate_id}-{i}"
            convert(client, world.program_key, order, click_id, occurred_at=occurred)
            if i < (8 if affiliate_id == refunder else 1):
                r = post(client, world, sale(order, status="refunded"))
                assert r.status_code == 200, r.text

    now = utcnow() + timedelta(minutes=1)
    with db.read() as conn:
        books = {b.affiliate_id: b for b in load_books(conn, now - timedelta(days=30), now)}
    assert len(books) == 8
    assert (books[flooder].with_click, books[flooder].late, books[flooder].early) == (12, 12, 0)
    assert (books[refunder].late, books[refunder].early) == (0, 12)
    assert (books[refunder].sales, books[refunder].refunds) == (12, 8)
    assert books[refunder].converting_clicks == 12 and books[refunder].clicks == 12

    run = run_quality(db, settings.quality_settings(), window_days=30, now=now)
    assert [q.affiliate_id for q in run.flagged] == [flooder, refunder]  # lowest first
    assert [s.code for s in run.qualities[refunder].signals] == ["refund_rate_outlier"]
    assert [s.code for s in run.qualities[flooder].signals] == ["click_flooding"]
    assert "8 of 12 sales refunded" in run.qualities[refunder].signals[0].evidence
    with db.read() as conn:
        stored = {
            r.id: (r.quality_score, r.quality_flagged, r.quality_updated_at is not None)
            for r in conn.execute(select(t.affiliates))
        }
    assert stored[refunder] == (70, True, True)
    assert stored[flooder] == (60, True, True)
    clean = [v for k, v in stored.items() if k not in (refunder, flooder)]
    assert clean and all(v == (100, False, True) for v in clean)

    # The merchant sees the scores in the affiliate list, the flagged ones marked.
    login(client, make_user(db, "merchant", world.merchant_id, "boss@example.com"))
    page = client.get("/merchant/affiliates", params={"status": "approved"}).text
    cells = re.findall(r'data-testid="quality">(.*?)</td>', page)
    assert len(cells) == 8
    assert sum('bg-red-lt">70<' in c or 'bg-red-lt">60<' in c for c in cells) == 2
    assert sum('bg-green-lt">100<' in c for c in cells) == 6
    # ... and the API's affiliate output carries it.
    r = client.get(f"/api/v1/affiliates/{refunder}", headers=bearer(world.merchant_key))
    assert r.status_code == 200 and r.json()["quality_score"] == 70


def test_the_operator_sees_flagged_affiliates_first(db, client):
    world = make_world(db)
    with db.write() as conn:
        conn.execute(
            update(t.affiliates)
            .where(t.affiliates.c.id == world.affiliate_id)
            .values(quality_score=40, quality_flagged=True, quality_updated_at=utcnow())
        )
    login(client, make_user(db, "operator", None, "ops@example.com"))
    page = client.get("/operator/affiliates").text
    rows = re.findall(r'<tr data-name="([^"]*)"( class="table-danger" data-flagged="1")?', page)
    assert rows[0] == ("Affiliate 1", ' class="table-danger" data-flagged="1"')
    assert [flag for _, flag in rows[1:]] == [""]
    assert "40 <span" in page

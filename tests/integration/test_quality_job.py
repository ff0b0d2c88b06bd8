"""The affiliate quality job on both databases: books read with aggregated queries, scores
written, and shown to merchants, operators and the API."""

from __future__ import annotations

import re
from datetime import timedelta
from html import escape

from sqlalchemy import select, update

from factories.http import bearer, convert, post, sale
from factories.portal import login, make_user
from factories.world import make_world
from tuike.domain.tracking import ClickParams
from tuike.services import catalog as svc
from tuike.services.clicks import Resolved, UniqueFilter, Visit, build_click, record_clicks
from tuike.services.clock import utcnow
from tuike.services.keys import create_key
from tuike.services.quality import load_books, run_quality
from tuike.storage import catalog as repo
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
    # The reasons are stored beside the score: the rules, evidence and program; SQL NULL
    # for the clean ones.
    with db.read() as conn:
        reasons = {
            r.id: r.quality_reasons
            for r in conn.execute(select(t.affiliates.c.id, t.affiliates.c.quality_reasons))
        }
        nulls = conn.execute(
            select(t.affiliates.c.id).where(t.affiliates.c.quality_reasons.is_(None))
        ).scalars()
        assert set(nulls) == set(stored) - {refunder, flooder}
    (refund_reason,) = reasons[refunder]
    assert refund_reason["code"] == "refund_rate_outlier" and refund_reason["weight"] == 30
    assert refund_reason["program_id"] == world.program.id
    assert refund_reason["evidence"].startswith("8 of 12 sales refunded")
    assert refund_reason["evidence"].endswith("in Shop CPS")
    assert [r["code"] for r in reasons[flooder]] == ["click_flooding"]

    # The merchant sees the scores in the affiliate list, the flagged ones marked.
    login(client, make_user(db, "merchant", world.merchant_id, "boss@example.com"))
    page = client.get("/merchant/affiliates", params={"status": "approved"}).text
    cells = re.findall(r'data-testid="quality">(.*?)</td>', page)
    assert len(cells) == 8
    assert sum('bg-red-lt">70<' in c or 'bg-red-lt">60<' in c for c in cells) == 2
    assert sum('bg-green-lt">100<' in c for c in cells) == 6
    # ... with the reasons under the score, readable.
    assert sum('data-testid="quality-reasons"' in c for c in cells) == 2
    assert any("refund_rate_outlier</code> −30: 8 of 12 sales refunded" in c for c in cells)
    # ... and the API's affiliate output carries it.
    r = client.get(f"/api/v1/affiliates/{refunder}", headers=bearer(world.merchant_key))
    assert r.status_code == 200 and r.json()["quality_score"] == 70
    assert r.json()["quality_reasons"] == [
        {**refund_reason, "program_id": world.program.id, "withheld": False}
    ]


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


def _set_reasons(db, affiliate_id: int, score: int, reasons: list[dict] | None) -> None:
    with db.write() as conn:
        conn.execute(
            update(t.affiliates)
            .where(t.affiliates.c.id == affiliate_id)
            .values(
                quality_score=score,
                quality_flagged=score < 75,
                quality_reasons=reasons,
                quality_updated_at=utcnow(),
            )
        )


A_EVIDENCE = "8 of 12 sales refunded (67 %, program 8.3 %); p < 0.0001 in Shop CPS"
B_EVIDENCE = "300 of 600 clicks filtered (50 %) in Other CPS"


def test_a_merchant_reads_the_evidence_of_its_own_programs_only(db, client):
    """Tenant isolation: merchant B sees the code and weight of a rule that fired in A's
    program, never A's program name or figures; affiliates see no score at all."""
    world = make_world(db)
    merchant_b = world.other_program.merchant_id
    with db.write() as conn:
        key_b = create_key(conn, role="merchant", owner_id=merchant_b, name="b")
    reasons = [
        {
            "code": "refund_rate_outlier",
            "weight": 30,
            "evidence": A_EVIDENCE,
            "program_id": world.program.id,
        },
        {
            "code": "invalid_click_share",
            "weight": 30,
            "evidence": B_EVIDENCE,
            "program_id": world.other_program.id,
        },
        {"code": "abuse_reports", "weight": 30, "evidence": "1 upheld and 0 open abuse reports"},
    ]
    _set_reasons(db, world.affiliate_id, 10, reasons)
    url = f"/api/v1/affiliates/{world.affiliate_id}"

    def api(key: str) -> dict:
        r = client.get(url, headers=bearer(key))
        assert r.status_code == 200, r.text
        listed = client.get("/api/v1/affiliates", headers=bearer(key)).json()
        (same,) = [a for a in listed if a["id"] == world.affiliate_id]
        for field in ("quality_score", "quality_reasons"):
            assert same[field] == r.json()[field]
        return r.json()

    seen_by_a = api(world.merchant_key)
    assert seen_by_a["quality_score"] == 10
    assert [(r["code"], r["evidence"], r["program_id"], r["withheld"]) for r in
            seen_by_a["quality_reasons"]] == [
        ("refund_rate_outlier", A_EVIDENCE, world.program.id, False),
        ("invalid_click_share", None, None, True),
        ("abuse_reports", "1 upheld and 0 open abuse reports", None, False),
    ]  # fmt: skip
    seen_by_b = api(key_b)
    assert [(r["code"], r["weight"], r["evidence"], r["withheld"]) for r in
            seen_by_b["quality_reasons"]] == [
        ("refund_rate_outlier", 30, None, True),
        ("invalid_click_share", 30, B_EVIDENCE, False),
        ("abuse_reports", 30, "1 upheld and 0 open abuse reports", False),
    ]  # fmt: skip
    operator = api(world.operator_key)
    assert [r["evidence"] for r in operator["quality_reasons"]][:2] == [A_EVIDENCE, B_EVIDENCE]
    # Affiliates see neither their own score nor its reasons.
    mine = api(world.affiliate_key)
    assert mine["quality_score"] is None and mine["quality_reasons"] is None
    body = client.get("/api/v1/affiliates", headers=bearer(key_b)).text
    assert "Shop CPS" not in body and "8 of 12" not in body and "8.3 %" not in body

    # The same in the portals.
    login(client, make_user(db, "merchant", merchant_b, "b@example.com"))
    page_b = client.get("/merchant/affiliates", params={"status": "all"}).text
    assert "Shop CPS" not in page_b and "8 of 12" not in page_b and "8.3 %" not in page_b
    assert B_EVIDENCE in page_b
    assert "refund_rate_outlier</code> −30: <span" in page_b  # the code and weight, no more
    client.cookies.clear()
    login(client, make_user(db, "merchant", world.merchant_id, "a@example.com"))
    page_a = client.get("/merchant/affiliates", params={"status": "all"}).text
    assert escape(A_EVIDENCE) in page_a
    assert B_EVIDENCE not in page_a and "Other CPS" not in page_a
    client.cookies.clear()
    login(client, make_user(db, "operator", None, "ops@example.com"))
    page_op = client.get("/operator/affiliates").text
    assert escape(A_EVIDENCE) in page_op and B_EVIDENCE in page_op


def test_a_clean_run_clears_the_reasons(db, settings):
    world = make_world(db)
    _set_reasons(
        db, world.affiliate_id, 70, [{"code": "abuse_reports", "weight": 30, "evidence": "x"}]
    )
    run_quality(db, settings.quality_settings(), window_days=30)
    with db.read() as conn:
        row = conn.execute(
            select(t.affiliates).where(t.affiliates.c.id == world.affiliate_id)
        ).one()
        assert (row.quality_score, row.quality_flagged, row.quality_reasons) == (100, False, None)
        assert repo.get_affiliate(conn, world.affiliate_id).quality_reasons is None

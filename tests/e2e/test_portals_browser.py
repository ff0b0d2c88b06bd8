"""The portals in a real browser (Debian's chromium through Playwright) on `tuike serve`.

An affiliate signs up, joins a program, builds a link and the test clicks it; the merchant
approves the affiliate, sends a test conversion from the integration page and approves it;
the affiliate's dashboard shows the commission; both switch language. The fraud desk: a
held conversion is released from the operator's review queue, a spam report is filed and
upheld, and the merchant sees the affiliate's lowered quality score with its reason and
the affiliate flagged in "Find affiliates". A screenshot of each main page goes to
tests/e2e/artifacts/ (ignored by git) for review.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from PIL import Image
from sqlalchemy import select

from factories.http import bearer
from factories.portal import PASSWORD, make_user
from factories.world import make_world
from tuike.services import catalog as svc
from tuike.storage import tables

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).parent / "artifacts"
PHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)

pytestmark = pytest.mark.e2e


@pytest.fixture
def browser():
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium")
        pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


def _banner_png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (300, 250), (230, 40, 60)).save(out, "PNG")
    return out.getvalue()


def test_affiliate_and_merchant_run_the_whole_loop_in_the_browser(db, server, browser, request):
    tag = request.node.callspec.id
    ARTIFACTS.mkdir(exist_ok=True)
    base = server.base_url

    def shot(page, name: str) -> None:
        page.screenshot(path=str(ARTIFACTS / f"{tag}-{name}.png"), full_page=True)

    with db.write() as conn:
        merchant = svc.create_merchant(conn, name="星海商城", timezone="Asia/Shanghai")
        program = svc.create_program(
            conn,
            merchant_id=merchant.id,
            currency="CNY",
            name="星海 CPS",
            landing_url=f"{base}/",
            allowed_domains=["127.0.0.1"],
            fallback_url=None,
            cookie_days=30,
            lock_days=15,
            commission_plan={"cps_percent": "10"},
            category="beauty",
        )
    make_user(db, "merchant", merchant.id, "boss@example.com")
    make_user(db, "operator", None, "op@example.com")

    aff = browser.new_context(locale="en-US").new_page()
    boss = browser.new_context(locale="en-US").new_page()

    # The affiliate signs up, declaring an IM group.
    aff.goto(f"{base}/signup/affiliate")
    shot(aff, "signup")
    aff.fill("#name", "小美")
    aff.fill("#email", "xiaomei@example.com")
    aff.fill("#password", PASSWORD)
    aff.select_option("select[name=channel_kind]", "im")
    aff.fill("input[name=channel_name]", "数码好物群")
    aff.fill("input[name=channel_url]", "wx-123")
    aff.click("text=Create account")
    aff.wait_for_url(f"{base}/affiliate/programs")
    shot(aff, "marketplace")
    aff.locator('tr[data-program="星海 CPS"] button:has-text("Apply")').click()
    aff.wait_for_url(f"{base}/affiliate/programs")
    assert "applied" in aff.locator('tr[data-program="星海 CPS"]').inner_text()

    # The merchant approves the application.
    boss.goto(f"{base}/login")
    boss.fill("#email", "boss@example.com")
    boss.fill("#password", PASSWORD)
    boss.click("form[data-testid=login-form] button")
    boss.wait_for_url(f"{base}/merchant")
    boss.goto(f"{base}/merchant/affiliates")
    shot(boss, "merchant-affiliates")
    assert "数码好物群" in boss.locator('tr[data-affiliate="小美"]').inner_text()
    boss.locator('tr[data-affiliate="小美"] button:has-text("Approve")').click()
    boss.wait_for_url(re.compile(r".*/merchant/affiliates$"))

    # The merchant uploads a banner and posts news to its affiliates.
    boss.goto(f"{base}/merchant/programs/{program.id}/creatives")
    boss.fill("form[data-testid=add-banner] input[name=name]", "Winter banner")
    boss.set_input_files(
        "form[data-testid=add-banner] input[type=file]",
        files=[{"name": "banner.png", "mimeType": "image/png", "buffer": _banner_png()}],
    )
    boss.click("form[data-testid=add-banner] button")
    boss.wait_for_selector("[data-testid=creatives] img")
    assert "300×250 · Medium Rectangle" in boss.locator("[data-testid=creatives]").inner_text()
    shot(boss, "creatives")
    boss.goto(f"{base}/merchant/programs/{program.id}/announcements")
    boss.fill("#a-title", "Double 11 starts")
    boss.fill("#a-body", "Commission doubles this week.")
    boss.click("form[data-testid=add-announcement] button")
    boss.wait_for_selector("[data-testid=announcements] .card")

    # The affiliate builds a link with a sub id; the test clicks it.
    aff.goto(f"{base}/affiliate/links")
    aff.fill("#sub1", "group-7")
    aff.click("text=Create the link")
    aff.wait_for_selector("[data-testid=new-link]")
    shot(aff, "links")
    aff.click("[data-testid=new-link] [data-testid=gallery] summary")
    # The banner is lazy-loaded: wait until the browser has fetched and laid it out.
    aff.locator("[data-testid=new-link] [data-testid=gallery] img").wait_for(state="visible")
    url = aff.locator("[data-testid=new-link] [data-testid=tracking-url]").inner_text()
    assert url.startswith(f"{base}/c/")
    # A phone browser, not the headless agent (which counts as a bot and is filtered).
    visitor = browser.new_context(user_agent=PHONE).new_page()
    visitor.goto(url)
    click_id = re.search(r"tk_click=([0-9A-Z]{26})", visitor.url).group(1)

    # The merchant sends a test conversion from the integration page.
    boss.goto(f"{base}/merchant/programs/{program.id}/integration")
    shot(boss, "integration")
    assert boss.input_value("#click_id") == click_id
    boss.fill("#amount", "300.00")
    boss.click("form[data-testid=test-form] button")
    result = boss.locator("[data-testid=test-result]")
    assert "attributed" in result.inner_text() and "30.00" in result.inner_text()

    # The affiliate sees the pending commission.
    aff.goto(f"{base}/affiliate")
    assert "30.00" in aff.locator("[data-testid=pending-CNY]").inner_text()
    assert aff.locator("[data-testid=clicks]").inner_text() == "1"
    assert aff.locator("[data-testid=conversions]").inner_text() == "1"
    assert "Double 11 starts" in aff.locator("[data-testid=news-item]").inner_text()
    shot(aff, "dashboard")

    # The merchant approves it; it becomes available to the affiliate.
    boss.goto(f"{base}/merchant/conversions")
    boss.locator("input[name=ids]").first.check()
    boss.click("text=Approve ticked")
    boss.wait_for_selector("[data-testid=reviewed]")
    assert "approved" in boss.locator("[data-testid=status]").first.inner_text()
    shot(boss, "conversions")
    boss.goto(f"{base}/merchant")
    shot(boss, "merchant-dashboard")
    aff.goto(f"{base}/affiliate")
    assert "30.00" in aff.locator("[data-testid=available-CNY]").inner_text()

    # Both switch to Chinese.
    for page, who in ((aff, "affiliate"), (boss, "merchant")):
        page.click("[data-testid=lang-switcher] button:has-text('简体中文')")
        page.wait_for_load_state()
        assert "概览" in page.locator("[data-testid=nav]").inner_text()
        shot(page, f"{who}-zh")
    assert "¥30.00" in aff.locator("[data-testid=available-CNY]").inner_text()

    # The operator's console.
    op = browser.new_context(locale="zh-CN").new_page()
    op.goto(f"{base}/login")
    op.fill("#email", "op@example.com")
    op.fill("#password", PASSWORD)
    op.click("form[data-testid=login-form] button")
    op.wait_for_url(f"{base}/operator")
    shot(op, "operator-system")
    op.goto(f"{base}/operator/audit")
    assert "conversions.approved" in op.content()
    shot(op, "operator-audit")


def _sign_in(browser, base: str, email: str, home: str):
    page = browser.new_context(locale="en-US").new_page()
    page.goto(f"{base}/login")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.click("form[data-testid=login-form] button")
    page.wait_for_url(f"{base}{home}")
    return page


def test_the_fraud_desk_in_the_browser(db, server, browser, request):
    tag = request.node.callspec.id
    ARTIFACTS.mkdir(exist_ok=True)
    base = server.base_url

    def shot(page, name: str) -> None:
        page.screenshot(path=str(ARTIFACTS / f"{tag}-fraud-{name}.png"), full_page=True)

    w = make_world(db)
    make_user(db, "merchant", w.merchant_id, "boss@example.com")
    make_user(db, "operator", None, "op@example.com")
    link = f"{base}/c/{w.link.code}"
    with db.read() as conn:
        names = dict(conn.execute(select(tables.affiliates.c.id, tables.affiliates.c.name)).all())
    spammer, other = names[w.affiliate_id], names[w.other_affiliate_id]
    # A click, and the sale reported at once after it: faster than a person buys (the
    # server runs with the default thresholds), so it is held.
    r = httpx.get(link, headers={"user-agent": PHONE})
    click_id = parse_qs(urlsplit(r.headers["location"]).query)["tk_click"][0]
    body = {"order_id": "INJ-1", "amount": "199.00", "click_id": click_id}
    r = httpx.post(f"{base}/api/v1/conversions", json=body, headers=bearer(w.program_key))
    assert r.status_code == 201 and r.json()["held"] is True, r.text

    # Someone reports the link, spammed into a chat group; no account needed.
    visitor = browser.new_context(locale="en-US").new_page()
    visitor.goto(f"{base}/report-abuse")
    visitor.fill("#link", link)
    visitor.select_option("#kind", "group_spam")
    visitor.fill("#where_url", "数码好物群")
    visitor.fill("#description", "Posted forty times in an hour")
    visitor.click("form[data-testid=abuse-form] button")
    visitor.wait_for_selector("[data-testid=filed]")
    shot(visitor, "report-abuse")

    # The operator reviews the held sale, with its evidence, and releases it …
    op = _sign_in(browser, base, "op@example.com", "/operator")
    op.goto(f"{base}/operator/review")
    held = op.locator('tr[data-order="INJ-1"]')
    assert "after its click (under 5.0 s)" in held.locator("[data-testid=reasons]").inner_text()
    shot(op, "review")
    held.locator("input[name=reason]").fill("Known customer, phoned the shop")
    held.locator("button[value=release]").click()
    op.wait_for_load_state()
    assert op.locator('tr[data-order="INJ-1"]').count() == 0
    # … and upholds the report.
    op.goto(f"{base}/operator/abuse")
    report = op.locator("[data-testid=reports] tr[data-report]").first
    assert spammer in report.inner_text()
    report.locator("input[name=reason]").fill("Seen in the group")
    report.locator("button[value=upheld]").click()
    op.wait_for_load_state()
    shot(op, "abuse")
    op.goto(f"{base}/operator/abuse?status=upheld")
    assert "Seen in the group" in op.locator("[data-testid=reports]").inner_text()

    # The quality job runs; the merchant sees the score, why, and the flag.
    done = subprocess.run(
        [str(Path(sys.executable).parent / "tuike"), "fraud", "quality"],
        env=server.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    boss = _sign_in(browser, base, "boss@example.com", "/merchant")
    assert f"affiliate {w.affiliate_id}: quality 70" in done.stdout
    boss.goto(f"{base}/merchant/affiliates?status=approved")
    quality = boss.locator(f'tr[data-affiliate="{spammer}"] [data-testid=quality]').first
    assert quality.locator(".badge").inner_text() == "70"
    quality.locator("summary").click()
    assert "1 upheld and 0 open abuse reports" in quality.inner_text()
    shot(boss, "merchant-affiliates")
    boss.click("a[data-testid=discover]")
    boss.wait_for_url(f"{base}/merchant/affiliates/discover")
    flagged = boss.locator(f'tr[data-affiliate="{spammer}"]')
    assert flagged.get_attribute("data-flagged") == "1"
    assert boss.locator(f'tr[data-affiliate="{other}"]').get_attribute("data-flagged") is None
    shot(boss, "discover")


def teardown_module() -> None:
    # Keep the newest screenshots only: no stale pages from an earlier run.
    if ARTIFACTS.exists() and not any(ARTIFACTS.iterdir()):
        shutil.rmtree(ARTIFACTS)

"""Attribution: which affiliate earns a conversion, and why nobody does."""

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from tuike.domain.attribution import Attribution, ClickRef, attribute, click_in_window

PROGRAM = 7
NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
WINDOW = timedelta(days=30)


def click(
    affiliate_id: int,
    *,
    ago: timedelta = timedelta(hours=1),
    program_id: int = PROGRAM,
    click_id: str | None = None,
) -> ClickRef:
    return ClickRef(
        click_id=click_id or f"click-{affiliate_id}",
        program_id=program_id,
        affiliate_id=affiliate_id,
        link_id=100 + affiliate_id,
        clicked_at=NOW - ago,
    )


def run(**evidence: object) -> Attribution:
    return attribute(program_id=PROGRAM, occurred_at=NOW, window=WINDOW, **evidence)


def test_explicit_click_id_wins_over_cookie_and_coupon() -> None:
    explicit = click(1)
    result = run(explicit_click=explicit, cookie_click=click(2), coupon_affiliate_id=3)
    assert result.affiliate_id == 1
    assert result.method == "click_id"
    assert result.click == explicit
    assert result.attributed


def test_cookie_wins_over_coupon() -> None:
    cookie = click(2)
    result = run(cookie_click=cookie, coupon_affiliate_id=3)
    assert result.affiliate_id == 2
    assert result.method == "cookie"
    assert result.click == cookie


def test_coupon_alone_attributes() -> None:
    result = run(coupon_affiliate_id=3)
    assert result.affiliate_id == 3
    assert result.method == "coupon"
    assert result.click is None


def test_no_evidence_attributes_nobody() -> None:
    result = run()
    assert result.affiliate_id is None
    assert result.method == "none"
    assert result.click is None
    assert not result.attributed


def test_click_of_another_program_is_skipped_with_a_reason() -> None:
    result = run(explicit_click=click(1, program_id=99), cookie_click=click(2))
    assert result.affiliate_id == 2
    assert result.method == "cookie"

    result = run(explicit_click=click(1, program_id=99))
    assert result.affiliate_id is None
    assert result.method == "none"
    assert "click_id" in result.reason
    assert "another program" in result.reason


def test_click_outside_the_cookie_window_does_not_attribute() -> None:
    result = run(cookie_click=click(2, ago=WINDOW + timedelta(seconds=1)))
    assert result.affiliate_id is None
    assert result.method == "none"
    assert "cookie" in result.reason
    assert "window" in result.reason
    # Exactly at the edge of the window still counts.
    assert run(cookie_click=click(2, ago=WINDOW)).affiliate_id == 2


def test_expired_explicit_click_falls_back_to_cookie_then_coupon() -> None:
    expired = click(1, ago=timedelta(days=31))
    assert run(explicit_click=expired, cookie_click=click(2)).affiliate_id == 2
    result = run(explicit_click=expired, coupon_affiliate_id=3)
    assert result.affiliate_id == 3
    assert result.method == "coupon"


def test_click_after_the_conversion_tolerates_only_ten_minutes_of_skew() -> None:
    within = run(explicit_click=click(1, ago=-timedelta(minutes=10)))
    assert within.affiliate_id == 1
    late = run(explicit_click=click(1, ago=-timedelta(minutes=10, seconds=1)))
    assert late.affiliate_id is None
    assert "window" in late.reason
    much_later = run(explicit_click=click(1, ago=-timedelta(days=1)))
    assert much_later.affiliate_id is None


def test_ineligible_affiliate_does_not_attribute() -> None:
    result = run(explicit_click=click(1), eligible=frozenset({2}))
    assert result.affiliate_id is None
    assert "not approved" in result.reason

    result = run(coupon_affiliate_id=3, eligible=frozenset())
    assert result.affiliate_id is None
    assert "coupon" in result.reason


def test_ineligible_click_falls_back_to_eligible_evidence() -> None:
    result = run(
        explicit_click=click(1),
        cookie_click=click(2),
        coupon_affiliate_id=3,
        eligible=frozenset({3}),
    )
    assert result.affiliate_id == 3
    assert result.method == "coupon"


def test_reasons_name_every_rejected_piece_of_evidence() -> None:
    result = run(
        explicit_click=click(1, program_id=99),
        cookie_click=click(2, ago=timedelta(days=90)),
        coupon_affiliate_id=3,
        eligible=frozenset({4}),
    )
    assert result.affiliate_id is None
    assert result.reason.count(";") == 2
    for method in ("click_id", "cookie", "coupon"):
        assert method in result.reason


def test_click_in_window_with_a_short_window() -> None:
    c = click(1, ago=timedelta(0))
    assert click_in_window(c, NOW + timedelta(hours=24), timedelta(hours=24))
    assert not click_in_window(c, NOW + timedelta(hours=24, seconds=1), timedelta(hours=24))
    assert click_in_window(c, NOW - timedelta(minutes=10), timedelta(hours=24))
    assert not click_in_window(c, NOW - timedelta(minutes=11), timedelta(hours=24))


# --- hypothesis -------------------------------------------------------------------------

affiliates = st.integers(min_value=1, max_value=6)
offsets = st.timedeltas(min_value=timedelta(days=-2), max_value=timedelta(days=40))


@st.composite
def clicks(draw: st.DrawFn) -> ClickRef | None:
    if draw(st.booleans()):
        return None
    return click(
        draw(affiliates),
        ago=draw(offsets),
        program_id=draw(st.sampled_from([PROGRAM, PROGRAM, 8])),
    )


@given(
    explicit=clicks(),
    cookie=clicks(),
    coupon=st.none() | affiliates,
    eligible=st.none() | st.frozensets(affiliates),
)
def test_chosen_affiliate_comes_from_the_evidence_and_is_eligible(
    explicit: ClickRef | None,
    cookie: ClickRef | None,
    coupon: int | None,
    eligible: frozenset[int] | None,
) -> None:
    result = run(
        explicit_click=explicit,
        cookie_click=cookie,
        coupon_affiliate_id=coupon,
        eligible=eligible,
    )
    evidence = {c.affiliate_id for c in (explicit, cookie) if c is not None}
    if coupon is not None:
        evidence.add(coupon)
    if result.affiliate_id is None:
        assert result.method == "none"
        assert result.click is None
        return
    assert result.affiliate_id in evidence
    assert eligible is None or result.affiliate_id in eligible
    if result.method in ("click_id", "cookie"):
        assert result.click is not None
        assert result.click.affiliate_id == result.affiliate_id
        assert result.click.program_id == PROGRAM
        assert click_in_window(result.click, NOW, WINDOW)
        assert result.click is (explicit if result.method == "click_id" else cookie)
    else:
        assert result.method == "coupon"
        assert result.affiliate_id == coupon

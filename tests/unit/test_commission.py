"""Commission plans: CPS percent, category and group overrides, fixed events, proration."""

from decimal import Decimal
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tuike.domain.commission import (
    CommissionPlan,
    Item,
    Rates,
    compute_commission,
    plan_from_dict,
    plan_to_dict,
    prorate,
)
from tuike.domain.errors import InvalidField
from tuike.domain.money import round_money

D = Decimal


def plan(data: dict, currency: str = "CNY") -> CommissionPlan:
    return plan_from_dict(data, currency)


# --- CPS percent of the order -------------------------------------------------------------


@pytest.mark.parametrize(
    ("percent", "amount", "currency", "expected"),
    [
        ("10", "199.00", "CNY", "19.90"),
        ("7.5", "100.00", "CNY", "7.50"),
        ("5", "0.10", "CNY", "0.01"),  # 0.005 rounds half up
        ("3", "0.10", "CNY", "0.00"),  # 0.003 rounds down
        ("12.5", "1001", "JPY", "125"),  # 125.125 -> 125
        ("10", "1005", "JPY", "101"),  # 100.5 -> 101
        ("0", "500.00", "CNY", "0.00"),
        ("100", "42.42", "CNY", "42.42"),
        ("1.5", "10.005", "KWD", "0.150"),  # 0.150075 -> 0.150
    ],
)
def test_cps_percent_of_order_amount(
    percent: str, amount: str, currency: str, expected: str
) -> None:
    result = compute_commission(
        plan({"cps_percent": percent}, currency),
        event="sale",
        amount=D(amount),
        currency=currency,
    )
    assert str(result.total) == expected
    assert len(result.lines) == 1
    line = result.lines[0]
    assert line.basis == "order"
    assert line.base_amount == D(amount)
    assert line.rate_percent == D(percent)
    assert line.commission == result.total


def test_sale_without_any_rate_pays_nothing() -> None:
    result = compute_commission(plan({}), event="sale", amount=D("100.00"), currency="CNY")
    assert result.total == 0
    assert result.lines == ()


# --- items and per-category overrides -----------------------------------------------------


def test_category_override_applies_per_item_and_line_is_price_times_quantity() -> None:
    p = plan({"cps_percent": "5", "category_percent": {"books": "10", "phones": "2"}})
    items = [
        Item(sku="B1", category="books", amount=D("30.00"), quantity=3),  # 90.00 x 10% = 9.00
        Item(sku="P1", category="phones", amount=D("1999.00")),  # 1999.00 x 2% = 39.98
        Item(sku="T1", category="toys", amount=D("20.00"), quantity=2),  # base 5%: 2.00
    ]
    result = compute_commission(p, event="sale", amount=D("2129.00"), currency="CNY", items=items)
    assert [
        (line.basis, line.base_amount, line.rate_percent, line.commission) for line in result.lines
    ] == [
        ("item:B1", D("90.00"), D("10"), D("9.00")),
        ("item:P1", D("1999.00"), D("2"), D("39.98")),
        ("item:T1", D("40.00"), D("5"), D("2.00")),
    ]
    assert result.total == D("50.98")


def test_each_item_line_is_rounded_before_summing() -> None:
    # Each line is 0.10 x 5% = 0.005 -> 0.01; the sum of rounded lines is 0.03, whereas
    # rounding the unrounded sum (0.015) would give 0.02.
    p = plan({"cps_percent": "5"})
    items = [Item(sku=f"S{i}", category="x", amount=D("0.10")) for i in range(3)]
    result = compute_commission(p, event="sale", amount=D("0.30"), currency="CNY", items=items)
    assert [line.commission for line in result.lines] == [D("0.01")] * 3
    assert result.total == D("0.03")


def test_quantity_multiplies_before_rounding() -> None:
    # 0.15 x 3 = 0.45 at 10% = 0.045 -> 0.05 (not 3 x round(0.015) = 0.06).
    p = plan({"cps_percent": "10"})
    items = [Item(sku="A", category="x", amount=D("0.15"), quantity=3)]
    result = compute_commission(p, event="sale", amount=D("0.45"), currency="CNY", items=items)
    assert result.total == D("0.05")


def test_items_without_base_percent_only_pay_overridden_categories() -> None:
    p = plan({"category_percent": {"books": "10"}})
    items = [
        Item(sku="B", category="books", amount=D("50.00")),
        Item(sku="T", category="toys", amount=D("50.00")),
    ]
    result = compute_commission(p, event="sale", amount=D("100.00"), currency="CNY", items=items)
    assert [line.basis for line in result.lines] == ["item:B"]
    assert result.total == D("5.00")


def test_category_override_of_zero_pays_nothing_for_that_category() -> None:
    p = plan({"cps_percent": "10", "category_percent": {"gift_cards": "0"}})
    items = [
        Item(sku="G", category="gift_cards", amount=D("100.00")),
        Item(sku="T", category="toys", amount=D("10.00")),
    ]
    result = compute_commission(p, event="sale", amount=D("110.00"), currency="CNY", items=items)
    assert result.total == D("1.00")


def test_without_items_category_overrides_are_ignored() -> None:
    p = plan({"cps_percent": "5", "category_percent": {"books": "50"}})
    result = compute_commission(p, event="sale", amount=D("100.00"), currency="CNY")
    assert result.total == D("5.00")


# --- fixed amounts ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "expected"), [("lead", "2.50"), ("install", "1.00"), ("newsletter_signup", "0.30")]
)
def test_fixed_amount_per_event(event: str, expected: str) -> None:
    p = plan(
        {
            "cps_percent": "10",
            "fixed": {"lead": "2.50", "install": "1", "newsletter_signup": "0.30"},
        }
    )
    result = compute_commission(p, event=event, amount=D("999.00"), currency="CNY")
    # The percent applies to sales only; other events pay their fixed amount.
    assert str(result.total) == expected
    assert [line.basis for line in result.lines] == [f"fixed:{event}"]
    assert result.lines[0].rate_percent is None


def test_fixed_amount_does_not_depend_on_order_amount() -> None:
    p = plan({"fixed": {"lead": "3.00"}})
    for amount in ("0.00", "1.00", "10000.00"):
        result = compute_commission(p, event="lead", amount=D(amount), currency="CNY")
        assert result.total == D("3.00")


def test_fixed_sale_is_a_per_order_bonus_on_top_of_percent() -> None:
    p = plan({"cps_percent": "10", "fixed": {"sale": "5.00"}})
    result = compute_commission(p, event="sale", amount=D("199.00"), currency="CNY")
    assert result.total == D("24.90")
    assert [line.basis for line in result.lines] == ["order", "fixed:sale"]

    items = [
        Item(sku="A", category="x", amount=D("10.00"), quantity=2),
        Item(sku="B", category="y", amount=D("30.00")),
    ]
    result = compute_commission(p, event="sale", amount=D("50.00"), currency="CNY", items=items)
    # 2.00 + 3.00 from items, plus one 5.00 bonus for the order (not per item).
    assert result.total == D("10.00")
    assert [line.basis for line in result.lines] == ["item:A", "item:B", "fixed:sale"]


def test_fixed_sale_alone_without_percent() -> None:
    p = plan({"fixed": {"sale": "8"}}, "JPY")
    result = compute_commission(p, event="sale", amount=D("12000"), currency="JPY")
    assert result.total == D("8")


@pytest.mark.parametrize("event", ["Sale", "refund", "", "signup2"])
def test_unknown_event_is_invalid_field_event(event: str) -> None:
    p = plan({"cps_percent": "10", "fixed": {"signup": "1.00"}})
    with pytest.raises(InvalidField) as err:
        compute_commission(p, event=event, amount=D("10.00"), currency="CNY")
    assert err.value.field == "event"


def test_builtin_events_are_always_known() -> None:
    assert plan({}).events() == frozenset({"sale", "lead", "install"})
    assert plan({"fixed": {"register": "1"}}).events() == frozenset(
        {"sale", "lead", "install", "register"}
    )


@pytest.mark.parametrize("event", ["lead", "install"])
def test_builtin_event_without_a_rate_earns_nothing(event: str) -> None:
    p = plan({"cps_percent": "10"})
    result = compute_commission(p, event=event, amount=D("10.00"), currency="CNY")
    assert result.total == D("0.00") and result.lines == ()


# --- affiliate groups -------------------------------------------------------------------

GROUP_PLAN = {
    "cps_percent": "5",
    "category_percent": {"books": "8", "phones": "1"},
    "fixed": {"lead": "1.00", "install": "0.50"},
    "groups": {
        "vip": {"cps_percent": "12", "category_percent": {"books": "15"}, "fixed": {"lead": "4"}},
        "partners": {"fixed": {"app_open": "0.20"}},
    },
}


def test_group_percent_overrides_base() -> None:
    p = plan(GROUP_PLAN)
    base = compute_commission(p, event="sale", amount=D("100.00"), currency="CNY")
    vip = compute_commission(p, event="sale", amount=D("100.00"), currency="CNY", group="vip")
    assert base.total == D("5.00")
    assert vip.total == D("12.00")


def test_group_category_override_wins_and_other_categories_are_inherited() -> None:
    p = plan(GROUP_PLAN)
    items = [
        Item(sku="B", category="books", amount=D("100.00")),
        Item(sku="P", category="phones", amount=D("100.00")),
        Item(sku="T", category="toys", amount=D("100.00")),
    ]
    vip = compute_commission(
        p, event="sale", amount=D("300.00"), currency="CNY", items=items, group="vip"
    )
    # books: group 15%; phones: base category 1%; toys: group cps 12%.
    assert [line.commission for line in vip.lines] == [D("15.00"), D("1.00"), D("12.00")]
    base = compute_commission(p, event="sale", amount=D("300.00"), currency="CNY", items=items)
    assert [line.commission for line in base.lines] == [D("8.00"), D("1.00"), D("5.00")]


def test_group_fixed_amounts_override_and_inherit() -> None:
    p = plan(GROUP_PLAN)

    def pay(event: str, group: str | None) -> Decimal:
        return compute_commission(
            p, event=event, amount=D("0.00"), currency="CNY", group=group
        ).total

    assert pay("lead", None) == D("1.00")
    assert pay("lead", "vip") == D("4.00")
    assert pay("install", "vip") == D("0.50")
    assert pay("app_open", "partners") == D("0.20")
    # A group without a cps_percent keeps the base percent.
    assert compute_commission(
        p, event="sale", amount=D("100.00"), currency="CNY", group="partners"
    ).total == D("5.00")


def test_unknown_group_or_no_group_uses_base_rates() -> None:
    p = plan(GROUP_PLAN)
    for group in (None, "", "nobody"):
        result = compute_commission(
            p, event="sale", amount=D("100.00"), currency="CNY", group=group
        )
        assert result.total == D("5.00")


def test_group_only_event_is_accepted_but_pays_nothing_outside_the_group() -> None:
    p = plan(GROUP_PLAN)
    assert "app_open" in p.events()
    result = compute_commission(p, event="app_open", amount=D("0.00"), currency="CNY")
    assert result.total == D("0.00")


# --- plan validation and JSON form ---------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"cps_percent": "100.01"}, "commission_plan.cps_percent"),
        ({"cps_percent": 101}, "commission_plan.cps_percent"),
        ({"cps_percent": "-1"}, "commission_plan.cps_percent"),
        ({"cps_percent": "NaN"}, "commission_plan.cps_percent"),
        ({"cps_percent": "Infinity"}, "commission_plan.cps_percent"),
        ({"cps_percent": "ten"}, "commission_plan.cps_percent"),
        ({"category_percent": {"books": "150"}}, "commission_plan.category_percent.books"),
        ({"category_percent": {"books": None}}, "commission_plan.category_percent.books"),
        ({"fixed": {"Lead": "1.00"}}, "commission_plan.fixed"),
        ({"fixed": {"1lead": "1.00"}}, "commission_plan.fixed"),
        ({"fixed": {"lead-gen": "1.00"}}, "commission_plan.fixed"),
        ({"fixed": {"": "1.00"}}, "commission_plan.fixed"),
        ({"fixed": {"a" * 41: "1.00"}}, "commission_plan.fixed"),
        ({"fixed": {"lead\n": "1.00"}}, "commission_plan.fixed"),
        ({"fixed": {"lead": 1.5}}, "commission_plan.fixed.lead"),
        ({"fixed": {"lead": "-1"}}, "commission_plan.fixed.lead"),
        ({"fixed": {"lead": "1.005"}}, "commission_plan.fixed.lead"),
        ({"fixed": {"lead": "abc"}}, "commission_plan.fixed.lead"),
        ({"cps": "10"}, "commission_plan"),
        ({"cps_percent": "10", "bonus": "1"}, "commission_plan"),
        ({"fixed": ["lead"]}, "commission_plan"),
        ({"category_percent": "books"}, "commission_plan"),
        ({"groups": ["vip"]}, "commission_plan.groups"),
        ({"groups": "vip"}, "commission_plan.groups"),
        ({"groups": {"vip": {"cps_percent": "200"}}}, "commission_plan.groups.vip.cps_percent"),
        ({"groups": {"vip": {"extra": 1}}}, "commission_plan.groups.vip"),
        ({"groups": {"vip": {"fixed": {"lead": 2.0}}}}, "commission_plan.groups.vip.fixed.lead"),
        ({"groups": {"vip": "12"}}, "commission_plan.groups.vip"),
        ({"groups": {"vip": 12}}, "commission_plan.groups.vip"),
    ],
)
def test_plan_from_dict_refuses_invalid_plans(data: dict, field: str) -> None:
    with pytest.raises(InvalidField) as err:
        plan_from_dict(data, "CNY")
    assert err.value.field == field


@pytest.mark.parametrize("data", [None, "10%", ["cps_percent"], 10])
def test_plan_must_be_an_object(data: object) -> None:
    with pytest.raises(InvalidField) as err:
        plan_from_dict(data, "CNY")  # type: ignore[arg-type]
    assert err.value.field == "commission_plan"


def test_fixed_amounts_are_decimal_strings_not_floats() -> None:
    p = plan_from_dict({"fixed": {"lead": "1.5", "install": "2"}}, "CNY")
    assert p.base.fixed == {"lead": D("1.50"), "install": D("2.00")}
    assert plan_to_dict(p) == {"fixed": {"lead": "1.50", "install": "2.00"}}
    with pytest.raises(InvalidField) as err:
        plan_from_dict({"fixed": {"lead": 1.5}}, "CNY")
    assert err.value.field == "commission_plan.fixed.lead"
    assert "float" in err.value.message


def test_fixed_amount_decimals_follow_the_plan_currency() -> None:
    with pytest.raises(InvalidField) as err:
        plan_from_dict({"fixed": {"lead": "1.50"}}, "JPY")
    assert err.value.field == "commission_plan.fixed.lead"
    assert plan_from_dict({"fixed": {"lead": "1.500"}}, "KWD").base.fixed["lead"] == D("1.5")


def test_plan_from_dict_accepts_valid_plan() -> None:
    p = plan(GROUP_PLAN)
    assert p.base.cps_percent == D("5")
    assert p.base.category_percent == {"books": D("8"), "phones": D("1")}
    assert p.base.fixed == {"lead": D("1.00"), "install": D("0.50")}
    assert p.groups["vip"].cps_percent == D("12")
    assert p.groups["partners"].cps_percent is None
    assert plan_from_dict({"cps_percent": "100"}, "CNY").base.cps_percent == D("100")
    assert plan_from_dict({"cps_percent": "0"}, "CNY").base.cps_percent == D("0")


def test_plan_to_dict_uses_decimal_strings() -> None:
    out = plan_to_dict(plan(GROUP_PLAN))
    assert out == {
        "cps_percent": "5",
        "category_percent": {"books": "8", "phones": "1"},
        "fixed": {"lead": "1.00", "install": "0.50"},
        "groups": {
            "vip": {
                "cps_percent": "12",
                "category_percent": {"books": "15"},
                "fixed": {"lead": "4.00"},
            },
            "partners": {"fixed": {"app_open": "0.20"}},
        },
    }
    assert plan_to_dict(plan({})) == {}


# --- hypothesis -------------------------------------------------------------------------

CURRENCIES = ("CNY", "JPY", "KWD", "USD")


@st.composite
def amounts(draw: st.DrawFn, currency: str, max_major: int = 10**6) -> Decimal:
    exponent = {"JPY": 0, "KWD": 3}.get(currency, 2)
    minor = draw(st.integers(min_value=0, max_value=max_major * 10**exponent))
    return Decimal(minor).scaleb(-exponent)


percents = st.decimals(min_value=0, max_value=100, places=2, allow_nan=False)
category_names = st.sampled_from(["books", "toys", "phones", "food"])
event_keys = st.from_regex(r"\A[a-z][a-z0-9_]{0,10}\Z")


@st.composite
def rates_dicts(draw: st.DrawFn, currency: str, with_fixed: bool = True) -> dict:
    out: dict = {}
    if draw(st.booleans()):
        out["cps_percent"] = str(draw(percents))
    cats = draw(st.dictionaries(category_names, percents, max_size=3))
    if cats:
        out["category_percent"] = {k: str(v) for k, v in cats.items()}
    if with_fixed:
        fixed = draw(st.dictionaries(event_keys, amounts(currency, 1000), max_size=3))
        if fixed:
            out["fixed"] = {k: str(v) for k, v in fixed.items()}
    return out


@st.composite
def plan_dicts(draw: st.DrawFn, currency: str, with_fixed: bool = True) -> dict:
    data = draw(rates_dicts(currency, with_fixed))
    groups = draw(
        st.dictionaries(
            st.sampled_from(["vip", "partners"]), rates_dicts(currency, with_fixed), max_size=2
        )
    )
    if groups:
        data["groups"] = groups
    return data


@st.composite
def items_lists(draw: st.DrawFn, currency: str) -> list[Item]:
    n = draw(st.integers(min_value=0, max_value=5))
    return [
        Item(
            sku=f"S{i}",
            category=draw(category_names),
            amount=draw(amounts(currency, 10**4)),
            quantity=draw(st.integers(min_value=1, max_value=20)),
        )
        for i in range(n)
    ]


@st.composite
def sales(draw: st.DrawFn, with_fixed: bool = True) -> tuple:
    currency = draw(st.sampled_from(CURRENCIES))
    p = plan_from_dict(draw(plan_dicts(currency, with_fixed)), currency)
    items = draw(items_lists(currency))
    amount = sum((i.line_amount for i in items), start=Decimal(0)) if items else None
    if amount is None:
        amount = draw(amounts(currency))
    group = draw(st.sampled_from([None, "vip", "partners"]))
    return p, currency, amount, items, group


@given(sales())
def test_commission_is_never_negative_and_total_is_sum_of_rounded_lines(sale: tuple) -> None:
    p, currency, amount, items, group = sale
    result = compute_commission(
        p, event="sale", amount=amount, currency=currency, items=items, group=group
    )
    assert result.total >= 0
    for line in result.lines:
        assert line.commission >= 0
        assert round_money(line.commission, currency) == line.commission
    assert result.total == sum((line.commission for line in result.lines), start=Decimal(0))
    assert round_money(result.total, currency) == result.total


@given(sales(with_fixed=False))
def test_percent_only_commission_never_exceeds_the_amount(sale: tuple) -> None:
    p, currency, amount, items, group = sale
    result = compute_commission(
        p, event="sale", amount=amount, currency=currency, items=items, group=group
    )
    assert 0 <= result.total <= amount
    for line in result.lines:
        assert line.commission <= line.base_amount


@given(data=st.data(), currency=st.sampled_from(CURRENCIES))
def test_non_sale_events_pay_exactly_their_fixed_amount(data: st.DataObject, currency: str) -> None:
    p = plan_from_dict(data.draw(plan_dicts(currency)), currency)
    group = data.draw(st.sampled_from([None, "vip", "partners"]))
    fixed = p.rates_for(group).fixed
    events = sorted(e for e in p.events() if e != "sale")
    for event in events:
        result = compute_commission(p, event=event, amount=D(0), currency=currency, group=group)
        assert result.total == round_money(fixed.get(event, D(0)), currency)


@given(data=st.data(), currency=st.sampled_from(CURRENCIES))
def test_plan_dict_round_trip(data: st.DataObject, currency: str) -> None:
    p = plan_from_dict(data.draw(plan_dicts(currency)), currency)
    again = plan_from_dict(plan_to_dict(p), currency)
    assert again == p
    assert plan_to_dict(again) == plan_to_dict(p)


@st.composite
def prorations(draw: st.DrawFn) -> tuple:
    currency = draw(st.sampled_from(CURRENCIES))
    exponent = {"JPY": 0, "KWD": 3}.get(currency, 2)
    amount_minor = draw(st.integers(min_value=1, max_value=10**9))
    amount = Decimal(amount_minor).scaleb(-exponent)
    original = draw(amounts(currency, 10**5))
    refunds = draw(
        st.lists(st.integers(min_value=0, max_value=amount_minor), min_size=2, max_size=6)
    )
    return currency, amount, original, [Decimal(r).scaleb(-exponent) for r in sorted(refunds)]


@given(prorations())
def test_prorate_is_monotonic_and_bounded(case: tuple) -> None:
    currency, amount, original, refunds = case
    values = [prorate(original, amount, refunded, currency) for refunded in refunds]
    for earlier, later in pairwise(values):
        assert later <= earlier
    for value in values:
        assert 0 <= value <= original
    assert prorate(original, amount, D(0), currency) == original
    assert prorate(original, amount, amount, currency) == 0


def test_prorate_examples() -> None:
    assert prorate(D("19.90"), D("199.00"), D("99.00"), "CNY") == D("10.00")
    assert prorate(D("19.90"), D("199.00"), D("0.00"), "CNY") == D("19.90")
    assert prorate(D("19.90"), D("199.00"), D("199.00"), "CNY") == D("0.00")
    assert prorate(D("1.00"), D("3.00"), D("1.00"), "CNY") == D("0.67")
    assert prorate(D("5"), D("0"), D("0"), "JPY") == D("0")


def test_rates_for_without_groups_is_base() -> None:
    base = Rates(cps_percent=D("5"))
    assert CommissionPlan(base=base).rates_for("vip") is base

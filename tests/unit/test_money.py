"""Money rules: parsing amounts, minor units and the one rounding rule."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tuike.domain.errors import InvalidField
from tuike.domain.money import (
    CURRENCY_EXPONENTS,
    Money,
    check_currency,
    currency_exponent,
    format_minor,
    from_minor,
    parse_amount,
    round_money,
    to_minor,
)

currencies = st.sampled_from(sorted(CURRENCY_EXPONENTS))


@st.composite
def currency_and_minor(draw: st.DrawFn) -> tuple[str, int]:
    """A currency and an amount in its minor units that parse_amount accepts (< 10**13)."""
    currency = draw(currencies)
    limit = 10 ** (13 + CURRENCY_EXPONENTS[currency]) - 1
    return currency, draw(st.integers(min_value=0, max_value=limit))


def test_known_exponents() -> None:
    assert currency_exponent("JPY") == 0
    assert currency_exponent("CNY") == 2
    assert currency_exponent("USD") == 2
    assert currency_exponent("KWD") == 3


@pytest.mark.parametrize(
    ("raw", "currency", "expected"),
    [
        ("12.30", "CNY", "12.30"),
        ("12.3", "CNY", "12.30"),
        ("12", "CNY", "12.00"),
        (" 7.5 ", "CNY", "7.50"),
        ("0", "CNY", "0.00"),
        ("1500", "JPY", "1500"),
        ("1500.0", "JPY", "1500"),
        ("1.234", "KWD", "1.234"),
        ("1.2", "KWD", "1.200"),
        (25, "CNY", "25.00"),
    ],
)
def test_parse_amount_accepts_exact_amounts(raw: object, currency: str, expected: str) -> None:
    value = parse_amount(raw, currency)
    assert isinstance(value, Decimal)
    assert str(value) == expected


@pytest.mark.parametrize("raw", [12.3, 12.0, 0.1, float("nan"), float("inf"), True, False])
def test_parse_amount_refuses_floats_and_booleans(raw: object) -> None:
    with pytest.raises(InvalidField) as err:
        parse_amount(raw, "CNY", field="amount")
    assert err.value.field == "amount"


@pytest.mark.parametrize("raw", ["-1", "-0.01", " -5.00", "-1e2"])
def test_parse_amount_refuses_negatives(raw: str) -> None:
    with pytest.raises(InvalidField) as err:
        parse_amount(raw, "CNY")
    assert err.value.field == "amount"
    assert "negative" in err.value.message


@pytest.mark.parametrize("raw", ["NaN", "nan", "sNaN", "Infinity", "-Infinity", "inf", "+Inf"])
def test_parse_amount_refuses_non_finite(raw: str) -> None:
    with pytest.raises(InvalidField) as err:
        parse_amount(raw, "CNY")
    assert err.value.field == "amount"


@pytest.mark.parametrize(
    "raw", ["", "   ", "abc", "12,30", "1.2.3", "$5", "12.30 CNY", "0x10", None, [], {}]
)
def test_parse_amount_refuses_non_numeric(raw: object) -> None:
    with pytest.raises(InvalidField) as err:
        parse_amount(raw, "CNY", field="refund_amount")
    assert err.value.field == "refund_amount"


@pytest.mark.parametrize(
    ("raw", "currency"),
    [
        ("1.5", "JPY"),
        ("100.01", "JPY"),
        ("1.234", "CNY"),
        ("0.001", "CNY"),
        ("19.901", "USD"),
        ("1.2345", "KWD"),
    ],
)
def test_parse_amount_refuses_more_decimals_than_the_currency(raw: str, currency: str) -> None:
    with pytest.raises(InvalidField) as err:
        parse_amount(raw, currency, field="amount")
    assert err.value.field == "amount"
    assert currency in err.value.message


def test_parse_amount_accepts_trailing_zero_decimals() -> None:
    # "1.000" CNY is the exact amount 1.00; only significant extra digits are refused.
    assert str(parse_amount("1.000", "CNY")) == "1.00"
    assert str(parse_amount("1.2000", "KWD")) == "1.200"


@pytest.mark.parametrize("raw", ["10000000000000", "1e13", "1e30", "1e999999", "9" * 40])
def test_parse_amount_refuses_huge_amounts_as_invalid_field(raw: str) -> None:
    with pytest.raises(InvalidField) as err:
        parse_amount(raw, "CNY")
    assert err.value.field == "amount"


def test_parse_amount_largest_accepted_amount() -> None:
    assert str(parse_amount("9999999999999.99", "CNY")) == "9999999999999.99"


def test_parse_amount_negative_zero_is_plain_zero() -> None:
    value = parse_amount("-0", "CNY")
    assert value == 0
    assert str(value) == "0.00"


@pytest.mark.parametrize("currency", ["XXX", "cny", "", "EURO", "RMB"])
def test_unknown_currency_is_invalid_field_currency(currency: str) -> None:
    with pytest.raises(InvalidField) as err:
        parse_amount("1.00", currency)
    assert err.value.field == "currency"
    with pytest.raises(InvalidField) as err:
        currency_exponent(currency)
    assert err.value.field == "currency"


def test_check_currency_names_the_field() -> None:
    assert check_currency("EUR") == "EUR"
    with pytest.raises(InvalidField) as err:
        check_currency("ZZZ", field="program.currency")
    assert err.value.field == "program.currency"
    with pytest.raises(InvalidField):
        check_currency(None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "currency", "expected"),
    [
        ("0.005", "CNY", "0.01"),
        ("0.004", "CNY", "0.00"),
        ("0.015", "CNY", "0.02"),
        ("0.025", "CNY", "0.03"),  # half up, not banker's rounding
        ("2.675", "USD", "2.68"),
        ("0.5", "JPY", "1"),
        ("1.5", "JPY", "2"),
        ("2.5", "JPY", "3"),
        ("0.0005", "KWD", "0.001"),
        ("1.99", "CNY", "1.99"),
    ],
)
def test_round_money_is_half_up(value: str, currency: str, expected: str) -> None:
    assert str(round_money(Decimal(value), currency)) == expected


@pytest.mark.parametrize(
    ("minor", "currency", "text"),
    [
        (1990, "CNY", "19.90"),
        (0, "CNY", "0.00"),
        (5, "CNY", "0.05"),
        (1500, "JPY", "1500"),
        (1234, "KWD", "1.234"),
    ],
)
def test_format_minor(minor: int, currency: str, text: str) -> None:
    assert format_minor(minor, currency) == text
    assert to_minor(parse_amount(text, currency), currency) == minor


def test_to_minor_refuses_fractions_of_a_minor_unit() -> None:
    with pytest.raises(ValueError, match="minor units"):
        to_minor(Decimal("1.005"), "CNY")
    with pytest.raises(ValueError, match="minor units"):
        to_minor(Decimal("0.5"), "JPY")


@given(currency_and_minor())
def test_minor_units_round_trip(case: tuple[str, int]) -> None:
    currency, minor = case
    amount = from_minor(minor, currency)
    assert to_minor(amount, currency) == minor
    text = format_minor(minor, currency)
    assert parse_amount(text, currency) == amount
    assert to_minor(parse_amount(text, currency), currency) == minor
    # The public string always shows exactly the currency's number of decimals.
    exponent = currency_exponent(currency)
    if exponent == 0:
        assert "." not in text
    else:
        assert len(text.split(".")[1]) == exponent


@given(currency_and_minor())
def test_money_minor_and_str(case: tuple[str, int]) -> None:
    currency, minor = case
    money = Money(from_minor(minor, currency), currency)
    assert money.minor == minor
    assert str(money) == f"{format_minor(minor, currency)} {currency}"


@given(
    currency=currencies,
    value=st.decimals(min_value=0, max_value=10**9, allow_nan=False, allow_infinity=False),
)
def test_round_money_is_within_half_a_minor_unit(currency: str, value: Decimal) -> None:
    rounded = round_money(value, currency)
    step = Decimal(1).scaleb(-currency_exponent(currency))
    assert abs(rounded - value) <= step / 2
    # Rounding an already rounded amount changes nothing.
    assert round_money(rounded, currency) == rounded

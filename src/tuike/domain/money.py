"""Money: ISO 4217 currencies, minor units, and the one rounding rule.

Amounts are stored as integer minor units and computed as ``Decimal``. The one rounding
rule is ROUND_HALF_UP to the currency's minor unit, applied at each commission line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from tuike.domain.errors import InvalidField

_DECIMAL = re.compile(r"\A-?[0-9]{1,20}(\.[0-9]{1,10})?\Z")

# Active ISO 4217 codes whose minor unit is not 2 digits.
_EXPONENT_EXCEPTIONS: dict[str, int] = {
    "BIF": 0,
    "CLP": 0,
    "DJF": 0,
    "GNF": 0,
    "ISK": 0,
    "JPY": 0,
    "KMF": 0,
    "KRW": 0,
    "PYG": 0,
    "RWF": 0,
    "UGX": 0,
    "UYI": 0,
    "VND": 0,
    "VUV": 0,
    "XAF": 0,
    "XOF": 0,
    "XPF": 0,
    "BHD": 3,
    "IQD": 3,
    "JOD": 3,
    "KWD": 3,
    "LYD": 3,
    "OMR": 3,
    "TND": 3,
    "CLF": 4,
    "UYW": 4,
}

# Active ISO 4217 codes with a 2-digit minor unit.
_TWO_DIGIT = """
AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BOV BRL BSD BTN BWP
BYN BZD CAD CDF CHE CHF CHW CNY COP COU CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD
FKP GBP GEL GHS GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW KYD
KZT LAK LBP LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD
NGN NIO NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK SGD SHP
SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS UAH USD USN UYU UZS VED
VES WST XCD XCG YER ZAR ZMW ZWG
""".split()

CURRENCY_EXPONENTS: dict[str, int] = {code: 2 for code in _TWO_DIGIT} | _EXPONENT_EXCEPTIONS


def currency_exponent(currency: str) -> int:
    """Return the number of minor-unit digits of an ISO 4217 currency."""
    try:
        return CURRENCY_EXPONENTS[currency]
    except KeyError:
        raise InvalidField(
            "currency", f"unknown currency {currency!r} (ISO 4217 code expected)"
        ) from None


def check_currency(currency: str, field: str = "currency") -> str:
    """Return the currency code if it is a known ISO 4217 code, else raise InvalidField."""
    if not isinstance(currency, str) or currency not in CURRENCY_EXPONENTS:
        raise InvalidField(field, f"unknown currency {currency!r} (ISO 4217 code expected)")
    return currency


def quantum(currency: str) -> Decimal:
    """Return the smallest unit of a currency as a Decimal (0.01 for CNY)."""
    return Decimal(1).scaleb(-currency_exponent(currency))


def round_money(value: Decimal, currency: str) -> Decimal:
    """Round to the currency's minor unit with the house rule, ROUND_HALF_UP."""
    return value.quantize(quantum(currency), rounding=ROUND_HALF_UP)


def parse_amount(raw: object, currency: str, field: str = "amount") -> Decimal:
    """Parse a decimal string into an exact, non-negative amount of the currency.

    Refuse floats (JSON money is a string), negatives, NaN/infinity and more decimals
    than the currency has.
    """
    if isinstance(raw, (bool, float)):
        raise InvalidField(field, 'must be a decimal string such as "12.30", not a float')
    if isinstance(raw, int):
        raw = str(raw)
    if not isinstance(raw, str) or not raw.strip():
        raise InvalidField(field, 'must be a decimal string such as "12.30"')
    if not _DECIMAL.match(raw.strip()):
        if raw.strip().startswith("-"):
            raise InvalidField(field, "must not be negative")
        raise InvalidField(field, f'{raw!r} is not a plain decimal number such as "12.30"')
    try:
        value = Decimal(raw.strip())
    except InvalidOperation:
        raise InvalidField(field, f"{raw!r} is not a number") from None
    if not value.is_finite():
        raise InvalidField(field, f"{raw!r} is not a finite number")
    if value < 0:
        raise InvalidField(field, "must not be negative")
    exponent = currency_exponent(currency)
    # Check the size first: quantizing a huge value ("1e30") overflows Decimal's precision.
    if value >= Decimal(10) ** 13:
        raise InvalidField(field, "is too large")
    if value != value.quantize(quantum(currency), rounding=ROUND_HALF_UP):
        raise InvalidField(field, f"{currency} has {exponent} decimal places at most")
    # copy_abs: "-0" is zero, not "-0.00".
    return value.quantize(quantum(currency)).copy_abs()


def to_minor(value: Decimal, currency: str) -> int:
    """Convert an exact amount to integer minor units (raises if it is not exact)."""
    scaled = value.scaleb(currency_exponent(currency))
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{value} is not a whole number of {currency} minor units")
    return int(scaled)


def from_minor(minor: int, currency: str) -> Decimal:
    """Convert integer minor units to an exact Decimal amount."""
    return Decimal(minor).scaleb(-currency_exponent(currency)).quantize(quantum(currency))


def format_minor(minor: int, currency: str) -> str:
    """Format minor units as the public decimal string ("19.90")."""
    return str(from_minor(minor, currency))


@dataclass(frozen=True, slots=True)
class Money:
    """An exact amount with its currency."""

    amount: Decimal
    currency: str

    @property
    def minor(self) -> int:
        """Return the amount in integer minor units."""
        return to_minor(self.amount, self.currency)

    def __str__(self) -> str:
        return f"{self.amount} {self.currency}"

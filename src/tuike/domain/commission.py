"""Commission plans and the computation of a conversion's commission.

A plan pays a percent of the sale amount (CPS), optionally per product category when
items are sent, and fixed amounts per event (lead, install, custom action keys; a fixed
``sale`` amount is a per-order bonus on top of the percent). Affiliate groups override
any of these per program. Each commission line is rounded ROUND_HALF_UP to the currency's
minor unit; the total is the sum of the rounded lines.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from tuike.domain.errors import InvalidField
from tuike.domain.money import parse_amount, round_money

EVENT_KEY = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
SALE = "sale"
BUILTIN_EVENTS = ("sale", "lead", "install")
HUNDRED = Decimal(100)


@dataclass(frozen=True, slots=True)
class Rates:
    """One layer of rates: a base plan or an affiliate group's overrides."""

    cps_percent: Decimal | None = None
    category_percent: Mapping[str, Decimal] = field(default_factory=dict)
    fixed: Mapping[str, Decimal] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CommissionPlan:
    """A program's commission plan: base rates plus per-affiliate-group overrides."""

    base: Rates
    groups: Mapping[str, Rates] = field(default_factory=dict)

    def events(self) -> frozenset[str]:
        """Return every event this plan accepts: the built-in ones and its fixed-amount keys."""
        keys = {*BUILTIN_EVENTS, *self.base.fixed}
        for rates in self.groups.values():
            keys.update(rates.fixed)
        return frozenset(keys)

    def rates_for(self, group: str | None) -> Rates:
        """Return the effective rates for an affiliate group (group values win)."""
        override = self.groups.get(group or "")
        if override is None:
            return self.base
        return Rates(
            cps_percent=(
                override.cps_percent if override.cps_percent is not None else self.base.cps_percent
            ),
            category_percent={**self.base.category_percent, **override.category_percent},
            fixed={**self.base.fixed, **override.fixed},
        )


@dataclass(frozen=True, slots=True)
class Item:
    """One order line: ``amount`` is the unit price, the line is amount × quantity."""

    sku: str
    category: str
    amount: Decimal
    quantity: int = 1

    @property
    def line_amount(self) -> Decimal:
        """Return the line total."""
        return self.amount * self.quantity


@dataclass(frozen=True, slots=True)
class CommissionLine:
    """One rounded commission line and how it was computed."""

    basis: str
    base_amount: Decimal
    rate_percent: Decimal | None
    commission: Decimal


@dataclass(frozen=True, slots=True)
class Commission:
    """A computed commission: the total and its lines."""

    total: Decimal
    lines: tuple[CommissionLine, ...]


def compute_commission(
    plan: CommissionPlan,
    *,
    event: str,
    amount: Decimal,
    currency: str,
    items: Sequence[Item] = (),
    group: str | None = None,
) -> Commission:
    """Compute the commission of one conversion under a plan."""
    if event not in plan.events():
        raise InvalidField("event", f"unknown event {event!r} for this program")
    rates = plan.rates_for(group)
    lines: list[CommissionLine] = []
    if event == SALE:
        if items:
            for item in items:
                rate = rates.category_percent.get(item.category, rates.cps_percent)
                if rate is None:
                    continue
                base = item.line_amount
                lines.append(
                    CommissionLine(
                        basis=f"item:{item.sku}",
                        base_amount=base,
                        rate_percent=rate,
                        commission=round_money(base * rate / HUNDRED, currency),
                    )
                )
        elif rates.cps_percent is not None:
            lines.append(
                CommissionLine(
                    basis="order",
                    base_amount=amount,
                    rate_percent=rates.cps_percent,
                    commission=round_money(amount * rates.cps_percent / HUNDRED, currency),
                )
            )
    fixed = rates.fixed.get(event)
    if fixed is not None:
        lines.append(
            CommissionLine(
                basis=f"fixed:{event}",
                base_amount=amount,
                rate_percent=None,
                commission=round_money(fixed, currency),
            )
        )
    total = sum((line.commission for line in lines), start=Decimal(0))
    return Commission(total=round_money(total, currency), lines=tuple(lines))


def prorate(original: Decimal, amount: Decimal, refunded: Decimal, currency: str) -> Decimal:
    """Return the commission left after refunding ``refunded`` of ``amount`` (pro rata)."""
    if refunded >= amount:
        return round_money(Decimal(0), currency)
    if refunded <= 0:
        return original
    return round_money(original * (amount - refunded) / amount, currency)


def _percent(raw: Any, field_name: str) -> Decimal:
    try:
        value = Decimal(str(raw))
    except InvalidOperation:
        raise InvalidField(field_name, f"{raw!r} is not a number") from None
    if not value.is_finite() or value < 0 or value > HUNDRED:
        raise InvalidField(field_name, "must be a percent between 0 and 100")
    return value


def _rates_from_dict(data: Mapping[str, Any], currency: str, where: str) -> Rates:
    if not isinstance(data, Mapping):
        raise InvalidField(where, "must be an object")
    unknown = set(data) - {"cps_percent", "category_percent", "fixed"}
    if unknown:
        raise InvalidField(where, f"unknown keys {sorted(unknown)}")
    cps = data.get("cps_percent")
    categories = data.get("category_percent") or {}
    fixed = data.get("fixed") or {}
    if not isinstance(categories, Mapping) or not isinstance(fixed, Mapping):
        raise InvalidField(where, "category_percent and fixed must be objects")
    for key in fixed:
        if not EVENT_KEY.fullmatch(str(key)):
            raise InvalidField(
                f"{where}.fixed", f"event key {key!r} must match {EVENT_KEY.pattern}"
            )
    return Rates(
        cps_percent=None if cps is None else _percent(cps, f"{where}.cps_percent"),
        category_percent={
            str(k): _percent(v, f"{where}.category_percent.{k}") for k, v in categories.items()
        },
        fixed={str(k): parse_amount(v, currency, f"{where}.fixed.{k}") for k, v in fixed.items()},
    )


def plan_from_dict(data: Mapping[str, Any], currency: str) -> CommissionPlan:
    """Build and validate a plan from its JSON form (raises InvalidField)."""
    if not isinstance(data, Mapping):
        raise InvalidField("commission_plan", "must be an object")
    groups = data.get("groups") or {}
    if not isinstance(groups, Mapping):
        raise InvalidField("commission_plan.groups", "must be an object")
    base = {k: v for k, v in data.items() if k != "groups"}
    return CommissionPlan(
        base=_rates_from_dict(base, currency, "commission_plan"),
        groups={
            str(name): _rates_from_dict(rates, currency, f"commission_plan.groups.{name}")
            for name, rates in groups.items()
        },
    )


def _rates_to_dict(rates: Rates) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if rates.cps_percent is not None:
        out["cps_percent"] = str(rates.cps_percent)
    if rates.category_percent:
        out["category_percent"] = {k: str(v) for k, v in rates.category_percent.items()}
    if rates.fixed:
        out["fixed"] = {k: str(v) for k, v in rates.fixed.items()}
    return out


def plan_to_dict(plan: CommissionPlan) -> dict[str, Any]:
    """Return the JSON form of a plan (decimal strings, never floats)."""
    out = _rates_to_dict(plan.base)
    if plan.groups:
        out["groups"] = {name: _rates_to_dict(r) for name, r in plan.groups.items()}
    return out

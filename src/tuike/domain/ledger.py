"""The double-entry ledger: the account chart and the posting rules of a conversion.

Every money movement is one transaction of entries in integer minor units of one
currency; an entry's amount is signed, **debit positive, credit negative**, and the
entries of a transaction sum to zero. Entries are never changed: a correction is a new
transaction.

Account chart (one account per owner, kind and currency):

=================  ==========================  =======  ==========================================
owner              kind                        normal   what its balance means
=================  ==========================  =======  ==========================================
merchant           ``funds``                   credit   prepaid money not yet committed (may go
                                                        below zero down to the credit limit)
merchant           ``commissions_payable``     credit   reserved for pending conversions
affiliate          ``pending``                 credit   commission of pending conversions
affiliate          ``available``               credit   earned, not yet paid out (negative after
                                                        a clawback: netted against new earnings)
affiliate          ``paid_out``                debit    paid to the affiliate so far
platform           ``fee_revenue``             credit   service fees earned
platform           ``pending_control``         debit    mirror of every affiliate ``pending``
platform           ``payout_clearing``         credit   payouts sent to the bank, not yet settled
platform           ``cash``                    debit    money held: top-ups in, payouts out
platform           ``paid_control``            credit   mirror of every affiliate ``paid_out``
platform           ``override_expense``        debit    two-tier overrides the platform paid
=================  ==========================  =======  ==========================================

A conversion's postings follow from its state alone (``position``): what the ledger
holds for it in each account. Moving a conversion posts the difference between the
position of its new state and that of its old one, so that approving, rejecting and
refunding, in any order and in part, always leave exactly the position of the current
state, and a conversion's postings can be reconciled at any time.

The service fee is ``round_money(commission × fee rate)`` (ROUND_HALF_UP at the fee line,
the house rule). ``on_top``: the merchant pays commission + fee and the affiliate gets
the whole commission. ``deducted``: the merchant pays the commission and the affiliate
gets it minus the fee.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from tuike.domain.errors import InvalidField
from tuike.domain.lifecycle import APPROVED, PENDING
from tuike.domain.money import round_money, to_minor

MERCHANT, AFFILIATE, PLATFORM = "merchant", "affiliate", "platform"
FUNDS, COMMISSIONS_PAYABLE = "funds", "commissions_payable"
PENDING_EARNINGS, AVAILABLE, PAID_OUT = "pending", "available", "paid_out"
FEE_REVENUE, PENDING_CONTROL, PAYOUT_CLEARING, CASH, PAID_CONTROL, OVERRIDE_EXPENSE = (
    "fee_revenue",
    "pending_control",
    "payout_clearing",
    "cash",
    "paid_control",
    "override_expense",
)
ACCOUNT_KINDS: dict[str, tuple[str, ...]] = {
    MERCHANT: (FUNDS, COMMISSIONS_PAYABLE),
    AFFILIATE: (PENDING_EARNINGS, AVAILABLE, PAID_OUT),
    PLATFORM: (FEE_REVENUE, PENDING_CONTROL, PAYOUT_CLEARING, CASH, PAID_CONTROL, OVERRIDE_EXPENSE),
}
# Accounts whose balance is shown as the negative of the entries' sum (credit-normal).
CREDIT_NORMAL = frozenset(
    {
        (MERCHANT, FUNDS),
        (MERCHANT, COMMISSIONS_PAYABLE),
        (AFFILIATE, PENDING_EARNINGS),
        (AFFILIATE, AVAILABLE),
        (PLATFORM, FEE_REVENUE),
        (PLATFORM, PAYOUT_CLEARING),
        (PLATFORM, PAID_CONTROL),
    }
)
FEE_MODES = ("on_top", "deducted")
PLATFORM_ID = 0


@dataclass(frozen=True, slots=True, order=True)
class Account:
    """An account of the chart: owner type, owner id (0 for the platform), kind, currency."""

    owner_type: str
    owner_id: int
    kind: str
    currency: str

    def __post_init__(self) -> None:
        if self.kind not in ACCOUNT_KINDS.get(self.owner_type, ()):
            raise ValueError(f"no {self.kind!r} account for a {self.owner_type!r}")


def shown(account: Account, entries_sum: int) -> int:
    """The balance as its owner reads it: positive means 'has' for credit-normal accounts."""
    key = (account.owner_type, account.kind)
    return -entries_sum if key in CREDIT_NORMAL else entries_sum


@dataclass(frozen=True, slots=True)
class Posting:
    """A transaction to post: balanced signed entries (minor units) of one currency."""

    key: str
    kind: str
    currency: str
    entries: tuple[tuple[Account, int], ...]

    def __post_init__(self) -> None:
        if sum(amount for _, amount in self.entries) != 0:
            raise ValueError(f"unbalanced transaction {self.key}: {self.entries}")
        if any(a.currency != self.currency for a, _ in self.entries):
            raise ValueError(f"transaction {self.key} mixes currencies")


@dataclass(frozen=True, slots=True)
class FeeTerms:
    """The service fee of a conversion, fixed when it is recorded."""

    rate: Decimal = Decimal(0)
    mode: str = "on_top"
    override_rate: Decimal = Decimal(0)  # the recruiter's share of the commission

    def __post_init__(self) -> None:
        if not Decimal(0) <= self.rate <= Decimal(1):
            raise InvalidField("fee_rate", "must be between 0 and 1")
        if not Decimal(0) <= self.override_rate <= Decimal(1):
            raise InvalidField("override_rate", "must be between 0 and 1")
        if self.mode not in FEE_MODES:
            raise InvalidField("fee_mode", f"must be one of {', '.join(FEE_MODES)}")


@dataclass(frozen=True, slots=True)
class Split:
    """Who pays and gets what of one commission, in minor units."""

    merchant_pays: int
    affiliate_gets: int
    fee: int


def split(commission: Decimal, currency: str, terms: FeeTerms) -> Split:
    """Split a commission into the merchant's cost, the affiliate's share and the fee."""
    fee = round_money(commission * terms.rate, currency)
    c, f = to_minor(commission, currency), to_minor(fee, currency)
    if terms.mode == "on_top":
        return Split(merchant_pays=c + f, affiliate_gets=c, fee=f)
    return Split(merchant_pays=c, affiliate_gets=c - f, fee=f)


@dataclass(frozen=True, slots=True)
class Parties:
    """Who a conversion's money moves between."""

    merchant_id: int
    affiliate_id: int | None
    currency: str
    recruiter_id: int | None = None  # who recruited the affiliate (two-tier)


def position(status: str, commission: Decimal, parties: Parties, terms: FeeTerms) -> dict:
    """What the ledger holds for a conversion in a state: {Account: signed minor units}."""
    if parties.affiliate_id is None or status not in (PENDING, APPROVED) or commission == 0:
        return {}
    s = split(commission, parties.currency, terms)
    cur = parties.currency

    def merchant(kind: str) -> Account:
        return Account(MERCHANT, parties.merchant_id, kind, cur)

    def affiliate(kind: str) -> Account:
        return Account(AFFILIATE, parties.affiliate_id or 0, kind, cur)

    def platform(kind: str) -> Account:
        return Account(PLATFORM, PLATFORM_ID, kind, cur)

    # The recruiter's override: a share of the commission, paid by the platform.
    override = 0
    recruiter = parties.recruiter_id
    if recruiter is not None and recruiter != parties.affiliate_id and terms.override_rate:
        override = to_minor(round_money(commission * terms.override_rate, cur), cur)

    def recruiter_account(kind: str) -> Account:
        return Account(AFFILIATE, recruiter or 0, kind, cur)

    if status == PENDING:
        # The merchant's funds are reserved; the affiliate sees the commission pending.
        held = {
            merchant(FUNDS): s.merchant_pays,
            merchant(COMMISSIONS_PAYABLE): -s.merchant_pays,
            platform(PENDING_CONTROL): s.affiliate_gets + override,
            affiliate(PENDING_EARNINGS): -s.affiliate_gets,
        }
        if override:
            held[recruiter_account(PENDING_EARNINGS)] = -override
        return held
    # Approved: the merchant is debited, the affiliate credited, the fee taken.
    held = {
        merchant(FUNDS): s.merchant_pays,
        affiliate(AVAILABLE): -s.affiliate_gets,
        platform(FEE_REVENUE): -s.fee,
    }
    if override:
        held[recruiter_account(AVAILABLE)] = -override
        held[platform(OVERRIDE_EXPENSE)] = override
    return held


def difference(new: dict, old: dict) -> tuple[tuple[Account, int], ...]:
    """The entries that take the ledger from ``old`` to ``new`` (zero lines dropped)."""
    accounts = sorted(set(new) | set(old))
    lines = ((a, new.get(a, 0) - old.get(a, 0)) for a in accounts)
    return tuple((a, amount) for a, amount in lines if amount != 0)


def transition_kind(old_status: str, new_status: str, old_commission: Decimal) -> str:
    """Name a conversion transaction for statements: reserve, approve, reject, refund…"""
    if old_status == new_status:
        return "refund_partial"
    return {
        (None, PENDING): "reserve",
        (None, APPROVED): "approve",
        (PENDING, APPROVED): "approve",
        (PENDING, "rejected"): "reject",
        (PENDING, "refunded"): "refund",
        (APPROVED, "refunded"): "refund",
    }.get((old_status, new_status), "adjust")


def sum_by_currency(entries: Iterable[tuple[str, int]]) -> dict[str, int]:
    """Sum signed amounts per currency (the books balance when every sum is zero)."""
    out: dict[str, int] = {}
    for currency, amount in entries:
        out[currency] = out.get(currency, 0) + amount
    return out


def payout_sent(affiliate_id: int, currency: str, amount: int, key: str) -> Posting:
    """A payout leaves the affiliate's available balance for the clearing account."""
    return Posting(
        key=key,
        kind="payout",
        currency=currency,
        entries=(
            (Account(AFFILIATE, affiliate_id, AVAILABLE, currency), amount),
            (Account(PLATFORM, PLATFORM_ID, PAYOUT_CLEARING, currency), -amount),
        ),
    )


def payout_paid(affiliate_id: int, currency: str, amount: int, key: str) -> Posting:
    """The bank confirmed: the money leaves the platform's cash; the affiliate's paid-out
    total grows (with its control mirror)."""
    return Posting(
        key=key,
        kind="payout_paid",
        currency=currency,
        entries=(
            (Account(PLATFORM, PLATFORM_ID, PAYOUT_CLEARING, currency), amount),
            (Account(PLATFORM, PLATFORM_ID, CASH, currency), -amount),
            (Account(AFFILIATE, affiliate_id, PAID_OUT, currency), amount),
            (Account(PLATFORM, PLATFORM_ID, PAID_CONTROL, currency), -amount),
        ),
    )


def payout_failed(affiliate_id: int, currency: str, amount: int, key: str) -> Posting:
    """The bank refused: the money returns to the affiliate's available balance."""
    return Posting(
        key=key,
        kind="payout_failed",
        currency=currency,
        entries=(
            (Account(PLATFORM, PLATFORM_ID, PAYOUT_CLEARING, currency), amount),
            (Account(AFFILIATE, affiliate_id, AVAILABLE, currency), -amount),
        ),
    )

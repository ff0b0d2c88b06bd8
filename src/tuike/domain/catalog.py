"""The catalog: merchants, programs, affiliates and what ties them together."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from tuike.domain.commission import CommissionPlan
from tuike.domain.fraud import FraudConfig
from tuike.domain.fraud.quality import QualityReason

CHANNEL_KINDS = ("website", "sns", "forum", "im", "blog", "app")
MEMBERSHIP_STATUSES = ("applied", "approved", "rejected", "banned")
MEMBERSHIP_MOVES: dict[str, frozenset[str]] = {
    "applied": frozenset({"approved", "rejected"}),
    "approved": frozenset({"banned"}),
    "rejected": frozenset({"approved"}),
    "banned": frozenset({"approved"}),
}
ACTIVE, PAUSED = "active", "paused"
ROLES = ("operator", "merchant", "affiliate", "program")


@dataclass(frozen=True, slots=True)
class Merchant:
    """A shop or app that runs affiliate programs."""

    id: int
    name: str
    timezone: str
    created_at: datetime
    status: str = "active"  # pending (signed up, awaiting the operator) | active | banned


@dataclass(frozen=True, slots=True)
class Program:
    """An affiliate program: what a merchant pays for, and how clicks land."""

    id: int
    public_id: str
    merchant_id: int
    name: str
    currency: str
    landing_url: str
    fallback_url: str | None
    allowed_domains: tuple[str, ...]
    click_param: str
    cookie_days: int
    lock_days: int
    plan: CommissionPlan
    status: str
    require_signature: bool
    pixel_pending_review: bool
    category: str
    timezone: str
    created_at: datetime
    fee_rate_ppm: int = 0  # the platform's service fee, parts per million of commission
    fee_mode: str = "on_top"  # on_top: the merchant pays it; deducted: the affiliate does
    override_rate_ppm: int = 0  # two-tier: the recruiter's share of a recruit's commission
    # Traffic-quality settings (docs/fraud-rules.md).
    fraud: FraudConfig = field(default_factory=FraudConfig)

    @property
    def cookie_window(self) -> timedelta:
        """Return the attribution window."""
        return timedelta(days=self.cookie_days)

    @property
    def active(self) -> bool:
        """Tell whether the program takes traffic."""
        return self.status == ACTIVE


@dataclass(frozen=True, slots=True)
class Channel:
    """Where an affiliate promotes: a website, SNS account, forum, IM group, blog or app."""

    id: int
    affiliate_id: int
    kind: str
    name: str
    url: str


@dataclass(frozen=True, slots=True)
class Affiliate:
    """A publisher who promotes programs and earns commissions."""

    id: int
    name: str
    email: str
    status: str
    timezone: str
    created_at: datetime
    channels: tuple[Channel, ...] = field(default=())
    # Traffic quality of the whole book (0-100, 100 is clean; None: not assessed yet), and
    # whether it is low enough to flag the affiliate for the operator (fraud-rules.md).
    quality_score: int | None = None
    quality_flagged: bool = False
    # The rules behind the score, with their evidence (None: none fired or not assessed);
    # show them through ``reasons_seen_by``, never raw to a merchant.
    quality_reasons: tuple[QualityReason, ...] | None = None


@dataclass(frozen=True, slots=True)
class Membership:
    """An affiliate's standing in a program, and its commission group."""

    id: int
    program_id: int
    affiliate_id: int
    status: str
    group: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Creative:
    """A banner, text link or QR image a program offers its affiliates."""

    id: int
    program_id: int
    kind: str
    name: str
    image_url: str | None
    landing_url: str | None
    width: int | None
    height: int | None
    body: str | None = None
    status: str = "active"


@dataclass(frozen=True, slots=True)
class Link:
    """A tracking link: one affiliate, one program, optional creative, deep link and subs."""

    id: int
    code: str
    program_id: int
    affiliate_id: int
    creative_id: int | None
    landing_url: str | None
    subs: tuple[str, str, str, str, str]
    status: str
    created_at: datetime

    @property
    def active(self) -> bool:
        """Tell whether the link takes traffic."""
        return self.status == ACTIVE


@dataclass(frozen=True, slots=True)
class Coupon:
    """A coupon code owned by an affiliate; orders using it are attributed to them."""

    id: int
    program_id: int
    affiliate_id: int
    code: str
    status: str = "active"

"""Pydantic schemas of the API: what goes over the wire, never ORM rows."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

from tuike.domain.catalog import (
    Affiliate,
    Coupon,
    Creative,
    Link,
    Membership,
    Merchant,
    Program,
)
from tuike.domain.commission import plan_to_dict
from tuike.domain.fraud.quality import QualityReason, reasons_seen_by
from tuike.services.directory import Listing
from tuike.services.keys import KeyInfo

Money = str
Id = Annotated[int, Field(ge=1, le=2**63 - 1)]


class Strict(BaseModel):
    """A request body that refuses unknown fields."""

    model_config = ConfigDict(extra="forbid")


class MerchantIn(Strict):
    name: str = Field(max_length=200)
    timezone: str | None = Field(None, description="IANA zone; default TUIKE_DEFAULT_TIMEZONE")


class MerchantOut(BaseModel):
    id: int
    name: str
    timezone: str
    status: str = Field(description="pending (awaiting the operator) | active | banned")

    @classmethod
    def of(cls, m: Merchant) -> MerchantOut:
        return cls(id=m.id, name=m.name, timezone=m.timezone, status=m.status)


class ProgramIn(Strict):
    merchant_id: Id | None = Field(None, description="Required for operator keys.")
    name: str
    currency: str = Field("CNY", description="ISO 4217 code")
    landing_url: str
    fallback_url: str | None = None
    allowed_domains: list[str] = []
    click_param: str = "tk_click"
    cookie_days: int | None = Field(
        None, description="Default: the platform's default_cookie_days (30 unless changed)."
    )
    lock_days: int = 30
    commission_plan: dict[str, Any] = Field(
        description='e.g. {"cps_percent": "10", "category_percent": {"phones": "3"}, '
        '"fixed": {"lead": "5.00"}, "groups": {"vip": {"cps_percent": "12"}}}'
    )
    require_signature: bool = False
    pixel_pending_review: bool = False
    fraud_config: dict[str, Any] | None = Field(
        None,
        description='Fraud settings, e.g. {"hold_score": 50, "reject_score": 90, '
        '"invalid_click_score": 60, "target_countries": ["CN"], "disabled": ["coupon_leakage"]}'
        " (docs/fraud-rules.md); keys left out take their defaults.",
    )
    category: str = ""
    timezone: str | None = None
    fee_rate: str | None = Field(
        None, description='Service fee, a share of the commission ("0.10"); operator only.'
    )
    fee_mode: str | None = Field(
        None,
        description="on_top (the merchant pays the fee) or deducted (the affiliate does); "
        "operator only.",
    )
    override_rate: str | None = Field(
        None,
        description="Two-tier: the recruiter's share of a recruit's commission, paid by the "
        'platform ("0.05"); operator only.',
    )


class ProgramPatch(Strict):
    name: str | None = None
    landing_url: str | None = None
    fallback_url: str | None = None
    allowed_domains: list[str] | None = None
    click_param: str | None = None
    cookie_days: int | None = None
    lock_days: int | None = None
    commission_plan: dict[str, Any] | None = None
    status: str | None = None
    require_signature: bool | None = None
    pixel_pending_review: bool | None = None
    fraud_config: dict[str, Any] | None = Field(
        None,
        description='Fraud settings, e.g. {"hold_score": 50, "reject_score": 90, '
        '"invalid_click_score": 60, "target_countries": ["CN"], "disabled": ["coupon_leakage"]}'
        " (docs/fraud-rules.md); keys left out take their defaults.",
    )
    category: str | None = None
    timezone: str | None = None
    fee_rate: str | None = Field(
        None, description='Service fee, a share of the commission ("0.10"); operator only.'
    )
    fee_mode: str | None = Field(
        None,
        description="on_top (the merchant pays the fee) or deducted (the affiliate does); "
        "operator only.",
    )
    override_rate: str | None = Field(
        None,
        description="Two-tier: the recruiter's share of a recruit's commission, paid by the "
        'platform ("0.05"); operator only.',
    )


class ProgramOut(BaseModel):
    id: int
    public_id: str
    merchant_id: Id
    name: str
    currency: str
    landing_url: str
    fallback_url: str | None
    allowed_domains: list[str]
    click_param: str
    cookie_days: int
    lock_days: int
    commission_plan: dict[str, Any]
    status: str
    require_signature: bool
    pixel_pending_review: bool
    category: str
    timezone: str
    fee_rate: str = Field(description="The platform's service fee, a share of the commission.")
    fee_mode: str
    override_rate: str
    postback_secret: str | None = Field(None, description="Shown to the program's merchant only.")
    fraud_config: dict[str, Any] | None = Field(
        None, description="The fraud settings in force; shown to its merchant and the operator."
    )

    @classmethod
    def of(cls, p: Program, secret: str | None = None, *, manager: bool = False) -> ProgramOut:
        return cls(
            id=p.id,
            public_id=p.public_id,
            merchant_id=p.merchant_id,
            name=p.name,
            currency=p.currency,
            landing_url=p.landing_url,
            fallback_url=p.fallback_url,
            allowed_domains=list(p.allowed_domains),
            click_param=p.click_param,
            cookie_days=p.cookie_days,
            lock_days=p.lock_days,
            commission_plan=plan_to_dict(p.plan),
            status=p.status,
            require_signature=p.require_signature,
            pixel_pending_review=p.pixel_pending_review,
            category=p.category,
            timezone=p.timezone,
            fee_rate=str((Decimal(p.fee_rate_ppm) / 1_000_000).normalize()),
            fee_mode=p.fee_mode,
            override_rate=str((Decimal(p.override_rate_ppm) / 1_000_000).normalize()),
            postback_secret=secret,
            fraud_config=p.fraud.as_dict() if manager else None,
        )


class ChannelIn(Strict):
    kind: str = Field(description="website | sns | forum | im | blog | app")
    name: str
    url: str = Field(description="URL or handle")


class AffiliateIn(Strict):
    name: str
    email: str
    timezone: str | None = Field(None, description="IANA zone; default TUIKE_DEFAULT_TIMEZONE")
    channels: list[ChannelIn] = []
    recruited_by: Id | None = Field(
        None, description="The affiliate who recruited this one (earns two-tier overrides)."
    )


class ChannelOut(BaseModel):
    id: int
    kind: str
    name: str
    url: str


class QualityReasonOut(BaseModel):
    code: str = Field(description="The quality rule that fired (docs/fraud-rules.md)")
    weight: int = Field(description="Points it takes off the score")
    evidence: str | None = Field(
        description="What the job found; null when withheld (another merchant's program)"
    )
    program_id: int | None = Field(
        None, description="The program the evidence comes from (null: none, or withheld)"
    )
    withheld: bool = Field(False, description="The evidence comes from another merchant's program")

    @classmethod
    def of(cls, r: QualityReason) -> QualityReasonOut:
        return cls(
            code=r.code,
            weight=r.weight,
            evidence=None if r.withheld else r.evidence,
            program_id=r.program_id,
            withheld=r.withheld,
        )


class AffiliateOut(BaseModel):
    id: int
    name: str
    email: str | None
    status: str
    timezone: str
    channels: list[ChannelOut]
    quality_score: int | None = Field(
        None,
        description="Traffic quality 0-100 (100 is clean); null until first assessed, and "
        "always null for affiliate keys",
    )
    quality_reasons: list[QualityReasonOut] | None = Field(
        None,
        description="The rules behind quality_score, strongest first; null when none fired, "
        "and for affiliate keys. A merchant reads the evidence of its own programs only.",
    )

    @classmethod
    def of(
        cls,
        a: Affiliate,
        *,
        private: bool,
        quality: bool,
        programs: Collection[int] | None = None,
    ) -> AffiliateOut:
        """``quality``: the caller sees the score and its reasons (merchants, the operator;
        never affiliates); ``programs``: the caller's programs (None: all, the operator)."""
        reasons = reasons_seen_by(a.quality_reasons or (), programs) if quality else ()
        return cls(
            id=a.id,
            name=a.name,
            email=a.email if private else None,
            status=a.status,
            timezone=a.timezone,
            channels=[ChannelOut(id=c.id, kind=c.kind, name=c.name, url=c.url) for c in a.channels],
            quality_score=a.quality_score if quality else None,
            quality_reasons=[QualityReasonOut.of(r) for r in reasons] or None,
        )


class DirectoryChannelOut(BaseModel):
    kind: str = Field(description="website | sns | forum | im | blog | app")
    host: str | None = Field(None, description="The host of a website or blog channel")


class DirectoryEntryOut(BaseModel):
    rank: int = Field(description="Place in this filtered list, 1 the best")
    affiliate_id: int
    name: str
    channels: list[DirectoryChannelOut]
    categories: list[str] = Field(description="Categories of the programs it is approved in")
    quality_score: int | None = Field(description="Traffic quality 0-100; null: not assessed")
    quality_flagged: bool
    epc_band: str = Field(
        description="EPC over the last 30 days against the network: top_10 | top_25 | "
        "top_50 | bottom_50 | unrated (no clicks in a program that paid commission)"
    )

    @classmethod
    def of(cls, listing: Listing) -> DirectoryEntryOut:
        return cls(
            rank=listing.rank,
            affiliate_id=listing.affiliate_id,
            name=listing.name,
            channels=[
                DirectoryChannelOut(kind=kind, host=host or None) for kind, host in listing.channels
            ],
            categories=list(listing.categories),
            quality_score=listing.quality_score,
            quality_flagged=listing.flagged,
            epc_band=listing.band,
        )


class MembershipIn(Strict):
    affiliate_id: Id | None = Field(None, description="Required for operator keys.")


class MembershipPatch(Strict):
    status: str = Field(description="approved | rejected | banned")
    group: str | None = Field(None, description="Commission group (plan 'groups' key)")


class MembershipOut(BaseModel):
    id: int
    program_id: Id
    affiliate_id: Id
    status: str
    group: str

    @classmethod
    def of(cls, m: Membership) -> MembershipOut:
        return cls(
            id=m.id,
            program_id=m.program_id,
            affiliate_id=m.affiliate_id,
            status=m.status,
            group=m.group,
        )


class CreativeIn(Strict):
    kind: str = Field(description="banner | text | html | qr | video")
    name: str
    body: str | None = Field(
        None,
        description="text: the link text; html: a snippet, sanitised, where {link} stands "
        "for the affiliate's tracking link. Banner files are uploaded to /banners.",
    )
    image_url: str | None = None
    landing_url: str | None = None
    width: int | None = None
    height: int | None = None


class CreativeOut(BaseModel):
    id: int
    program_id: Id
    kind: str
    name: str
    image_url: str | None
    landing_url: str | None
    width: int | None
    height: int | None
    body: str | None
    status: str

    @classmethod
    def of(cls, c: Creative, base_url: str = "") -> CreativeOut:
        out = cls(**{f: getattr(c, f) for f in cls.model_fields})
        if out.image_url and out.image_url.startswith("/"):
            out.image_url = base_url.rstrip("/") + out.image_url
        return out


class StatusPatch(Strict):
    status: str = Field(description="creatives: active | archived; coupons: active | revoked")


class InviteIn(Strict):
    group: str = Field("", description="The commission group joiners are put in")
    max_uses: int | None = None
    expires_days: int | None = None


class InviteOut(BaseModel):
    id: int
    program_id: Id
    group: str
    max_uses: int | None
    uses: int
    expires_at: datetime | None
    revoked_at: datetime | None
    created_at: datetime
    url: str | None = Field(None, description="The link to send; only in the answer that made it")


class InviteAccept(Strict):
    token: str


class AnnouncementIn(Strict):
    title: str
    body: str
    group: str | None = Field(None, description="Only this group; omit for every affiliate")


class AnnouncementOut(BaseModel):
    id: int
    program_id: Id
    group: str | None
    title: str
    body: str
    created_at: datetime


class LinkIn(Strict):
    program_id: Id
    affiliate_id: Id | None = Field(None, description="Required for operator keys.")
    landing_url: str | None = Field(None, description="Deep link on an allowed domain")
    creative_id: Id | None = None
    sub1: str | None = None
    sub2: str | None = None
    sub3: str | None = None
    sub4: str | None = None
    sub5: str | None = None


class LinkPatch(Strict):
    status: str = Field(description="active | paused")


class LinkOut(BaseModel):
    id: int
    code: str
    url: str = Field(description="The tracking URL to share")
    program_id: Id
    affiliate_id: Id
    creative_id: int | None
    landing_url: str | None
    sub1: str
    sub2: str
    sub3: str
    sub4: str
    sub5: str
    status: str

    @classmethod
    def of(cls, link: Link, base_url: str) -> LinkOut:
        return cls(
            id=link.id,
            code=link.code,
            url=f"{base_url.rstrip('/')}/c/{link.code}",
            program_id=link.program_id,
            affiliate_id=link.affiliate_id,
            creative_id=link.creative_id,
            landing_url=link.landing_url,
            sub1=link.subs[0],
            sub2=link.subs[1],
            sub3=link.subs[2],
            sub4=link.subs[3],
            sub5=link.subs[4],
            status=link.status,
        )


class CouponIn(Strict):
    program_id: Id
    affiliate_id: Id
    code: str


class CouponOut(BaseModel):
    id: int
    program_id: Id
    affiliate_id: Id
    code: str
    status: str = Field(description="active | revoked (a revoked code no longer attributes)")

    @classmethod
    def of(cls, c: Coupon) -> CouponOut:
        return cls(
            id=c.id,
            program_id=c.program_id,
            affiliate_id=c.affiliate_id,
            code=c.code,
            status=c.status,
        )


class ItemIn(BaseModel):
    sku: str | None = None
    category: str | None = None
    amount: Any = Field(None, description='Unit price as a decimal string, e.g. "99.00"')
    quantity: Any = 1


class ConversionIn(BaseModel):
    """A conversion (spec section 2). Money is a decimal string, never a float."""

    model_config = ConfigDict(extra="forbid")

    event: str = Field("sale", description="sale | lead | install | a custom action key")
    order_id: Any = Field(description="Merchant's id; unique per program and event")
    click_id: Any = None
    amount: Any = Field(None, description='Decimal string, e.g. "199.00"')
    currency: Any = None
    status: Any = Field("pending", description="pending | approved | rejected | refunded")
    refund_amount: Any = Field(None, description="Total refunded so far (partial refunds)")
    items: Any = None
    coupon: Any = None
    customer_id: Any = None
    occurred_at: Any = Field(None, description="ISO 8601 with offset")
    ip: Any = Field(None, description="The buyer's IP address (fraud rules; kept hashed)")
    user_agent: Any = Field(None, description="The buyer's browser (fraud rules; kept hashed)")
    device_id: Any = Field(
        None, description="The buyer's device id, e.g. an app's (fraud rules; kept hashed)"
    )


class ConversionOut(BaseModel):
    conversion_id: str
    status: str
    attributed: bool
    affiliate_id: int | None
    commission: Money
    currency: str
    amount: Money
    refunded_amount: Money
    event: str
    order_id: str
    attribution: str
    fraud_score: int | None = Field(
        None, description="0-100, the weights of the fraud rules that fired (not to affiliates)"
    )
    held: bool | None = Field(
        None, description="Waiting for a review: a fraud hold, or a pixel under review"
    )
    duplicate: bool | None = None


class KeyIn(Strict):
    role: str = Field(description="operator | merchant | affiliate | program")
    owner_id: Id | None = None
    name: str = "api"


class KeyOut(BaseModel):
    key: str = Field(description="Shown once; only its hash is stored")
    role: str
    owner_id: int | None


class KeyInfoOut(BaseModel):
    """A key as listed: never the key itself, only its first characters."""

    id: int
    prefix: str = Field(description="The key's first 10 characters, to recognise it")
    role: str
    owner_id: int | None
    name: str
    user_id: int | None = Field(description="The portal user the key was made by, if any")
    created_at: datetime
    revoked_at: datetime | None

    @classmethod
    def of(cls, k: KeyInfo) -> KeyInfoOut:
        return cls(
            id=k.id,
            prefix=k.prefix,
            role=k.role,
            owner_id=k.owner_id,
            name=k.name,
            user_id=k.user_id,
            created_at=k.created_at,
            revoked_at=k.revoked_at,
        )


class MeOut(BaseModel):
    role: str
    owner_id: int | None
    user_id: int | None = Field(None, description="The portal user the key acts for, if any")


class PlatformSettingsOut(BaseModel):
    """The platform settings in force (see docs/settings.md, "Platform settings")."""

    affiliate_signup_open: bool
    merchant_signup_open: bool
    platform_name: str
    support_email: str
    default_cookie_days: int


class PlatformSettingsPatch(Strict):
    """The settings to change; keys left out keep their value. Types are not coerced."""

    affiliate_signup_open: StrictBool | None = None
    merchant_signup_open: StrictBool | None = None
    platform_name: StrictStr | None = Field(None, description="1 to 60 characters")
    support_email: StrictStr | None = Field(None, description="An email address, or empty")
    default_cookie_days: StrictInt | None = Field(None, description="0 to 365")

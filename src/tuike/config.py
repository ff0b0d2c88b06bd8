"""Settings: one typed object read from TUIKE_* environment variables.

Every field is documented in docs/settings.md (a test fails when one is missing).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:
    from tuike.adapters.outbound import Policy
    from tuike.domain.fraud.conversion import Thresholds
    from tuike.domain.fraud.quality import QualitySettings

DEV_SECRET = "dev-insecure-secret-change-me"  # noqa: S105 - refused outside development
# Owners of hosting networks in the ASN data: generic words, then the large clouds and
# hosting companies whose names do not say so. CDNs that carry real users (Cloudflare
# WARP, iCloud Private Relay on Akamai and Fastly) are deliberately not in it.
DATACENTER_NETWORKS = (
    r"\b(?:hosting|hoster|datacenters?|data[ -]cent(?:er|re)s?|idc|vps|vds|dedicated|"
    r"colocation|servers?|cloud)\b|amazon|google-cloud|microsoft-corp|digitalocean|hetzner|"
    r"\bovh|linode|choopa|vultr|alibaba|aliyun|tencent|huawei|oracle|contabo|scaleway|"
    r"online s\.a\.s|leaseweb|m247|datacamp|hostinger|selectel|colocrossing|hivelocity|"
    r"clouvider|zenlayer|psychz|quadranet|ionos|godaddy|rackspace|softlayer|equinix|"
    r"limestone|frantech|hostwinds|kamatera|upcloud|worldstream|nforce|serverius|"
    r"servermania|servers-com|fdcservers|egihosting|hostroyale|cdn77|datapacket|g-core|"
    r"gcore|baidu|kingsoft|ucloud|ksyun|qingcloud|jdcloud|volcengine|bytedance"
)


class Settings(BaseSettings):
    """The settings of one tuike installation."""

    model_config = SettingsConfigDict(env_prefix="TUIKE_", env_file=None, extra="ignore")

    env: Literal["development", "test", "production"] = Field(
        "development", description="Deployment kind; production refuses default secrets."
    )
    database_url: str = Field(
        "sqlite:///./var/tuike.db",
        description="SQLAlchemy URL: sqlite:///path or postgresql+psycopg://user@host/db.",
    )
    database_echo: bool = Field(False, description="Log every SQL statement (debugging).")
    secret_key: str = Field(
        DEV_SECRET, description="Signs sessions and CSRF tokens; must be set in production."
    )
    privacy_salt: str = Field(
        DEV_SECRET,
        description="Salt for hashed IPs, visitor keys and customer ids; set in production.",
    )
    ip_storage: Literal["full", "truncated", "hashed"] = Field(
        "truncated",
        description="How click IPs are kept: full, truncated (/24 or /48) or hashed.",
    )
    public_url: str = Field(
        "http://127.0.0.1:8000",
        description="Base URL under which the tracker is reached, used to print links.",
    )
    forwarded_allow_ips: str = Field(
        "127.0.0.1,::1",
        description="Comma-separated addresses or networks of the reverse proxies whose "
        "X-Forwarded-For and X-Forwarded-Proto are believed; '*' trusts every peer.",
    )
    country_header: str = Field(
        "",
        description="Request header a CDN sets with the visitor's country (CF-IPCountry); "
        "empty means no country is recorded.",
    )
    unique_window_hours: int = Field(
        24, ge=1, description="A visitor's repeat clicks on a link count once in this window."
    )
    unique_cache_size: int = Field(
        1_000_000, ge=1000, description="Visitors remembered for unique-click detection."
    )
    fraud_click_checks: bool = Field(
        True,
        description="Score every click with the click-time rules of docs/fraud-rules.md; "
        "false keeps only the declared-bot rule (for comparison and emergencies).",
    )
    fraud_bot_ua_exceptions: str = Field(
        r"AP3A\.240617\.008,MetaIAB Facebook",
        description="Comma-separated patterns of the crawler-user-agents list left out "
        "because they match ordinary browsers (exact pattern text).",
    )
    fraud_datacenter_networks: str = Field(
        DATACENTER_NETWORKS,
        description="Regular expression (case-insensitive) over network owner names of the "
        "ASN data: a match makes an address a hosting network; empty turns the rule off.",
    )
    fraud_asn_data: str = Field(
        "",
        description="Path of a geoip2fast ASN data file (.dat.gz); empty uses the one the "
        "geoip2fast package ships.",
    )
    fraud_window_seconds: int = Field(
        60, ge=1, le=3600, description="The window of the click-velocity and burst rules."
    )
    fraud_window_keys: int = Field(
        50_000,
        ge=100,
        description="Most keys (IP, visitor, /24 … per link or affiliate) each click counter "
        "remembers per window; past it the window restarts early.",
    )
    fraud_repeat_clicks: int = Field(
        3, ge=2, description="repeat_visitor: a visitor's Nth click on one link in the window."
    )
    fraud_visitor_clicks: int = Field(
        10, ge=2, description="visitor_velocity: a visitor's clicks on one affiliate's links."
    )
    fraud_ip_link_clicks: int = Field(
        20, ge=2, description="ip_velocity: clicks from one IP on one link in the window."
    )
    fraud_ip_affiliate_clicks: int = Field(
        60, ge=2, description="affiliate_ip_velocity: clicks from one IP on one affiliate."
    )
    fraud_subnet_clicks: int = Field(
        100, ge=2, description="subnet_burst: clicks from one /24 (/48) on one affiliate."
    )
    fraud_device_model_clicks: int = Field(
        20, ge=2, description="device_model_burst: clicks from one phone model on one affiliate."
    )
    fraud_device_model_share: int = Field(
        50,
        ge=1,
        le=100,
        description="device_model_burst: and at least this percentage of the affiliate's "
        "clicks in the window.",
    )
    fraud_farm_window_seconds: int = Field(
        600, ge=1, le=86_400, description="device_farm: the window of a /24's clicks."
    )
    fraud_farm_clicks: int = Field(
        6,
        ge=2,
        description="device_farm: clicks naming a phone model from one /24 on one affiliate's "
        "links in the farm window ...",
    )
    fraud_farm_models: int = Field(
        3, ge=1, description="device_farm: ... that name at most this many phone models."
    )
    fraud_farm_memory_seconds: int = Field(
        86_400,
        ge=0,
        description="device_farm: how long every click from a caught /24 on that affiliate's "
        "links stays caught (0: only the burst itself).",
    )
    tracker_mode: Literal["durable", "fast"] = Field(
        "durable",
        description="durable: a click's 302 is sent only after its group is committed; "
        "fast: the 302 is sent at once and a crash can lose up to one group of clicks.",
    )
    writer_max_delay_ms: float = Field(
        2.0,
        ge=0,
        le=1000,
        description="How long the click writer gathers clicks into one group before it "
        "commits (milliseconds).",
    )
    writer_max_batch: int = Field(
        2000, ge=1, description="Most clicks the click writer commits in one group."
    )
    writer_process: bool = Field(
        True,
        description="Commit clicks from a writer process of its own (true) rather than a "
        "thread of each server process: the event loop then keeps the GIL to itself.",
    )
    writer_queue_limit: int = Field(
        20_000,
        ge=1,
        description="Most clicks waiting for the writer; past it the tracker answers 503 "
        "with Retry-After instead of growing memory.",
    )
    payout_minimums: str = Field(
        "CNY:100.00,USD:50.00,EUR:50.00",
        description="The smallest payout per currency (CUR:amount, comma-separated); "
        "smaller balances carry over to the next batch.",
    )
    settlement_cutoff_day: int = Field(
        1,
        ge=1,
        le=28,
        description="Day of the month a monthly settlement period starts (midnight in the "
        "default time zone).",
    )
    approve_interval_seconds: int = Field(
        60,
        ge=0,
        description="How often `tuike serve` approves conversions whose lock period has "
        "passed; 0 turns the in-process job off (run `tuike approve-due` from cron).",
    )
    postback_interval_seconds: int = Field(
        10,
        ge=0,
        description="How often `tuike serve` sends the affiliate postbacks that are due; "
        "0 turns the in-process job off (run `tuike deliver-postbacks` from cron).",
    )
    outbound_allow_networks: str = Field(
        "",
        description="Comma-separated networks (CIDR) that outgoing postbacks may reach "
        "although they are internal, e.g. 127.0.0.0/8 for tests; empty allows none.",
    )
    max_future_seconds: int = Field(
        3600, ge=0, description="How far in the future a conversion's occurred_at may lie."
    )
    banner_max_bytes: int = Field(
        300_000,
        ge=1_000,
        le=10_000_000,
        description="Largest banner file a merchant may upload (bytes).",
    )
    session_hours: int = Field(
        12, ge=1, le=24 * 30, description="How long a portal sign-in lasts (hours)."
    )
    login_max_failures: int = Field(
        5,
        ge=1,
        description="Failed portal logins allowed per email address in the login window; "
        "further attempts are refused without checking the password.",
    )
    login_max_failures_per_ip: int = Field(
        30,
        ge=1,
        description="Failed portal logins allowed per client address in the window; also the "
        "requests per address to the API's public sign-up (and password) routes.",
    )
    login_window_minutes: int = Field(
        15, ge=1, description="The window of the login rate limit (minutes)."
    )
    default_timezone: str = Field(
        "Asia/Shanghai", description="Time zone for new merchants, affiliates and reports."
    )
    # Retention of the data kept only for security and fraud checks (services/retention.py).
    retention_interval_seconds: int = Field(
        3600,
        ge=0,
        description="How often `tuike serve` purges the security data past its retention "
        "(identity marks, login attempts, postback log, abuse reporters); 0 turns the "
        "in-process job off (run `tuike purge` from cron).",
    )
    postback_log_days: int = Field(
        30,
        ge=0,
        description="How long a finished affiliate postback (delivered, failed or refused) "
        "stays in the delivery log (days); 0 keeps them all.",
    )
    abuse_reporter_days: int = Field(
        90,
        ge=0,
        description="How long an abuse report keeps its reporter's email address and hashed "
        "address (days); the report itself stays. 0 keeps them.",
    )
    # Affiliate quality (docs/fraud-rules.md, "Over an affiliate's book").
    fraud_quality_interval_seconds: int = Field(
        3600,
        ge=0,
        description="How often `tuike serve` recomputes the affiliates' quality scores; 0 "
        "turns the in-process job off (run `tuike fraud quality` from cron).",
    )
    fraud_quality_window_days: int = Field(
        30, ge=1, le=366, description="The days of traffic an affiliate's quality is judged on."
    )
    fraud_quality_flag_below: int = Field(
        75,
        ge=0,
        le=101,
        description="An affiliate whose quality score is below this is flagged for the operator.",
    )
    fraud_quality_alpha: float = Field(
        0.001,
        gt=0,
        lt=0.5,
        description="Tail probability under which an affiliate's count is an outlier against "
        "its program's baseline (Beta-binomial).",
    )
    fraud_quality_ratio: float = Field(
        2.0,
        ge=1.0,
        description="How far from the program's baseline an outlying rate must also be, as a "
        "factor (above: at least this times it; below: at most its fraction).",
    )
    fraud_quality_min_clicks: int = Field(
        200,
        ge=1,
        description="Clicks an affiliate needs in a program before its click-based "
        "rates are judged.",
    )
    fraud_quality_min_conversions: int = Field(
        10,
        ge=1,
        description="Conversions (or sales) an affiliate needs in a program before its "
        "conversion-based rates are judged.",
    )
    fraud_quality_late_share: float = Field(
        0.5,
        gt=0,
        le=1,
        description="Share of an affiliate's conversions more than 24 h after their click "
        "from which click flooding is considered.",
    )
    fraud_quality_invalid_share: float = Field(
        0.3, gt=0, le=1, description="Share of an affiliate's clicks filtered that counts."
    )
    fraud_quality_open_reports: int = Field(
        3,
        ge=1,
        description="Open abuse reports against an affiliate that count as much as an upheld one.",
    )
    # Conversion-time fraud rules (docs/fraud-rules.md); 0 turns a rule off everywhere.
    fraud_ctit_sale_seconds: float = Field(
        5,
        ge=0,
        description="A sale reported sooner than this after its click is suspect "
        "(rule ctit_too_short).",
    )
    fraud_ctit_install_seconds: float = Field(
        30,
        ge=0,
        description="An install reported sooner than this after its click is suspect "
        "(rule ctit_too_short).",
    )
    fraud_ctit_other_seconds: float = Field(
        3,
        ge=0,
        description="A lead or custom event reported sooner than this after its click is "
        "suspect (rule ctit_too_short).",
    )
    fraud_self_referral_days: int = Field(
        180,
        ge=0,
        description="How long an address or device an affiliate signed in from counts as "
        "theirs for the rule self_referral (days).",
    )
    fraud_duplicate_window_hours: int = Field(
        24,
        ge=0,
        description="Orders of the same amount by the same buyer within this window are "
        "duplicate-like (rule duplicate_like_order, hours).",
    )
    fraud_coupon_min_clicks: int = Field(
        1,
        ge=0,
        description="A coupon order whose owner sent the program fewer clicks in the cookie "
        "window is coupon leakage (rule coupon_leakage).",
    )

    @field_validator("outbound_allow_networks")
    @classmethod
    def _check_networks(cls, value: str) -> str:
        if not value.strip():
            return value
        from tuike.adapters.outbound import parse_networks  # imports httpx: only when set

        try:
            parse_networks(value)
        except ValueError as exc:
            raise ValueError(f"not a comma-separated list of networks: {exc}") from None
        return value

    @field_validator("fraud_datacenter_networks")
    @classmethod
    def _check_datacenter_networks(cls, value: str) -> str:
        import re

        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from None
        return value

    @model_validator(mode="after")
    def _refuse_default_secrets(self) -> Settings:
        if self.env == "production":
            for name in ("secret_key", "privacy_salt"):
                if getattr(self, name) == DEV_SECRET:
                    raise ValueError(f"TUIKE_{name.upper()} must be set in production")
        return self

    @property
    def is_sqlite(self) -> bool:
        """Tell whether the database is embedded SQLite."""
        return self.database_url.startswith("sqlite")

    def quality_settings(self) -> QualitySettings:
        """Return the thresholds of the affiliate quality rules."""
        from tuike.domain.fraud.quality import QualitySettings

        return QualitySettings(
            alpha=self.fraud_quality_alpha,
            ratio=self.fraud_quality_ratio,
            min_clicks=self.fraud_quality_min_clicks,
            min_conversions=self.fraud_quality_min_conversions,
            late_share=self.fraud_quality_late_share,
            invalid_share=self.fraud_quality_invalid_share,
            open_reports=self.fraud_quality_open_reports,
            flag_below=self.fraud_quality_flag_below,
        )

    def conversion_thresholds(self) -> Thresholds:
        """Return the thresholds of the conversion-time fraud rules."""
        from tuike.domain.fraud.conversion import Thresholds

        return Thresholds(
            ctit_sale=timedelta(seconds=self.fraud_ctit_sale_seconds),
            ctit_install=timedelta(seconds=self.fraud_ctit_install_seconds),
            ctit_other=timedelta(seconds=self.fraud_ctit_other_seconds),
            self_referral_days=self.fraud_self_referral_days,
            duplicate_window=timedelta(hours=self.fraud_duplicate_window_hours),
            coupon_min_clicks=self.fraud_coupon_min_clicks,
        )

    def outbound_policy(self) -> Policy:
        """Return the rules of outgoing requests (postbacks) for these settings."""
        from tuike.adapters.outbound import Policy, parse_networks

        return Policy(allow_networks=parse_networks(self.outbound_allow_networks))

    def sqlite_path(self) -> Path | None:
        """Return the SQLite file path, if the database is a SQLite file."""
        if not self.is_sqlite:
            return None
        path = self.database_url.split("///", 1)[-1]
        return None if path in ("", ":memory:") else Path(path)


SECRET_FIELDS = frozenset({"secret_key", "privacy_salt"})


def redact_url(url: str) -> str:
    """Return a database URL with its password replaced by ``***``."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        return f"{scheme}://{creds.split(':')[0]}:***@{host}" if ":" in creds else url
    return url


@dataclass(frozen=True, slots=True)
class EffectiveSetting:
    """One environment setting as the operator console shows it: secrets never in clear."""

    variable: str
    value: str
    secret: bool
    is_default: bool


def effective_settings(settings: Settings) -> list[EffectiveSetting]:
    """Return every setting's variable and value, secrets masked, URLs without passwords."""
    out = []
    for name, field in Settings.model_fields.items():
        value = getattr(settings, name)
        secret = name in SECRET_FIELDS
        if secret:
            shown = "********"
        elif name == "database_url":
            shown = redact_url(value)
        else:
            shown = str(value).lower() if isinstance(value, bool) else str(value)
        out.append(EffectiveSetting(f"TUIKE_{name.upper()}", shown, secret, value == field.default))
    return out


@lru_cache
def get_settings() -> Settings:
    """Return the settings read from the environment (cached)."""
    return Settings()

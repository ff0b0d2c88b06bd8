"""The schema, as SQLAlchemy Core tables. Alembic migrations are generated from it."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from tuike.storage.types import BigId, UTCDateTime

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


def _subs() -> list[Column]:
    return [Column(f"sub{i}", String(255), nullable=False, server_default="") for i in range(1, 6)]


merchants = Table(
    "merchants",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False),
    Column("timezone", String(64), nullable=False),
    # Prepaid merchants' programs pause themselves when funds plus credit run out.
    Column("prepaid", Boolean, nullable=False, server_default="0"),
    # pending (signed up, awaiting the operator) | active | banned
    Column("status", String(16), nullable=False, server_default="active"),
    Column("created_at", UTCDateTime(), nullable=False),
)

programs = Table(
    "programs",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("public_id", String(32), nullable=False, unique=True),
    Column("merchant_id", BigInteger, ForeignKey("merchants.id"), nullable=False, index=True),
    Column("name", String(200), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("landing_url", String(2048), nullable=False),
    Column("fallback_url", String(2048)),
    Column("allowed_domains", JSON, nullable=False),
    Column("click_param", String(40), nullable=False, server_default="tk_click"),
    Column("cookie_days", Integer, nullable=False),
    Column("lock_days", Integer, nullable=False),
    Column("commission_plan", JSON, nullable=False),
    Column("status", String(16), nullable=False, server_default="active"),
    Column("postback_secret", String(64), nullable=False),
    Column("require_signature", Boolean, nullable=False, server_default="0"),
    Column("pixel_pending_review", Boolean, nullable=False, server_default="0"),
    # Per-program tuning of the fraud rules (thresholds, target countries); see fraud-rules.md.
    Column("fraud_config", JSON),
    Column("category", String(64), nullable=False, server_default=""),
    Column("timezone", String(64), nullable=False),
    # The platform's service fee: parts per million of the commission, and who pays it.
    Column("fee_rate_ppm", Integer, nullable=False, server_default="0"),
    Column("fee_mode", String(16), nullable=False, server_default="on_top"),
    # Two-tier: the recruiter's override, parts per million of the recruit's commission.
    Column("override_rate_ppm", Integer, nullable=False, server_default="0"),
    # Why the program is paused when tuike paused it itself ("unfunded"), else "".
    Column("paused_reason", String(32), nullable=False, server_default=""),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)

affiliates = Table(
    "affiliates",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False),
    Column("email", String(254), nullable=False, unique=True),
    Column("status", String(16), nullable=False, server_default="active"),
    Column("timezone", String(64), nullable=False),
    # The affiliate who recruited this one (earns overrides on its commissions).
    Column("recruited_by", BigInteger, ForeignKey("affiliates.id")),
    # Where payouts go: bank | alipay | paypal, and the account there (IBAN, Alipay id…).
    Column("payout_method", String(16), nullable=False, server_default="bank"),
    Column("payout_account", String(200), nullable=False, server_default=""),
    Column("payout_name", String(200), nullable=False, server_default=""),
    # Traffic quality of the affiliate's whole book (0-100, higher is cleaner), recomputed by
    # the quality job; flagged affiliates are in the operator's queue.
    Column("quality_score", SmallInteger),
    Column("quality_flagged", Boolean, nullable=False, server_default="0"),
    Column("quality_updated_at", UTCDateTime()),
    # The rules that fired in the last run, with their evidence (a JSON list), shown to
    # the operator and the affiliate's merchants beside the score.
    Column("quality_reasons", JSON),
    Column("created_at", UTCDateTime(), nullable=False),
)

channels = Table(
    "channels",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("affiliate_id", BigInteger, ForeignKey("affiliates.id"), nullable=False, index=True),
    Column("kind", String(16), nullable=False),
    Column("name", String(200), nullable=False),
    Column("url", String(2048), nullable=False),
)

memberships = Table(
    "memberships",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("program_id", BigInteger, ForeignKey("programs.id"), nullable=False),
    Column("affiliate_id", BigInteger, ForeignKey("affiliates.id"), nullable=False, index=True),
    Column("status", String(16), nullable=False),
    Column("group", String(40), nullable=False, server_default=""),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    UniqueConstraint("program_id", "affiliate_id", name="uq_memberships_program_affiliate"),
)

creatives = Table(
    "creatives",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("program_id", BigInteger, ForeignKey("programs.id"), nullable=False, index=True),
    Column("kind", String(16), nullable=False),
    Column("name", String(200), nullable=False),
    Column("image_url", String(2048)),
    Column("landing_url", String(2048)),
    Column("width", Integer),
    Column("height", Integer),
    # The anchor text of a text link, or the sanitised markup of an HTML snippet.
    Column("body", Text),
    # archived creatives leave the affiliates' gallery; links made with them keep working.
    Column("status", String(16), nullable=False, server_default="active"),
    Column("created_at", UTCDateTime(), nullable=False),
)

# Uploaded banner files, kept in the database so that every stateless node can serve them.
creative_images = Table(
    "creative_images",
    metadata,
    Column("creative_id", BigInteger, ForeignKey("creatives.id"), primary_key=True),
    Column("content_type", String(32), nullable=False),
    Column("size_bytes", Integer, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("data", LargeBinary, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
)

# Invitation links: whoever opens one joins the program, approved, in its group.
program_invites = Table(
    "program_invites",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("program_id", BigInteger, ForeignKey("programs.id"), nullable=False, index=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("group", String(40), nullable=False, server_default=""),
    Column("max_uses", Integer),
    Column("uses", Integer, nullable=False, server_default="0"),
    Column("expires_at", UTCDateTime()),
    Column("revoked_at", UTCDateTime()),
    Column("created_by", BigInteger),
    Column("created_at", UTCDateTime(), nullable=False),
)

# Merchant news to the affiliates of a program, all of them or one group.
announcements = Table(
    "announcements",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("program_id", BigInteger, ForeignKey("programs.id"), nullable=False, index=True),
    # None: every approved affiliate of the program; otherwise only that group.
    Column("group", String(40)),
    Column("title", String(200), nullable=False),
    Column("body", Text, nullable=False),
    Column("created_by", BigInteger),
    Column("created_at", UTCDateTime(), nullable=False),
)

links = Table(
    "links",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("code", String(32), nullable=False, unique=True),
    Column("program_id", BigInteger, ForeignKey("programs.id"), nullable=False, index=True),
    Column("affiliate_id", BigInteger, ForeignKey("affiliates.id"), nullable=False, index=True),
    Column("creative_id", BigInteger, ForeignKey("creatives.id")),
    Column("landing_url", String(2048)),
    *_subs(),
    Column("status", String(16), nullable=False, server_default="active"),
    # Who paused the link: an affiliate may not resume a link its merchant paused.
    Column("paused_by", String(16)),
    Column("created_at", UTCDateTime(), nullable=False),
)

coupons = Table(
    "coupons",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("program_id", BigInteger, ForeignKey("programs.id"), nullable=False),
    Column("affiliate_id", BigInteger, ForeignKey("affiliates.id"), nullable=False, index=True),
    Column("code", String(64), nullable=False),
    # A revoked coupon no longer attributes orders (a leaked code can be cut off).
    Column("status", String(16), nullable=False, server_default="active"),
    Column("created_at", UTCDateTime(), nullable=False),
    UniqueConstraint("program_id", "code", name="uq_coupons_program_code"),
)

clicks = Table(
    "clicks",
    metadata,
    Column("id", String(26), primary_key=True),
    Column("clicked_at", UTCDateTime(), nullable=False, index=True),
    Column("program_id", BigInteger, nullable=False),
    Column("link_id", BigInteger, nullable=False),
    Column("affiliate_id", BigInteger, nullable=False),
    Column("creative_id", BigInteger),
    *_subs(),
    Column("aff_click_id", String(255), nullable=False, server_default=""),
    Column("landing_url", String(2048), nullable=False),
    Column("ip", String(64)),
    Column("user_agent", String(512), nullable=False, server_default=""),
    Column("referer", String(2048), nullable=False, server_default=""),
    Column("country", String(2), nullable=False, server_default=""),
    Column("device", String(16), nullable=False, server_default=""),
    Column("visitor", String(32), nullable=False),
    Column("is_unique", Boolean, nullable=False),
    Column("is_bot", Boolean, nullable=False),
    # Traffic quality (docs/fraud-rules.md): 0-100, the rule codes that fired, and whether
    # the click is filtered (it does not attribute and is not billable; reports show it).
    Column("fraud_score", SmallInteger, nullable=False, server_default="0"),
    Column("fraud_reasons", String(255), nullable=False, server_default=""),
    Column("invalid", Boolean, nullable=False, server_default="0"),
    # Coupon leakage: did this buyer (address and browser) click the coupon owner's links?
    Index("ix_clicks_affiliate_ip", "affiliate_id", "ip", "clicked_at"),
)

conversions = Table(
    "conversions",
    metadata,
    Column("id", String(26), primary_key=True),
    Column("program_id", BigInteger, ForeignKey("programs.id"), nullable=False),
    Column("event", String(40), nullable=False),
    Column("order_id", String(128), nullable=False),
    Column("status", String(16), nullable=False),
    Column("source", String(16), nullable=False),
    # Pending until a merchant decides: never approved by the lock-period job.
    Column("needs_review", Boolean, nullable=False, server_default="0"),
    Column("affiliate_id", BigInteger, ForeignKey("affiliates.id")),
    Column("membership_group", String(40), nullable=False, server_default=""),
    Column("click_id", String(26)),
    Column("link_id", BigInteger),
    Column("creative_id", BigInteger),
    *_subs(),
    Column("aff_click_id", String(255), nullable=False, server_default=""),
    Column("country", String(2), nullable=False, server_default=""),
    Column("device", String(16), nullable=False, server_default=""),
    Column("attribution", String(16), nullable=False),
    Column("attribution_note", String(500), nullable=False, server_default=""),
    Column("currency", String(3), nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("refunded_minor", BigInteger, nullable=False, server_default="0"),
    Column("original_commission_minor", BigInteger, nullable=False),
    Column("commission_minor", BigInteger, nullable=False),
    Column("items", JSON),
    Column("coupon", String(64)),
    Column("customer_hash", String(64)),
    # The buyer's address and device, salted hashes, for self-referral checks.
    Column("ip_hash", String(64)),
    Column("device_hash", String(64)),
    # Traffic quality: 0-100 and the rules that fired with their evidence (a JSON list).
    Column("fraud_score", SmallInteger, nullable=False, server_default="0"),
    Column("fraud_reasons", JSON),
    Column("occurred_at", UTCDateTime(), nullable=False),
    # The program's fee terms when the conversion was recorded: its postings keep them.
    Column("fee_rate_ppm", Integer, nullable=False, server_default="0"),
    Column("fee_mode", String(16), nullable=False, server_default="on_top"),
    # The affiliate's recruiter then, and the program's override rate then.
    Column("recruiter_id", BigInteger),
    Column("override_rate_ppm", Integer, nullable=False, server_default="0"),
    # Reported in another currency: what was reported, and the rate used to convert it.
    Column("original_currency", String(3)),
    Column("original_amount_minor", BigInteger),
    Column("fx_rate", String(40)),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    UniqueConstraint("program_id", "event", "order_id", name="uq_conversions_order"),
    Index("ix_conversions_status_occurred", "status", "occurred_at"),
    # An affiliate's conversions, newest first or since a time (ids are time-ordered
    # ULIDs): the duplicate-order check reads a window of them.
    Index("ix_conversions_affiliate_recent", "affiliate_id", "id"),
)

conversion_events = Table(
    "conversion_events",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("conversion_id", String(26), ForeignKey("conversions.id"), nullable=False, index=True),
    Column("at", UTCDateTime(), nullable=False),
    Column("from_status", String(16)),
    Column("to_status", String(16), nullable=False),
    Column("refunded_minor", BigInteger, nullable=False),
    Column("commission_minor", BigInteger, nullable=False),
    Column("commission_delta_minor", BigInteger, nullable=False),
    Column("source", String(16), nullable=False),
    # Why a person moved it (a merchant's rejection reason, an operator's release note).
    Column("reason", String(500), nullable=False, server_default=""),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("prefix", String(16), nullable=False),
    Column("role", String(16), nullable=False),
    Column("owner_id", BigInteger),
    Column("name", String(200), nullable=False),
    # The portal user who created the key, in the portal or through one of their own keys
    # (None for keys made by the CLI, or through a key of no user).
    Column("user_id", BigInteger, ForeignKey("users.id"), index=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("revoked_at", UTCDateTime()),
)

users = Table(
    "users",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("email", String(254), nullable=False, unique=True),
    Column("password_hash", String(255), nullable=False),
    Column("role", String(16), nullable=False),
    Column("owner_id", BigInteger),
    Column("name", String(200), nullable=False),
    # A merchant's users: owner (everything), manager (programs, affiliates, conversions),
    # analyst (reads only). Empty for affiliates and operators.
    Column("member_role", String(16), nullable=False, server_default=""),
    Column("status", String(16), nullable=False, server_default="active"),
    Column("locale", String(8), nullable=False, server_default=""),
    Column("created_at", UTCDateTime(), nullable=False),
)

# Portal sessions: the cookie holds a random token, the table only its SHA-256.
sessions = Table(
    "sessions",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("user_id", BigInteger, ForeignKey("users.id"), nullable=False, index=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
)

password_resets = Table(
    "password_resets",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("user_id", BigInteger, ForeignKey("users.id"), nullable=False, index=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    Column("used_at", UTCDateTime()),
)

# Login attempts, kept for the rate limit (failures per email and per address in a window).
login_attempts = Table(
    "login_attempts",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("email", String(254), nullable=False),
    Column("ip", String(64), nullable=False),
    Column("ok", Boolean, nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    Index("ix_login_attempts_email_at", "email", "at"),
    Index("ix_login_attempts_ip_at", "ip", "at"),
)

# Mail the platform sends; the default mailer only writes here and the operator reads it.
email_outbox = Table(
    "email_outbox",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("to_addr", String(254), nullable=False, index=True),
    Column("subject", String(300), nullable=False),
    Column("body", Text, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
)

# Every privileged action, appended in the transaction that made it.
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime(), nullable=False, index=True),
    Column("actor", String(64), nullable=False),
    Column("action", String(64), nullable=False),
    Column("target", String(100), nullable=False),
    Column("detail", JSON, nullable=False),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("principal", String(64), nullable=False),
    Column("key", String(255), nullable=False),
    Column("request_hash", String(64), nullable=False),
    Column("status_code", Integer, nullable=False),
    Column("response_body", Text, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    UniqueConstraint("principal", "key", name="uq_idempotency_keys_principal_key"),
)

# Version counters that in-process caches poll to learn of changes made by other workers.
cache_versions = Table(
    "cache_versions",
    metadata,
    Column("name", String(40), primary_key=True),
    Column("version", BigInteger, nullable=False),
)

ROLLUP_KEYS = (
    "hour",
    "program_id",
    "affiliate_id",
    "link_id",
    "creative_id",
    "sub1",
    "sub2",
    "sub3",
    "sub4",
    "sub5",
    "country",
    "device",
)


def _rollup_keys() -> list[Column]:
    return [
        Column("hour", UTCDateTime(), nullable=False),
        Column("program_id", BigInteger, nullable=False),
        Column("affiliate_id", BigInteger, nullable=False),
        Column("link_id", BigInteger, nullable=False),
        Column("creative_id", BigInteger, nullable=False),
        *_subs(),
        Column("country", String(2), nullable=False, server_default=""),
        Column("device", String(16), nullable=False, server_default=""),
    ]


# Counters per hour x program x affiliate x link x creative x subs x country x device.
# 0 and "" stand for "none" so that the unique key holds (NULLs are never equal).
click_rollups = Table(
    "click_rollups",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    *_rollup_keys(),
    Column("impressions", BigInteger, nullable=False, server_default="0"),
    Column("clicks", BigInteger, nullable=False, server_default="0"),
    Column("unique_clicks", BigInteger, nullable=False, server_default="0"),
    Column("bot_clicks", BigInteger, nullable=False, server_default="0"),
    Column("invalid_clicks", BigInteger, nullable=False, server_default="0"),
    UniqueConstraint(*ROLLUP_KEYS, name="uq_click_rollups_key"),
    Index("ix_click_rollups_program_hour", "program_id", "hour"),
    Index("ix_click_rollups_affiliate_hour", "affiliate_id", "hour"),
)

CONVERSION_ROLLUP_KEYS = (*ROLLUP_KEYS, "event", "status", "currency")

conversion_rollups = Table(
    "conversion_rollups",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    *_rollup_keys(),
    Column("event", String(40), nullable=False),
    Column("status", String(16), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("conversions", BigInteger, nullable=False, server_default="0"),
    Column("amount_minor", BigInteger, nullable=False, server_default="0"),
    Column("commission_minor", BigInteger, nullable=False, server_default="0"),
    UniqueConstraint(*CONVERSION_ROLLUP_KEYS, name="uq_conversion_rollups_key"),
    Index("ix_conversion_rollups_program_hour", "program_id", "hour"),
    Index("ix_conversion_rollups_affiliate_hour", "affiliate_id", "hour"),
)


# The double-entry ledger (domain/ledger.py). Entries are only ever inserted.
ledger_accounts = Table(
    "ledger_accounts",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("owner_type", String(16), nullable=False),
    Column("owner_id", BigInteger, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("currency", String(3), nullable=False),
    # The sum of the account's entries (debit positive), kept in the posting transaction;
    # `tuike ledger check` recomputes it from the entries.
    Column("balance_minor", BigInteger, nullable=False, server_default="0"),
    UniqueConstraint("owner_type", "owner_id", "kind", "currency", name="uq_ledger_accounts"),
)

ledger_transactions = Table(
    "ledger_transactions",
    metadata,
    Column("id", String(26), primary_key=True),
    Column("key", String(200), nullable=False, unique=True),
    Column("kind", String(32), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("conversion_id", String(26), ForeignKey("conversions.id"), index=True),
    Column("created_at", UTCDateTime(), nullable=False),
)

ledger_entries = Table(
    "ledger_entries",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column(
        "transaction_id",
        String(26),
        ForeignKey("ledger_transactions.id"),
        nullable=False,
        index=True,
    ),
    Column("account_id", BigInteger, ForeignKey("ledger_accounts.id"), nullable=False, index=True),
    Column("amount_minor", BigInteger, nullable=False),
)

payout_batches = Table(
    "payout_batches",
    metadata,
    Column("id", String(26), primary_key=True),
    Column("currency", String(3), nullable=False),
    Column("items", Integer, nullable=False),
    Column("total_minor", BigInteger, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
)

payout_items = Table(
    "payout_items",
    metadata,
    Column("id", String(26), primary_key=True),
    Column("batch_id", String(26), ForeignKey("payout_batches.id"), nullable=False, index=True),
    Column("affiliate_id", BigInteger, ForeignKey("affiliates.id"), nullable=False, index=True),
    Column("currency", String(3), nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    # sent (money left the affiliate's balance) -> paid | failed (money returned)
    Column("status", String(16), nullable=False),
    Column("method", String(16), nullable=False),
    Column("account", String(200), nullable=False),
    Column("name", String(200), nullable=False),
    Column("note", String(500), nullable=False, server_default=""),
    Column("updated_at", UTCDateTime(), nullable=False),
)

settlement_periods = Table(
    "settlement_periods",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("label", String(16), nullable=False, unique=True),
    Column("starts_at", UTCDateTime(), nullable=False),
    Column("ends_at", UTCDateTime(), nullable=False),
    Column("closed_at", UTCDateTime(), nullable=False),
)

# One statement per affiliate and currency (owner_type affiliate) and one invoice per
# merchant and currency (owner_type merchant) of a closed period; amounts in minor units
# as their owner reads them (see docs/money.md).
statements = Table(
    "statements",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("period_id", BigInteger, ForeignKey("settlement_periods.id"), nullable=False),
    Column("owner_type", String(16), nullable=False),
    Column("owner_id", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("opening_minor", BigInteger, nullable=False),
    Column("commissions_minor", BigInteger, nullable=False),
    Column("fees_minor", BigInteger, nullable=False),
    Column("reversals_minor", BigInteger, nullable=False),
    Column("clawbacks_minor", BigInteger, nullable=False),
    Column("overrides_minor", BigInteger, nullable=False),
    Column("payouts_minor", BigInteger, nullable=False),
    Column("other_minor", BigInteger, nullable=False),
    Column("closing_minor", BigInteger, nullable=False),
    UniqueConstraint("period_id", "owner_type", "owner_id", "currency", name="uq_statements"),
    Index("ix_statements_owner", "owner_type", "owner_id"),
)

merchant_credit_limits = Table(
    "merchant_credit_limits",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("merchant_id", BigInteger, ForeignKey("merchants.id"), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("limit_minor", BigInteger, nullable=False),
    UniqueConstraint("merchant_id", "currency", name="uq_merchant_credit_limits"),
)

# Messages for merchants and the operator (an outbox a portal or a mailer reads).
notifications = Table(
    "notifications",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("recipient_type", String(16), nullable=False),
    Column("recipient_id", BigInteger, nullable=False),
    Column("kind", String(40), nullable=False),
    Column("message", Text, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Index("ix_notifications_recipient", "recipient_type", "recipient_id"),
)

# Exchange rates: 1 base = rate quote, from valid_from (services/fx.py).
fx_rates = Table(
    "fx_rates",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("base", String(3), nullable=False),
    Column("quote", String(3), nullable=False),
    Column("rate", String(40), nullable=False),
    Column("valid_from", UTCDateTime(), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Index("ix_fx_rates_pair", "base", "quote", "valid_from"),
)

# Affiliate postback URL templates (spec section 5): program_id 0 is the account default.
postback_urls = Table(
    "postback_urls",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("affiliate_id", BigInteger, ForeignKey("affiliates.id"), nullable=False),
    Column("program_id", BigInteger, nullable=False, server_default="0"),
    Column("url_template", String(2048), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    UniqueConstraint("affiliate_id", "program_id", name="uq_postback_urls_affiliate_program"),
)

# Outgoing postbacks: queued in the transaction that changed the conversion, sent by a worker.
postback_deliveries = Table(
    "postback_deliveries",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("affiliate_id", BigInteger, nullable=False, index=True),
    Column("conversion_id", String(26)),
    Column("event_key", String(120), nullable=False, unique=True),
    Column("url", String(4096), nullable=False),
    Column("status", String(16), nullable=False),
    Column("is_test", Boolean, nullable=False, server_default="0"),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", UTCDateTime(), nullable=False),
    Column("last_code", Integer),
    Column("last_error", String(500)),
    Column("response_snippet", String(500)),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("delivered_at", UTCDateTime()),
    Index("ix_postback_deliveries_due", "status", "next_attempt_at"),
)

# Platform settings the operator changes at run time (services/platform.py lists the keys).
platform_settings = Table(
    "platform_settings",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", JSON, nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("updated_by", String(64), nullable=False),
)

# Anyone may report a link spammed into a group or forum; the operator works the queue.
abuse_reports = Table(
    "abuse_reports",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("link_code", String(32)),
    Column("link_id", BigInteger),
    Column("affiliate_id", BigInteger, index=True),
    Column("program_id", BigInteger),
    Column("kind", String(32), nullable=False),
    Column("where_url", String(2048), nullable=False, server_default=""),
    Column("description", Text, nullable=False, server_default=""),
    Column("reporter_email", String(254), nullable=False, server_default=""),
    Column("reporter_ip_hash", String(64), nullable=False, server_default=""),
    Column("status", String(16), nullable=False, server_default="open"),
    Column("created_at", UTCDateTime(), nullable=False, index=True),
    Column("resolved_at", UTCDateTime()),
    Column("resolved_by", String(64)),
    Column("resolution", String(500), nullable=False, server_default=""),
)

# Salted hashes of the addresses, devices and payout identities an affiliate or a merchant
# was seen with (logins, sign-up, payout details): the evidence of self-referral.
identity_marks = Table(
    "identity_marks",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("owner_type", String(16), nullable=False),
    Column("owner_id", BigInteger, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("value_hash", String(64), nullable=False),
    Column("first_seen", UTCDateTime(), nullable=False),
    Column("last_seen", UTCDateTime(), nullable=False),
    UniqueConstraint("owner_type", "owner_id", "kind", "value_hash", name="uq_identity_marks"),
    Index("ix_identity_marks_value", "kind", "value_hash"),
)

"""Words the portals show from data (statuses, kinds, roles …): marked here for translation.

Templates translate them with ``_(value)``; the translation test reads this list too, so
a new status or kind that is missing from the catalogs fails the tests.
"""

from __future__ import annotations

from tuike.web.portals.rendering import N_

WORDS = (
    # membership, conversion, account, link and key statuses
    N_("applied"),
    N_("approved"),
    N_("rejected"),
    N_("banned"),
    N_("pending"),
    N_("refunded"),
    N_("active"),
    N_("paused"),
    N_("disabled"),
    N_("revoked"),
    N_("archived"),
    N_("all"),
    # creative kinds
    N_("banner"),
    N_("text"),
    N_("html"),
    N_("qr"),
    N_("video"),
    # postback delivery statuses
    N_("delivered"),
    N_("failed"),
    N_("refused"),
    # channel kinds
    N_("website"),
    N_("sns"),
    N_("forum"),
    N_("im"),
    N_("blog"),
    N_("app"),
    N_("other"),
    # events
    N_("sale"),
    N_("lead"),
    N_("install"),
    N_("register"),
    # payout methods
    N_("bank"),
    N_("alipay"),
    N_("paypal"),
    # team roles
    N_("owner"),
    N_("manager"),
    N_("analyst"),
    # report groups
    N_("day"),
    N_("program"),
    N_("sub1"),
    N_("sub2"),
    N_("sub3"),
    N_("sub4"),
    N_("sub5"),
    N_("country"),
    N_("device"),
    # tracker modes and counted things on the system page
    N_("durable"),
    N_("fast"),
    N_("merchants"),
    N_("affiliates"),
    N_("programs"),
    N_("conversions"),
    N_("outbox"),
    # form fields named in error messages
    N_("email"),
    N_("password"),
    N_("name"),
    N_("company"),
    N_("timezone"),
    N_("channels"),
    N_("landing_url"),
    N_("fallback_url"),
    N_("allowed_domains"),
    N_("cookie_days"),
    N_("lock_days"),
    N_("commission_plan"),
    N_("reason"),
    N_("member_role"),
    N_("payout_method"),
    N_("payout_account"),
    N_("payout_name"),
    N_("token"),
    N_("amount"),
    N_("click_id"),
    N_("order_id"),
    N_("subs"),
    N_("file"),
    N_("body"),
    N_("group"),
    N_("rates"),
    N_("title"),
    N_("code"),
    N_("affiliate_id"),
    N_("max_uses"),
    N_("expires_days"),
    N_("width"),
    N_("status"),
    N_("kind"),
    N_("url_template"),
    N_("program_id"),
)

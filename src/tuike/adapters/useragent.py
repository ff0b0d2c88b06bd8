"""User-agent classification: device class and declared bots."""

from __future__ import annotations

import re
from functools import lru_cache

_BOT = re.compile(
    r"bot\b|bot/|crawler|spider|slurp|curl/|wget/|python-requests|python-httpx|httpclient|"
    r"headlesschrome|phantomjs|go-http-client|java/|libwww|scrapy|facebookexternalhit|"
    r"preview|monitor|checker",
    re.IGNORECASE,
)
_TABLET = re.compile(r"ipad|tablet|kindle|silk/|playbook|(android(?!.*mobile))", re.IGNORECASE)
_MOBILE = re.compile(
    r"mobi|iphone|ipod|android.*mobile|windows phone|micromessenger|blackberry|opera mini",
    re.IGNORECASE,
)
DEVICES = ("desktop", "mobile", "tablet", "bot", "other")


@lru_cache(maxsize=4096)
def classify(user_agent: str) -> tuple[str, bool]:
    """Return (device class, is_bot) for a user agent string."""
    if not user_agent:
        return "other", False
    if _BOT.search(user_agent):
        return "bot", True
    if _TABLET.search(user_agent):
        return "tablet", False
    if _MOBILE.search(user_agent):
        return "mobile", False
    return "desktop", False

"""Landing URLs: deep-link checks against allowed domains, and click-id decoration."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import parse_qsl, quote, unquote_plus, urlencode, urlsplit, urlunsplit

from tuike.domain.errors import InvalidField


def normalize_host(host: str) -> str:
    """Return a host in the form used for comparisons (lower case, no trailing dot, IDNA)."""
    host = host.strip().rstrip(".").lower()
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        return host


def host_allowed(host: str, allowed_domains: Iterable[str]) -> bool:
    """Tell whether a host is one of the allowed domains or a subdomain of one."""
    host = normalize_host(host)
    if not host:
        return False
    for domain in allowed_domains:
        domain = normalize_host(domain)
        if domain and (host == domain or host.endswith("." + domain)):
            return True
    return False


def check_landing_url(url: str, field: str = "url") -> str:
    """Return an absolute http(s) URL, or raise InvalidField."""
    if not isinstance(url, str) or not url or len(url) > 2048:
        raise InvalidField(field, "must be an absolute http(s) URL of at most 2048 characters")
    if any(ch in url for ch in "\r\n\t\x00\\"):
        raise InvalidField(field, "contains a forbidden character")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not 0-65535
    except ValueError:
        raise InvalidField(field, "is not a valid URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidField(field, "must be an absolute http(s) URL")
    if parts.username is not None or parts.password is not None:
        raise InvalidField(field, "must not carry user credentials")
    return url


def check_deep_link(url: str, allowed_domains: Iterable[str], field: str = "url") -> str:
    """Return the deep-link URL if its host is allowed for the program, else raise."""
    check_landing_url(url, field)
    host = urlsplit(url).hostname or ""
    if not host_allowed(host, allowed_domains):
        raise InvalidField(field, f"host {host!r} is not an allowed landing domain")
    return url


def with_query_param(url: str, name: str, value: str) -> str:
    """Return the URL with ``name=value`` set in its query, keeping other parameters."""
    base, hash_, fragment = url.partition("#")
    head, mark, query = base.partition("?")
    if not any(unquote_plus(p.partition("=")[0]) == name for p in query.split("&")):
        # The usual case: append, leaving the existing query byte for byte as it was.
        joiner = "&" if query else ("" if mark else "?")
        param = f"{quote(name, safe='')}={quote(value, safe='')}"
        return f"{head}{mark}{query}{joiner}{param}{hash_}{fragment}"
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != name]
    query.append((name, value))
    return urlunsplit(parts._replace(query=urlencode(query)))

"""Privacy: how IP addresses and customer ids are kept."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re

IP_MODES = ("full", "truncated", "hashed")
_VISITOR = re.compile(r"^[0-9a-f]{32}$")
_IPV4 = re.compile(r"(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})", re.ASCII)


def store_ip(ip: str | None, mode: str, salt: str) -> str | None:
    """Return the IP as stored under a privacy mode: full, truncated (/24, /48) or hashed."""
    if not ip:
        return None
    if mode == "full":
        return ip
    if mode == "hashed":
        return "h:" + hmac.digest(salt.encode(), ip.encode(), "sha256").hex()[:32]
    fast = _truncate_ipv4(ip)
    if fast is not None:
        return fast
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return None
    if addr.version == 6 and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    prefix = 24 if addr.version == 4 else 48
    return str(ipaddress.ip_network(f"{addr}/{prefix}", strict=False).network_address)


def _truncate_ipv4(ip: str) -> str | None:
    """Return the /24 of a plain dotted IPv4 address without the ipaddress module (hot path)."""
    m = _IPV4.fullmatch(ip)
    if m is None:
        return None
    for part in m.groups():
        if int(part) > 255 or (len(part) > 1 and part[0] == "0"):
            return None  # out of range, or leading zeros: let ipaddress refuse them
    return f"{m[1]}.{m[2]}.{m[3]}.0"


def hash_customer_id(customer_id: str, salt: str) -> str:
    """Return the salted hash kept instead of a merchant's customer id."""
    return hmac.new(salt.encode(), customer_id.encode(), hashlib.sha256).hexdigest()


def visitor_key(*, visitor_cookie: str | None, ip: str | None, user_agent: str, salt: str) -> str:
    """Return a stable, non-reversible key for a visitor.

    The tracker sets the key of a visitor's first click as their ``tk_v`` cookie, so a
    returning browser keeps its key even when its IP changes; without the cookie the key
    is a salted hash of IP and user agent.
    """
    if visitor_cookie and _VISITOR.fullmatch(visitor_cookie):
        return visitor_cookie
    basis = f"a:{ip}|{user_agent}"
    return hmac.digest(salt.encode(), basis.encode(), "sha256").hex()[:32]


def ip_hash(ip: str | None, salt: str) -> str | None:
    """Return the salted hash of a valid IP address, or None for anything else.

    The hash is what the click log keeps in ``hashed`` mode (``store_ip``), so a buyer's
    address, a login address and a hashed click address compare equal.
    """
    if not ip:
        return None
    try:
        addr = ipaddress.ip_address(ip.strip())
    except ValueError:
        return None
    if addr.version == 6 and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return store_ip(str(addr), "hashed", salt)


def device_hash(*, device_id: str | None, user_agent: str | None, salt: str) -> str | None:
    """Return the salted hash of a device: its id (``d:``) or else its user agent (``u:``).

    A user agent is shared by everyone on the same phone model and browser version, so
    a ``u:`` match is weak evidence on its own (the fraud rules weigh it less).
    """
    if device_id and device_id.strip():
        basis, prefix = f"device:{device_id.strip()}", "d:"
    elif user_agent and user_agent.strip():
        basis, prefix = f"ua:{user_agent.strip()}", "u:"
    else:
        return None
    return prefix + hmac.digest(salt.encode(), basis.encode(), "sha256").hex()[:32]


def identity_hash(value: str, salt: str) -> str:
    """Return the salted hash of an email address, phone or payout account, normalised.

    Case and blanks are dropped, and the hash is the customer-id hash: a merchant that
    sends a buyer's email or phone as ``customer_id`` can be matched against it.
    """
    return hash_customer_id("".join(value.split()).lower(), salt)

"""Privacy: how IP addresses, customer ids and visitors are kept."""

import hashlib
import ipaddress
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tuike.domain.privacy import hash_customer_id, store_ip, visitor_key

SALT = "s3cret-salt"
HASHED = re.compile(r"\Ah:[0-9a-f]{32}\Z")


@pytest.mark.parametrize("ip", ["203.0.113.77", "2001:db8:85a3::8a2e:370:7334", "::1"])
def test_full_mode_keeps_the_address(ip: str) -> None:
    assert store_ip(ip, "full", SALT) == ip


@pytest.mark.parametrize(
    ("ip", "stored"),
    [
        ("203.0.113.77", "203.0.113.0"),
        ("203.0.113.0", "203.0.113.0"),
        ("10.1.2.255", "10.1.2.0"),
        ("2001:db8:85a3:1234:5678:8a2e:370:7334", "2001:db8:85a3::"),
        ("2001:0db8:85a3:ffff::1", "2001:db8:85a3::"),
        ("::1", "::"),
    ],
)
def test_truncated_mode_keeps_the_network(ip: str, stored: str) -> None:
    assert store_ip(ip, "truncated", SALT) == stored


@given(st.ip_addresses(v=4))
def test_truncated_ipv4_is_its_slash_24(ip: ipaddress.IPv4Address) -> None:
    stored = store_ip(str(ip), "truncated", SALT)
    assert stored is not None
    assert ipaddress.ip_address(stored) == ipaddress.ip_network(f"{ip}/24", strict=False)[0]
    assert stored.endswith(".0")
    assert stored.split(".")[:3] == str(ip).split(".")[:3]


@given(st.ip_addresses(v=6).filter(lambda ip: ip.ipv4_mapped is None))
def test_truncated_ipv6_is_its_slash_48(ip: ipaddress.IPv6Address) -> None:
    stored = store_ip(str(ip), "truncated", SALT)
    assert stored is not None
    kept = ipaddress.ip_address(stored)
    assert int(kept) == int(ip) >> 80 << 80


def test_truncated_ipv4_mapped_ipv6_keeps_the_ipv4_slash_24() -> None:
    # Dual-stack servers report IPv4 visitors as ::ffff:a.b.c.d; /48 of that keeps nothing.
    assert store_ip("::ffff:203.0.113.77", "truncated", SALT) == "203.0.113.0"


@pytest.mark.parametrize("ip", ["not-an-ip", "300.1.2.3", "1.2.3", "::g"])
def test_truncated_mode_drops_junk(ip: str) -> None:
    assert store_ip(ip, "truncated", SALT) is None


@pytest.mark.parametrize("mode", ["full", "truncated", "hashed"])
@pytest.mark.parametrize("ip", [None, ""])
def test_missing_ip_stays_missing(mode: str, ip: str | None) -> None:
    assert store_ip(ip, mode, SALT) is None


def test_hashed_mode_is_stable_and_salted() -> None:
    ip = "203.0.113.77"
    first = store_ip(ip, "hashed", SALT)
    assert first is not None
    assert HASHED.match(first)
    assert store_ip(ip, "hashed", SALT) == first
    assert store_ip(ip, "hashed", "another-salt") != first
    assert store_ip("203.0.113.78", "hashed", SALT) != first


@given(ip=st.ip_addresses())
def test_hashed_mode_does_not_reveal_the_address(
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> None:
    text = str(ip)
    stored = store_ip(text, "hashed", SALT)
    assert stored is not None
    assert HASHED.match(stored)
    assert text not in stored
    # Not a plain, unsalted hash that a table of all IPv4 addresses could reverse.
    assert stored[2:] != hashlib.sha256(text.encode()).hexdigest()[:32]
    assert stored[2:] != hashlib.md5(text.encode()).hexdigest()  # noqa: S324
    assert store_ip(text, "hashed", SALT + "x") != stored


def test_hashed_mode_distinguishes_all_of_a_subnet() -> None:
    hashes = {store_ip(f"198.51.100.{i}", "hashed", SALT) for i in range(256)}
    assert len(hashes) == 256


def test_hash_customer_id_is_stable_and_salted() -> None:
    h = hash_customer_id("customer-42", SALT)
    assert h == hash_customer_id("customer-42", SALT)
    assert h != hash_customer_id("customer-43", SALT)
    assert h != hash_customer_id("customer-42", "other")
    assert "customer-42" not in h
    assert re.fullmatch(r"[0-9a-f]{64}", h)


def first_click_key(ip: str = "203.0.113.1", user_agent: str = "Firefox") -> str:
    return visitor_key(visitor_cookie=None, ip=ip, user_agent=user_agent, salt=SALT)


def test_visitor_key_without_cookie_is_a_salted_hash_of_ip_and_user_agent() -> None:
    base = first_click_key()
    assert re.fullmatch(r"[0-9a-f]{32}", base)
    assert "203.0.113.1" not in base
    assert base == first_click_key()
    assert base == visitor_key(visitor_cookie="", ip="203.0.113.1", user_agent="Firefox", salt=SALT)
    assert base != first_click_key(ip="203.0.113.2")
    assert base != first_click_key(user_agent="Chrome")
    assert base != visitor_key(
        visitor_cookie=None, ip="203.0.113.1", user_agent="Firefox", salt="other"
    )


def test_returning_browser_keeps_its_key_through_the_cookie() -> None:
    # The tracker stores the first click's key in the visitor cookie; with it, the same
    # browser is the same visitor even from another network or after a browser update.
    key = first_click_key()
    for ip, user_agent in [("198.51.100.9", "Firefox/2"), (None, ""), ("::1", "Chrome")]:
        assert visitor_key(visitor_cookie=key, ip=ip, user_agent=user_agent, salt=SALT) == key
    other = first_click_key(ip="192.0.2.50")
    assert (
        visitor_key(visitor_cookie=other, ip="203.0.113.1", user_agent="Firefox", salt=SALT)
        == other
    )


@pytest.mark.parametrize(
    "cookie",
    [
        "vc-1",
        "0" * 31,
        "0" * 33,
        "A" * 32,  # upper case is not a key this tracker set
        "g" * 32,
        "0" * 32 + "\n",
        " " + "0" * 31,
        "'; drop table clicks; --",
    ],
)
def test_malformed_cookie_is_ignored(cookie: str) -> None:
    key = visitor_key(visitor_cookie=cookie, ip="203.0.113.1", user_agent="Firefox", salt=SALT)
    assert key == first_click_key()
    assert re.fullmatch(r"[0-9a-f]{32}", key)


@given(
    ip=st.none() | st.ip_addresses().map(str),
    user_agent=st.text(max_size=60),
    later_ip=st.none() | st.ip_addresses().map(str),
    later_user_agent=st.text(max_size=60),
)
def test_visitor_key_is_stable_for_a_returning_browser(
    ip: str | None, user_agent: str, later_ip: str | None, later_user_agent: str
) -> None:
    key = visitor_key(visitor_cookie=None, ip=ip, user_agent=user_agent, salt=SALT)
    assert re.fullmatch(r"[0-9a-f]{32}", key)
    assert key == visitor_key(visitor_cookie=None, ip=ip, user_agent=user_agent, salt=SALT)
    again = visitor_key(visitor_cookie=key, ip=later_ip, user_agent=later_user_agent, salt=SALT)
    assert again == key

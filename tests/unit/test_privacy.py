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


@given(st.ip_addresses(v=6))
def test_truncated_ipv6_is_its_slash_48(ip: ipaddress.IPv6Address) -> None:
    stored = store_ip(str(ip), "truncated", SALT)
    assert stored is not None
    kept = ipaddress.ip_address(stored)
    assert int(kept) == int(ip) >> 80 << 80


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


def test_visitor_key_uses_the_cookie_when_given() -> None:
    a = visitor_key(visitor_cookie="vc-1", ip="203.0.113.1", user_agent="Firefox", salt=SALT)
    b = visitor_key(visitor_cookie="vc-1", ip="198.51.100.9", user_agent="Chrome", salt=SALT)
    c = visitor_key(visitor_cookie="vc-2", ip="203.0.113.1", user_agent="Firefox", salt=SALT)
    assert a == b
    assert a != c
    assert re.fullmatch(r"[0-9a-f]{32}", a)


def test_visitor_key_without_cookie_uses_ip_and_user_agent() -> None:
    base = visitor_key(visitor_cookie=None, ip="203.0.113.1", user_agent="Firefox", salt=SALT)
    same = visitor_key(visitor_cookie="", ip="203.0.113.1", user_agent="Firefox", salt=SALT)
    assert base == same
    assert base != visitor_key(
        visitor_cookie=None, ip="203.0.113.2", user_agent="Firefox", salt=SALT
    )
    assert base != visitor_key(
        visitor_cookie=None, ip="203.0.113.1", user_agent="Chrome", salt=SALT
    )
    assert base != visitor_key(
        visitor_cookie=None, ip="203.0.113.1", user_agent="Firefox", salt="other"
    )


def test_visitor_key_cookie_and_address_do_not_collide() -> None:
    # A cookie whose text looks like "ip|ua" is not the same visitor as that ip and ua.
    by_cookie = visitor_key(visitor_cookie="1.2.3.4|UA", ip=None, user_agent="", salt=SALT)
    by_address = visitor_key(visitor_cookie=None, ip="1.2.3.4", user_agent="UA", salt=SALT)
    assert by_cookie != by_address


@given(
    cookie=st.text(min_size=1, max_size=40),
    ip=st.none() | st.ip_addresses().map(str),
    user_agent=st.text(max_size=60),
)
def test_visitor_key_is_stable_and_ignores_address_with_cookie(
    cookie: str, ip: str | None, user_agent: str
) -> None:
    key = visitor_key(visitor_cookie=cookie, ip=ip, user_agent=user_agent, salt=SALT)
    assert key == visitor_key(visitor_cookie=cookie, ip=None, user_agent="", salt=SALT)
    assert key != visitor_key(visitor_cookie=cookie, ip=ip, user_agent=user_agent, salt="other")

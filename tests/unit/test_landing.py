"""Landing URLs: allowed domains, deep-link checks and click-id decoration."""

from urllib.parse import parse_qsl, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tuike.domain.errors import InvalidField
from tuike.domain.landing import (
    check_deep_link,
    check_landing_url,
    host_allowed,
    with_query_param,
)

ALLOWED = ["shop.com", "Brand.CN."]


@pytest.mark.parametrize(
    "host",
    [
        "shop.com",
        "www.shop.com",
        "a.b.c.shop.com",
        "SHOP.COM",
        "Www.Shop.Com",
        "shop.com.",
        "m.shop.com.",
        "brand.cn",
        "mall.brand.cn",
    ],
)
def test_allowed_hosts(host: str) -> None:
    assert host_allowed(host, ALLOWED)


@pytest.mark.parametrize(
    "host",
    [
        "evilshop.com",
        "shop.com.evil.com",
        "shop.co",
        "hop.com",
        "com",
        "xshop.com",
        "shop-com.evil",
        "",
        ".",
        "brand.cn.evil.cn",
    ],
)
def test_refused_hosts(host: str) -> None:
    assert not host_allowed(host, ALLOWED)


def test_no_allowed_domains_allows_nothing() -> None:
    assert not host_allowed("shop.com", [])
    assert not host_allowed("shop.com", ["", "."])


def test_internationalized_domains_match_their_punycode() -> None:
    assert host_allowed("bücher.de", ["xn--bcher-kva.de"])
    assert host_allowed("www.xn--bcher-kva.de", ["BÜCHER.de"])
    assert not host_allowed("bucher.de", ["bücher.de"])


@pytest.mark.parametrize(
    "url",
    [
        "https://shop.com/",
        "https://shop.com",
        "http://www.shop.com/p/123?color=red#reviews",
        "https://M.SHOP.COM/sale",
        "https://shop.com:8443/x",
        "https://shop.com./x",
    ],
)
def test_deep_links_on_allowed_hosts_pass(url: str) -> None:
    assert check_deep_link(url, ["shop.com"]) == url


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "JavaScript://shop.com/%0aalert(1)",
        "data:text/html,<script>alert(1)</script>",
        "ftp://shop.com/file",
        "file:///etc/passwd",
        "/relative/path",
        "shop.com/product",
        "//shop.com/product",
        "https://",
        "https:///path",
        "",
        "https://shop.com@evil.com/",
        "https://user:pass@shop.com/",
        "https://user@shop.com/",
        "https://:pass@shop.com/",
        "https://shop.com\\@evil.com/",
        "https://evil.com\\.shop.com/",
        "https://shop.com/\r\nSet-Cookie: x=1",
        "https://shop.com/\n",
        "https://shop.com/\tx",
        "https://shop.com/\x00",
        "https://evil.com/",
        "https://evilshop.com/",
        "https://shop.com.evil.com/",
        "https://evil.com/?next=https://shop.com/",
        "https://evil.com#.shop.com",
        "https://shop.com/" + "a" * 2048,
    ],
)
def test_bad_deep_links_are_refused(url: str) -> None:
    with pytest.raises(InvalidField) as err:
        check_deep_link(url, ["shop.com"], field="deep_link")
    assert err.value.field == "deep_link"


@pytest.mark.parametrize("url", [None, 42, b"https://shop.com/"])
def test_non_string_urls_are_refused(url: object) -> None:
    with pytest.raises(InvalidField):
        check_landing_url(url)  # type: ignore[arg-type]


def test_landing_url_needs_no_allowed_domain() -> None:
    assert check_landing_url("https://anything.example/x") == "https://anything.example/x"


def test_with_query_param_adds_to_an_url_without_query() -> None:
    assert with_query_param("https://shop.com/p", "tk", "ABC") == "https://shop.com/p?tk=ABC"


def test_with_query_param_keeps_existing_query_and_fragment() -> None:
    out = with_query_param("https://shop.com/p?color=red&size=&q=a+b#top", "tk", "01J")
    parts = urlsplit(out)
    assert parts.scheme == "https"
    assert parts.netloc == "shop.com"
    assert parts.path == "/p"
    assert parts.fragment == "top"
    assert parse_qsl(parts.query, keep_blank_values=True) == [
        ("color", "red"),
        ("size", ""),
        ("q", "a b"),
        ("tk", "01J"),
    ]


def test_with_query_param_replaces_existing_parameter() -> None:
    out = with_query_param("https://shop.com/?tk=old&a=1&tk=older", "tk", "new")
    assert parse_qsl(urlsplit(out).query) == [("a", "1"), ("tk", "new")]


def test_with_query_param_encodes_the_value() -> None:
    out = with_query_param("https://shop.com/", "ref", "a&b=c d")
    assert dict(parse_qsl(urlsplit(out).query)) == {"ref": "a&b=c d"}


query_text = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=8
)


@given(
    params=st.lists(st.tuples(query_text, st.text(max_size=8)), max_size=5),
    name=query_text,
    value=st.text(max_size=12),
)
def test_with_query_param_sets_exactly_one_value(
    params: list[tuple[str, str]], name: str, value: str
) -> None:
    from urllib.parse import urlencode

    url = "https://shop.com/p" + ("?" + urlencode(params) if params else "")
    out = with_query_param(url, name, value)
    query = parse_qsl(urlsplit(out).query, keep_blank_values=True)
    assert [v for k, v in query if k == name] == [value]
    assert [(k, v) for k, v in query if k != name] == [(k, v) for k, v in params if k != name]
    assert check_deep_link(out, ["shop.com"]) == out

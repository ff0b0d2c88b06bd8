"""Postback URL templates: validation, rendering with URL-encoded values, retry delays."""

from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tuike.domain import postbacks as P
from tuike.domain.errors import InvalidField

ALL = "https://tracker.example/pb/{event}?" + "&".join(f"{m}={{{m}}}" for m in P.MACROS)


@pytest.mark.parametrize(
    "template",
    [
        "https://tracker.example/pb?cid={aff_click_id}&p={payout}&s={status}",
        "http://tracker.example:8080/{event}/{order_id}",
        "  https://t.example/?x=1  ",
        ALL,
        "https://t.example/#{click_id}",
        "https://bücher.example/pb?o={order_id}",
    ],
)
def test_good_templates(template: str) -> None:
    assert P.check_template(template) == template.strip()


@pytest.mark.parametrize(
    ("template", "says"),
    [
        ("", "is required"),
        ("ftp://tracker.example/pb", "http"),
        ("/pb?cid={click_id}", "absolute"),
        ("tracker.example/pb", "absolute"),
        ("https://tracker.example/pb?cid={clickid}", "unknown macro {clickid}"),
        ("https://tracker.example/pb?cid={}", "unknown macro {}"),
        ("https://tracker.example/pb?cid={click_id", "'{'"),
        ("https://tracker.example/pb?cid=click_id}", "'}'"),
        ("https://{sub1}.tracker.example/pb", "path and the query"),
        ("https://user:pw@tracker.example/pb", "credentials"),
        ("https://tracker.example:99999/pb", "valid URL"),
        ("https://tracker.example/p b", "spaces"),
        ("https://tracker.example/p\nb", "spaces"),
        ("https://tracker.example/" + "a" * 2048, "2048"),
        ("https://a..b/pb", "not a valid host name"),
    ],
)
def test_bad_templates_say_what_is_wrong(template: str, says: str) -> None:
    with pytest.raises(InvalidField) as err:
        P.check_template(template)
    assert err.value.field == "url_template"
    assert says in err.value.message


def test_unknown_macro_lists_the_known_ones() -> None:
    with pytest.raises(InvalidField) as err:
        P.check_template("https://t.example/?a={sub6}")
    assert "{sub1}" in err.value.message and "{payout}" in err.value.message


def test_values_are_url_encoded_and_cannot_add_parameters() -> None:
    url = P.render(
        "https://t.example/pb?cid={aff_click_id}&s1={sub1}&p={payout}",
        {"aff_click_id": "a&b=c", "sub1": "群 7/#x y+z", "payout": "19.90"},
    )
    assert url == ("https://t.example/pb?cid=a%26b%3Dc&s1=%E7%BE%A4%207%2F%23x%20y%2Bz&p=19.90")
    assert parse_qs(urlsplit(url).query) == {
        "cid": ["a&b=c"],
        "s1": ["群 7/#x y+z"],
        "p": ["19.90"],
    }


def test_missing_values_render_empty() -> None:
    assert P.render("https://t.example/?a={sub2}&b={click_id}", {}) == "https://t.example/?a=&b="


def test_lone_surrogates_do_not_break_rendering() -> None:
    assert (
        P.render("https://t.example/?a={sub1}", {"sub1": "x\ud800"}) == "https://t.example/?a=x%3F"
    )


value = st.text(st.characters(blacklist_categories=("Cs",)), max_size=60)


@given(st.fixed_dictionaries({m: value for m in P.MACROS}))
def test_any_values_give_a_valid_url_whose_query_decodes_back(values: dict[str, str]) -> None:
    url = P.render(ALL, values)
    parts = urlsplit(url)
    assert (parts.scheme, parts.hostname) == ("https", "tracker.example")
    assert parts.path == "/pb/" + P.render("{event}", values)
    decoded = parse_qs(parts.query, keep_blank_values=True, strict_parsing=False)
    assert decoded == {m: [values[m]] for m in P.MACROS}
    assert httpx.URL(url).host == "tracker.example"  # the sender parses it the same way


def test_retry_delays_grow_then_give_up() -> None:
    delays = [P.retry_delay(n) for n in range(1, P.MAX_ATTEMPTS + 1)]
    assert delays == [60, 300, 1800, 7200, 43200, None]
    assert delays[:-1] == sorted(delays[:-1])

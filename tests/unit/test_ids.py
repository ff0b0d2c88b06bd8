"""Identifiers: time-ordered ULIDs and random link codes."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tuike.domain.ids import (
    is_link_code,
    is_ulid,
    new_link_code,
    new_public_id,
    new_ulid,
    ulid_time,
)

CROCKFORD = re.compile(r"\A[0-9A-HJKMNP-TV-Z]{26}\Z")
BASE62 = re.compile(r"\A[0-9A-Za-z]+\Z")


def to_millisecond(at: datetime) -> datetime:
    return at.replace(microsecond=at.microsecond // 1000 * 1000)


def test_new_ulid_shape() -> None:
    ulid = new_ulid()
    assert len(ulid) == 26
    assert CROCKFORD.match(ulid)
    assert is_ulid(ulid)


def test_new_ulid_without_time_uses_now() -> None:
    before = datetime.now(UTC) - timedelta(milliseconds=1)
    ulid = new_ulid()
    after = datetime.now(UTC) + timedelta(milliseconds=1)
    assert before <= ulid_time(ulid) <= after


def test_ulids_at_the_same_time_differ() -> None:
    at = datetime(2025, 1, 1, tzinfo=UTC)
    ulids = {new_ulid(at) for _ in range(1000)}
    assert len(ulids) == 1000
    assert {u[:10] for u in ulids} == {new_ulid(at)[:10]}


def test_known_timestamp_prefix() -> None:
    # 1469918176385 ms (2016-07-30T22:36:16.385Z) is the example of the ULID specification.
    at = datetime(2016, 7, 30, 22, 36, 16, 385000, tzinfo=UTC)
    assert new_ulid(at)[:10] == "01ARYZ6S41"
    assert ulid_time("01ARYZ6S41" + "0" * 16) == at


ulid_times = st.datetimes(
    min_value=datetime(1970, 1, 1),  # noqa: DTZ001 (hypothesis wants naive bounds)
    max_value=datetime(9999, 12, 31),  # noqa: DTZ001
    timezones=st.just(UTC),
)


@given(at=ulid_times)
def test_ulid_time_round_trips_to_the_millisecond(at: datetime) -> None:
    ulid = new_ulid(at)
    assert is_ulid(ulid)
    assert ulid_time(ulid) == to_millisecond(at)


@given(times=st.lists(ulid_times, min_size=2, max_size=20))
def test_ulids_sort_by_time(times: list[datetime]) -> None:
    ulids = [(new_ulid(at), at) for at in times]
    by_ulid = [to_millisecond(at) for _, at in sorted(ulids)]
    assert by_ulid == sorted(to_millisecond(at) for at in times)


def test_ulids_made_at_increasing_times_sort_in_order() -> None:
    start = datetime(2025, 6, 1, tzinfo=UTC)
    made = [new_ulid(start + timedelta(milliseconds=i)) for i in range(500)]
    assert sorted(made) == made


def test_ulid_time_of_other_time_zones_is_utc() -> None:
    from zoneinfo import ZoneInfo

    at = datetime(2025, 2, 1, 8, 30, tzinfo=ZoneInfo("Asia/Shanghai"))
    decoded = ulid_time(new_ulid(at))
    assert decoded == at
    assert decoded.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "junk",
    [
        "",
        "01ARYZ6S41",
        "01ARYZ6S41TSV4RRFFQ69G5FA",  # 25 chars
        "01ARYZ6S41TSV4RRFFQ69G5FAVX",  # 27 chars
        "01arYZ6S41TSV4RRFFQ69G5FAV",  # lower case
        "01ARYZ6S41TSV4RRFFQ69G5FAI",  # I is not Crockford
        "01ARYZ6S41TSV4RRFFQ69G5FAL",  # L
        "01ARYZ6S41TSV4RRFFQ69G5FAO",  # O
        "01ARYZ6S41TSV4RRFFQ69G5FAU",  # U
        "81ARYZ6S41TSV4RRFFQ69G5FAV",  # overflows 128 bits
        "01ARYZ6S41-SV4RRFFQ69G5FAV",
        " 1ARYZ6S41TSV4RRFFQ69G5FAV",
        None,
        12345,
    ],
)
def test_is_ulid_rejects_junk(junk: object) -> None:
    assert not is_ulid(junk)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="ULID"):
        ulid_time(junk)  # type: ignore[arg-type]


def test_ulid_time_beyond_year_9999_is_a_value_error() -> None:
    assert is_ulid("7ZZZZZZZZZZZZZZZZZZZZZZZZZ")
    with pytest.raises(ValueError, match="ULID"):
        ulid_time("7ZZZZZZZZZZZZZZZZZZZZZZZZZ")


def test_naive_time_is_local_time() -> None:
    at = datetime(2025, 5, 5, 10, 20, 30, 456789)  # noqa: DTZ001 (naive on purpose)
    assert ulid_time(new_ulid(at)) == to_millisecond(at.astimezone(UTC))


def test_new_link_code_is_8_base62_chars_and_distinct() -> None:
    codes = [new_link_code() for _ in range(1000)]
    assert all(len(code) == 8 and BASE62.match(code) for code in codes)
    assert len(set(codes)) == 1000
    assert all(is_link_code(code) for code in codes)
    # Random, not sequential: all 62 characters show up across 8,000 characters.
    assert len(set("".join(codes))) == 62


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("abc1234", True),
        ("Ab-_9xYz", True),
        ("a" * 32, True),
        ("abc123", False),
        ("a" * 33, False),
        ("abc 1234", False),
        ("abc/1234", False),
        ("abc.1234", False),
        ("ábc12345", False),
    ],
)
def test_is_link_code(value: str, ok: bool) -> None:
    assert is_link_code(value) is ok


def test_new_public_id() -> None:
    ids = {new_public_id("prg") for _ in range(100)}
    assert len(ids) == 100
    for public_id in ids:
        prefix, code = public_id.split("_")
        assert prefix == "prg"
        assert len(code) == 12
        assert BASE62.match(code)

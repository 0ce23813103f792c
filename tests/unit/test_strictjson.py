"""Strict JSON and RFC 3339 parsing: the fast paths agree with the obvious reference."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway import strictjson
from gateway.reasons import Reason
from gateway.strictjson import loads_strict, parse_rfc3339_us

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _reference_us(text: str) -> int | None:
    """The obvious (slow) parse: datetime.fromisoformat on the µs-truncated text."""
    if not re.fullmatch(r"\d{4}-\d\d-\d\d[Tt]\d\d:\d\d:\d\d(\.\d{1,9})?([Zz]|[+-]\d\d:\d\d)", text):
        return None
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)
    text = text[:-1] + "Z" if text.endswith("z") else text  # RFC 3339 allows it; 3.11 does not
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return (moment - _EPOCH) // timedelta(microseconds=1)


def _digits(count: int, low: int, high: int) -> st.SearchStrategy[str]:
    return st.integers(low, high).map(lambda n: f"{n:0{count}d}")


TIMESTAMPS = st.builds(
    lambda y, mo, d, t, h, mi, s, frac, zone: f"{y}-{mo}-{d}{t}{h}:{mi}:{s}{frac}{zone}",
    _digits(4, 0, 9999),
    _digits(2, 0, 13),
    _digits(2, 0, 32),
    st.sampled_from("Tt"),
    _digits(2, 0, 25),
    _digits(2, 0, 61),
    _digits(2, 0, 61),
    st.one_of(st.just(""), st.from_regex(r"\.\d{1,9}", fullmatch=True)),
    st.one_of(
        st.sampled_from("Zz"),
        st.builds(
            lambda sign, h, m: f"{sign}{h}:{m}",
            st.sampled_from("+-"),
            _digits(2, 0, 23),
            _digits(2, 0, 59),
        ),
    ),
)


@settings(max_examples=500)
@given(TIMESTAMPS)
def test_when_timestamp_is_parsed_then_result_matches_datetime_reference(text: str) -> None:
    assert parse_rfc3339_us(text) == _reference_us(text)


def test_when_separators_are_lowercase_then_timestamp_is_accepted_as_rfc3339_allows() -> None:
    assert parse_rfc3339_us("2026-11-26t12:00:00z") == parse_rfc3339_us("2026-11-26T12:00:00Z")


def test_when_offset_fields_are_out_of_range_then_timestamp_is_rejected() -> None:
    assert parse_rfc3339_us("2026-11-26T12:00:00+24:00") is None
    assert parse_rfc3339_us("2026-11-26T12:00:00+00:60") is None


def test_when_day_is_invalid_then_it_is_rejected_every_time() -> None:
    for _ in range(2):
        assert parse_rfc3339_us("2026-02-29T00:00:00Z") is None
    assert parse_rfc3339_us("2024-02-29T00:00:00Z") == 1709164800000000


def test_when_many_days_are_seen_then_the_day_cache_stays_bounded() -> None:
    start = datetime(2000, 1, 1, tzinfo=UTC)
    for offset in range(5000):
        day = start + timedelta(days=offset)
        text = day.strftime("%Y-%m-%dT00:00:00Z")
        assert parse_rfc3339_us(text) == (day - _EPOCH) // timedelta(microseconds=1)
    assert len(strictjson._epoch_days) <= strictjson._CACHE_SIZE
    assert len(strictjson._second_starts) <= strictjson._CACHE_SIZE


@given(
    st.dictionaries(
        st.text(max_size=5), st.integers(-(2**63), 2**63 - 1) | st.text(max_size=5), max_size=6
    )
)
def test_when_json_is_compact_and_unique_then_it_decodes(data: dict[str, object]) -> None:
    assert loads_strict(orjson.dumps(data)) == (data, None, "")


@given(st.text(max_size=5), st.text(max_size=5))
def test_when_a_key_repeats_in_any_spelling_then_it_is_rejected(key: str, other: str) -> None:
    encoded = orjson.dumps(key)
    value = b"{" + encoded + b": 1, " + orjson.dumps(other) + b": 2, " + encoded + b": 3}"
    assert loads_strict(value)[1] is Reason.DUPLICATE_KEY


def test_when_input_has_escapes_and_distinct_keys_then_exact_check_accepts_it() -> None:
    assert loads_strict(b'{"a": "\\/x", "b\\u0061": 1}') == ({"a": "/x", "ba": 1}, None, "")


TAILS = ["Z", "z", ".1Z", ".123Z", ".123456789Z", ".1234567890Z", ".Z", ".12aZ", ".１２Z", "", ".5"]
TAILS += ["+01:00", ".25-02:30", "Z ", "ZZ", ".123", "+24:00"]


@pytest.mark.parametrize("tail", TAILS)
def test_when_a_known_prefix_has_any_tail_then_result_matches_the_reference(tail: str) -> None:
    prefix = "2026-11-26T12:34:56"
    assert parse_rfc3339_us(prefix + "Z") is not None  # the prefix is now remembered
    assert parse_rfc3339_us(prefix + tail) == _reference_us(prefix + tail)


@given(st.text(max_size=12))
def test_when_a_known_prefix_has_arbitrary_text_after_it_then_result_matches_reference(
    tail: str,
) -> None:
    prefix = "2026-11-26T12:34:57"
    assert parse_rfc3339_us(prefix + ".5Z") is not None
    assert parse_rfc3339_us(prefix + tail) == _reference_us(prefix + tail)

"""Event parsing: one reason per kind of invalid input, and a redacted DLQ form."""

from __future__ import annotations

import itertools
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway import events as events_module
from gateway.events import FIELD_TYPES, REQUIRED_FIELDS, Event, EventKind, Invalid, parse_event
from gateway.reasons import Reason
from gateway.strictjson import NUMBER_DETAIL
from tests.unit.helpers import event_dict

GOOD = event_dict()
KEY = GOOD["subject_id"].encode()


def _dumps(**overrides: object) -> bytes:
    return orjson.dumps(event_dict(**overrides))


def _without(name: str) -> bytes:
    data = event_dict()
    del data[name]
    return orjson.dumps(data)


INVALID_CASES = [
    ("no value", None, KEY, Reason.MISSING_VALUE),
    ("not json", b"{not json", KEY, Reason.INVALID_JSON),
    ("empty", b"", KEY, Reason.INVALID_JSON),
    ("invalid utf-8", b'{"event_id": "\xff"}', KEY, Reason.INVALID_UTF8),
    ("array", b"[1, 2]", KEY, Reason.NOT_OBJECT),
    ("string", b'"x"', KEY, Reason.NOT_OBJECT),
    ("too deep", b"[" * 1100 + b"]" * 1100, KEY, Reason.TOO_DEEP),
    ("too large", b'{"x": "' + b"a" * 70000 + b'"}', KEY, Reason.TOO_LARGE),
    ("duplicate top-level", b'{"x": 1, "x": 2}', KEY, Reason.DUPLICATE_KEY),
    (
        "duplicate in properties",
        _dumps()[:-1] + b', "properties": {"a": 1, "a": 2}}',
        KEY,
        Reason.DUPLICATE_KEY,
    ),
    ("duplicate with escapes", b'{"a\\u0062": 1, "ab": 2}', KEY, Reason.DUPLICATE_KEY),
    ("missing event_id", _without("event_id"), KEY, Reason.MISSING_FIELD),
    ("missing occurred_at", _without("occurred_at"), KEY, Reason.MISSING_FIELD),
    ("ip is a number", _dumps(ip=1234), KEY, Reason.WRONG_TYPE),
    ("gpc is a string", _dumps(gpc="yes"), KEY, Reason.WRONG_TYPE),
    ("properties is a list", _dumps(properties=[1]), KEY, Reason.WRONG_TYPE),
    ("empty event_id", _dumps(event_id=""), KEY, Reason.INVALID_FIELD),
    ("long event_id", _dumps(event_id="e" * 129), KEY, Reason.INVALID_FIELD),
    ("empty subject_id", _dumps(subject_id=""), b"", Reason.INVALID_FIELD),
    ("empty event_type", _dumps(event_type=""), KEY, Reason.INVALID_FIELD),
    ("date only", _dumps(occurred_at="2026-11-26"), KEY, Reason.BAD_TIMESTAMP),
    ("no offset", _dumps(occurred_at="2026-11-26T12:00:00"), KEY, Reason.BAD_TIMESTAMP),
    ("month 13", _dumps(occurred_at="2026-13-26T12:00:00Z"), KEY, Reason.BAD_TIMESTAMP),
    ("no key", _dumps(), None, Reason.MISSING_KEY),
    ("other key", _dumps(), b"someone-else", Reason.KEY_MISMATCH),
]


@pytest.mark.parametrize(
    ("value", "key", "reason"),
    [case[1:] for case in INVALID_CASES],
    ids=[case[0] for case in INVALID_CASES],
)
def test_when_record_is_invalid_then_one_reason_names_the_problem(
    value: bytes | None, key: bytes | None, reason: Reason
) -> None:
    result = parse_event(value, key, EventKind.USAGE, max_bytes=65536)
    assert isinstance(result, Invalid)
    assert result.reason is reason
    assert result.redacted()["reason"] == reason.value


def test_when_record_is_valid_then_event_carries_ids_and_epoch_microseconds() -> None:
    event = parse_event(_dumps(), KEY, EventKind.DEVICE, max_bytes=65536)
    assert isinstance(event, Event)
    assert event.event_id == "evt-1"
    assert event.subject_id == GOOD["subject_id"]
    assert event.kind is EventKind.DEVICE
    assert event.occurred_at_us == 1795696496789000
    assert event.fields["ip"] == "192.0.2.77"


def test_when_timestamp_has_offset_and_nanoseconds_then_it_is_normalised_to_utc_us() -> None:
    value = _dumps(occurred_at="2026-11-26T13:34:56.789123999+01:00")
    event = parse_event(value, KEY, EventKind.USAGE, max_bytes=65536)
    assert isinstance(event, Event)
    assert event.occurred_at_us == 1795696496789123


def test_when_invalid_record_is_redacted_then_no_value_survives() -> None:
    value = _dumps(gpc="pat@example.invalid", **{"pat@example.invalid": "x"})
    result = parse_event(value, KEY, EventKind.USAGE, max_bytes=65536)
    assert isinstance(result, Invalid)
    text = orjson.dumps(result.redacted()).decode() + repr(result)
    for secret in (*GOOD.values(), "pat@example.invalid", "192.0.2.77"):
        if isinstance(secret, str) and secret not in ("page_view", "desktop"):
            assert secret not in text
    assert result.redacted()["fields"]["ip"] == "string"
    assert result.redacted()["other_fields"] == 1


def test_when_event_is_repr_then_no_identifier_is_shown() -> None:
    event = parse_event(_dumps(), KEY, EventKind.USAGE, max_bytes=65536)
    assert GOOD["subject_id"] not in repr(event)
    assert "192.0.2.77" not in repr(event)


def test_when_backslashes_are_present_then_exact_check_accepts_distinct_keys() -> None:
    value = _dumps(page='https://www.example.com/a"b\\c')
    assert isinstance(parse_event(value, KEY, EventKind.USAGE, max_bytes=65536), Event)


def test_when_event_has_an_unknown_field_of_any_type_then_it_is_still_valid() -> None:
    value = _dumps(extra_field=[1, {"a": None}])
    event = parse_event(value, KEY, EventKind.USAGE, max_bytes=65536)
    assert isinstance(event, Event)


def test_when_many_key_orders_are_seen_then_the_shape_cache_stays_bounded() -> None:
    optional = ["page", "referrer", "user_agent", "ip", "device_id", "cookie_id", "device_type"]
    for order in itertools.islice(itertools.permutations(optional), 1100):
        data = {name: GOOD[name] for name in (*REQUIRED_FIELDS, *order)}
        assert isinstance(
            parse_event(orjson.dumps(data), KEY, EventKind.USAGE, max_bytes=65536), Event
        )
    assert 0 < len(events_module._shapes) <= events_module._SHAPE_CACHE_SIZE


JSON_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 5), st.text(max_size=3), st.just({}), st.just([])
)


def _reference_problem(obj: dict[str, Any]) -> Reason | None:
    if any(name not in obj for name in REQUIRED_FIELDS):
        return Reason.MISSING_FIELD
    if any(name in FIELD_TYPES and type(v) is not FIELD_TYPES[name] for name, v in obj.items()):
        return Reason.WRONG_TYPE
    return None


@given(
    st.dictionaries(
        st.sampled_from([*FIELD_TYPES, "extra", "other"]), JSON_VALUES, min_size=3, max_size=10
    )
)
def test_when_fields_have_any_types_then_check_matches_the_plain_reference(
    obj: dict[str, Any],
) -> None:
    for _ in range(2):  # the second time through the remembered key order
        problem = events_module._field_problem(obj)
        expected = _reference_problem(obj)
        if expected is not None:
            assert problem is not None
            assert problem[0] is expected
        else:
            assert problem is None or problem[0] is Reason.INVALID_FIELD


# Field cases (inputs rebuilt from reported problems), embedded so the repo stands alone.
CASE_SUBJECT = b"user-7f3a9c11"


def _case(occurred_at: str, event_id: str = "evt-h", extra: str = "") -> bytes:
    return (
        f'{{"event_id": "{event_id}", "subject_id": "user-7f3a9c11", '
        f'"occurred_at": "{occurred_at}", "event_type": "page_view"{extra}}}'
    ).encode()


ACCEPTED_CASES = [
    ("leap second", _case("2016-12-31T23:59:60Z", "evt-h9a"), 1483228799999999),
    ("leap second, offset", _case("2017-01-01T05:29:60.25+05:30"), 1483228799999999),
    (
        "year 9999, negative offset",
        _case("9999-12-31T23:59:59-01:00", "evt-h7a"),
        253402304399000000,
    ),
    (
        "year 0001, positive offset",
        _case("0001-01-01T00:30:00+01:00", "evt-h7b"),
        -62135598600000000,
    ),
    (
        "utf-8 byte-order mark",
        b"\xef\xbb\xbf"
        b'{"event_id":"evt-h11","subject_id":"user-7f3a9c11",'
        b'"occurred_at":"2026-11-26T12:34:56Z","event_type":"page_view"}',
        1795696496000000,
    ),
    (
        "nesting at the limit (254 levels with the event itself)",
        _case("2026-11-26T12:34:56Z", extra=', "properties": {"x": ' + "[" * 252 + "]" * 252 + "}"),
        1795696496000000,
    ),
    (
        "exact numbers",
        _case("2026-11-26T12:34:56Z", extra=', "n": [1E2, 1.50, -0.0, 18446744073709551615]'),
        1795696496000000,
    ),
]


@pytest.mark.parametrize(
    ("value", "occurred_at_us"),
    [case[1:] for case in ACCEPTED_CASES],
    ids=[case[0] for case in ACCEPTED_CASES],
)
def test_when_a_field_case_is_valid_then_it_is_accepted_with_its_exact_instant(
    value: bytes, occurred_at_us: int
) -> None:
    event = parse_event(value, CASE_SUBJECT, EventKind.USAGE, max_bytes=65536)
    assert isinstance(event, Event), event
    assert event.occurred_at_us == occurred_at_us
    assert orjson.loads(orjson.dumps(event.fields)) == event.fields


REFUSED_CASES = [
    (
        "nesting 300 deep in properties",
        _case(
            "2026-11-26T12:34:56Z",
            extra=', "properties": {"experiment": ' + "[" * 298 + "]" * 298 + "}",
        ),
        Reason.TOO_DEEP,
        "nesting deeper than 254 levels",
    ),
    (
        "one level past the limit",
        _case("2026-11-26T12:34:56Z", extra=', "properties": {"x": ' + "[" * 253 + "]" * 253 + "}"),
        Reason.TOO_DEEP,
        "nesting deeper than 254 levels",
    ),
    (
        "integer beyond 64 bits",
        _case("2026-11-26T12:34:56Z", extra=', "properties": {"n": 18446744073709551616}'),
        Reason.NUMBER_OUT_OF_RANGE,
        NUMBER_DETAIL,
    ),
    (
        "decimal finer than a double",
        _case("2026-11-26T12:34:56Z", extra=', "properties": {"n": 1.00000000000000000001}'),
        Reason.NUMBER_OUT_OF_RANGE,
        NUMBER_DETAIL,
    ),
    (
        "decimal beyond a double",
        _case("2026-11-26T12:34:56Z", extra=', "properties": {"n": 1e400}'),
        Reason.NUMBER_OUT_OF_RANGE,
        NUMBER_DETAIL,
    ),
    (
        "second 60 not at 23:59 UTC",
        _case("2016-12-31T23:59:60+01:00"),
        Reason.BAD_TIMESTAMP,
        "field 'occurred_at' is not an RFC 3339 timestamp",
    ),
    (
        "byte-order mark twice",
        b"\xef\xbb\xbf" + _case("2026-11-26T12:34:56Z").replace(b"{", b"\xef\xbb\xbf{", 1),
        Reason.INVALID_JSON,
        "a byte-order mark outside a string, allowed only as the first bytes"
        " (RFC 8259 section 8.1; at char 1)",
    ),
    (
        "utf-16 with its byte-order mark",
        ("\ufeff" + _case("2026-11-26T12:34:56Z").decode()).encode("utf-16-le"),
        Reason.INVALID_UTF8,
        "input starts with a UTF-16 or UTF-32 byte-order mark; JSON must be UTF-8"
        " (RFC 8259 section 8.1)",
    ),
]


@pytest.mark.parametrize(
    ("value", "reason", "detail"),
    [case[1:] for case in REFUSED_CASES],
    ids=[case[0] for case in REFUSED_CASES],
)
def test_when_a_field_case_cannot_be_carried_then_its_reason_and_detail_are_truthful(
    value: bytes, reason: Reason, detail: str
) -> None:
    result = parse_event(value, CASE_SUBJECT, EventKind.USAGE, max_bytes=65536)
    assert isinstance(result, Invalid)
    assert (result.reason, result.detail) == (reason, detail)


def test_when_a_bom_is_present_then_the_size_limit_still_counts_its_bytes() -> None:
    value = b"\xef\xbb\xbf" + _case("2026-11-26T12:34:56Z")
    assert isinstance(
        parse_event(value, CASE_SUBJECT, EventKind.USAGE, max_bytes=len(value)), Event
    )
    result = parse_event(value, CASE_SUBJECT, EventKind.USAGE, max_bytes=len(value) - 1)
    assert isinstance(result, Invalid)
    assert result.reason is Reason.TOO_LARGE

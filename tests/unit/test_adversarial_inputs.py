"""Whatever the validator accepts, the pipeline can carry: parse_event, decide, parse_consent and
apply_consent never raise on adversarial records, and an accepted event always re-encodes,
coarsens and is decided for every sink."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.consent import (
    ConsentOutcome,
    ConsentUpdate,
    Tombstone,
    apply_consent,
    parse_consent,
)
from gateway.decision import Verdict
from gateway.engine import Engine
from gateway.events import Event, EventKind, Invalid, parse_event
from gateway.operators import OPERATORS
from gateway.operators.base import DROP
from gateway.reasons import INVALID_REASONS, Reason
from gateway.records import Source
from gateway.strictjson import MAX_DEPTH
from tests.unit.helpers import ALL_GRANTED, consent_state
from tests.unit.test_timestamps import build

SUBJECT = "user-7f3a9c11"
KEY = SUBJECT.encode()
MAX_BYTES = 65536

NUMBERS = st.one_of(
    st.integers().map(str),
    st.integers(-(10**30), 10**30).map(lambda n: f"{n}e{n % 900 - 450}"),
    st.builds(
        lambda m, f, e: f"{m}.{f}e{e}",
        st.integers(-9, 9),
        st.integers(0, 10**25),
        st.integers(-999, 999),
    ),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.sampled_from(["1e400", "-1e400", "1e-400", "-0", "-0.0", "1" * 400, "0.1" + "0" * 30 + "1"]),
)
ESCAPES = st.sampled_from(
    ["\\ud800", "\\udc00", "\\ud83d\\ude00", "\\u0000", "\\ufeff", '\\"', "\\\\", "\\/"]
)
STRINGS = st.lists(
    st.one_of(st.text(max_size=8).map(lambda t: orjson.dumps(t).decode()[1:-1]), ESCAPES),
    max_size=6,
).map(lambda parts: '"' + "".join(parts) + '"')
TIMESTAMPS = st.builds(
    lambda y, mo, d, h, mi, s, frac, zone: (
        f'"{y:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}{frac}{zone}"'
    ),
    st.sampled_from([0, 1, 2, 1970, 2016, 9999]),
    st.integers(1, 12),
    st.sampled_from([1, 28, 29, 30, 31]),
    st.sampled_from([0, 23]),
    st.sampled_from([0, 59]),
    st.sampled_from([0, 59, 60]),
    st.sampled_from(["", ".5", ".999999999"]),
    st.sampled_from(["Z", "z", "+23:59", "-23:59", "+01:00", "-01:00", "+24:00"]),
)


def _nest(inner: str, openers: list[bool]) -> str:
    for is_list in reversed(openers):
        inner = f"[{inner}]" if is_list else f'{{"k": {inner}}}'
    return inner


NESTED = st.builds(
    _nest,
    st.one_of(NUMBERS, STRINGS, st.just("null")),
    st.lists(st.booleans(), min_size=MAX_DEPTH - 4, max_size=MAX_DEPTH + 2)
    | st.lists(st.booleans(), max_size=5)
    | st.lists(st.booleans(), min_size=1020, max_size=1030),
)
VALUES = st.one_of(NUMBERS, STRINGS, TIMESTAMPS, NESTED, st.just('"' + "x" * 60000 + '"'))


def _event(occurred_at: str, value: str, where: str) -> bytes:
    fields = {
        "occurred_at": occurred_at,
        "ip": '"192.0.2.1"',
        "page": '"https://www.example.com/"',
    }
    body = f'"event_id": "evt-1", "subject_id": "{SUBJECT}", "event_type": "page_view"'
    for name, text in fields.items():
        body += f', "{name}": {value if name == where else text}'
    if where == "properties":  # "experiment" is kept by the shipped analytics sink
        body += f', "properties": {{"p": {value}, "experiment": {value}}}'
    return ("{" + body + "}").encode("utf-8", "surrogatepass")


ADULT = consent_state(ALL_GRANTED, under_13=False, parental=False)
CHILD = consent_state(ALL_GRANTED, under_13=True, parental=False)


def _check_event(value: bytes | None, key: bytes | None, engine: Engine) -> None:
    result = parse_event(value, key, EventKind.USAGE, max_bytes=MAX_BYTES)
    if isinstance(result, Invalid):
        assert result.reason in INVALID_REASONS
        orjson.dumps(result.redacted())
        return
    assert isinstance(result, Event)
    assert orjson.loads(orjson.dumps(result.fields)) == result.fields
    for unit in ("minute", "hour", "day"):
        assert build(unit).apply(result.fields["occurred_at"]) is not DROP
    for state in (ADULT, CHILD, None):  # whatever is accepted is decided, for every sink
        for decision in engine.decide(result, state):
            assert decision.verdict is Verdict.DROP or decision.value is not None
            assert engine.records.audit(result, decision, Source("t", 0, 0), None).value


@settings(max_examples=150)
@given(TIMESTAMPS, VALUES, st.sampled_from(["occurred_at", "ip", "page", "properties", None]))
def test_when_an_event_holds_adversarial_values_then_parse_event_decides_without_raising(
    engine: Engine, occurred_at: str, value: str, where: str | None
) -> None:
    _check_event(_event(occurred_at, value, where or ""), KEY, engine)


@settings(max_examples=150)
@given(st.binary(max_size=300), st.one_of(st.none(), st.just(KEY), st.binary(max_size=8)))
def test_when_a_record_is_arbitrary_bytes_then_both_parsers_decide_without_raising(
    engine: Engine, value: bytes, key: bytes | None
) -> None:
    _check_event(value, key, engine)
    _check_event(b"\xef\xbb\xbf" + value, key, engine)
    result = parse_consent(value, key)
    assert isinstance(result, ConsentUpdate | Tombstone | Invalid)
    if not isinstance(result, Invalid):
        apply_consent(ADULT, result)


def _consent(updated_at: str, value: str, where: str) -> bytes:
    fields = {"updated_at": updated_at, "purposes": '{"analytics": true}', "source": '"banner"'}
    fields[where] = value
    body = ", ".join(f'"{name}": {text}' for name, text in fields.items())
    return ("{" + body + "}").encode("utf-8", "surrogatepass")


@settings(max_examples=150)
@given(TIMESTAMPS, VALUES, st.sampled_from(["updated_at", "purposes", "source"]))
def test_when_a_consent_record_holds_adversarial_values_then_parse_consent_never_raises(
    updated_at: str, value: str, where: str
) -> None:
    for timestamp_ms in (None, 1_795_000_000_000, 0, -1):  # with and without a Kafka timestamp
        result = parse_consent(
            _consent(updated_at, value, where), KEY, record_timestamp_ms=timestamp_ms
        )
        assert isinstance(result, ConsentUpdate | Invalid)
        if isinstance(result, Invalid):
            assert result.reason in INVALID_REASONS
            continue
        for current in (None, ADULT, CHILD):  # whatever is parsed is applied, either way
            state, outcome = apply_consent(current, result)
            assert state is not None
            assert outcome in {ConsentOutcome.APPLIED, ConsentOutcome.STALE}


def test_when_a_consent_record_is_nested_300_deep_then_it_is_refused_as_too_deep() -> None:
    value = (
        b'{"subject_id":"user-7f3a9c11","updated_at":"2026-11-26T12:00:00Z",'
        b'"purposes":{"analytics":true},"age":{"under_13":false,"parental_consent":false},'
        b'"source":' + b"[" * 300 + b"]" * 300 + b"}"
    )
    result = parse_consent(value, KEY)
    assert isinstance(result, Invalid)
    assert (result.reason, result.detail) == (Reason.TOO_DEEP, "nesting deeper than 254 levels")


@pytest.mark.parametrize(
    "updated_at", ["0001-01-01T00:30:00+01:00", "9999-12-31T23:59:59-01:00", "2016-12-31T23:59:60Z"]
)
def test_when_a_consent_record_has_an_extreme_timestamp_then_it_is_applied(updated_at: str) -> None:
    assert isinstance(
        parse_consent(_consent(f'"{updated_at}"', '"banner"', "source"), KEY), ConsentUpdate
    )


def test_when_the_timestamp_operator_is_registered_then_this_file_builds_the_real_one() -> None:
    assert type(build("hour")) is OPERATORS["timestamp"]

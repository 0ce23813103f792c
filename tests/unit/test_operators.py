"""Each operator on its own: typed config, hot-path behaviour, drop instead of pass-through."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.keys import pseudonymize
from gateway.operators import DROP, OPERATORS, OperatorConfig, OperatorTools
from gateway.operators.base import Operator
from gateway.operators.url_clean import may_hold_email, plainly_without_at
from gateway.useragent import build_user_agent_parser, default_user_agent_parser
from tests.unit.helpers import UA_CHROME

KEY = b"k" * 32
TOOLS = OperatorTools(lambda v: pseudonymize(KEY, v), "k1", default_user_agent_parser)


def build(op: str, **options: Any) -> Operator:
    cls = OPERATORS[op]
    return cls(cls.config_model.model_validate({"op": op, **options}), TOOLS)


def test_when_keep_then_value_is_unchanged() -> None:
    assert build("keep").apply({"a": 1}) == {"a": 1}


def test_when_drop_then_field_is_removed() -> None:
    assert build("drop").apply("x") is DROP
    assert repr(DROP) == "DROP"


def test_when_redact_then_marker_replaces_value() -> None:
    assert build("redact").apply("secret") == "[redacted]"
    assert build("redact", replacement="*").apply("secret") == "*"


def test_when_pseudonym_then_keyed_hash_replaces_value() -> None:
    op = build("pseudonym")
    assert op.apply("canary-dev-7f3a9c") == pseudonymize(KEY, "canary-dev-7f3a9c")
    assert len(op.apply("x")) == 32
    assert op.apply("") is DROP
    assert op.apply(5) is DROP


IP_CASES = [
    ({}, "192.0.2.77", "192.0.2.0"),
    ({}, "2001:db8:1234:5678::42", "2001:db8:1234::"),
    ({"ipv4_prefix": 16}, "198.51.100.7", "198.51.0.0"),
    ({"ipv4_prefix": 20}, "203.0.113.255", "203.0.112.0"),
    ({"ipv6_prefix": 44}, "2001:db8:abcd:ef01::1", "2001:db8:abc0::"),
    ({"ipv4_prefix": 0}, "192.0.2.1", "0.0.0.0"),
    ({}, "not-an-ip", DROP),
    ({}, "192.0.2.256", DROP),
    ({}, "fe80::1%eth0", DROP),
    ({}, 3232235777, DROP),
]


@pytest.mark.parametrize(("options", "value", "expected"), IP_CASES)
def test_when_ip_truncated_then_only_the_prefix_survives(
    options: dict[str, int], value: object, expected: object
) -> None:
    assert build("ip_truncate", **options).apply(value) == expected


def test_when_user_agent_then_browser_major_and_os_family_remain() -> None:
    op = build("user_agent")
    assert op.apply(UA_CHROME) == {"browser": "Chrome", "major": "120", "os": "Windows"}
    assert op.apply(UA_CHROME) == op.apply(UA_CHROME)
    assert op.apply("???") == {"browser": None, "major": None, "os": None}
    assert op.apply(None) is DROP


TS_CASES = [
    ("minute", "2026-11-26T12:34:56.789Z", "2026-11-26T12:34:00Z"),
    ("hour", "2026-11-26T12:34:56Z", "2026-11-26T12:00:00Z"),
    ("day", "2026-11-26T12:34:56Z", "2026-11-26T00:00:00Z"),
    ("hour", "2026-11-26T00:30:00+01:00", "2026-11-25T23:00:00Z"),
    ("hour", "2026-02-31T12:00:00Z", DROP),
    ("hour", 17, DROP),
]


@pytest.mark.parametrize(("unit", "value", "expected"), TS_CASES)
def test_when_timestamp_coarsened_then_it_is_rounded_down_in_utc(
    unit: str, value: object, expected: object
) -> None:
    op = build("timestamp", unit=unit)
    assert op.apply(value) == expected
    assert op.apply(value) == expected  # second call takes the cached paths


def test_when_timestamp_unit_repeats_then_cached_text_is_reused() -> None:
    op = build("timestamp", unit="hour")
    assert op.apply("2026-11-26T12:34:56+00:00") == "2026-11-26T12:00:00Z"
    assert op.apply("2026-11-26T12:59:56+00:00") == "2026-11-26T12:00:00Z"


URL_CASES = [
    ({}, "https://www.example.com/a/b?x=1#frag", "https://www.example.com/a/b"),
    ({}, "https://user:pw@www.example.com/a", "https://www.example.com/a"),
    ({}, "https://pat@example.invalid@www.example.com/", "https://www.example.com/"),
    ({}, "https://www.example.com/u/pat@example.invalid/x", "https://www.example.com/u/[email]/x"),
    ({}, "https://www.example.com/u/pat%40example.invalid", "https://www.example.com/u/[email]"),
    ({}, "https://www.example.com/u/pat%2540example.invalid", "https://www.example.com/u/[email]"),
    ({}, "https://www.example.com/u/pat\uff20example.invalid", "https://www.example.com/u/[email]"),
    # `#` starts the fragment, so the domain goes with it
    ({}, "https://www.example.com/u/pat&#64;example.invalid", "https://www.example.com/u/pat&"),
    (
        {},
        "https://www.example.com/u/pat&commat;example.invalid",
        "https://www.example.com/u/[email]",
    ),
    ({}, "mailto:pat@example.invalid", "[email]"),
    ({}, "/relative/path?q=1", "/relative/path"),
    ({}, "https://www.example.com/%25252540", "https://www.example.com/[email]"),
    ({}, "https://www.example.com/caf%C3%A9", "https://www.example.com/caf%C3%A9"),
    (
        {"keep_query": ["utm_source", "q"]},
        "https://www.example.com/p?utm_source=mail&email=pat@example.invalid&q=pat%40x.invalid",
        "https://www.example.com/p?utm_source=mail",
    ),
    ({"keep_query": ["q"]}, "https://www.example.com/p?x=1", "https://www.example.com/p"),
    ({"keep_query": ["q"]}, "https://www.example.com/p", "https://www.example.com/p"),
    ({"keep_query": ["q"]}, "https://a%40b@www.example.com/p?q=1", "https://www.example.com/p?q=1"),
    ({}, "https://pat%40example.invalid/", DROP),
    ({}, 42, DROP),
]


@pytest.mark.parametrize(("options", "value", "expected"), URL_CASES)
def test_when_url_cleaned_then_no_query_fragment_userinfo_or_email_remains(
    options: dict[str, Any], value: object, expected: object
) -> None:
    assert build("url_clean", **options).apply(value) == expected


def test_when_text_has_no_at_sign_then_it_holds_no_email() -> None:
    assert not may_hold_email("plain%20text")
    assert may_hold_email("a%2540b")


def test_when_operator_config_has_unknown_option_then_validation_fails() -> None:
    with pytest.raises(ValueError, match="Extra inputs"):
        OPERATORS["keep"].config_model.model_validate({"op": "keep", "x": 1})
    assert OperatorConfig(op="keep").op == "keep"


def test_when_registry_is_read_then_every_operator_is_registered_once() -> None:
    assert sorted(OPERATORS) == [
        "drop",
        "ip_truncate",
        "keep",
        "pseudonym",
        "redact",
        "timestamp",
        "url_clean",
        "user_agent",
    ]


def test_when_text_is_encoded_many_times_then_it_is_treated_as_holding_an_email() -> None:
    assert not may_hold_email("100%")
    assert may_hold_email("%2525252541")


def test_when_user_agent_cache_is_full_then_it_is_cleared() -> None:
    parse = build_user_agent_parser(cache_size=1)
    assert parse(UA_CHROME)[0] == "Chrome"
    assert parse("???") == (None, None, None)
    assert parse(UA_CHROME)[0] == "Chrome"


@given(st.text())
def test_when_fast_check_says_no_at_sign_then_careful_check_agrees(text: str) -> None:
    if plainly_without_at(text):
        assert not may_hold_email(text)


@pytest.mark.parametrize("spelling", ["&#64;", "&#x40;", "&COMMAT;", "%40", "\uff20", "@"])
def test_when_url_holds_an_at_sign_spelling_then_fast_check_declines(spelling: str) -> None:
    assert not plainly_without_at(f"https://www.example.com/a?b=1&c=pat{spelling}example.invalid")

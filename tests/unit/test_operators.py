"""Each operator on its own: typed config, hot-path behaviour, drop instead of pass-through."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.keys import pseudonymize
from gateway.operators import DROP, OPERATORS, OperatorConfig, OperatorTools
from gateway.operators.base import Operator
from gateway.operators.url_clean import looks_like_id, may_hold_email, plainly_without_at
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
    ({}, 3232235777, DROP),
    # more than a bare address: the client's (the first of a list), without port, brackets, zone
    ({}, "fe80::1%eth0", "fe80::"),
    ({}, "203.0.113.7, 10.0.0.1", "203.0.113.0"),
    ({}, " 192.0.2.77 ", "192.0.2.0"),
    ({}, "192.0.2.77:8080", "192.0.2.0"),
    ({}, "[2001:db8:1:2::1]:443", "2001:db8:1::"),
    ({}, "[fe80::1%eth0]:443", "fe80::"),
    ({}, "2001:db8::1:443", "2001:db8::"),  # (no brackets: an address, read whole)
    ({}, "unknown, 10.0.0.1", DROP),  # the client unknown: nothing kept of the proxies
    ({}, "192.0.2.77:99999", DROP),  # no such port
    ({}, "user@192.0.2.7", DROP),
    ({}, "192.0.2.77/24", DROP),
    ({}, "[192.0.2.77]:80", DROP),
    ({}, "IPv6:2001:db8::42", DROP),
    ({}, "192.0.2.77:080", "192.0.2.0"),
    ({}, "192.0.2.77:65535", "192.0.2.0"),
    ({}, "[2001:db8::1]", "2001:db8::"),
    ({}, "[2001:db8::1]:99999", DROP),
    ({}, "fe80::1%", DROP),
    # found by the eighteenth attack round: no character but the shapes' (urlsplit deleted tabs
    # and line breaks, and took a bracketed host from anywhere)
    ({}, "10.0.0.\t0", DROP),
    ({}, "10.0.0\n.0, 198.51.100.7", DROP),
    ({}, "[2001:db8:1:\t:]:443", DROP),
    ({}, "1\t0.0.0.0", DROP),
    ({}, "203.0.113.7 [2001:db8:1::5]", DROP),
    ({}, "for=203.0.113.7;by=[2001:db8:1::5]", DROP),
    ({}, "[2001:db8:1::5]junk", DROP),
    ({}, "junk [2001:db8:1::]", DROP),
]


@pytest.mark.parametrize(("options", "value", "expected"), IP_CASES)
def test_when_ip_truncated_then_only_the_prefix_survives(
    options: dict[str, int], value: object, expected: object
) -> None:
    assert build("ip_truncate", **options).apply(value) == expected


# Every IPv6 form that carries an IPv4 address: truncated as that IPv4 (192.0.2.77 -> /24),
# keeping its form. Field case "IPv4-mapped truncated as IPv4" is the first.
CARRIER_CASES = [
    ("::ffff:192.0.2.77", "::ffff:192.0.2.0"),  # IPv4-mapped
    ("::ffff:c000:24d", "::ffff:192.0.2.0"),  # the same, in hex
    ("::192.0.2.77", "::192.0.2.0"),  # IPv4-compatible (deprecated)
    ("::ffff:0:192.0.2.77", "::ffff:0:c000:200"),  # IPv4-translated
    ("64:ff9b::192.0.2.77", "64:ff9b::c000:200"),  # NAT64 well-known prefix
    ("64:ff9b:1:abcd:ef::192.0.2.77", "64:ff9b:1::c000:200"),  # NAT64 local-use, as a /96
    ("2002:c000:24d:1234::1", "2002:c000:200::"),  # 6to4: its /48 would keep the whole IPv4
    # Teredo: server 198.51.100.1 -> .0, client 192.0.2.77 (stored inverted) -> .0 (inverted)
    ("2001:0:c633:6401:8000:f227:3fff:fdb2", "2001:0:c633:6400::3fff:fdff"),
    ("::1", "::"),  # in ::/96, so read as 0.0.0.1
]


@pytest.mark.parametrize(("value", "expected"), CARRIER_CASES)
def test_when_ipv6_carries_an_ipv4_then_that_ipv4_is_truncated_in_its_form(
    value: str, expected: str
) -> None:
    assert build("ip_truncate").apply(value) == expected


def test_when_ipv4_prefix_is_not_octet_aligned_then_carried_ipv4s_use_it_too() -> None:
    op = build("ip_truncate", ipv4_prefix=20, ipv6_prefix=32)
    assert op.apply("::ffff:203.0.113.255") == "::ffff:203.0.112.0"
    assert op.apply("2002:cb00:71ff::") == "2002:cb00:7000::"
    assert op.apply("2001:db8:abcd::1") == "2001:db8::"  # an ordinary IPv6: ipv6_prefix


def _carriers(v4: int, noise: int) -> dict[str, str]:
    """Each IPv4-carrying form of `v4` (with `noise` in the bits the form leaves free): its
    text and the IPv4 a reader finds in it."""
    n = noise
    forms = {
        "mapped": (0xFFFF << 32) | v4,
        "compatible": v4,
        "translated": (0xFFFF << 48) | v4,
        "nat64": (0x64FF9B << 96) | v4,
        "nat64_local": (0x64FF9B0001 << 80) | ((n & (2**48 - 1)) << 32) | v4,
        "6to4": (0x2002 << 112) | (v4 << 80) | (n & (2**80 - 1)),
        "teredo": (0x20010000 << 96) | ((n & (2**64 - 1)) << 32) | (v4 ^ 0xFFFFFFFF),
    }
    return {name: str(ipaddress.IPv6Address(a)) for name, a in forms.items()}


def _embedded(text: str, name: str) -> int:
    address = ipaddress.IPv6Address(text)
    if name == "teredo":
        assert address.teredo is not None
        return int(address.teredo[1])
    if name == "6to4":
        assert address.sixtofour is not None
        return int(address.sixtofour)
    if name == "mapped":
        assert address.ipv4_mapped is not None
        return int(address.ipv4_mapped)
    return int(address) & 0xFFFFFFFF


@given(st.integers(0, 2**32 - 1), st.integers(0, 2**80 - 1), st.integers(0, 30))
def test_when_any_ipv4_is_carried_in_any_form_then_no_output_holds_its_host_bits(
    v4: int, noise: int, prefix: int
) -> None:
    op = build("ip_truncate", ipv4_prefix=prefix)
    mask = (2**32 - 1) ^ (2 ** (32 - prefix) - 1)
    full = str(ipaddress.IPv4Address(v4))
    for name, text in _carriers(v4, noise).items():
        out = op.apply(text)
        assert _embedded(out, name) == v4 & mask, (name, text, out)
        if v4 & ~mask:  # host bits set: not even the dotted form leaks
            assert full not in out


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
ON = {"template_ids": True}
TEMPLATE_CASES = [
    (ON, "https://www.example.com/account/12345678/settings", "https://www.example.com/account/:id/settings"),
    (ON, "https://www.example.com/u/user-7f3a9c11/x", "https://www.example.com/u/:id/x"),
    (ON, "https://www.example.com/o/123e4567-e89b-12d3-a456-426614174000", "https://www.example.com/o/:id"),
    (ON, "https://www.example.com/t/aZ3kL9qP2xW7", "https://www.example.com/t/:id"),
    (ON, "https://www.example.com/i/invoice-20261126", "https://www.example.com/i/:id"),
    (ON, "https://www.example.com/%31%32%33%34%35%36", "https://www.example.com/:id"),
    (ON, "https://www.example.com/\uff11\uff12\uff13\uff14\uff15", "https://www.example.com/:id"),
    (ON, "https://www.example.com/p;jsessionid=ABC123DEF456GH", "https://www.example.com/:id"),
    (ON, "https://www.example.com/u/pat@example.invalid/x", "https://www.example.com/u/:email/x"),
    (ON, "https://www.example.com/u/pat%2540example.invalid", "https://www.example.com/u/:email"),
    (ON, "mailto:pat@example.invalid", ":email"),
    # not identifiers: years and dates, short numbers, slugs, hex words without a digit
    (ON, "https://www.example.com/blog/2026/11/26/post", "https://www.example.com/blog/2026/11/26/post"),
    (ON, "https://www.example.com/page/2", "https://www.example.com/page/2"),
    (ON, "https://www.example.com/p/iphone-15-pro-max", "https://www.example.com/p/iphone-15-pro-max"),
    (ON, "https://www.example.com/deadbeef/facade", "https://www.example.com/deadbeef/facade"),
    (ON, "https://www2.example.com:8080/a", "https://www2.example.com:8080/a"),
    (
        {"keep_query": ["utm_campaign", "q"], "template_ids": True},
        "https://www.example.com/?utm_campaign=dev-8c2b7a61&q=shoes&x=123456",
        "https://www.example.com/?utm_campaign=:id&q=shoes",
    ),
    (
        {"keep_query": ["q"], "template_ids": True},
        "https://user@www.example.com/u/998877665/?q=%39%39%38%38%37",
        "https://www.example.com/u/:id/?q=:id",
    ),
    (
        {"template_ids": False},
        "https://www.example.com/account/12345678/settings",
        "https://www.example.com/account/12345678/settings",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("options", "value", "expected"), TEMPLATE_CASES)
def test_when_url_templates_ids_then_identifier_like_segments_and_values_are_placeholders(
    options: dict[str, Any], value: str, expected: str
) -> None:
    assert build("url_clean", **options).apply(value) == expected


@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_./?=&", max_size=60))
def test_when_url_has_no_at_sign_then_fast_and_careful_templating_agree(path: str) -> None:
    op = build("url_clean", keep_query=["q", "r"], template_ids=True)
    fast = op.apply("https://www.example.com/" + path)
    careful = op.apply("https://x@www.example.com/" + path)  # userinfo forces the careful path
    assert fast == careful


def test_when_text_has_no_digit_then_it_never_looks_like_an_id() -> None:
    assert not looks_like_id("abcdef-abcd-abcd-abcd-abcdefabcdef")
    assert looks_like_id("a1b2c3d4")
    assert not looks_like_id("a1b2c3d")


@pytest.mark.parametrize(("options", "value", "expected"), URL_CASES)
def test_when_url_cleaned_then_no_query_fragment_userinfo_or_email_remains(
    options: dict[str, Any], value: object, expected: object
) -> None:
    # without templating (an internal sink's default); unset, the operator templates
    assert build("url_clean", template_ids=False, **options).apply(value) == expected


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

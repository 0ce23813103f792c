"""Strict JSON and RFC 3339 parsing: the fast paths agree with the obvious reference."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway import strictjson
from gateway.reasons import Reason
from gateway.strictjson import (
    MAX_DEPTH,
    MAX_INT,
    MIN_INT,
    NUMBER_DETAIL,
    loads_strict,
    parse_rfc3339_us,
)
from tests.unit.test_timestamps import reference_us

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _reference_us(text: str) -> int | None:
    """The obvious (slow) parse: the shape by regex, then naive datetime arithmetic."""
    if not re.fullmatch(
        r"\d{4}-\d\d-\d\d[Tt]\d\d:\d\d:\d\d(\.\d{1,9})?([Zz]|[+-]\d\d:\d\d)", text, re.ASCII
    ):
        return None
    if text[-6:-5] in "+-" and (text[-5:-3] > "23" or text[-2:] > "59"):
        return None
    return reference_us(text)


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


# --- depth: the validator's limit is exactly what orjson.dumps can write --------------------


def _nested(depth: int, opener: str) -> bytes:
    """`depth` nested arrays (opener "[") or objects (opener "{"), innermost empty."""
    if opener == "[":
        return b"[" * depth + b"]" * depth
    return b'{"k":' * (depth - 1) + b"{}" + b"}" * (depth - 1)


def test_when_max_depth_is_measured_then_it_is_orjsons_exact_encoding_boundary() -> None:
    assert orjson.dumps(orjson.loads(_nested(MAX_DEPTH, "[")))
    with pytest.raises(orjson.JSONEncodeError):
        orjson.dumps(orjson.loads(_nested(MAX_DEPTH + 1, "[")))
    assert MAX_DEPTH == 254


@pytest.mark.parametrize("opener", ["[", "{"])
def test_when_nesting_is_at_the_limit_then_it_decodes_and_one_more_level_is_too_deep(
    opener: str,
) -> None:
    parsed, reason, _ = loads_strict(_nested(MAX_DEPTH, opener))
    assert reason is None
    assert orjson.dumps(parsed) == _nested(MAX_DEPTH, opener)
    for depth in (MAX_DEPTH + 1, 300, 1024, 1025, 5000):
        expected = (None, Reason.TOO_DEEP, "nesting deeper than 254 levels")
        assert loads_strict(_nested(depth, opener)) == expected


def test_when_deep_nesting_has_whitespace_or_scalars_then_the_limit_is_the_same() -> None:
    spaced = b'{"p": ' + b"[ " * (MAX_DEPTH - 1) + b"1" + b" ]" * (MAX_DEPTH - 1) + b"}"
    assert loads_strict(spaced)[1] is None
    deeper = b'{"p": ' + b"[ " * MAX_DEPTH + b"1" + b" ]" * MAX_DEPTH + b"}"
    assert loads_strict(deeper)[1] is Reason.TOO_DEEP


@settings(max_examples=40)
@given(st.lists(st.sampled_from("[{"), min_size=MAX_DEPTH - 3, max_size=MAX_DEPTH + 3))
def test_when_arrays_and_objects_mix_then_too_deep_is_exactly_beyond_the_limit(
    openers: list[str],
) -> None:
    text = "".join("[" if o == "[" else '{"k":' for o in openers) + "1"
    text += "".join("]" if o == "[" else "}" for o in reversed(openers))
    parsed, reason, _ = loads_strict(text.encode())
    if len(openers) > MAX_DEPTH:
        assert reason is Reason.TOO_DEEP
    else:
        assert reason is None
        assert orjson.dumps(parsed) == text.encode()


# --- numbers: carried exactly, or refused as number_out_of_range ---------------------------

EXACT_NUMBERS = [
    ("0", 0),
    ("-0", 0),
    ("18446744073709551615", 2**64 - 1),
    ("-9223372036854775808", -(2**63)),
    ("1E2", 100.0),
    ("1e+2", 100.0),
    ("1.50", 1.5),
    ("0.1", 0.1),
    ("-0.0", -0.0),
    ("5e-324", 5e-324),
    ("1.7976931348623157e308", 1.7976931348623157e308),
    ("2.5E-3", 0.0025),
    ("0.10000000000000001", 0.1),  # C's %.17g of 0.1 (older PHP, printf-based writers)
    ("0.1000000000000000055511151231257827021181583404541015625", 0.1),  # its exact value
]
INEXACT_NUMBERS = [
    "18446744073709551616",
    "-9223372036854775809",
    "100000000000000000000000",
    "1" * 5000,
    "1.00000000000000000001",
    "0.1000000000000000055511151231257827",  # more digits than any writer emits, not exact
    "1e-400",
    "1e400",
    "-1e400",
    "1e99999999999999999999",
    "1e-99999999999999999999",
    "9007199254740993.0",
]


@pytest.mark.parametrize(("text", "value"), EXACT_NUMBERS)
@pytest.mark.parametrize("template", ["[{}]", '{{"n": {}}}', '{{"n":{}}}', "{}", " [ {} ] "])
def test_when_a_number_is_exact_then_it_decodes_to_that_value(
    text: str, value: float, template: str
) -> None:
    parsed, reason, _ = loads_strict(template.format(text).encode())
    assert reason is None
    got = parsed[0] if type(parsed) is list else parsed["n"] if type(parsed) is dict else parsed
    assert got == value
    assert type(got) is type(value)
    assert str(got).startswith("-") == str(value).startswith("-")  # -0.0 keeps its sign


@pytest.mark.parametrize("text", INEXACT_NUMBERS)
@pytest.mark.parametrize("template", ["[{}]", '{{"n": {}}}', '{{"n":{}}}', "{}"])
def test_when_a_number_cannot_be_carried_exactly_then_it_is_refused_without_its_value(
    text: str, template: str
) -> None:
    result = loads_strict(template.format(text).encode())
    assert result == (None, Reason.NUMBER_OUT_OF_RANGE, NUMBER_DETAIL)
    assert text not in NUMBER_DETAIL


@given(st.integers())
def test_when_any_integer_is_decoded_then_it_is_exact_or_refused(number: int) -> None:
    parsed, reason, _ = loads_strict(b'{"n": %d}' % number)
    if MIN_INT <= number <= MAX_INT:
        assert (parsed, reason) == ({"n": number}, None)
    else:
        assert (parsed, reason) == (None, Reason.NUMBER_OUT_OF_RANGE)


@given(
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["{!r}", "{:.17g}", "{:.17e}"]),
)
def test_when_any_double_is_written_then_it_decodes_exactly_or_is_refused(
    number: float, spelling: str
) -> None:
    text = spelling.format(number)
    parsed, reason, _ = loads_strict(f"[{text}]".encode())
    literal = Decimal(text)
    if literal in (Decimal(repr(number)), Decimal(f"{number:.17g}"), Decimal(number)):
        assert reason is None
        assert parsed == [number]
    else:  # 18 significant digits (.17e) that say more than the double holds
        assert (parsed, reason) == (None, Reason.NUMBER_OUT_OF_RANGE)


def test_when_input_is_canonical_or_only_spaced_then_the_careful_pass_is_skipped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def careful(text: str) -> object:
        raise AssertionError("careful pass ran")

    monkeypatch.setattr(strictjson, "_exact_loads", careful)
    data = {"a": [1, 2.5, -3, True, None], "b": {"c": "d e"}, "é": "\u2028"}
    assert loads_strict(orjson.dumps(data))[0] == data
    assert loads_strict(json.dumps(data, indent=2, ensure_ascii=False).encode())[0] == data


@given(
    st.recursive(
        st.none()
        | st.booleans()
        | st.integers(MIN_INT, MAX_INT)
        | st.floats(allow_nan=False)
        | st.text(max_size=4),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
        max_leaves=12,
    ).filter(lambda v: "Infinity" not in json.dumps(v)),
    st.sampled_from([None, 1, 2, "\t"]),
)
def test_when_stdlib_writes_any_value_with_any_spacing_then_it_decodes_to_that_value(
    value: object, indent: int | str | None
) -> None:
    for ascii_only in (True, False):
        text = json.dumps(value, indent=indent, ensure_ascii=ascii_only)
        assert loads_strict(text.encode()) == (value, None, "")


# --- byte-order marks and UTF-8: accepted where RFC 8259 allows, truthful where refused -----

BOM = b"\xef\xbb\xbf"


def test_when_input_starts_with_a_utf8_bom_then_it_is_ignored() -> None:
    assert loads_strict(BOM + b'{"a": 1}') == ({"a": 1}, None, "")
    assert loads_strict(BOM + b'{"a":1}') == ({"a": 1}, None, "")
    assert loads_strict(BOM + b'{"a": 1, "a": 2}')[1] is Reason.DUPLICATE_KEY
    assert loads_strict(BOM + b"[1e400]")[1] is Reason.NUMBER_OUT_OF_RANGE


def test_when_a_bom_sits_inside_a_string_then_it_is_that_character() -> None:
    assert loads_strict(b'{"a": "' + BOM + b'"}') == ({"a": "\ufeff"}, None, "")


BOM_DETAIL = "a byte-order mark outside a string, allowed only as the first bytes (RFC 8259 "
MISPLACED_BOMS = [
    (BOM + BOM + b"{}", BOM_DETAIL + "section 8.1; at char 1)"),
    (b"{}" + BOM, BOM_DETAIL + "section 8.1; at char 2)"),
    (b"[1," + BOM + b"2]", BOM_DETAIL + "section 8.1; at char 3)"),
    (b" " + BOM + b"{}", BOM_DETAIL + "section 8.1; at char 1)"),
]


@pytest.mark.parametrize(("data", "detail"), MISPLACED_BOMS)
def test_when_a_utf8_bom_is_not_first_then_it_is_refused_as_json_naming_the_bom(
    data: bytes, detail: str
) -> None:
    assert loads_strict(data) == (None, Reason.INVALID_JSON, detail)


OTHER_BOM_DETAIL = (
    "input starts with a UTF-16 or UTF-32 byte-order mark; JSON must be UTF-8"
    " (RFC 8259 section 8.1)"
)


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"])
def test_when_input_is_utf16_or_utf32_with_a_bom_then_it_is_refused_as_not_utf8(
    encoding: str,
) -> None:
    data = '\ufeff{"a": 1}'.encode(encoding)
    assert loads_strict(data) == (None, Reason.INVALID_UTF8, OTHER_BOM_DETAIL)


NOT_UTF8 = [
    (b'{"a": "\xff"}', "input is not valid UTF-8 (at byte 7)"),
    (BOM + b'{"a": "\xff"}', "input is not valid UTF-8 (at byte 10)"),
    (b'{"a": "\xed\xa0\x80"}', "input is not valid UTF-8 (at byte 7)"),  # an encoded surrogate
    (b'{"a": "\xc3"}', "input is not valid UTF-8 (at byte 7)"),
    (b"\xc0\xaf", "input is not valid UTF-8 (at byte 0)"),  # overlong "/"
]


@pytest.mark.parametrize(("data", "detail"), NOT_UTF8)
def test_when_input_is_not_utf8_then_the_detail_says_where(data: bytes, detail: str) -> None:
    assert loads_strict(data) == (None, Reason.INVALID_UTF8, detail)


@given(
    st.binary(max_size=40) | st.text(max_size=20).map(lambda t: t.encode("utf-8", "surrogatepass"))
)
def test_when_any_bytes_are_decoded_then_invalid_utf8_is_reported_iff_they_are_not_utf8(
    data: bytes,
) -> None:
    body = data.removeprefix(BOM)
    try:
        body.decode("utf-8")
        is_utf8 = True
    except UnicodeDecodeError:
        is_utf8 = False
    assert (loads_strict(data)[1] is Reason.INVALID_UTF8) is not is_utf8


@pytest.mark.parametrize("escape", [b"\\ud800", b"\\udc00", b"\\ud800\\u0041", b"\\udfff\\ud800"])
def test_when_a_string_escapes_an_unpaired_surrogate_then_the_detail_says_so(escape: bytes) -> None:
    reason, detail = loads_strict(b'{"a": "x' + escape + b'"}')[1:]
    assert reason is Reason.INVALID_JSON
    assert detail.startswith("a string escapes an unpaired UTF-16 surrogate")


def test_when_json_is_malformed_then_the_detail_names_orjsons_problem_and_position() -> None:
    assert loads_strict(BOM + b"[1,]") == (
        None,
        Reason.INVALID_JSON,
        "not valid JSON: trailing comma is not allowed (at char 3)",
    )
    assert loads_strict(b"{not json")[2] == (
        "not valid JSON: unexpected character, expected a string key (at char 1)"
    )

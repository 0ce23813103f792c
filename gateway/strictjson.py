"""Strict JSON decoding for untrusted records, and RFC 3339 timestamps as epoch microseconds.

JSON: orjson plus the checks orjson does not make, so that whatever `loads_strict` accepts, the
rest of the pipeline (orjson.dumps included) can carry exactly:

- a repeated key (at any depth) is an error; orjson keeps the last one;
- nesting deeper than `MAX_DEPTH` is refused: orjson.loads reads 1024 levels, orjson.dumps
  writes only 254, so deeper input would decode and then fail on the way out;
- a number the JSON layer cannot carry exactly is refused: orjson turns integers outside
  [-2**63, 2**64-1] into floats, rounds decimals finer than a double, and cannot hold 1e400;
- one leading UTF-8 byte-order mark is ignored (RFC 8259 section 8.1).

The exact check (duplicates and numbers, one stdlib pass) is slow, so it runs only when cheap
byte-level tests cannot show the input exact: an input identical to orjson's re-encoding of the
result (compact producers), or one that differs from it only in ASCII whitespace and has no
backslash (every other byte of keys, strings and number texts is then the same), lost no key
and altered no number.

Timestamps are parsed by hand from one regex match; the epoch day and the epoch second of the
text up to the seconds are remembered in small bounded dicts (events arrive roughly in time
order). Calendar arithmetic is integer-only (`days_from_civil`, `civil_from_days`), so every
accepted instant, down to 0000-12-31 in UTC, can be formatted.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

import orjson

from gateway.reasons import Reason

# --- JSON ---------------------------------------------------------------------------------

MAX_DEPTH = 254  # nested arrays/objects (a top-level `[]` is 1): what orjson.dumps can write
MIN_INT = -(2**63)  # orjson keeps integers in [MIN_INT, MAX_INT] exact, makes others floats
MAX_INT = 2**64 - 1
_MAX_INT_CHARS = 20  # len(str(MIN_INT)) == len(str(MAX_INT)); JSON has no leading zeros
_UTF8_BOM = b"\xef\xbb\xbf"
# UTF-32 LE starts with the UTF-16 LE mark; UTF-32 BE starts with two NULs (valid UTF-8).
_OTHER_BOMS = (b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff")
_ASCII_WHITESPACE = b" \t\n\r"  # the JSON whitespace of RFC 8259 section 2
DEPTH_DETAIL = f"nesting deeper than {MAX_DEPTH} levels"
NUMBER_DETAIL = (
    "a number cannot be carried exactly: an integer outside [-2**63, 2**64-1], or a decimal "
    "that a 64-bit double does not hold (out of range, or more digits than it keeps)"
)
# orjson's (static, value-free) messages that may be shown in a detail.
_SHOWN_MESSAGES = frozenset(
    {
        "trailing comma is not allowed",
        "unexpected character, expected ':' after key",
        "unexpected character, expected a JSON value",
        "unexpected character, expected a string key",
        "unexpected character, expected ',' or ']'",
        "unexpected character, expected ',' or '}'",
        "unexpected end of data",
        "unexpected content after document",
        "unexpected control character in string",
        "invalid escaped sequence in string",
        "number with leading zero is not allowed",
        "no digit after sign",
        "no digit after decimal point",
        "no digit after exponent sign",
        "invalid literal, expected 'true'",
        "invalid literal, expected 'false'",
        "invalid literal, expected 'null'",
        "Input is a zero-length, empty document",
        "input data is empty",
    }
)


class _DuplicateKeyError(ValueError):
    pass


class _InexactNumberError(ValueError):
    pass


def _pairs_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise _DuplicateKeyError
    return result


def _exact_int(text: str) -> int:
    """A JSON integer literal as an int; `_InexactNumberError` outside [MIN_INT, MAX_INT]."""
    if len(text) > _MAX_INT_CHARS:  # checked first: int() refuses over 4300 digits
        raise _InexactNumberError
    value = int(text)
    if not MIN_INT <= value <= MAX_INT:
        raise _InexactNumberError
    return value


def _exact_float(text: str) -> float:
    """A JSON decimal literal as a float; `_InexactNumberError` unless it is exact.

    Exact is what a writer of doubles emits for that double: its shortest form ("1E2", "1.50",
    "0.1", "-0.0") or its 17-significant-digit form ("0.10000000000000001", C's `%.17g`, which
    IEEE 754-2008 section 5.12.2 makes enough for any double), or the double's exact binary
    value written out in full ("0.1000000000000000055511151231257827021181583404541015625").
    Any other literal says more than a double holds ("1.00000000000000000001",
    "9007199254740993.0", "1e-400", "1e400") and is refused.
    """
    value = float(text)
    try:
        literal = Decimal(text)
        exact = literal in (Decimal(repr(value)), Decimal(f"{value:.17g}"), Decimal(value))
    except ArithmeticError:  # an exponent beyond Decimal's range: never a finite double
        exact = False
    if not exact:
        raise _InexactNumberError
    return value


def _depth(value: object) -> int:
    """How many arrays/objects nest in `value` (0 for a scalar); iterative, any depth."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        children = item.values() if type(item) is dict else item if type(item) is list else None
        if children is not None:
            deepest = max(deepest, level)
            stack.extend((child, level + 1) for child in children)
    return deepest


def _exact_loads(text: str) -> tuple[Any, Reason | None, str]:
    """The careful pass: the stdlib parser, with duplicate keys and inexact numbers refused."""
    try:
        value = json.loads(
            text,
            object_pairs_hook=_pairs_without_duplicates,
            parse_int=_exact_int,
            parse_float=_exact_float,
        )
    except _DuplicateKeyError:
        return None, Reason.DUPLICATE_KEY, "an object repeats a key"
    except _InexactNumberError:
        return None, Reason.NUMBER_OUT_OF_RANGE, NUMBER_DETAIL
    except RecursionError:  # pragma: no cover - MAX_DEPTH is far below the stack limit
        return None, Reason.TOO_DEEP, DEPTH_DETAIL
    return value, None, ""


def _decode_problem(body: bytes, error: orjson.JSONDecodeError, shift: int) -> tuple[Reason, str]:
    """The reason and a value-free detail for input orjson refused.

    `shift` counts the chars before `body` in the record: 1 after a stripped byte-order mark.
    """
    if body.startswith(_OTHER_BOMS):
        detail = "input starts with a UTF-16 or UTF-32 byte-order mark; JSON must be UTF-8"
        return Reason.INVALID_UTF8, detail + " (RFC 8259 section 8.1)"
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as bad:
        return Reason.INVALID_UTF8, f"input is not valid UTF-8 (at byte {bad.start + 3 * shift})"
    message, at = error.msg, error.pos
    if message.startswith("depth limit"):
        return Reason.TOO_DEEP, DEPTH_DETAIL
    if message.startswith("number is infinity"):
        return Reason.NUMBER_OUT_OF_RANGE, NUMBER_DETAIL
    if "surrogate" in message:
        detail = "a string escapes an unpaired UTF-16 surrogate, which no Unicode text holds"
        return Reason.INVALID_JSON, detail + " (RFC 8259 section 8.2, RFC 7493 section 2.1)"
    if text[at : at + 1] == "\ufeff":
        detail = "a byte-order mark outside a string, allowed only as the first bytes"
        return Reason.INVALID_JSON, f"{detail} (RFC 8259 section 8.1; at char {at + shift})"
    shown = f": {message}" if message in _SHOWN_MESSAGES else ""
    return Reason.INVALID_JSON, f"not valid JSON{shown} (at char {at + shift})"


def loads_strict(data: bytes) -> tuple[Any, Reason | None, str]:
    """Decode `data` (UTF-8 JSON, one optional leading BOM); on failure (None, reason, detail).

    Reasons: INVALID_UTF8, INVALID_JSON, TOO_DEEP (over MAX_DEPTH), DUPLICATE_KEY,
    NUMBER_OUT_OF_RANGE. The detail never quotes input.
    """
    parsed, _, reason, detail = loads_canonical(data)
    return parsed, reason, detail


def loads_canonical(
    data: bytes, *, after_bom: bool = False
) -> tuple[Any, bytes, Reason | None, str]:
    """`loads_strict`, plus the value's canonical encoding (orjson's, b"" on failure).

    The check computes the encoding anyway; the value guard (gateway.guard) searches it.

    `after_bom` (internal): `data` is what followed a stripped BOM, so no second one is
    stripped and positions count the first.
    """
    try:
        parsed = orjson.loads(data)
    except orjson.JSONDecodeError as error:  # a BOM costs only inputs that carry one
        if not after_bom and data.startswith(_UTF8_BOM):  # RFC 8259 section 8.1
            return loads_canonical(data[3:], after_bom=True)
        return (None, b"", *_decode_problem(data, error, 1 if after_bom else 0))
    try:
        encoded = orjson.dumps(parsed)
    except orjson.JSONEncodeError:
        if _depth(parsed) > MAX_DEPTH:
            return None, b"", Reason.TOO_DEEP, DEPTH_DETAIL
        raise  # pragma: no cover - decoded JSON holds nothing else orjson cannot write
    if encoded == data:
        return parsed, encoded, None, ""
    if b"\\" not in data and data.translate(None, _ASCII_WHITESPACE) == encoded.translate(
        None, _ASCII_WHITESPACE
    ):
        return parsed, encoded, None, ""
    parsed, reason, detail = _exact_loads(data.decode("utf-8"))
    return parsed, encoded if reason is None else b"", reason, detail


# --- RFC 3339 timestamps ------------------------------------------------------------------

US_PER_DAY = 86_400_000_000
# The shape only; the fields are then read at fixed offsets (the zone from the end).
_RFC3339 = re.compile(
    r"\d{4}-\d\d-\d\d[Tt]\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:[Zz]|[+-]\d\d:\d\d)\Z", re.ASCII
)
_FRACTION_SCALE = (0, 100_000, 10_000, 1_000, 100, 10)  # by digits, for fewer than six
_DAYS_IN_MONTH = (0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)  # February checked apart
_LEAP_SECOND_OF_DAY = 86_399  # 23:59:60 is read as the second starting at 23:59:59 UTC
_CACHE_SIZE = 4096
_epoch_days: dict[str, int] = {}  # "YYYY-MM-DD" -> days since 1970-01-01, valid dates only
_second_starts: dict[str, int] = {}  # "YYYY-MM-DDTHH:MM:SS" -> epoch seconds, valid ones only


def days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (any year, month 1-12, day 1-31).

    Integer-only (H. Hinnant, "chrono-Compatible Low-Level Date Algorithms"); no range limit.
    """
    year -= month <= 2
    era, year_of_era = divmod(year, 400)
    day_of_year = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return era * 146_097 + day_of_era - 719_468


def civil_from_days(days: int) -> tuple[int, int, int]:
    """(year, month, day) of a day count since 1970-01-01; the inverse of `days_from_civil`."""
    era, day_of_era = divmod(days + 719_468, 146_097)
    year_of_era = (
        day_of_era - day_of_era // 1460 + day_of_era // 36_524 - day_of_era // 146_096
    ) // 365
    day_of_year = day_of_era - (365 * year_of_era + year_of_era // 4 - year_of_era // 100)
    shifted_month = (5 * day_of_year + 2) // 153  # 0 = March
    day = day_of_year - (153 * shifted_month + 2) // 5 + 1
    month = shifted_month + (3 if shifted_month < 10 else -9)
    return era * 400 + year_of_era + (month <= 2), month, day


FIRST_FORMATTED_US = days_from_civil(0, 1, 1) * US_PER_DAY  # 0000-01-01T00:00:00Z
LAST_FORMATTED_US = days_from_civil(10_000, 1, 1) * US_PER_DAY - 1  # 9999-12-31T23:59:59.999999Z


def _remember(cache: dict[str, int], text: str, value: int) -> None:
    if len(cache) >= _CACHE_SIZE:
        cache.clear()
    cache[text] = value


def _is_leap_year(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def _epoch_day(text: str) -> int | None:
    """Days since 1970-01-01 of "YYYY-MM-DD" (ASCII digits checked), years 0001-9999 only."""
    day = _epoch_days.get(text)
    if day is None:
        year, month, mday = int(text[:4]), int(text[5:7]), int(text[8:10])
        if year < 1 or not 1 <= month <= 12 or not 1 <= mday <= _DAYS_IN_MONTH[month]:
            return None
        if month == 2 and mday == 29 and not _is_leap_year(year):
            return None
        day = days_from_civil(year, month, mday)
        _remember(_epoch_days, text, day)
    return day


def _second_start(text: str) -> int | None:
    """Epoch seconds of "YYYY-MM-DDTHH:MM:SS" (shape already checked), or None when invalid."""
    start = _second_starts.get(text)
    if start is None:
        day = _epoch_day(text[:10])
        hour, minute, second = text[11:13], text[14:16], text[17:19]
        if day is None or hour > "23" or minute > "59" or second > "59":
            return None
        start = ((day * 24 + int(hour)) * 60 + int(minute)) * 60 + int(second)
        _remember(_second_starts, text, start)
    return start


def parse_rfc3339_us(text: str) -> int | None:
    """Epoch microseconds of an RFC 3339 timestamp (fraction truncated to µs), or None.

    Accepts years 0001-9999, offsets -23:59..+23:59, 1-9 fraction digits, `T`/`t`, `Z`/`z`.
    A leap second (second 60, RFC 3339 section 5.7) is accepted on any date when its UTC time
    is 23:59:60, the only minute a leap second can end, and read as 23:59:59.999999 UTC (any
    fraction ignored) so that ordering holds; second 60 at any other UTC minute is refused.
    """
    seconds = _second_starts.get(text[:19])
    if seconds is not None:  # a prefix already seen valid: only a UTC tail needs checking
        tail = text[19:]
        if tail == "Z":
            return seconds * 1_000_000
        digits = tail[1:-1]  # ".<1-9 ASCII digits>Z"
        fraction = tail[:1] == "." and tail[-1:] == "Z" and 0 < len(digits) <= 9
        if fraction and digits.isascii() and digits.isdecimal():
            return seconds * 1_000_000 + _micros(digits)
    return _parse_rfc3339_us(text)


def _micros(digits: str) -> int:
    if len(digits) >= 6:
        return int(digits[:6])
    return int(digits) * _FRACTION_SCALE[len(digits)]


def _parse_rfc3339_us(text: str) -> int | None:
    if _RFC3339.match(text) is None:
        return None
    leap = text[17:19] == "60"  # never cached: the fast path would add its fraction
    seconds = _second_start(text[:17] + "59" if leap else text[:19])
    if seconds is None:
        return None
    zone = len(text) - 1
    if text[zone] not in "Zz":  # "+HH:MM" or "-HH:MM"
        zone -= 5
        hours, minutes = text[zone + 1 : zone + 3], text[zone + 4 :]
        if hours > "23" or minutes > "59":
            return None
        offset = int(hours) * 3600 + int(minutes) * 60
        seconds += -offset if text[zone] == "+" else offset
    if leap:
        if seconds % 86_400 != _LEAP_SECOND_OF_DAY:
            return None
        return seconds * 1_000_000 + 999_999
    if zone == 19:  # no fraction
        return seconds * 1_000_000
    return seconds * 1_000_000 + _micros(text[20:zone])


def format_rfc3339_us(epoch_us: int) -> str:
    """The UTC RFC 3339 form of epoch microseconds: "YYYY-MM-DDTHH:MM:SS[.ffffff]Z".

    The fraction is shown only when not zero. Instants outside what 4-digit years can write are
    clamped: after 9999-12-31T23:59:59.999999Z (reachable from an accepted "9999-12-31T..-HH:MM")
    to that last value, before 0000-01-01T00:00:00Z (not reachable from parsed input) to that.
    """
    clamped = min(max(epoch_us, FIRST_FORMATTED_US), LAST_FORMATTED_US)
    days, micros = divmod(clamped, US_PER_DAY)
    seconds, micros = divmod(micros, 1_000_000)
    year, month, day = civil_from_days(days)
    hour, seconds = divmod(seconds, 3600)
    minute, second = divmod(seconds, 60)
    text = f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}"
    return f"{text}.{micros:06d}Z" if micros else text + "Z"

"""Strict JSON decoding for untrusted records: orjson plus the checks orjson does not make.

orjson keeps the last of two equal keys; here a repeated key (at any depth) is an error. The
exact pairs-hook check is slow, so it runs only when cheap byte-level tests cannot rule out a
duplicate: an input identical to orjson's re-encoding of the result has no lost key (the common
case for compact producers); and without a backslash in the input every `"` delimits a string,
so the input and the re-encoding hold the same number of quotes exactly when no key was lost.

Timestamps are parsed by hand from one regex match: the date part is validated once by
`date.fromisoformat`, and the epoch day and the epoch second of the text up to the seconds are
remembered in small bounded dicts (events arrive roughly in time order).
"""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson

from gateway.reasons import Reason

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
# The shape only; the fields are then read at fixed offsets (the zone from the end).
_RFC3339 = re.compile(
    r"\d{4}-\d\d-\d\d[Tt]\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:[Zz]|[+-]\d\d:\d\d)\Z", re.ASCII
)
_FRACTION_SCALE = (0, 100_000, 10_000, 1_000, 100, 10)  # by digits, for fewer than six
_CACHE_SIZE = 4096
_epoch_days: dict[str, int] = {}  # "YYYY-MM-DD" -> days since 1970-01-01, valid dates only
_second_starts: dict[str, int] = {}  # "YYYY-MM-DDTHH:MM:SS" -> epoch seconds, valid ones only


class _DuplicateKeyError(ValueError):
    pass


def _pairs_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise _DuplicateKeyError
    return result


def _has_duplicate_keys(data: bytes, encoded: bytes) -> bool:
    """The careful check, for an input that differs from `encoded`, its re-encoding."""
    if b"\\" not in data and encoded.count(b'"') == data.count(b'"'):
        return False
    try:
        json.loads(data, object_pairs_hook=_pairs_without_duplicates)
    except _DuplicateKeyError:
        return True
    except RecursionError:  # pragma: no cover - orjson's depth limit triggers first
        return True
    return False


def loads_strict(data: bytes) -> tuple[Any, Reason | None, str]:
    """Decode `data`; on failure return (None, reason, detail). The detail never quotes input."""
    try:
        parsed = orjson.loads(data)
    except orjson.JSONDecodeError as error:
        message = str(error)
        if "UTF-8" in message:
            return None, Reason.INVALID_UTF8, "input is not valid UTF-8"
        if "depth limit" in message or "recursion" in message:
            return None, Reason.TOO_DEEP, "nesting deeper than 1024 levels"
        return None, Reason.INVALID_JSON, f"not valid JSON (at char {error.pos})"
    encoded = orjson.dumps(parsed)
    if encoded != data and _has_duplicate_keys(data, encoded):
        return None, Reason.DUPLICATE_KEY, "an object repeats a key"
    return parsed, None, ""


def _remember(cache: dict[str, int], text: str, value: int) -> None:
    if len(cache) >= _CACHE_SIZE:
        cache.clear()
    cache[text] = value


def _epoch_day(text: str) -> int | None:
    day = _epoch_days.get(text)
    if day is None:
        try:
            day = date.fromisoformat(text).toordinal() - _EPOCH_ORDINAL
        except ValueError:
            return None
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
    """Epoch microseconds of an RFC 3339 timestamp (fraction truncated to µs), or None."""
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
    seconds = _second_start(text[:19])
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
    if zone == 19:  # no fraction
        return seconds * 1_000_000
    return seconds * 1_000_000 + _micros(text[20:zone])


def format_rfc3339_us(epoch_us: int) -> str:
    """The UTC RFC 3339 form of epoch microseconds, with a `Z` suffix."""
    return (_EPOCH + timedelta(microseconds=epoch_us)).isoformat()[:-6] + "Z"

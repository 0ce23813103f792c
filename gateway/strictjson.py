"""Strict JSON decoding for untrusted records: orjson plus the checks orjson does not make.

orjson keeps the last of two equal keys; here a repeated key (at any depth) is an error. The
exact pairs-hook check is slow, so it runs only when a cheap byte-level test cannot rule out
a duplicate: without a backslash in the input every `"` delimits a string, so the input and
orjson's re-encoding of the result hold the same number of quotes exactly when no key was lost.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from gateway.reasons import Reason

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)
_RFC3339 = re.compile(
    r"\d{4}-\d\d-\d\d[Tt]\d\d:\d\d:\d\d(?:\.(\d{1,9}))?(?:[Zz]|[+-]\d\d:\d\d)\Z", re.ASCII
)


class _DuplicateKeyError(ValueError):
    pass


def _pairs_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise _DuplicateKeyError
    return result


def _has_duplicate_keys(data: bytes, parsed: object) -> bool:
    if b"\\" not in data and orjson.dumps(parsed).count(b'"') == data.count(b'"'):
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
    if _has_duplicate_keys(data, parsed):
        return None, Reason.DUPLICATE_KEY, "an object repeats a key"
    return parsed, None, ""


def parse_rfc3339_us(text: str) -> int | None:
    """Epoch microseconds of an RFC 3339 timestamp (fraction truncated to µs), or None."""
    match = _RFC3339.match(text)
    if match is None:
        return None
    fraction = match.group(1)
    if fraction is not None and len(fraction) > 6:
        start = match.start(1)
        text = text[: start + 6] + text[start + len(fraction) :]
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return (moment - _EPOCH) // _ONE_US


def format_rfc3339_us(epoch_us: int) -> str:
    """The UTC RFC 3339 form of epoch microseconds, with a `Z` suffix."""
    return (_EPOCH + timedelta(microseconds=epoch_us)).isoformat()[:-6] + "Z"

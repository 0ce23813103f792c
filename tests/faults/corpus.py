"""Hostile raw records for the live worker, in the spirit of the JSONTestSuite.

Each entry is (name, key, value, headers, expected): `expected` is "dlq" (the worker must put it
in the DLQ once, with a reason) or "decided" (valid, if odd: decided for every sink like any
event). The pure parser is the oracle for the entries marked "parser" (JSON edge cases whose
verdict the contract leaves to the validator); `tests/unit/test_fault_corpus.py` checks that
every explicit expectation agrees with it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

import orjson

from gateway.events import EventKind, Invalid, parse_event
from tests.faults.traffic import OCCURRED_AT, USER_AGENT, Planned, Subject

Expected = Literal["dlq", "decided", "parser"]
MAX_EVENT_BYTES = 65536  # config/gateway.yaml


def _event(subject: Subject, event_id: str, **extra: object) -> dict[str, object]:
    body: dict[str, object] = {
        "event_id": event_id, "subject_id": subject.id, "occurred_at": OCCURRED_AT,
        "event_type": "page_view", "ip": subject.ip, "cookie_id": subject.cookie,
        "user_agent": USER_AGENT, "page": f"https://www.example.com/c/{subject.id}",
    }  # fmt: skip
    body.update(extra)
    return body


def _sized(subject: Subject, event_id: str, size: int) -> bytes:
    """A valid event of exactly `size` bytes (a padded property)."""
    base = orjson.dumps(_event(subject, event_id, properties={"pad": ""}))
    return base.replace(b'"pad":""', b'"pad":"' + b"x" * (size - len(base)) + b'"')


def entries(
    run: str, subject: Subject
) -> Iterator[tuple[str, bytes | None, bytes | None, tuple[tuple[str, bytes], ...], Expected]]:
    """The corpus for one granted `subject` of run `run` (event ids `fc-<run>-<n>`)."""
    key = subject.id.encode()
    n = iter(range(1000))

    def eid() -> str:
        return f"fc-{run}-{next(n):03d}"

    def valid(**extra: object) -> bytes:
        return orjson.dumps(_event(subject, eid(), **extra))

    good = valid()
    yield "tombstone value", key, None, (), "dlq"
    yield "empty value", key, b"", (), "dlq"
    yield "not json", key, b"not json", (), "dlq"
    yield "truncated", key, good[:-9], (), "dlq"
    yield "array", key, b"[" + good + b"]", (), "dlq"
    yield "string", key, b'"page_view"', (), "dlq"
    yield "number", key, b"123", (), "dlq"
    yield "null", key, b"null", (), "dlq"
    yield "missing fields", key, b'{"subject_id":"' + key + b'"}', (), "dlq"
    yield "duplicate key", key, good[:-1] + b',"event_type":"page_view"}', (), "dlq"
    yield "trailing comma", key, good[:-1] + b",}", (), "dlq"
    yield "comment", key, b"/* c */" + good, (), "dlq"
    yield "single quotes", key, good.replace(b'"', b"'"), (), "dlq"
    yield "NaN", key, valid(properties={"x": 0})[:-3] + b"NaN}}", (), "dlq"
    yield "Infinity", key, valid(properties={"x": 0})[:-3] + b"Infinity}}", (), "dlq"
    yield "number too big", key, valid(properties={"x": 0})[:-3] + b"1e400}}", (), "dlq"
    yield (
        "integer beyond 64 bits",
        key,
        valid(properties={"x": 0})[:-3] + b"18446744073709551616}}",
        (),
        "dlq",
    )
    yield "leading zero", key, valid(properties={"x": 0})[:-3] + b"01}}", (), "dlq"
    yield "lone surrogate", key, valid(properties={"x": "a"})[:-4] + b'\\ud800"}}', (), "dlq"
    yield "raw control character", key, valid(properties={"x": "a"})[:-4] + b'\x01"}}', (), "dlq"
    yield "invalid utf-8", key, valid(properties={"x": "a"})[:-4] + b'\xff"}}', (), "dlq"
    yield "utf-16", key, good.decode().encode("utf-16"), (), "dlq"
    yield "two byte-order marks", key, b"\xef\xbb\xbf\xef\xbb\xbf" + good, (), "dlq"
    yield (
        "too deep",
        key,
        valid(properties={"x": 0})[:-3] + b'{"a":' * 300 + b"1" + b"}" * 302,
        (),
        "dlq",
    )
    yield "key differs from subject_id", b"someone-else", good, (), "dlq"
    yield "null key", None, valid(), (), "dlq"
    yield "empty key", b"", valid(), (), "dlq"
    yield "month 13", key, valid(occurred_at="2026-13-01T00:00:00Z"), (), "dlq"
    yield (
        "one byte over the size limit",
        key,
        _sized(subject, eid(), MAX_EVENT_BYTES + 1),
        (),
        "dlq",
    )
    yield "at the size limit", key, _sized(subject, eid(), MAX_EVENT_BYTES), (), "decided"
    yield "byte-order mark", key, b"\xef\xbb\xbf" + valid(), (), "decided"
    yield "huge headers", key, valid(), tuple((f"h{i}", b"v" * 1024) for i in range(100)), "decided"
    yield "year 9999 at -01:00", key, valid(occurred_at="9999-12-31T23:59:59-01:00"), (), "decided"
    yield "leap second", key, valid(occurred_at="2016-12-31T23:59:60Z"), (), "decided"
    yield "unicode", key, valid(properties={"x": "\u202eevil\u200b😀 é"}), (), "decided"
    yield "long string", key, valid(properties={"x": "y" * 60000}), (), "decided"
    yield "escaped null", key, valid(properties={"x": "a\u0000b"}), (), "parser"
    yield (
        "negative zero and exponent",
        key,
        valid(properties={"x": 0})[:-3] + b"-0.0e0}}",
        (),
        "parser",
    )
    yield (
        "deep but allowed",
        key,
        valid(properties={"x": 0})[:-3] + b"[" * 200 + b"]" * 200 + b"}}",
        (),
        "parser",
    )


def verdict(key: bytes | None, value: bytes | None) -> tuple[str, str | None]:
    """What the pure parser says: ("dlq", reason) or ("decided", event id)."""
    parsed = parse_event(value, key, EventKind.USAGE, max_bytes=MAX_EVENT_BYTES)
    if isinstance(parsed, Invalid):
        return "dlq", parsed.reason.value
    return "decided", parsed.event_id


def planned(run: str, subject: Subject) -> list[Planned]:
    """The corpus as raw usage records for the run, each with what the checker expects."""
    records = []
    for _, key, value, headers, _ in entries(run, subject):
        outcome, event_id = verdict(key, value)
        records.append(
            Planned(
                "usage_raw",
                key,
                value,
                event_id if outcome == "decided" else None,
                subject.index,
                headers=headers,
            )
        )
    return records

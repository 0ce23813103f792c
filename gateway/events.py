"""Raw events: strict parsing and validation of one Kafka record into an `Event` or `Invalid`.

An `Invalid` never holds the raw record; its `redacted()` form names known fields and their JSON
types only, so it is safe for the DLQ.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any, NamedTuple

from gateway.reasons import Reason
from gateway.strictjson import loads_canonical, parse_rfc3339_us


class EventKind(StrEnum):
    """Which raw topic an event came from."""

    USAGE = "usage"
    DEVICE = "device"


REQUIRED_FIELDS = ("event_id", "subject_id", "occurred_at", "event_type")
_REQUIRED = frozenset(REQUIRED_FIELDS)
_SHAPE_CACHE_SIZE = 1024
_shapes: dict[tuple[str, ...], tuple[type, ...]] = {}  # key order -> value types (known keys)
IDENTIFIER_FIELDS = frozenset(
    {"subject_id", "ip", "device_id", "cookie_id", "pixel_id", "advertising_id"}
)
URL_FIELDS = frozenset({"page", "referrer"})
_STRING_FIELDS = [
    "event_id",
    "subject_id",
    "occurred_at",
    "event_type",
    "page",
    "referrer",
    "browser",
    "device_type",
    "os",
    "app_version",
    "feature",
    "user_agent",
    "ip",
    "device_id",
    "cookie_id",
    "pixel_id",
    "advertising_id",
]
FIELD_TYPES: dict[str, type] = dict.fromkeys(_STRING_FIELDS, str)
FIELD_TYPES.update(gpc=bool, dnt=bool, properties=dict)
KNOWN_FIELDS = frozenset(FIELD_TYPES)
# The shape of an event type that may be shown (repr) or allowlisted (settings); the contract
# lets event_type be any string, and a free-form one could carry personal data.
EVENT_TYPE_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"
_EVENT_TYPE_SHAPE = re.compile(EVENT_TYPE_PATTERN)
MAX_EVENT_ID_CHARS = 128
MAX_SUBJECT_ID_CHARS = 256
_JSON_TYPE_NAMES = {
    str: "string",
    bool: "boolean",
    int: "number",
    float: "number",
    dict: "object",
    list: "array",
}


def json_type_name(value: object) -> str:
    """The JSON type of a decoded value, for redacted descriptions."""
    return "null" if value is None else _JSON_TYPE_NAMES.get(type(value), "unknown")


def describe_fields(obj: object) -> dict[str, Any]:
    """Known field names with their JSON types; unknown names are only counted (never shown)."""
    if not isinstance(obj, dict):
        return {"fields": {}, "other_fields": 0}
    known = {name: json_type_name(value) for name, value in obj.items() if name in KNOWN_FIELDS}
    return {"fields": known, "other_fields": len(obj) - len(known)}


class Invalid:
    """A record that cannot be decided: the reason, a value-free detail, and a safe description."""

    __slots__ = ("_description", "detail", "kind", "reason", "size")

    def __init__(
        self,
        reason: Reason,
        detail: str,
        *,
        kind: str | None = None,
        size: int = 0,
        parsed: object = None,
    ) -> None:
        self.reason = reason
        self.detail = detail
        self.kind = kind
        self.size = size
        self._description = describe_fields(parsed)

    def redacted(self) -> dict[str, Any]:
        """A DLQ-safe form: reason, detail, kind, size and field names/types, no values."""
        return {
            "reason": str(self.reason),
            "detail": self.detail,
            "kind": self.kind,
            "size": self.size,
            **self._description,
        }

    def __repr__(self) -> str:
        return f"Invalid(reason={self.reason.value!r}, detail={self.detail!r})"


def internal_error(error: BaseException, *, doing: str, kind: str | None, size: int) -> Invalid:
    """The DLQ description of a record the gateway itself failed on while `doing` something.

    It names the exception's type only, never its message (which may quote the record).
    """
    detail = f"{type(error).__name__} raised while {doing}"
    return Invalid(Reason.INTERNAL_ERROR, detail, kind=kind, size=size)


class Event(NamedTuple):
    """A valid raw event, decoded once.

    `fields` is the decoded JSON object (read-only by convention); `canonical` its JSON as
    orjson writes it (what the value guard searches).
    """

    event_id: str
    subject_id: str
    occurred_at_us: int
    event_type: str
    kind: EventKind
    fields: dict[str, Any]
    canonical: bytes = b""

    def __repr__(self) -> str:  # never show identifiers, payloads or a free-form event type
        shown = self.event_type if _EVENT_TYPE_SHAPE.match(self.event_type) else "other"
        return f"Event(kind={self.kind.value!r}, event_type={shown!r})"


_new_tuple = tuple.__new__


def _shape_types(names: tuple[str, ...]) -> tuple[type, ...] | None:
    """The value types a valid event with these keys, in this order, has; remembered per order.

    None when the full check is needed (an unknown field, or a required one missing).
    """
    expected = _shapes.get(names)
    if expected is None and _REQUIRED.issubset(names) and KNOWN_FIELDS.issuperset(names):
        if len(_shapes) >= _SHAPE_CACHE_SIZE:
            _shapes.clear()
        expected = _shapes[names] = tuple(FIELD_TYPES[name] for name in names)
    return expected


def _type_problem(obj: dict[str, Any]) -> tuple[Reason, str] | None:
    for name in REQUIRED_FIELDS:
        if name not in obj:
            return Reason.MISSING_FIELD, f"required field '{name}' is missing"
    for name, value in obj.items():
        want = FIELD_TYPES.get(name)
        if want is not None and type(value) is not want:
            got = json_type_name(value)
            return Reason.WRONG_TYPE, f"field '{name}' must be {_JSON_TYPE_NAMES[want]}, got {got}"
    return None


def _field_problem(obj: dict[str, Any]) -> tuple[Reason, str] | None:
    # Producers send few key orders: one tuple comparison checks every type of a known order.
    expected = _shape_types(tuple(obj))
    if expected is None or tuple(map(type, obj.values())) != expected:
        problem = _type_problem(obj)
        if problem is not None:
            return problem
    if not 0 < len(obj["event_id"]) <= MAX_EVENT_ID_CHARS:
        return Reason.INVALID_FIELD, f"field 'event_id' must have 1..{MAX_EVENT_ID_CHARS} chars"
    if not 0 < len(obj["subject_id"]) <= MAX_SUBJECT_ID_CHARS:
        return Reason.INVALID_FIELD, f"field 'subject_id' must have 1..{MAX_SUBJECT_ID_CHARS} chars"
    if not obj["event_type"]:
        return Reason.INVALID_FIELD, "field 'event_type' must not be empty"
    return None


def parse_event(
    value: bytes | None, key: bytes | None, kind: EventKind, *, max_bytes: int
) -> Event | Invalid:
    """Decode and validate one raw record. Exactly one outcome: an Event or an Invalid."""
    if value is None:
        return Invalid(Reason.MISSING_VALUE, "record has no value", kind=kind)
    size = len(value)
    if size > max_bytes:
        return Invalid(Reason.TOO_LARGE, f"{size} bytes exceeds {max_bytes}", kind=kind, size=size)
    obj, canonical, reason, detail = loads_canonical(value)
    if reason is not None:
        return Invalid(reason, detail, kind=kind, size=size)
    if type(obj) is not dict:
        return Invalid(
            Reason.NOT_OBJECT, f"top level is {json_type_name(obj)}", kind=kind, size=size
        )
    problem = _field_problem(obj)
    if problem is not None:
        return Invalid(problem[0], problem[1], kind=kind, size=size, parsed=obj)
    occurred_at_us = parse_rfc3339_us(obj["occurred_at"])
    if occurred_at_us is None:
        detail = "field 'occurred_at' is not an RFC 3339 timestamp"
        return Invalid(Reason.BAD_TIMESTAMP, detail, kind=kind, size=size, parsed=obj)
    subject_id: str = obj["subject_id"]
    if key is None:
        return Invalid(Reason.MISSING_KEY, "record has no key", kind=kind, size=size, parsed=obj)
    if key != subject_id.encode("utf-8", "surrogatepass"):
        detail = "record key differs from subject_id"
        return Invalid(Reason.KEY_MISMATCH, detail, kind=kind, size=size, parsed=obj)
    # tuple.__new__ skips NamedTuple's Python-level __new__ (a third of the cost, hot path)
    return _new_tuple(
        Event,
        (obj["event_id"], subject_id, occurred_at_us, obj["event_type"], kind, obj, canonical),
    )

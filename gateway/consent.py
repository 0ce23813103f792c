"""Consent records: parsing from the consent topic and applying them to the packed state.

Ordering rule: a record applies only if its `updated_at` is strictly newer than the current
state's. A record with an equal timestamp is STALE and changes nothing, so replaying the topic
is idempotent. A tombstone (null value) erases the subject: its state becomes None (unknown).
A tombstone keeps no timestamp, so a record older than the erased one that arrives after the
tombstone applies again; the compacted topic makes that a replay-only corner.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, NamedTuple

from gateway.consent_state import PURPOSES, consent_updated_at_us, pack_consent
from gateway.events import Invalid, json_type_name
from gateway.reasons import Reason
from gateway.strictjson import loads_strict, parse_rfc3339_us

__all__ = [
    "ConsentOutcome",
    "ConsentUpdate",
    "Tombstone",
    "apply_consent",
    "consent_updated_at_us",
    "parse_consent",
]
CONSENT_KIND = "consent"
MAX_CONSENT_BYTES = 65536


class ConsentOutcome(StrEnum):
    """What applying one consent record did."""

    APPLIED = "applied"
    STALE = "stale"
    TOMBSTONE = "tombstone"
    INVALID = "invalid"


class ConsentUpdate(NamedTuple):
    """A valid consent record, packed."""

    subject_id: str
    state: int

    @property
    def updated_at_us(self) -> int:
        return consent_updated_at_us(self.state)

    def __repr__(self) -> str:
        return f"ConsentUpdate(updated_at_us={self.updated_at_us})"


class Tombstone(NamedTuple):
    """A null-valued consent record: erase the subject."""

    subject_id: str

    def __repr__(self) -> str:
        return "Tombstone()"


def _bool_or_null(obj: dict[str, Any], name: str, where: str) -> tuple[bool | None, str | None]:
    value = obj.get(name)
    if value is None or type(value) is bool:
        return value, None
    return None, f"field '{where}{name}' must be boolean or null, got {json_type_name(value)}"


def _mapping(obj: dict[str, Any], name: str) -> tuple[dict[str, Any], str | None]:
    value = obj.get(name)
    if value is None:
        return {}, None
    if type(value) is dict:
        return value, None
    return {}, f"field '{name}' must be object or null, got {json_type_name(value)}"


def _invalid(reason: Reason, detail: str, size: int, parsed: object = None) -> Invalid:
    return Invalid(reason, detail, kind=CONSENT_KIND, size=size, parsed=parsed)


def parse_consent(value: bytes | None, key: bytes | None) -> ConsentUpdate | Tombstone | Invalid:
    """Decode one consent-topic record; the subject is the record key."""
    if key is None:
        return _invalid(Reason.MISSING_KEY, "record has no key", 0)
    try:
        subject_id = key.decode("utf-8")
    except UnicodeDecodeError:
        return _invalid(Reason.INVALID_UTF8, "record key is not valid UTF-8", 0)
    if value is None:
        return Tombstone(subject_id)
    size = len(value)
    if size > MAX_CONSENT_BYTES:
        return _invalid(Reason.TOO_LARGE, f"{size} bytes exceeds {MAX_CONSENT_BYTES}", size)
    obj, reason, detail = loads_strict(value)
    if reason is not None:
        return _invalid(reason, detail, size)
    if type(obj) is not dict:
        return _invalid(Reason.NOT_OBJECT, f"top level is {json_type_name(obj)}", size)
    if "subject_id" in obj and obj["subject_id"] != subject_id:
        return _invalid(Reason.KEY_MISMATCH, "record key differs from subject_id", size, obj)
    if "updated_at" not in obj:
        return _invalid(Reason.MISSING_FIELD, "required field 'updated_at' is missing", size, obj)
    if type(obj["updated_at"]) is not str:
        got = json_type_name(obj["updated_at"])
        return _invalid(
            Reason.WRONG_TYPE, f"field 'updated_at' must be string, got {got}", size, obj
        )
    updated_at_us = parse_rfc3339_us(obj["updated_at"])
    if updated_at_us is None:
        return _invalid(Reason.BAD_TIMESTAMP, "field 'updated_at' is not RFC 3339", size, obj)
    purposes_obj, problem = _mapping(obj, "purposes")
    age_obj, age_problem = _mapping(obj, "age")
    problems = [problem, age_problem]
    purposes: dict[str, bool | None] = {}
    for name in PURPOSES:
        purposes[name], problem = _bool_or_null(purposes_obj, name, "purposes.")
        problems.append(problem)
    under_13, problem = _bool_or_null(age_obj, "under_13", "age.")
    parental, parental_problem = _bool_or_null(age_obj, "parental_consent", "age.")
    problems += [problem, parental_problem]
    first = next((p for p in problems if p is not None), None)
    if first is not None:
        return _invalid(Reason.WRONG_TYPE, first, size, obj)
    return ConsentUpdate(subject_id, pack_consent(updated_at_us, purposes, under_13, parental))


def apply_consent(
    current: int | None, update: ConsentUpdate | Tombstone
) -> tuple[int | None, ConsentOutcome]:
    """The new state of a subject after one record; stale records (not newer) change nothing."""
    if isinstance(update, Tombstone):
        return None, ConsentOutcome.TOMBSTONE
    if current is not None and update.state >> 16 <= current >> 16:
        return current, ConsentOutcome.STALE
    return update.state, ConsentOutcome.APPLIED

"""Consent records: parsing from the consent topic and applying them to the packed state.

Ordering rule: a record applies only if its ordering time is strictly newer than the current
state's. A record with an equal time is STALE and changes nothing, so replaying the topic is
idempotent. A tombstone (null value) erases the subject: its state becomes None (unknown).
A tombstone keeps no timestamp, so a record older than the erased one that arrives after the
tombstone applies again; the compacted topic makes that a replay-only corner.

The ordering time, so that a sender's skewed clock never blocks a withdrawal:

- a record with a Kafka record timestamp T (ms; CreateTime, or LogAppendTime if the topic says
  so) whose `updated_at` is at most `clock_tolerance_seconds` after T is ordered at `updated_at`,
  as sent (exactly T + tolerance still counts as within);
- a record whose `updated_at` is more than the tolerance after T is *future-dated*: it is ordered
  at T instead (clamped; `ConsentUpdate.future_dated` is true), so a later record with an honest
  clock, e.g. a withdrawal, outranks it, and it cannot outrank an earlier-produced honest one;
- a record without a timestamp (None or negative, or a caller that passes none, such as
  `gateway explain`) is ordered at `updated_at` alone.

The ordering time is what the packed state stores (bits 16+), so it is also the consent version
the outputs name. Nothing here reads a clock: the timestamp comes with the record.

Sticky GPC (`gpc: sticky` in config/gateway.yaml; some laws treat GPC as an opt-out for the
person where known): an event with `gpc: true` of a subject with a consent record sets the
state's sticky GPC bit (`sticky_gpc`), which withdraws `advertising` and `third_party_sharing`
like the event's own signal. A consent record applied later carries the bit over, unless it
grants either purpose explicitly (`true`): that grant is the subject's newer choice. A tombstone
erases it with the subject. Only subjects with a consent record are remembered: an unknown
subject is denied those purposes anyway (unknown consent denies; `grant` is for internal sinks).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, NamedTuple

from gateway.consent_state import PURPOSES, ConsentState, Tri
from gateway.events import Invalid, json_type_name
from gateway.reasons import Reason
from gateway.strictjson import loads_strict, parse_rfc3339_us

__all__ = [
    "ConsentOutcome",
    "ConsentUpdate",
    "Tombstone",
    "apply_consent",
    "ordering_time_us",
    "parse_consent",
    "sticky_gpc",
]
CONSENT_KIND = "consent"
MAX_CONSENT_BYTES = 65536
DEFAULT_CLOCK_TOLERANCE_SECONDS = 300  # the default of Settings.consent_clock_tolerance_seconds


class ConsentOutcome(StrEnum):
    """What applying one consent record did."""

    APPLIED = "applied"
    STALE = "stale"
    TOMBSTONE = "tombstone"
    INVALID = "invalid"


class ConsentUpdate(NamedTuple):
    """A valid consent record, packed; `future_dated`: ordered at its Kafka timestamp instead."""

    subject_id: str
    state: int
    future_dated: bool = False

    @property
    def updated_at_us(self) -> int:
        """The time the record is ordered at, µs since the epoch (its Kafka one if future-dated)."""
        return ConsentState.ordered_at_us(self.state)

    def __repr__(self) -> str:
        return (
            f"ConsentUpdate(updated_at_us={self.updated_at_us}, future_dated={self.future_dated})"
        )


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


def ordering_time_us(
    updated_at_us: int, record_timestamp_ms: int | None, clock_tolerance_seconds: float
) -> tuple[int, bool]:
    """(the time a record is ordered at, in epoch µs; whether it was future-dated and clamped).

    `record_timestamp_ms` is the Kafka record timestamp in epoch ms (None or negative: absent,
    no clamping); `clock_tolerance_seconds` (>= 0) how far `updated_at` may lead it.
    """
    if record_timestamp_ms is None or record_timestamp_ms < 0:
        return updated_at_us, False
    record_us = record_timestamp_ms * 1000
    if updated_at_us - record_us > int(clock_tolerance_seconds * 1_000_000):
        return record_us, True
    return updated_at_us, False


def parse_consent(
    value: bytes | None,
    key: bytes | None,
    *,
    record_timestamp_ms: int | None = None,
    clock_tolerance_seconds: float = DEFAULT_CLOCK_TOLERANCE_SECONDS,
) -> ConsentUpdate | Tombstone | Invalid:
    """Decode one consent-topic record; the subject is the record key.

    `record_timestamp_ms` (the Kafka record timestamp, epoch ms; None or negative: absent) and
    `clock_tolerance_seconds` set the ordering time (module docstring): the state packs it as
    its `updated_at`, and `future_dated` says it was clamped. Invalid input is returned as an
    `Invalid` with its reason, never raised; a null or empty key (no subject id, as no event can
    have) is `missing_key`, a tombstone included.
    """
    if not key:
        detail = "record has no key" if key is None else "record key is empty: no subject id"
        return _invalid(Reason.MISSING_KEY, detail, 0 if value is None else len(value))
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
    ordered_at_us, future_dated = ordering_time_us(
        updated_at_us, record_timestamp_ms, clock_tolerance_seconds
    )
    state = ConsentState.pack(ordered_at_us, purposes, under_13, parental)
    return ConsentUpdate(subject_id, state, future_dated)


def apply_consent(
    current: int | None, update: ConsentUpdate | Tombstone
) -> tuple[int | None, ConsentOutcome]:
    """The new state of a subject after one record; stale records (not newer) change nothing.

    `current` and the result are packed states (gateway.consent_state); None is unknown.
    """
    if isinstance(update, Tombstone):
        return None, ConsentOutcome.TOMBSTONE
    ordered_at = ConsentState.ordered_at_us
    if current is not None and ordered_at(update.state) <= ordered_at(current):
        return current, ConsentOutcome.STALE
    if ConsentState.sticky_gpc(current) and not _grants_signal_purpose(update.state):
        return update.state | ConsentState.STICKY_GPC_BIT, ConsentOutcome.APPLIED
    return update.state, ConsentOutcome.APPLIED


def _grants_signal_purpose(state: int) -> bool:
    """The record grants a purpose a GPC signal withdraws (advertising, third-party sharing)."""
    shifts = ConsentState.PURPOSE_SHIFT
    return any(
        ConsentState.field(state, shifts[p]) is Tri.YES for p in ConsentState.WITHDRAWN_BY_SIGNAL
    )


def sticky_gpc(current: int | None) -> int | None:
    """The state after an event with `gpc: true` under `gpc: sticky`, or None if unchanged.

    `current` is the subject's packed state (None: unknown, not remembered: module docstring).
    The result has the sticky GPC bit set; None when it was set already or there is no state.
    """
    if current is None or current & ConsentState.STICKY_GPC_BIT:
        return None
    return current | ConsentState.STICKY_GPC_BIT

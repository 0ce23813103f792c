"""The packed consent state: one subject's current consent as a single Python int.

Layout (low bits first), 2 bits per tri-state field
(0 = unknown, 1 = granted/true, 2 = denied/false):

    bits  0-1  analytics            bits  8-9  third_party_sharing
    bits  2-3  personalization      bits 10-11 age.under_13
    bits  4-5  advertising          bits 12-13 age.parental_consent
    bits  6-7  social               bits 14-15 reserved (0)
    bits 16-   updated_at, microseconds since the Unix epoch (the ordering time, see
               gateway.consent: a future-dated record's Kafka timestamp instead)

Times before 1970 (down to year 0001) are negative: Python ints behave as unbounded two's
complement, so the flag bits still read right, `>> 16` gives the time back, and the changelog's
ASCII form (`b"%d" % state`, read back with `int`) round-trips.

An int of this size costs ~36 bytes, so a million subjects fit well under the memory budget.
The decision code reads these bits directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class Tri(IntEnum):
    """A tri-state value as stored in the packed state."""

    UNKNOWN = 0
    YES = 1
    NO = 2


PURPOSES = ("analytics", "personalization", "advertising", "social", "third_party_sharing")
PURPOSE_SHIFT = {name: 2 * index for index, name in enumerate(PURPOSES)}
UNDER_13_SHIFT = 10
PARENTAL_SHIFT = 12
FLAG_BITS = 16
FLAG_MASK = (1 << FLAG_BITS) - 1
POLICY_MASK = (1 << 14) - 1
FIELD_MASK = 3
# GPC (and an honoured DNT) withdraws these purposes for one event: their fields become NO.
WITHDRAWN_BY_SIGNAL = ("advertising", "third_party_sharing")
SIGNAL_CLEAR_MASK = POLICY_MASK & ~sum(FIELD_MASK << PURPOSE_SHIFT[p] for p in WITHDRAWN_BY_SIGNAL)
SIGNAL_DENY_BITS = sum(int(Tri.NO) << PURPOSE_SHIFT[p] for p in WITHDRAWN_BY_SIGNAL)


def tri(value: bool | None) -> Tri:
    """True/False/None as a Tri."""
    if value is None:
        return Tri.UNKNOWN
    return Tri.YES if value else Tri.NO


def field(state: int, shift: int) -> Tri:
    """The tri-state at `shift` in a packed state."""
    return Tri((state >> shift) & FIELD_MASK)


@dataclass(frozen=True, slots=True)
class ConsentView:
    """An unpacked, readable consent state (for tests, explain and debugging, not the hot path)."""

    updated_at_us: int
    purposes: dict[str, Tri]
    under_13: Tri
    parental_consent: Tri


def pack_consent(
    updated_at_us: int,
    purposes: dict[str, bool | None],
    under_13: bool | None,
    parental_consent: bool | None,
) -> int:
    """Pack one consent record into an int. Purposes not named are unknown."""
    state = updated_at_us << FLAG_BITS
    for name, value in purposes.items():
        state |= int(tri(value)) << PURPOSE_SHIFT[name]
    state |= int(tri(under_13)) << UNDER_13_SHIFT
    return state | int(tri(parental_consent)) << PARENTAL_SHIFT


def unpack_consent(state: int) -> ConsentView:
    """The readable form of a packed state."""
    return ConsentView(
        updated_at_us=state >> FLAG_BITS,
        purposes={name: field(state, shift) for name, shift in PURPOSE_SHIFT.items()},
        under_13=field(state, UNDER_13_SHIFT),
        parental_consent=field(state, PARENTAL_SHIFT),
    )


def consent_updated_at_us(state: int) -> int:
    """The `updated_at` (epoch µs) of a packed state."""
    return state >> FLAG_BITS

"""The packed consent state: one subject's current consent as a single Python int.

`ConsentState` owns the layout; nothing else does bit arithmetic on a state. Low bits first,
2 bits per tri-state field (0 = unknown, 1 = granted/true, 2 = denied/false):

    bits  0-1  analytics            bits  8-9  third_party_sharing
    bits  2-3  personalization      bits 10-11 age.under_13
    bits  4-5  advertising          bits 12-13 age.parental_consent
    bits  6-7  social               bit  14    a sticky GPC signal (`gpc: sticky`), else 0;
                                               in a routing index, the event's GPC signal
                                    bit  15    reserved (0); in a routing index, an
                                               honoured DNT signal
    bits 16-   the ordering time, microseconds since the Unix epoch: `updated_at`, or a
               future-dated record's Kafka timestamp (gateway.consent)

Times before 1970 (down to year 0001) are negative: Python ints behave as unbounded two's
complement, so the flag bits still read right, the shift gives the time back, and the
changelog's ASCII form (`b"%d" % state`, read back with `int`) round-trips.

A state is a plain int, not an instance: an int of this size costs ~36 bytes, so a million
subjects fit well under the memory budget, and the hot path reads it with one mask.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import ClassVar, Final, Literal, get_args

__all__ = ["PURPOSES", "ConsentState", "ConsentView", "Purpose", "Tri", "tri"]

# The purposes of the contract (CONTRACT.md, "Consent records"), defined once, in layout order.
Purpose = Literal["analytics", "personalization", "advertising", "social", "third_party_sharing"]
PURPOSES: Final[tuple[Purpose, ...]] = get_args(Purpose)


class Tri(IntEnum):
    """A tri-state value as stored in the packed state."""

    UNKNOWN = 0
    YES = 1
    NO = 2


def tri(value: bool | None) -> Tri:
    """True/False/None as a Tri."""
    if value is None:
        return Tri.UNKNOWN
    return Tri.YES if value else Tri.NO


@dataclass(frozen=True, slots=True)
class ConsentView:
    """An unpacked, readable consent state (for tests, explain and debugging, not the hot path)."""

    updated_at_us: int
    purposes: dict[str, Tri]
    under_13: Tri
    parental_consent: Tri


_PURPOSE_SHIFT: dict[str, int] = {name: 2 * index for index, name in enumerate(PURPOSES)}
_FIELD_MASK = 3
_POLICY_MASK = (1 << 14) - 1
_WITHDRAWN_BY_SIGNAL: tuple[Purpose, ...] = ("advertising", "third_party_sharing")


class ConsentState:
    """The layout of a packed consent state (module docstring) and every accessor of its bits.

    Never instantiated: states are plain ints. Shifts and masks are class constants; methods are
    static and take or return a packed int (or None for an unknown subject).
    """

    PURPOSE_SHIFT: ClassVar[dict[str, int]] = _PURPOSE_SHIFT
    UNDER_13_SHIFT: ClassVar[int] = 10
    PARENTAL_SHIFT: ClassVar[int] = 12
    FIELD_MASK: ClassVar[int] = _FIELD_MASK
    POLICY_MASK: ClassVar[int] = _POLICY_MASK  # every bit the consent policy reads
    TIME_SHIFT: ClassVar[int] = 16
    # Bits 14 and 15 of a routing index (policy bits | event signals): the event's GPC and an
    # honoured DNT, which withdraw these purposes for that one event (their fields read NO).
    GPC_BIT: ClassVar[int] = 1 << 14
    DNT_BIT: ClassVar[int] = 1 << 15
    # A GPC signal kept for the subject (`gpc: sticky`, gateway.consent.sticky_gpc): the same
    # bit as the event's GPC, so a routing index that lets it through reads it as a GPC signal.
    STICKY_GPC_BIT: ClassVar[int] = 1 << 14
    WITHDRAWN_BY_SIGNAL: ClassVar[tuple[Purpose, ...]] = _WITHDRAWN_BY_SIGNAL
    SIGNAL_CLEAR_MASK: ClassVar[int] = _POLICY_MASK & ~sum(
        _FIELD_MASK << _PURPOSE_SHIFT[p] for p in _WITHDRAWN_BY_SIGNAL
    )
    SIGNAL_DENY_BITS: ClassVar[int] = sum(
        int(Tri.NO) << _PURPOSE_SHIFT[p] for p in _WITHDRAWN_BY_SIGNAL
    )

    def __init__(self) -> None:
        raise TypeError("ConsentState is a layout; a consent state is a plain int")

    @staticmethod
    def pack(
        ordered_at_us: int,
        purposes: dict[str, bool | None],
        under_13: bool | None,
        parental_consent: bool | None,
    ) -> int:
        """One consent record packed into an int; purposes not named are unknown."""
        state = ordered_at_us << ConsentState.TIME_SHIFT
        for name, value in purposes.items():
            state |= int(tri(value)) << ConsentState.PURPOSE_SHIFT[name]
        state |= int(tri(under_13)) << ConsentState.UNDER_13_SHIFT
        return state | int(tri(parental_consent)) << ConsentState.PARENTAL_SHIFT

    @staticmethod
    def field(state: int, shift: int) -> Tri:
        """The tri-state at `shift` (a *_SHIFT constant) of a packed state."""
        return Tri((state >> shift) & ConsentState.FIELD_MASK)

    @staticmethod
    def ordered_at_us(state: int) -> int:
        """The ordering time (epoch µs) of a packed state: what `gateway-consent-version` shows."""
        return state >> ConsentState.TIME_SHIFT

    @staticmethod
    def sticky_gpc(state: int | None) -> bool:
        """Whether a GPC signal is kept for the subject (`gpc: sticky`); False when unknown."""
        return state is not None and bool(state & ConsentState.STICKY_GPC_BIT)

    @staticmethod
    def record_bits(state: int) -> int:
        """The state as its consent record packed it: the sticky GPC bit cleared."""
        return state & ~ConsentState.STICKY_GPC_BIT

    @staticmethod
    def version(state: int | None) -> int | None:
        """The ordering time of a subject's state, or None for an unknown subject."""
        return None if state is None else state >> ConsentState.TIME_SHIFT

    @staticmethod
    def view(state: int) -> ConsentView:
        """The readable form of a packed state."""
        field = ConsentState.field
        return ConsentView(
            updated_at_us=ConsentState.ordered_at_us(state),
            purposes={
                name: field(state, shift) for name, shift in ConsentState.PURPOSE_SHIFT.items()
            },
            under_13=field(state, ConsentState.UNDER_13_SHIFT),
            parental_consent=field(state, ConsentState.PARENTAL_SHIFT),
        )

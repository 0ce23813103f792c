"""Policy decisions as data: one verdict and one reason per sink, read from the packed consent.

`policy_reason` is the whole consent/children/signal policy for one sink. It depends only on the
low 14 bits of the packed state plus the GPC and DNT bits of the event (TABLE_SIZE values), so
the engine computes it once per route (those bits, the event kind and type label) and the hot
path is one dict lookup.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, NamedTuple

from gateway.config_models import (
    BARRED_WITH_PARENTAL_CONSENT,
    BARRED_WITHOUT_PARENTAL_CONSENT,
    SinkRule,
)
from gateway.consent_state import (
    ConsentState,
    Tri,
)
from gateway.guard import Scrub
from gateway.reasons import FORWARD_REASONS, Reason

# The event's signal bits of a routing index (the layout's, re-exported for callers of
# `policy_reason`, which takes such an index).
GPC_BIT = ConsentState.GPC_BIT
DNT_BIT = ConsentState.DNT_BIT
TABLE_SIZE = 1 << 16


class Verdict(StrEnum):
    """What a sink gets of an event: a cleaned copy (FORWARD) or nothing (DROP)."""

    FORWARD = "forward"
    DROP = "drop"


class SinkDecision(NamedTuple):
    """The decision for one event and one sink: a verdict, one reason, the output if forwarded.

    `output`, `value`, `key` and `key_id` are set only when forwarded; `scrubbed` lists what the
    value guard (gateway.guard) replaced in a forwarded record.

    A NamedTuple, not a frozen dataclass: it is built on the hot path, and a tuple is built
    several times faster than a frozen dataclass sets its eight fields.
    """

    sink: str
    topic: str
    verdict: Verdict
    reason: Reason
    output: dict[str, Any] | None
    value: bytes | None
    key: bytes | None
    key_id: str | None
    scrubbed: tuple[Scrub, ...] = ()

    def __repr__(self) -> str:  # never show the output or the key
        verdict, reason = self.verdict.value, self.reason.value
        return f"SinkDecision(sink={self.sink!r}, verdict={verdict!r}, reason={reason!r})"


def verdict_of(reason: Reason) -> Verdict:
    """FORWARD for the forward reasons, DROP for every other."""
    return Verdict.FORWARD if reason in FORWARD_REASONS else Verdict.DROP


@dataclass(frozen=True, slots=True)
class PolicyRule:
    """The parts of a sink rule and the settings that the consent policy reads."""

    audience: str
    required_shifts: tuple[int, ...]
    match_any: bool
    unknown_grants: bool
    identifier_shifts: tuple[int, ...]
    children_strip: bool
    unknown_age_is_child: bool
    honour_dnt: bool

    @classmethod
    def from_rule(cls, rule: SinkRule, *, unknown_age: str, honour_dnt: bool) -> PolicyRule:
        """The policy of `rule` under the settings' `unknown_age` ("child" or not) and DNT."""
        shifts = ConsentState.PURPOSE_SHIFT
        return cls(
            audience=rule.audience,
            required_shifts=tuple(shifts[p] for p in rule.purposes),
            match_any=rule.purposes_match == "any",
            unknown_grants=rule.unknown_consent == "grant",
            identifier_shifts=tuple(
                ConsentState.PURPOSE_SHIFT[p] for p in rule.identifier_purposes
            ),
            children_strip=rule.children == "strip_identifiers",
            unknown_age_is_child=unknown_age == "child",
            honour_dnt=honour_dnt,
        )


def _purposes_reason(rule: PolicyRule, state: int) -> Reason | None:
    """None when the required purposes are granted, else CONSENT_DENIED or CONSENT_UNKNOWN."""
    values = [ConsentState.field(state, shift) for shift in rule.required_shifts]
    if rule.unknown_grants:
        values = [Tri.YES if value is Tri.UNKNOWN else value for value in values]
    granted = [value is Tri.YES for value in values]
    if any(granted) if rule.match_any else all(granted):
        return None
    return Reason.CONSENT_DENIED if Tri.NO in values else Reason.CONSENT_UNKNOWN


def is_child(state: int, *, unknown_age_is_child: bool) -> bool:
    """Under 13, or of unknown age where the settings treat unknown age as a child."""
    under_13 = ConsentState.field(state, ConsentState.UNDER_13_SHIFT)
    return under_13 is Tri.YES or (under_13 is Tri.UNKNOWN and unknown_age_is_child)


def policy_reason(rule: PolicyRule, index: int) -> Reason:
    """The one reason for a sink given the packed policy bits and the event's GPC/DNT bits."""
    state = index & ConsentState.POLICY_MASK
    gpc = bool(index & GPC_BIT)
    dnt = bool(index & DNT_BIT) and rule.honour_dnt
    child = is_child(state, unknown_age_is_child=rule.unknown_age_is_child)
    parental = ConsentState.field(state, ConsentState.PARENTAL_SHIFT) is Tri.YES
    if child:
        barred = BARRED_WITH_PARENTAL_CONSENT if parental else BARRED_WITHOUT_PARENTAL_CONSENT
        if rule.audience in barred:
            return Reason.CHILD_BARRED_SINK
        if not parental and not rule.children_strip:
            return Reason.CHILD_NO_PARENTAL_CONSENT
    reason = _purposes_reason(rule, state)
    if reason is not None:
        return reason
    withdrawn = (state & ConsentState.SIGNAL_CLEAR_MASK) | ConsentState.SIGNAL_DENY_BITS
    if (gpc or dnt) and _purposes_reason(rule, withdrawn) is not None:
        return Reason.GPC if gpc else Reason.DNT
    if child and not parental:
        return Reason.CONSENTED_CHILD_NO_IDENTIFIERS
    effective = withdrawn if gpc or dnt else state
    if any(ConsentState.field(effective, shift) is not Tri.YES for shift in rule.identifier_shifts):
        return Reason.CONSENTED_NO_IDENTIFIERS
    return Reason.CONSENTED

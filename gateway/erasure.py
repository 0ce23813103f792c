"""Erasure notices: which sinks are told when a subject is erased or found to be a child, by what.

Privacy policy section 5 (a subject may ask for deletion) and section 7 ("if we become aware that
we have unknowingly collected personally identifiable information from a child under the age of
13, we will make reasonable efforts to delete such information"); CONTRACT.md, "Consent records":
erasure reaches the sinks, by pseudonym, never by the raw id.

- `ErasureReason`: `subject_erased` (a consent tombstone), `child_discovered` (a consent record
  made the subject a child without a parent's consent).
- `ErasableSink`: a sink whose rule can carry a pseudonym of the subject (the record key, or
  `subject_id: pseudonym`), with every key still accepted (current, then previous): only such a
  sink can be told which of its records are the subject's. A sink that never gets a pseudonym of
  the subject holds nothing it could find by it, and is not notified.
- `erasure_reason`: whether one consent record calls for notices, and why.

The notice records themselves (erasure topic, sink tombstones, audit) are built in
`gateway.records`; nothing here reads a clock or does I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

from gateway.config import GatewayConfig
from gateway.config_models import SinkRule
from gateway.consent import ConsentOutcome, ConsentUpdate, Tombstone
from gateway.consent_state import ConsentState, Tri
from gateway.decision import is_child
from gateway.keys import Keyring, SinkKey, keyed_pseudonymizer

__all__ = [
    "ERASURE_REASONS",
    "ErasableSink",
    "ErasureReason",
    "carries_subject_pseudonym",
    "child_without_parental_consent",
    "erasable_sinks",
    "erasure_reason",
]


class ErasureReason(StrEnum):
    """Why the sinks are told to erase a subject (the `reason` of a notice)."""

    SUBJECT_ERASED = "subject_erased"  # a consent tombstone (policy section 5)
    CHILD_DISCOVERED = "child_discovered"  # under 13 without a parent's consent (section 7)


ERASURE_REASONS: Final = tuple(reason.value for reason in ErasureReason)


def carries_subject_pseudonym(rule: SinkRule) -> bool:
    """Whether the sink's records can carry its pseudonym of the subject.

    True when the record key is the pseudonym (`key: pseudonym`) or the rule maps `subject_id`
    to `pseudonym`. Pseudonyms of other identifiers (`device_id`, ...) do not name the subject.
    """
    field_rule = rule.fields.get("subject_id")
    return rule.key == "pseudonym" or getattr(field_rule, "op", "") == "pseudonym"


@dataclass(frozen=True, slots=True)
class ErasableSink:
    """A sink that can hold a pseudonym of the subject: its name, topic and accepted keys.

    `keys` lists the current key first, then the previous one during a rotation (README,
    "Keys"): records made under either may still sit in the sink's topic.
    """

    name: str
    topic: str
    keys: tuple[SinkKey, ...]
    _makers: tuple[tuple[str, Callable[[str], str]], ...] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        makers = tuple((key.key_id, keyed_pseudonymizer(key.secret)) for key in self.keys)
        object.__setattr__(self, "_makers", makers)

    def pseudonyms(self, subject_id: str) -> tuple[tuple[str, str], ...]:
        """(key id, the sink's pseudonym of `subject_id` under that key), current key first.

        The pseudonym is the one the sink's records carry (gateway.keys: keyed BLAKE2b, 32 hex
        characters).
        """
        return tuple((key_id, make(subject_id)) for key_id, make in self._makers)


def erasable_sinks(config: GatewayConfig, keyring: Keyring) -> tuple[ErasableSink, ...]:
    """Every sink of `config` that can carry a pseudonym of the subject, in config order.

    Raises `KeyError` for a sink `keyring` has no keys for.
    """
    sinks = []
    for rule in config.sinks:
        if carries_subject_pseudonym(rule):
            keys = keyring.sinks[rule.name]
            accepted = (keys.current,) if keys.previous is None else (keys.current, keys.previous)
            sinks.append(ErasableSink(rule.name, rule.topic, accepted))
    return tuple(sinks)


def child_without_parental_consent(state: int | None, *, unknown_age_is_child: bool) -> bool:
    """Whether the consent policy treats the subject as a child without a parent's consent.

    `state` is the packed consent (None: unknown subject, read as unknown age and no parental
    consent); `unknown_age_is_child` is `unknown_age: child` (config/gateway.yaml).
    """
    packed = 0 if state is None else state
    parental = ConsentState.field(packed, ConsentState.PARENTAL_SHIFT) is Tri.YES
    return not parental and is_child(packed, unknown_age_is_child=unknown_age_is_child)


def erasure_reason(
    current: int | None,
    update: ConsentUpdate | Tombstone,
    outcome: ConsentOutcome,
    *,
    unknown_age_is_child: bool,
) -> ErasureReason | None:
    """Whether one consent record calls for erasure notices, and why; None when it does not.

    `current` is the subject's state before the record, `outcome` what applying it did
    (gateway.consent.apply_consent). A tombstone always does, known subject or not (a sink may
    have received the subject's pseudonym under `unknown_consent: grant`, and a tombstone seen
    again after a crash must notify again: at least once). A record does when it makes the
    subject a child without a parent's consent who was not one before; also when it is the very
    record the table already holds (STALE, equal): a redelivery after a crash between the table's
    changelog write and the notices' acknowledgement, so those notices are sent again.
    """
    if isinstance(update, Tombstone):
        return ErasureReason.SUBJECT_ERASED
    child = child_without_parental_consent(update.state, unknown_age_is_child=unknown_age_is_child)
    if not child:
        return None
    if outcome is ConsentOutcome.APPLIED:
        before = child_without_parental_consent(current, unknown_age_is_child=unknown_age_is_child)
        return None if before else ErasureReason.CHILD_DISCOVERED
    if current is not None and ConsentState.record_bits(current) == update.state:
        return ErasureReason.CHILD_DISCOVERED
    return None

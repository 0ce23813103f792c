"""Sink plans: each sink rule (gateway.config_models.SinkRule) compiled once for the hot path.

A plan is what `Engine.decide` reads. It holds the sink's filters, its prebuilt drop decisions, the
policy rule (the engine caches its outcomes per route), and its field operations compiled to
`FieldOp`s in config order: `drop` fields are left out, `keep` fields are copied without a call
(apply is None), every other operator is its bound `apply`; the `timestamp` operator on
`occurred_at` reads the instant parse_event computed (`Event.occurred_at_us`) instead of parsing the
text again. There are two such lists, with and without the linkable fields, so a decision without
identifiers never runs an identifier operator at all. `build_output` runs a list: a plain loop
(generated, unrolled builders were measured against it in bench-decide and gained under 5%, so they
went).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import orjson

from gateway.config_models import SinkRule
from gateway.decision import PolicyRule, SinkDecision, Verdict, policy_reason
from gateway.events import IDENTIFIER_FIELDS, Event, EventKind
from gateway.guard import (
    GuardedInput,
    Scrub,
    ValueGuard,
    has_at_sign,
    output_bytes_clean,
)
from gateway.keys import keyed_pseudonymizer
from gateway.operators import DROP, OPERATORS, OperatorConfig, OperatorTools
from gateway.operators.base import Synthesis
from gateway.operators.drop import Drop
from gateway.operators.keep import Keep
from gateway.operators.timestamp import Timestamp
from gateway.reasons import FORWARD_REASONS, Reason

Apply = Callable[[Any], Any]


class FieldOp(NamedTuple):
    """One output field: its name, its transform (None: copy the value), and the input it takes.

    `epoch` True: the transform takes the event's `occurred_at_us` instead of the field's text.
    """

    name: str
    apply: Apply | None
    epoch: bool = False


Ops = tuple[FieldOp, ...]
KEY_ID_FIELD = "pseudonym_key_id"
_CONSENTED = Reason.CONSENTED  # module constants: enum attribute lookups are slow
_FORWARD = Verdict.FORWARD
_new_tuple = tuple.__new__
_ABSENT: Any = object()


def make_pseudonymizer(key: bytes, size: int) -> Callable[[str], str]:
    """A sink's keyed pseudonym function with a bounded cache (cleared when full)."""
    cache: dict[str, str] = {}
    pseudonymize = keyed_pseudonymizer(key)

    def pseudonym(value: str) -> str:
        result = cache.get(value)
        if result is None:
            result = pseudonymize(value)
            if len(cache) >= size:
                cache.clear()
            if size:
                cache[value] = result
        return result

    return pseudonym


def _compile(
    rules: Mapping[str, OperatorConfig], tools: OperatorTools, *, linkable: bool, fields: bool
) -> Ops:
    """A FieldOp per event field (per `properties` key unless `fields`), in config order.

    Drops and, unless `linkable`, pseudonym operators and identifier fields are left out.
    """
    ops: list[FieldOp] = []
    for name, config in rules.items():
        op = OPERATORS[config.op](config, tools)
        if isinstance(op, Drop):
            continue
        if not linkable and (op.linkable or name in IDENTIFIER_FIELDS):
            continue
        if fields and isinstance(op, Timestamp) and name == "occurred_at":
            ops.append(FieldOp(name, op.apply_us, epoch=True))
        else:
            ops.append(FieldOp(name, None if isinstance(op, Keep) else op.apply))
    return tuple(ops)


def build_output(ops: Ops, values: Mapping[str, Any], occurred_at_us: int) -> dict[str, Any]:
    """Run `ops` over `values` (an event's fields, or its `properties`) into a new dict.

    `properties` values may be JSON null: copied as None (`keep`) or handed to their operator.
    """
    output: dict[str, Any] = {}
    for name, apply, epoch in ops:
        value = values.get(name, _ABSENT)
        if value is not _ABSENT:
            if apply is None:
                output[name] = value
            else:
                result = apply(occurred_at_us if epoch else value)
                if result is not DROP:
                    output[name] = result
    return output


def _label_event_type(ops: Ops, label: Apply) -> Ops:
    return tuple(
        op._replace(apply=label) if op.name == "event_type" and op.apply is None else op
        for op in ops
    )


class SinkPlan:
    """One sink's compiled rule: filters, policy table, compiled operations, prebuilt drops."""

    def __init__(
        self,
        rule: SinkRule,
        policy: PolicyRule,
        tools: OperatorTools,
        *,
        event_type_label: Apply,
    ) -> None:
        self.rule = rule
        self.name = rule.name
        self.topic = rule.topic
        self.kinds = frozenset(EventKind(kind) for kind in rule.kinds)
        self.event_types = None if rule.event_types is None else frozenset(rule.event_types)
        self.policy = policy
        self.pseudonymize = tools.pseudonymize
        self.key_id = tools.key_id
        self.keyed = rule.key == "pseudonym"
        # the record key is the subject's pseudonym: reuse it when the output holds it too
        self.subject_pseudonym_out = getattr(rule.fields.get("subject_id"), "op", "") == "pseudonym"
        # a kept event_type leaves as its bounded label (see Engine.event_type_label)
        full = _compile(rule.fields, tools, linkable=True, fields=True)
        safe = _compile(rule.fields, tools, linkable=False, fields=True)
        self.full_ops = _label_event_type(full, event_type_label)
        self.safe_ops = _label_event_type(safe, event_type_label)
        self.props = _compile(rule.properties, tools, linkable=True, fields=False)
        rules = rule.field_rules().values()
        self.linkable = any(OPERATORS[config.op].linkable for config in rules)
        # Config text that reaches outputs (redact replacements): if it holds an at-sign in any
        # spelling, every output of this sink is checked for email addresses, whatever the input.
        self.emits_marks = any(
            has_at_sign(str(getattr(config, "replacement", ""))) for config in rules
        )
        # What its operators write beyond copies, each with whether it works on the event's
        # own `ip` (gateway.guard.SynthesisRisk). A proven input needs no output check here
        # unless an operator is opaque or the config text may write an at-sign.
        self.syntheses: tuple[tuple[Synthesis, bool], ...] = tuple(
            (OPERATORS[config.op](config, tools).synthesis(), on_fields and name == "ip")
            for on_fields, configs in ((True, rule.fields), (False, rule.properties))
            for name, config in configs.items()
        )
        self.checks_outputs = self.emits_marks or any(s.opaque for s, _ in self.syntheses)
        self.drops = {
            reason: SinkDecision(
                self.name, self.topic, Verdict.DROP, reason, None, None, None, None, ()
            )
            for reason in Reason
        }

    def outcome(self, index: int) -> SinkDecision | Reason:
        """The prebuilt drop decision, or the forward reason, for one set of policy bits."""
        reason = policy_reason(self.policy, index)
        return reason if reason in FORWARD_REASONS else self.drops[reason]

    def forward(self, event: Event, reason: Reason, guarded: GuardedInput | None) -> SinkDecision:
        """The forward decision: the allowlisted, transformed fields, serialized.

        `guarded` is the event as the value guard prepared it (gateway.guard): its free text
        scrubbed, and the needles the output is checked against; None runs no guard (only the
        benchmark's guard-off figure does that).
        """
        fields = event.fields if guarded is None else guarded.fields
        full = reason is _CONSENTED
        output = build_output(
            self.full_ops if full else self.safe_ops, fields, event.occurred_at_us
        )
        key = key_id = None
        if full:
            properties = fields.get("properties")
            if properties and self.props:
                kept = build_output(self.props, properties, event.occurred_at_us)
                if kept:
                    output["properties"] = kept
            if self.linkable:
                output[KEY_ID_FIELD] = key_id = self.key_id
            if self.keyed:
                pseudonym = output["subject_id"] if self.subject_pseudonym_out else None
                key = (pseudonym or self.pseudonymize(event.subject_id)).encode()
                key_id = self.key_id
        value = orjson.dumps(output)
        scrubbed: tuple[Scrub, ...] = ()
        if guarded is not None and (self.checks_outputs or not guarded.proven):
            spellings = guarded.spellings
            if guarded.hits:
                scrubbed = guarded.received(output)
            marks = self.emits_marks or not guarded.marks_free
            if not output_bytes_clean(value, spellings, marks=marks):
                budget = guarded.guard.record_budget(guarded.source)
                output, found = ValueGuard.scrub_output(output, guarded.needles(), budget)
                value = orjson.dumps(output)
                scrubbed += found
            if key is not None and not output_bytes_clean(key, spellings, marks=False):
                raw_key = key.decode()
                found_in_key = [n for n in guarded.needles() if n.occurs_in(raw_key)]
                if found_in_key:  # (a short value inside the hex pseudonym is no occurrence)
                    key = None  # a pseudonym that holds a value by chance: the record goes unkeyed
                    scrubbed += (Scrub("key", found_in_key[0].identifier, 1),)
        # tuple.__new__ skips NamedTuple's Python-level __new__ (a third of the cost, hot path)
        return _new_tuple(
            SinkDecision,
            (self.name, self.topic, _FORWARD, reason, output, value, key, key_id, scrubbed),
        )

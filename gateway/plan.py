"""Sink plans: one sink rule compiled once into what `Engine.decide` reads on the hot path.

A plan holds the sink's filters, its prebuilt drop decisions, the policy rule (the engine
caches its outcomes per route), and its field operations compiled to
`(name, apply)` pairs in config order: `drop` fields are left out, `keep` fields are copied
without a call (apply is None), every other operator is its bound `apply`. There are two such
lists, with and without the linkable fields, so a decision without identifiers never runs an
identifier operator at all. Each list is also compiled into a small generated function that
runs it unrolled (`full_source`/`safe_source` show it): the per-field loop was a fifth of the
cost of a forward.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import orjson

from gateway.config_models import FieldRule, SinkRule
from gateway.decision import PolicyRule, SinkDecision, Verdict, policy_reason
from gateway.events import IDENTIFIER_FIELDS, Event
from gateway.guard import EMAIL, GuardedInput, Scrub, ValueGuard, has_at_sign, output_clean
from gateway.keys import keyed_pseudonymizer
from gateway.operators import DROP, OPERATORS, OperatorTools
from gateway.operators.drop import Drop
from gateway.operators.keep import Keep
from gateway.reasons import FORWARD_REASONS, Reason

Apply = Callable[[Any], Any]
Ops = tuple[tuple[str, Apply | None], ...]
Getter = Callable[[str], Any]
KEY_ID_FIELD = "pseudonym_key_id"
_CONSENTED = Reason.CONSENTED  # module constants: enum attribute lookups are slow
_FORWARD = Verdict.FORWARD
_new_tuple = tuple.__new__


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


def _compile(rules: tuple[FieldRule, ...], tools: OperatorTools, *, linkable: bool) -> Ops:
    """(name, apply) per field in config order; None means copy. Drops and, unless `linkable`,
    pseudonym operators and identifier fields are left out."""
    ops: list[tuple[str, Apply | None]] = []
    for rule in rules:
        op = OPERATORS[rule.config.op](rule.config, tools)
        if isinstance(op, Drop):
            continue
        if not linkable and (op.linkable or rule.name in IDENTIFIER_FIELDS):
            continue
        ops.append((rule.name, None if isinstance(op, Keep) else op.apply))
    return tuple(ops)


def _builder(ops: Ops, label: str) -> tuple[Callable[[Getter], dict[str, Any]], str]:
    """A function get -> output dict running `ops` unrolled, and its source (for debugging).

    The same as looping over `ops`, without the per-field loop, unpacking and branch on the
    operator kind. Field names are reprs of known field names; operators are bound by name.
    """
    lines = ["def build(get):", "    output = {}"]
    env: dict[str, Any] = {"DROP": DROP}
    for index, (name, apply) in enumerate(ops):
        lines += [f"    value = get({name!r})", "    if value is not None:"]
        if apply is None:
            lines.append(f"        output[{name!r}] = value")
        else:
            env[f"op_{index}"] = apply
            lines += [
                f"        result = op_{index}(value)",
                "        if result is not DROP:",
                f"            output[{name!r}] = result",
            ]
    lines.append("    return output")
    source = "\n".join(lines) + "\n"
    exec(compile(source, f"<fields of {label}>", "exec"), env)  # noqa: S102 - source is ours
    return env["build"], source


def _apply_properties(ops: Ops, values: Mapping[str, Any], output: dict[str, Any]) -> None:
    """Run `ops` over `properties` into `output`; values may be JSON null (kept as None)."""
    for name, apply in ops:
        if name in values:
            value = values[name]
            if apply is None:
                output[name] = value
            else:
                result = apply(value)
                if result is not DROP:
                    output[name] = result


def _label_event_type(ops: Ops, label: Apply) -> Ops:
    return tuple((n, label if n == "event_type" and a is None else a) for n, a in ops)


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
        self.kinds = rule.kinds
        self.event_types = rule.event_types
        self.policy = policy
        self.pseudonymize = tools.pseudonymize
        self.key_id = tools.key_id
        self.keyed = rule.key == "pseudonym"
        # the record key is the subject's pseudonym: reuse it when the output holds it too
        self.subject_pseudonym_out = any(
            f.name == "subject_id" and f.config.op == "pseudonym" for f in rule.fields
        )
        # a kept event_type leaves as its bounded label (see Engine.event_type_label)
        full = _compile(rule.fields, tools, linkable=True)
        safe = _compile(rule.fields, tools, linkable=False)
        self.full_ops = _label_event_type(full, event_type_label)
        self.safe_ops = _label_event_type(safe, event_type_label)
        self.build_full, self.full_source = _builder(self.full_ops, f"sink {rule.name}")
        self.build_safe, self.safe_source = _builder(self.safe_ops, f"sink {rule.name}, safe")
        self.props = _compile(rule.properties, tools, linkable=True)
        self.linkable = any(
            OPERATORS[f.config.op].linkable for f in (*rule.fields, *rule.properties)
        )
        # Config text that reaches outputs (redact replacements): if it holds an at-sign in any
        # spelling, every output of this sink is checked for email addresses, whatever the input.
        self.emits_marks = any(
            has_at_sign(str(getattr(f.config, "replacement", "")))
            for f in (*rule.fields, *rule.properties)
        )
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
        # a validated event holds no null field, so get() returning None means absent
        output = (self.build_full if full else self.build_safe)(fields.get)
        key = key_id = None
        if full:
            properties = fields.get("properties")
            if properties and self.props:
                kept: dict[str, Any] = {}
                _apply_properties(self.props, properties, kept)
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
        if guarded is not None:
            spellings = guarded.spellings
            if guarded.hits:
                scrubbed = guarded.received(output)
            marks = self.emits_marks or not guarded.marks_free
            if not output_clean(value.decode().lower(), spellings, marks=marks):
                output, found = ValueGuard.scrub_output(output, guarded.needles())
                value = orjson.dumps(output)
                scrubbed += found
            if key is not None and not output_clean(key.decode().lower(), spellings, marks=False):
                raw_key = key.decode().lower()
                found_in_key = [
                    n for n in guarded.needles() if not output_clean(raw_key, n.encoded)
                ]
                identifier = found_in_key[0].identifier if found_in_key else EMAIL
                key = None  # a pseudonym that holds a value by chance: the record goes unkeyed
                scrubbed += (Scrub("key", identifier, 1),)
        # tuple.__new__ skips NamedTuple's Python-level __new__ (a third of the cost, hot path)
        return _new_tuple(
            SinkDecision,
            (self.name, self.topic, _FORWARD, reason, output, value, key, key_id, scrubbed),
        )

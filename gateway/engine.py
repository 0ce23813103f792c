"""The engine: sink rules compiled into plans, and `decide` as a tight loop over them.

Built once from a validated config and a keyring; nothing here reads a clock or does I/O.
Drop decisions are prebuilt constants; the consent policy is a per-sink lookup table.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from gateway.config import GatewayConfig
from gateway.config_models import FieldRule, SinkRule
from gateway.consent_state import POLICY_MASK, consent_updated_at_us
from gateway.decision import (
    DNT_BIT,
    GPC_BIT,
    TABLE_SIZE,
    PolicyRule,
    SinkDecision,
    Verdict,
    policy_reason,
    verdict_of,
)
from gateway.events import IDENTIFIER_FIELDS, Event, Invalid
from gateway.keys import Keyring, pseudonymize
from gateway.operators import DROP, OPERATORS, OperatorTools
from gateway.operators.base import UserAgentParser
from gateway.reasons import Reason
from gateway.useragent import default_user_agent_parser

Ops = tuple[tuple[str, Callable[[Any], Any]], ...]
KEY_ID_FIELD = "pseudonym_key_id"


class _Pseudonymizer:
    """A sink's keyed pseudonym function with a bounded cache (cleared when full)."""

    __slots__ = ("_cache", "_key", "_size")

    def __init__(self, key: bytes, size: int) -> None:
        self._key = key
        self._size = size
        self._cache: dict[str, str] = {}

    def __call__(self, value: str) -> str:
        cache = self._cache
        result = cache.get(value)
        if result is None:
            result = pseudonymize(self._key, value)
            if len(cache) >= self._size:
                cache.clear()
            if self._size:
                cache[value] = result
        return result

    def __repr__(self) -> str:
        return "_Pseudonymizer()"


class SinkPlan:
    """One sink's precompiled rule: filters, policy table, operator lists, prebuilt drops."""

    def __init__(self, rule: SinkRule, policy: PolicyRule, tools: OperatorTools) -> None:
        self.rule = rule
        self.name = rule.name
        self.topic = rule.topic
        self.policy = policy
        self.table: list[Reason | None] = [None] * TABLE_SIZE
        self.pseudonymize = tools.pseudonymize
        self.key_id = tools.key_id
        self.keyed = rule.key == "pseudonym"
        built = [(f, OPERATORS[f.config.op](f.config, tools)) for f in rule.fields]
        props = [(f, OPERATORS[f.config.op](f.config, tools)) for f in rule.properties]
        self.full_ops: Ops = tuple((f.name, op.apply) for f, op in built)
        self.safe_ops: Ops = tuple((f.name, op.apply) for f, op in built if not _linkable(f, op))
        self.props: Ops = tuple((f.name, op.apply) for f, op in props)
        self.linkable = any(op.linkable for _, op in built + props)
        self.drops = {
            reason: SinkDecision(
                self.name, self.topic, Verdict.DROP, reason, None, None, None, None
            )
            for reason in Reason
        }

    def fill(self, index: int) -> Reason:
        """Compute and remember the policy reason for one table index (first use only)."""
        reason = self.table[index] = policy_reason(self.policy, index)
        return reason


def _linkable(rule: FieldRule, op: Any) -> bool:
    return bool(op.linkable) or rule.name in IDENTIFIER_FIELDS


class Engine:
    """Decides every sink for one event. Construct once; `decide` is the hot path."""

    def __init__(
        self,
        config: GatewayConfig,
        keyring: Keyring,
        *,
        user_agent_parser: Callable[[], UserAgentParser] = default_user_agent_parser,
    ) -> None:
        settings = config.settings
        self.config = config
        self.version = config.version
        self._dnt = settings.honour_dnt
        plans = []
        for rule in config.sinks:
            key = keyring.current(rule.name)
            pseudo = _Pseudonymizer(key.secret, settings.pseudonym_cache_size)
            tools = OperatorTools(pseudo, key.key_id, user_agent_parser)
            policy = PolicyRule.from_rule(
                rule, unknown_age=settings.unknown_age, honour_dnt=settings.honour_dnt
            )
            plans.append(SinkPlan(rule, policy, tools))
        self.plans = tuple(plans)

    def __repr__(self) -> str:
        return f"Engine(version={self.version!r}, sinks={[p.name for p in self.plans]})"

    def decide(self, event: Event, consent: int | None) -> tuple[SinkDecision, ...]:
        """One decision per sink, in config order. `consent` None means an unknown subject."""
        fields = event.fields
        index = consent & POLICY_MASK if consent is not None else 0
        if fields.get("gpc") is True:
            index |= GPC_BIT
        if self._dnt and fields.get("dnt") is True:
            index |= DNT_BIT
        kind, event_type = event.kind, event.event_type
        decisions = []
        for plan in self.plans:
            rule = plan.rule
            if kind not in rule.kinds:
                decisions.append(plan.drops[Reason.EVENT_KIND_NOT_ACCEPTED])
                continue
            if rule.event_types is not None and event_type not in rule.event_types:
                decisions.append(plan.drops[Reason.EVENT_TYPE_NOT_ACCEPTED])
                continue
            reason = plan.table[index] or plan.fill(index)
            if reason is not Reason.CONSENTED and verdict_of(reason) is Verdict.DROP:
                decisions.append(plan.drops[reason])
                continue
            decisions.append(_forward(plan, event, reason))
        return tuple(decisions)

    def audit_record(
        self,
        event: Event,
        decision: SinkDecision,
        *,
        topic: str,
        partition: int,
        offset: int,
        consent_version: int | None,
    ) -> bytes:
        """A decision record for the audit topic: no subject id, no identifiers, no pseudonyms."""
        return orjson.dumps(
            {
                "sink": decision.sink,
                "sink_topic": decision.topic,
                "verdict": decision.verdict.value,
                "reason": decision.reason.value,
                "event_id": event.event_id,
                "event_type": event.event_type,
                "kind": event.kind.value,
                "source": {"topic": topic, "partition": partition, "offset": offset},
                "config_version": self.version,
                "consent_version": consent_version,
            }
        )

    def dlq_record(self, invalid: Invalid, *, topic: str, partition: int, offset: int) -> bytes:
        """The DLQ record of an invalid input: its redacted description and where it came from."""
        record = invalid.redacted()
        record["source"] = {"topic": topic, "partition": partition, "offset": offset}
        record["config_version"] = self.version
        return orjson.dumps(record)


def consent_version(state: int | None) -> int | None:
    """The consent version for audit records: the state's updated_at (epoch µs), or None."""
    return consent_updated_at_us(state) if state is not None else None


def _forward(plan: SinkPlan, event: Event, reason: Reason) -> SinkDecision:
    fields = event.fields
    full = reason is Reason.CONSENTED
    output: dict[str, Any] = {}
    for name, apply in plan.full_ops if full else plan.safe_ops:
        if name in fields:
            result = apply(fields[name])
            if result is not DROP:
                output[name] = result
    properties = fields.get("properties")
    if full and properties and plan.props:
        kept = {}
        for name, apply in plan.props:
            if name in properties:
                result = apply(properties[name])
                if result is not DROP:
                    kept[name] = result
        if kept:
            output["properties"] = kept
    key = None
    key_id = None
    if full and plan.linkable:
        output[KEY_ID_FIELD] = key_id = plan.key_id
    if full and plan.keyed:
        key = plan.pseudonymize(event.subject_id).encode()
        key_id = plan.key_id
    return SinkDecision(
        plan.name, plan.topic, Verdict.FORWARD, reason, output, orjson.dumps(output), key, key_id
    )

"""The engine: sink rules compiled into plans (gateway.plan), and `decide` as a tight loop.

Built once from a validated config and a keyring; nothing here reads a clock or does I/O.
Drop decisions are prebuilt constants; the consent policy is a per-sink lookup table.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from gateway.config import GatewayConfig
from gateway.config_models import OTHER_EVENT_TYPE
from gateway.consent_state import ConsentState
from gateway.decision import DNT_BIT, GPC_BIT, PolicyRule, SinkDecision, policy_reason
from gateway.erasure import erasable_sinks
from gateway.events import Event, EventKind
from gateway.guard import SynthesisRisk, ValueGuard
from gateway.keys import Keyring
from gateway.operators import OperatorTools
from gateway.operators.base import UserAgentParser
from gateway.plan import KEY_ID_FIELD, SinkPlan, make_pseudonymizer
from gateway.reasons import Reason
from gateway.records import OutputRecords
from gateway.useragent import default_user_agent_parser

__all__ = ["KEY_ID_FIELD", "OTHER_EVENT_TYPE", "Engine"]

_POLICY_MASK = ConsentState.POLICY_MASK  # every bit the consent policy reads
# Routes seen: (policy bits, kind, event type label). Few in practice; cleared when full.
ROUTE_CACHE_SIZE = 65536


class _Labels(dict[str, str]):
    """Allowlisted event type -> itself; any other -> "other" (a C-level lookup when known)."""

    def __missing__(self, key: str) -> str:
        return OTHER_EVENT_TYPE


class _Forward(NamedTuple):
    """A sink that forwards, and why; the output is built per event."""

    plan: SinkPlan
    reason: Reason


class _Route(NamedTuple):
    """Per sink, in config order: a prebuilt drop decision or a forward step."""

    all_dropped: tuple[SinkDecision, ...] | None  # the decisions, when every sink drops
    steps: tuple[SinkDecision | _Forward, ...]


class Engine:
    """Decides every sink for one event. Construct once; `decide` is the hot path."""

    def __init__(
        self,
        config: GatewayConfig,
        keyring: Keyring,
        *,
        user_agent_parser: Callable[[], UserAgentParser] = default_user_agent_parser,
        value_guard: bool = True,
        native_guard: bool = True,
    ) -> None:
        """Compile `config` with the sinks' current keys from `keyring`.

        `value_guard=False` turns the value guard off; only the benchmark does that, to show
        the guard's cost beside the figure without it. `native_guard=False` runs the guard's
        scans in Python only (the tests compare both). Raises `KeyringError` (gateway.keys)
        when a sink has no key.
        """
        settings = config.settings
        self.config = config
        self.version = config.version
        self._dnt = settings.honour_dnt
        # `gpc: sticky` lets a state's kept GPC signal (its bit 14) into the routing index, where
        # it reads as the event's own GPC; `per_event` masks it out (gateway.consent).
        self._mask = _POLICY_MASK | (GPC_BIT if settings.gpc == "sticky" else 0)
        self._event_type_labels = _Labels({name: name for name in settings.known_event_types})
        plans = []
        for rule in config.sinks:
            key = keyring.current(rule.name)
            pseudo = make_pseudonymizer(key.secret, settings.pseudonym_cache_size)
            tools = OperatorTools(pseudo, key.key_id, user_agent_parser)
            policy = PolicyRule.from_rule(
                rule, unknown_age=settings.unknown_age, honour_dnt=settings.honour_dnt
            )
            plans.append(
                SinkPlan(rule, policy, tools, event_type_label=self._event_type_labels.__getitem__)
            )
        self.plans = tuple(plans)
        self._routes: dict[tuple[int, EventKind, str], _Route] = {}
        # The fixed texts an output may hold besides its operators': key ids, event type labels,
        # the key id's field name and JSON's literals (an operator's None is `null`).
        vocabulary = (
            *(plan.key_id for plan in plans), *self._event_type_labels, OTHER_EVENT_TYPE,
            KEY_ID_FIELD, "null", "true", "false",
        )  # fmt: skip
        risk = SynthesisRisk((s for plan in plans for s in plan.syntheses), vocabulary)
        self.guard = (
            ValueGuard(settings.identifier_min_length, risk, native=native_guard)
            if value_guard
            else None
        )
        self._prepare = None if self.guard is None else self.guard.preparer()
        # Every record this config version writes (sink, audit, DLQ): swapped with the engine
        # on a reload, so the config version follows everywhere.
        self.records = OutputRecords(
            config_version=config.version,
            audit_topic=settings.topics.audit,
            dlq_topic=settings.topics.dlq,
            dedup_keys={rule.name: keyring.current(rule.name).secret for rule in config.sinks},
            event_type_label=self.event_type_label,
            guard=self.guard,
            erasure_topic=settings.topics.erasure,
            erasable=erasable_sinks(config, keyring),
        )

    def __repr__(self) -> str:
        return f"Engine(version={self.version!r}, sinks={[p.name for p in self.plans]})"

    def event_type_label(self, event_type: str) -> str:
        """The event type as it may leave the gateway: a known type, or "other".

        Producers may send any string as event_type; outside the configured allowlist it could
        carry personal data, so sink outputs, sink filters and audit records see only this.
        """
        return self._event_type_labels[event_type]

    def consent_reasons(self, consent: int | None, *, gpc: bool = False) -> dict[str, Reason]:
        """Per sink (config order), the reason its rule gives for the subject's consent alone.

        `consent` is the packed state (None: unknown); `gpc` adds an event's GPC signal. Event
        kinds and types are not looked at (they are per event): `gateway subject-report`.
        """
        index = consent & self._mask if consent is not None else 0
        index |= GPC_BIT if gpc else 0
        return {plan.name: policy_reason(plan.policy, index) for plan in self.plans}

    def decide(self, event: Event, consent: int | None) -> tuple[SinkDecision, ...]:
        """One decision per sink, in config order. `consent` None means an unknown subject."""
        fields = event.fields
        index = consent & self._mask if consent is not None else 0
        if fields.get("gpc") is True:
            index |= GPC_BIT
        if self._dnt and fields.get("dnt") is True:
            index |= DNT_BIT
        kind, event_type = event.kind, event.event_type
        key = (index, kind, self._event_type_labels[event_type])
        route = self._routes.get(key) or self._route(key)
        if route.all_dropped is not None:
            return route.all_dropped
        prepare = self._prepare
        guarded = None if prepare is None else prepare(fields, event.canonical or None)
        return tuple(
            [
                s.plan.forward(event, s.reason, guarded) if isinstance(s, _Forward) else s
                for s in route.steps
            ]
        )

    def _route(self, key: tuple[int, EventKind, str]) -> _Route:
        """Compute and remember what each sink does for one (policy bits, kind, type label)."""
        index, kind, label = key
        steps: list[SinkDecision | _Forward] = []
        for plan in self.plans:
            if kind not in plan.kinds:
                steps.append(plan.drops[Reason.EVENT_KIND_NOT_ACCEPTED])
            elif plan.event_types is not None and label not in plan.event_types:
                steps.append(plan.drops[Reason.EVENT_TYPE_NOT_ACCEPTED])
            else:
                outcome = plan.outcome(index)
                steps.append(_Forward(plan, outcome) if isinstance(outcome, Reason) else outcome)
        drops = [s for s in steps if isinstance(s, SinkDecision)]
        route = _Route(tuple(drops) if len(drops) == len(steps) else None, tuple(steps))
        if len(self._routes) >= ROUTE_CACHE_SIZE:
            self._routes.clear()
        self._routes[key] = route
        return route

"""The pure core of the privacy gateway: events, consent, sink rules, decisions, operators.

Nothing here touches the network, Kafka, faust or the clock: time, keys and settings are passed
in. The public API is what `__all__` names; everything else is internal. A minimal use::

    from gateway import Engine, load_config, load_keyring, parse_event, EventKind

    config = load_config(Path("config"))
    keyring = load_keyring(os.environ, [rule.name for rule in config.sinks])
    engine = Engine(config, keyring)
    event = parse_event(value, key, EventKind.USAGE, max_bytes=config.settings.max_event_bytes)
    decisions = engine.decide(event, consent_state)  # one SinkDecision per sink

Exceptions raised on purpose derive from `GatewayError` (tree in gateway.errors).
"""

from __future__ import annotations

from gateway.config import ConfigError, GatewayConfig, load_config
from gateway.consent import (
    ConsentOutcome,
    ConsentUpdate,
    Tombstone,
    apply_consent,
    parse_consent,
)
from gateway.decision import SinkDecision, Verdict
from gateway.engine import Engine
from gateway.errors import GatewayError
from gateway.events import Event, EventKind, Invalid, parse_event
from gateway.guard import Scrub, ValueGuard
from gateway.keys import Keyring, KeyringError, load_keyring
from gateway.metrics import GatewayMetrics, UnknownLabelValueError
from gateway.reasons import Reason
from gateway.records import Output, OutputRecords, Source

__all__ = [
    "ConfigError",
    "ConsentOutcome",
    "ConsentUpdate",
    "Engine",
    "Event",
    "EventKind",
    "GatewayConfig",
    "GatewayError",
    "GatewayMetrics",
    "Invalid",
    "Keyring",
    "KeyringError",
    "Output",
    "OutputRecords",
    "Reason",
    "Scrub",
    "SinkDecision",
    "Source",
    "Tombstone",
    "UnknownLabelValueError",
    "ValueGuard",
    "Verdict",
    "apply_consent",
    "load_config",
    "load_keyring",
    "parse_consent",
    "parse_event",
]

"""Every record the gateway writes: sink, audit, event DLQ and consent DLQ, key, value and headers.

One home for the output format (README, "What the outputs carry"): the header names are
defined here once, and an `OutputRecords` is built with the engine from one config and keyring,
so a config reload (a new engine) changes the config version of every kind of output at once.

Nothing here identifies a subject: sink values were checked by the value guard (gateway.guard);
the audit value carries the event id scrubbed by the guard, the sink, the reason and positions;
DLQ values are `Invalid.redacted()` descriptions (field names and JSON types, never values);
headers carry versions, key ids and keyed hashes only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Final, NamedTuple

import orjson

from gateway.decision import SinkDecision
from gateway.events import Event, Invalid
from gateway.guard import ValueGuard
from gateway.keys import keyed_pseudonymizer

__all__ = [
    "HEADER_CONFIG",
    "HEADER_CONSENT",
    "HEADER_DEDUP_ID",
    "HEADER_KEY_ID",
    "HEADER_REASON",
    "HEADER_SINK",
    "HEADER_SOURCE",
    "Header",
    "Output",
    "OutputRecords",
    "Source",
]

HEADER_CONFIG: Final = "gateway-config-version"
HEADER_CONSENT: Final = "gateway-consent-version"
HEADER_KEY_ID: Final = "gateway-key-id"
HEADER_DEDUP_ID: Final = "gateway-dedup-id"
HEADER_SINK: Final = "gateway-sink"
HEADER_REASON: Final = "gateway-reason"
HEADER_SOURCE: Final = "gateway-source"
_dumps = orjson.dumps
_new_tuple = tuple.__new__
NO_CONSENT: Final = b"none"

Header = tuple[str, bytes]


class Source(NamedTuple):
    """Where an input record came from: topic, partition, offset."""

    topic: str
    partition: int
    offset: int

    def header(self) -> Header:
        """`gateway-source: topic/partition/offset`."""
        return (HEADER_SOURCE, f"{self.topic}/{self.partition}/{self.offset}".encode())


class Output(NamedTuple):
    """One record to write: topic, key, value (None for a tombstone) and headers."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: list[Header]

    def __repr__(self) -> str:  # never show the key or the value
        return f"Output(topic={self.topic!r}, headers={[name for name, _ in self.headers]})"


class OutputRecords:
    """Builds the records one config version writes (made by `Engine`, swapped with it).

    `config_version` is the config's content hash; `audit_topic` and `dlq_topic` are the gateway
    topics; `dedup_keys` maps each sink to the secret its dedup ids are keyed with (the sink's
    current pseudonym key, so two partners never share an id); `event_type_label` turns an event
    type into what may leave (`Engine.event_type_label`); `guard` scrubs the event id of audit
    records (None: not scrubbed, the benchmark's guard-off figure only).
    """

    def __init__(
        self,
        *,
        config_version: str,
        audit_topic: str,
        dlq_topic: str,
        dedup_keys: Mapping[str, bytes],
        event_type_label: Callable[[str], str],
        guard: ValueGuard | None,
    ) -> None:
        self.config_version = config_version
        self.audit_topic = audit_topic
        self.dlq_topic = dlq_topic
        self._config_header: Header = (HEADER_CONFIG, config_version.encode())
        self._dedup = {sink: keyed_pseudonymizer(key) for sink, key in dedup_keys.items()}
        self._key_id_headers: dict[str, Header] = {}
        self._audit_headers: dict[tuple[str, str], tuple[Header, Header]] = {}
        self._last_event: Event | None = None
        self._last_event_id = ""
        self._label = event_type_label
        self._guard = guard

    def __repr__(self) -> str:
        return f"OutputRecords(config_version={self.config_version!r})"

    @staticmethod
    def consent_header(version: int | None) -> Header:
        """`gateway-consent-version`: the applied record's ordering time (µs) or `none`."""
        return (HEADER_CONSENT, NO_CONSENT if version is None else b"%d" % version)

    def sink(self, decision: SinkDecision, event: Event, consent: Header) -> Output:
        """The record of a forward: the decision's key and value, with the sink headers.

        `consent` is `consent_header(...)` of the event's consent (built once per event).
        """
        dedup = self._dedup[decision.sink]("event:" + event.event_id)
        headers = [self._config_header, consent, (HEADER_DEDUP_ID, dedup.encode())]
        key_id = decision.key_id
        if key_id is not None:
            header = self._key_id_headers.get(key_id)
            if header is None:
                header = self._key_id_headers[key_id] = (HEADER_KEY_ID, key_id.encode())
            headers.append(header)
        # tuple.__new__ skips NamedTuple's Python-level __new__ (hot path: one per forward)
        return _new_tuple(Output, (decision.topic, decision.key, decision.value, headers))

    def audit(
        self,
        event: Event,
        decision: SinkDecision,
        source: Source,
        consent_version: int | None,
        consent: Header | None = None,
    ) -> Output:
        """The audit record of a decision: no subject id, identifier or pseudonym in it.

        The event id is the producer's free text, so the value guard scrubs it too.
        """
        if event is self._last_event:  # one event's drops are audited one after another
            event_id = self._last_event_id
        else:
            event_id = event.event_id
            if self._guard is not None:
                event_id = self._guard.scrub_free_text(event_id, event.fields)
            self._last_event, self._last_event_id = event, event_id
        value = _dumps(
            {
                "sink": decision.sink,
                "sink_topic": decision.topic,
                "verdict": decision.verdict,  # StrEnum members: orjson writes their values
                "reason": decision.reason,
                "event_id": event_id,
                "event_type": self._label(event.event_type),
                "kind": event.kind,
                "source": {"topic": source[0], "partition": source[1], "offset": source[2]},
                "config_version": self.config_version,
                "consent_version": consent_version,
            }
        )
        sink_headers = self._audit_headers.get((decision.sink, decision.reason))
        if sink_headers is None:
            sink_headers = self._audit_headers[(decision.sink, decision.reason)] = (
                (HEADER_SINK, decision.sink.encode()),
                (HEADER_REASON, decision.reason.encode()),
            )
        headers = [
            self._config_header,
            consent if consent is not None else self.consent_header(consent_version),
            *sink_headers,
        ]
        return _new_tuple(Output, (self.audit_topic, None, value, headers))

    def dlq(self, invalid: Invalid, source: Source) -> Output:
        """The DLQ record of an invalid input (an event or a consent record).

        Its value holds the redacted description, where the input came from, and the config
        version.
        """
        record = invalid.redacted()
        record["source"] = source._asdict()
        record["config_version"] = self.config_version
        headers = [
            self._config_header,
            (HEADER_REASON, invalid.reason.value.encode()),
            source.header(),
        ]
        return Output(self.dlq_topic, None, orjson.dumps(record), headers)

"""Every record the gateway writes: sink, audit, DLQ and erasure notices, key, value and headers.

One home for the output format (README, "What the outputs carry"): the header names are
defined here once, and an `OutputRecords` is built with the engine from one config and keyring,
so a config reload (a new engine) changes the config version of every kind of output at once.

Nothing here identifies a subject: sink values were checked by the value guard (gateway.guard);
the audit value carries the event id scrubbed by the guard, the sink, the reason and positions;
DLQ values are `Invalid.redacted()` descriptions (field names and JSON types, never values);
headers carry versions, key ids and keyed hashes only. Erasure notices (`erasure`) name the
subject by the sink's pseudonyms only, never by the raw id; their audit records by key ids.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Final, NamedTuple

import orjson

from gateway.decision import SinkDecision
from gateway.erasure import ErasableSink, ErasureReason
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
    "ErasureNotices",
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


class ErasureNotices(NamedTuple):
    """The records of one erasure: `sinks` notified (in config order) and every `outputs` record.

    Per sink: its notice on the erasure topic, a tombstone on its topic per pseudonym, and the
    notice's audit record.
    """

    sinks: tuple[str, ...]
    outputs: list[Output]

    def __repr__(self) -> str:
        return f"ErasureNotices(sinks={self.sinks!r}, outputs={len(self.outputs)})"


class OutputRecords:
    """Builds the records one config version writes (made by `Engine`, swapped with it).

    `config_version` is the config's content hash; `audit_topic` and `dlq_topic` are the gateway
    topics; `dedup_keys` maps each sink to the secret its dedup ids are keyed with (the sink's
    current pseudonym key, so two partners never share an id); `event_type_label` turns an event
    type into what may leave (`Engine.event_type_label`); `guard` scrubs the event id of audit
    records (None: not scrubbed, the benchmark's guard-off figure only); `erasure_topic` takes
    the erasure notices of the `erasable` sinks (gateway.erasure).
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
        erasure_topic: str = "gateway.erasure",
        erasable: tuple[ErasableSink, ...] = (),
    ) -> None:
        self.config_version = config_version
        self.erasure_topic = erasure_topic
        self.erasable = erasable
        self.audit_topic = audit_topic
        self.dlq_topic = dlq_topic
        self._config_header: Header = (HEADER_CONFIG, config_version.encode())
        self._dedup = {sink: keyed_pseudonymizer(key) for sink, key in dedup_keys.items()}
        self._key_id_headers: dict[str, Header] = {}
        # Per (sink, reason): the audit value's head (its first four keys) and sink headers.
        self._audit_heads: dict[tuple[str, str], tuple[bytes, Header, Header]] = {}
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

        The event id is the producer's free text, so the value guard scrubs it too. The value
        is `{"sink", "sink_topic", "verdict", "reason", "event_id", "event_type", "kind",
        "source", "config_version", "consent_version"}`. An event with several audit records
        builds its part once with `audit_tail` and each record with `audit_of` (the same bytes).
        """
        if consent is None:
            consent = self.consent_header(consent_version)
        return self.audit_of(decision, self.audit_tail(event, source, consent_version), consent)

    def audit_of(self, decision: SinkDecision, tail: bytes, consent: Header) -> Output:
        """The audit record of one decision of the event whose `audit_tail` is `tail`.

        The value is serialized as two pieces: a head per (sink, reason), remembered, and the
        event's tail; `consent` is `consent_header(...)` of the event's consent version.
        """
        key = (decision.sink, decision.reason)
        head = self._audit_heads.get(key)
        if head is None:
            head = self._audit_heads[key] = self._audit_head(decision)
        value, sink_header, reason_header = head
        headers = [self._config_header, consent, sink_header, reason_header]
        return _new_tuple(Output, (self.audit_topic, None, value + tail, headers))

    def audit_tail(self, event: Event, source: Source, consent_version: int | None) -> bytes:
        """The event's part of its audit records' values (`audit_of`), from the fifth key on."""
        event_id = event.event_id
        if self._guard is not None:
            event_id = self._guard.scrub_free_text(event_id, event.fields, event.canonical or None)
        tail = _dumps(
            {
                "event_id": event_id,
                "event_type": self._label(event.event_type),
                "kind": event.kind,
                "source": {"topic": source[0], "partition": source[1], "offset": source[2]},
                "config_version": self.config_version,
                "consent_version": consent_version,
            }
        )
        return tail[1:]

    @staticmethod
    def _audit_head(decision: SinkDecision) -> tuple[bytes, Header, Header]:
        """The audit value's opening up to its event part, and the sink and reason headers."""
        head = _dumps(
            {
                "sink": decision.sink,
                "sink_topic": decision.topic,
                "verdict": decision.verdict,  # StrEnum members: orjson writes their values
                "reason": decision.reason,
            }
        )
        sink_header = (HEADER_SINK, decision.sink.encode())
        return head[:-1] + b",", sink_header, (HEADER_REASON, decision.reason.encode())

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

    def erasure(
        self,
        subject_id: str,
        reason: ErasureReason,
        consent_version: int | None,
        source: Source,
    ) -> ErasureNotices:
        """The notices that tell every erasable sink to erase the subject (README, "Erasure").

        Per sink: a record on the erasure topic, value `{"sink", "sink_topic", "reason",
        "pseudonyms": [{"key_id", "pseudonym"}, ...] (current key first), "consent_version",
        "config_version"}`, unkeyed; a tombstone (null value) on the sink's topic keyed by each
        pseudonym, so a compacted sink topic drops the subject and consumers see a delete marker;
        and an audit record (`kind: "erasure"`, key ids but no pseudonym). `consent_version` is
        the ordering time (µs) of the consent record that caused it (a tombstone's: its Kafka
        timestamp), None if it has none; `source` is that record's position on the consent topic.
        Dedup ids are keyed hashes of the sink, reason, source position and subject, so a
        redelivered consent record yields the same ids (at least once, deduplicable). The raw
        `subject_id` is only hashed, never written.
        """
        consent = self.consent_header(consent_version)
        origin = f"{source.topic}/{source.partition}/{source.offset}"
        reason_header = (HEADER_REASON, reason.value.encode())
        outputs: list[Output] = []
        for sink in self.erasable:
            dedup = self._dedup[sink.name]
            base = f"erasure:{reason.value}:{origin}:{subject_id}"
            notice_id = dedup(base)
            pseudonyms = sink.pseudonyms(subject_id)
            sink_header = (HEADER_SINK, sink.name.encode())
            notice = _dumps(
                {
                    "sink": sink.name,
                    "sink_topic": sink.topic,
                    "reason": reason.value,
                    "pseudonyms": [{"key_id": k, "pseudonym": p} for k, p in pseudonyms],
                    "consent_version": consent_version,
                    "config_version": self.config_version,
                }
            )
            notice_headers = [
                self._config_header, consent, (HEADER_DEDUP_ID, notice_id.encode()),
                sink_header, reason_header,
            ]  # fmt: skip
            outputs.append(Output(self.erasure_topic, None, notice, notice_headers))
            for key_id, pseudonym in pseudonyms:
                tombstone_headers = [
                    self._config_header, consent,
                    (HEADER_DEDUP_ID, dedup(f"{base}:{key_id}").encode()),
                    (HEADER_KEY_ID, key_id.encode()), reason_header,
                ]  # fmt: skip
                outputs.append(Output(sink.topic, pseudonym.encode(), None, tombstone_headers))
            audit = _dumps(
                {
                    "kind": "erasure",
                    "sink": sink.name,
                    "sink_topic": sink.topic,
                    "reason": reason.value,
                    "notice_id": notice_id,
                    "key_ids": [key_id for key_id, _ in pseudonyms],
                    "source": source._asdict(),
                    "config_version": self.config_version,
                    "consent_version": consent_version,
                }
            )
            audit_headers = [self._config_header, consent, sink_header, reason_header]
            outputs.append(Output(self.audit_topic, None, audit, audit_headers))
        return ErasureNotices(tuple(s.name for s in self.erasable), outputs)

"""The hot path: a batch of raw records in, sink/audit/DLQ records out, every input accounted for.

Knows nothing of faust: the reader (and the benchmarks) hand it Kafka records, a consent lookup
and an `OutputWriter`. Per batch it parses, decides and adds every output to the writer with no
await at all, then flushes once; the caller commits the input offsets only after `process`
returns, that is after the broker acknowledged every output. Counters are summed per batch and
applied once, so metrics cost little per event.

A poison pill costs itself only: whatever raises while one record is parsed, decided or its
outputs built (or added to the writer) sends that record to the DLQ with reason
`internal_error` (the detail names the exception's type, never its message), counts it as an
invalid record (and a drop per sink), and the batch goes on. A record's outputs are built first
and added only once all are built, so a failure never leaves a record in some sinks and the DLQ.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from gateway.consent import consent_updated_at_us
from gateway.decision import Verdict
from gateway.engine import Engine
from gateway.events import EventKind, Invalid, parse_event
from gateway.keys import keyed_pseudonymizer
from gateway.metrics import GatewayMetrics
from gateway.reasons import Reason
from topologies.writer import OutputWriter

log = logging.getLogger("gateway.enforce")

Headers = list[tuple[str, bytes]]
Output = tuple[str, bytes | None, bytes | None, Headers]  # topic, key, value, headers

HEADER_CONFIG = "gateway-config-version"
HEADER_KEY_ID = "gateway-key-id"
HEADER_CONSENT = "gateway-consent-version"
HEADER_DEDUP_ID = "gateway-dedup-id"
HEADER_REASON = "gateway-reason"
HEADER_SINK = "gateway-sink"
HEADER_SOURCE = "gateway-source"


class Record(Protocol):
    """One consumed raw record: the part of aiokafka's `ConsumerRecord` the enforcer reads."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...


@dataclass(frozen=True, slots=True)
class BatchResult:
    consumed: int
    invalid: int
    forwarded: int
    dropped: int


class Enforcer:
    def __init__(
        self,
        engine: Engine,
        *,
        kinds: Mapping[str, EventKind],
        dlq_topic: str,
        audit_topic: str,
        config_version: str,
        max_event_bytes: int,
        consent: Callable[[str], int | None],
        writer: OutputWriter,
        metrics: GatewayMetrics | None,
        clock: Callable[[], float],
        dedup_keys: Mapping[str, bytes],
    ) -> None:
        self._engine = engine
        self._sinks = tuple(dedup_keys)
        # Sinks get a per-sink keyed id of the event for de-duplication, never the raw event id:
        # the same raw id at two partners would let them join their records.
        self._dedup = {sink: keyed_pseudonymizer(key) for sink, key in dedup_keys.items()}
        self._kinds = dict(kinds)
        self._dlq = dlq_topic
        self._audit = audit_topic
        self._config_header = (HEADER_CONFIG, config_version.encode())
        self._max_bytes = max_event_bytes
        self._consent = consent
        self._writer = writer
        self._metrics = metrics
        self._clock = clock

    def swap(self, engine: Engine, config_version: str) -> None:
        """New rules for the next batch (a config reload); the batch in hand keeps its own."""
        self._engine = engine
        self._config_header = (HEADER_CONFIG, config_version.encode())

    async def process(self, records: Sequence[Record]) -> BatchResult:
        """Decide and write every record; return once the broker acknowledged every output."""
        return await (await self.submit(records))

    async def submit(self, records: Sequence[Record]) -> asyncio.Future[BatchResult]:
        """Decide every record and hand every output over; await the result for the acks.

        The returned task completes (with the batch's counts, and its metrics recorded) once
        the broker acknowledged every output, and fails if any output failed. A record that
        raises costs itself only (module docstring); the DLQ writer failing fails the batch.
        """
        engine, out, config_header = self._engine, self._writer, self._config_header
        decisions: Counter[tuple[str, Verdict, str]] = Counter()
        invalid: Counter[tuple[str, str]] = Counter()
        consumed: Counter[str] = Counter()
        forwarded: list[tuple[str, int]] = []  # (sink, occurred_at_us) for the latency histogram
        scrubs: Counter[tuple[str, str]] = Counter()  # (sink, identifier) replaced by the guard
        audits = 0
        for record in records:
            consumed[record.topic] += 1
            try:
                outputs, marks, sent, reason = self._outputs(record, engine, config_header, scrubs)
                if len(outputs) > 1:
                    _largest_first(outputs)
                source = record.partition
                for topic, key, value, headers in outputs:
                    out.add(topic, source, key, value, headers)
            except Exception as exc:  # a poison pill costs itself only
                invalid[(record.topic, Reason.INTERNAL_ERROR.value)] += 1
                self._internal_error(record, exc)
                continue
            if reason is not None:
                invalid[(record.topic, reason)] += 1
            else:
                decisions.update(marks)
                forwarded += sent
                audits += len(marks) - len(sent)
        acked = await out.send()
        n_forwarded = sum(n for (_, v, _), n in decisions.items() if v is Verdict.FORWARD)
        result = BatchResult(
            consumed=len(records),
            invalid=sum(invalid.values()),
            forwarded=n_forwarded,
            dropped=sum(decisions.values()) - n_forwarded,
        )

        async def once_acked() -> BatchResult:
            await acked
            self._record_metrics(consumed, decisions, invalid, forwarded, audits, scrubs=scrubs)
            return result

        return asyncio.ensure_future(once_acked())

    def _outputs(
        self,
        record: Record,
        engine: Engine,
        config_header: tuple[str, bytes],
        scrubs: Counter[tuple[str, str]],
    ) -> tuple[list[Output], list[tuple[str, Verdict, str]], list[tuple[str, int]], str | None]:
        """Every output of one record, built but not yet added: (outputs, one (sink, verdict,
        reason) per sink, one (sink, occurred_at µs) per forward, the invalid reason or None).
        What the value guard replaced is added to `scrubs` per (sink, identifier).

        Raises whatever the core raises for a record it cannot handle (the caller's concern).
        """
        parsed = parse_event(
            record.value, record.key, self._kinds[record.topic], max_bytes=self._max_bytes
        )
        if isinstance(parsed, Invalid):
            return [self._dead_letter(record, parsed)], [], [], parsed.reason.value
        outputs: list[Output] = []
        marks: list[tuple[str, Verdict, str]] = []
        sent: list[tuple[str, int]] = []
        state = self._consent(parsed.subject_id)
        version = None if state is None else consent_updated_at_us(state)
        consent_header = (HEADER_CONSENT, b"none" if version is None else b"%d" % version)
        for decision in engine.decide(parsed, state):
            marks.append((decision.sink, decision.verdict, decision.reason.value))
            if decision.verdict is Verdict.FORWARD:
                dedup = self._dedup[decision.sink]("event:" + parsed.event_id)
                headers: Headers = [
                    config_header,
                    consent_header,
                    (HEADER_DEDUP_ID, dedup.encode()),
                ]
                if decision.key_id is not None:
                    headers.append((HEADER_KEY_ID, decision.key_id.encode()))
                outputs.append((decision.topic, decision.key, decision.value, headers))
                sent.append((decision.sink, parsed.occurred_at_us))
                for _, identifier, n in decision.scrubbed:
                    scrubs[(decision.sink, identifier)] += n
            else:
                audit = engine.audit_record(
                    parsed, decision, topic=record.topic, partition=record.partition,
                    offset=record.offset, consent_version=version,
                )  # fmt: skip
                outputs.append((
                    self._audit, None, audit,
                    [config_header, consent_header, (HEADER_SINK, decision.sink.encode()),
                     (HEADER_REASON, decision.reason.value.encode())],
                ))  # fmt: skip
        return outputs, marks, sent, None

    def _dead_letter(self, record: Record, invalid: Invalid) -> Output:
        """The DLQ output of an invalid record (redacted: reason and field names/types only)."""
        value = self._engine.dlq_record(
            invalid, topic=record.topic, partition=record.partition, offset=record.offset
        )
        source = f"{record.topic}/{record.partition}/{record.offset}".encode()
        headers = [
            self._config_header,
            (HEADER_REASON, invalid.reason.value.encode()),
            (HEADER_SOURCE, source),
        ]
        log.warning(
            "invalid record to the DLQ: topic=%s partition=%d offset=%d reason=%s",
            record.topic, record.partition, record.offset, invalid.reason.value,
        )  # fmt: skip
        return (self._dlq, None, value, headers)

    def _internal_error(self, record: Record, exc: Exception) -> None:
        """Send a record that raised to the DLQ as `internal_error`, naming the exception's type.

        Neither the exception's message nor its traceback is logged or written: either may
        quote the record. Raises only if the DLQ record itself cannot be added (then the batch
        fails, as it would for a broken writer).
        """
        kind = self._kinds.get(record.topic)
        size = len(record.value) if isinstance(record.value, bytes) else 0
        error = type(exc).__name__
        invalid = Invalid(
            Reason.INTERNAL_ERROR,
            f"{error} raised while deciding the record",
            kind=None if kind is None else kind.value,
            size=size,
        )
        log.error(
            "record could not be decided, to the DLQ: topic=%s partition=%d offset=%d reason=%s"
            " error=%s",
            record.topic, record.partition, record.offset, Reason.INTERNAL_ERROR.value, error,
        )  # fmt: skip
        value = self._engine.dlq_record(
            invalid, topic=record.topic, partition=record.partition, offset=record.offset
        )
        source = f"{record.topic}/{record.partition}/{record.offset}".encode()
        headers = [
            self._config_header,
            (HEADER_REASON, Reason.INTERNAL_ERROR.value.encode()),
            (HEADER_SOURCE, source),
        ]
        self._writer.add(self._dlq, record.partition, None, value, headers)

    def _record_metrics(
        self,
        consumed: Counter[str],
        decisions: Counter[tuple[str, Verdict, str]],
        invalid: Counter[tuple[str, str]],
        forwarded: list[tuple[str, int]],
        audits: int,
        *,
        scrubs: Counter[tuple[str, str]],
    ) -> None:
        metrics = self._metrics
        if metrics is None:
            return
        for topic, n in consumed.items():
            metrics.event_consumed(topic, n)
        sink_writes: Counter[str] = Counter()
        for (sink, verdict, reason), n in decisions.items():
            metrics.decision(sink, "forward" if verdict is Verdict.FORWARD else "drop", reason, n)
            if verdict is Verdict.FORWARD:
                sink_writes[sink] += n
        for sink, n in sink_writes.items():
            metrics.sink_write(sink, n)
        for (topic, reason), n in invalid.items():
            metrics.invalid_record(topic, reason, n)
            for sink in self._sinks:  # accounted for once per sink: a drop, with its reason
                metrics.decision(sink, "drop", reason, n)
        if invalid:
            metrics.dlq_write(sum(invalid.values()))
        if audits:
            metrics.audit_write(audits)
        for (sink, identifier), n in scrubs.items():
            metrics.identifier_scrubbed(sink, identifier, n)
        now_us = self._clock() * 1_000_000
        children = {sink: metrics.latency.labels(sink) for sink in sink_writes}
        for sink, occurred_at_us in forwarded:
            children[sink].observe(max(0.0, (now_us - occurred_at_us) / 1_000_000))


def _largest_first(outputs: list[Output]) -> None:
    """Move the output with the largest value to the front, in place.

    A writer refuses only a record that does not fit an empty batch (aiokafka takes any record
    as a batch's first), so if the largest output is accepted the others are too: a record whose
    output is too large fails before any of its outputs is in the writer.
    """
    largest = max(range(len(outputs)), key=lambda i: len(outputs[i][2] or b""))
    if largest:
        outputs[0], outputs[largest] = outputs[largest], outputs[0]

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

Sticky GPC (`gpc: sticky`, gateway.consent): an event with `gpc: true` of a subject with a
consent record keeps the signal in the consent table (`keep_gpc`); the changelog record goes out
with the batch's outputs, so it is acknowledged before the raw offsets are committed.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from operator import attrgetter, itemgetter
from typing import Final, Protocol

from gateway.consent import sticky_gpc
from gateway.consent_state import ConsentState
from gateway.decision import SinkDecision, Verdict
from gateway.engine import Engine
from gateway.events import EventKind, Invalid, internal_error, parse_event
from gateway.metrics import GatewayMetrics
from gateway.reasons import Reason
from gateway.records import Output, Source
from topologies.writer import OutputWriter

log = logging.getLogger("gateway.enforce")
_FORWARD = Verdict.FORWARD  # module constants: attribute lookups cost on the hot path
_UNREAD: Final = -1  # not in the batch's read-ahead (a packed consent state is never negative)
_topic_of = attrgetter("topic")
_new_tuple = tuple.__new__


class Record(Protocol):
    """One consumed raw record: the part of aiokafka's `ConsumerRecord` the enforcer reads."""

    @property
    def topic(self) -> str:
        """The raw topic it was read from."""
        ...

    @property
    def partition(self) -> int:
        """Its partition of that topic."""
        ...

    @property
    def offset(self) -> int:
        """Its offset in that partition."""
        ...

    @property
    def key(self) -> bytes | None:
        """The Kafka key as sent (the subject id by convention), None for none."""
        ...

    @property
    def value(self) -> bytes | None:
        """The event as sent (JSON expected), None for a tombstone."""
        ...


@dataclass(frozen=True, slots=True)
class BatchResult:
    """What one acknowledged batch did, in records and sink decisions.

    `consumed` raw records, of which `invalid` went to the DLQ; `forwarded` and `dropped`
    count sink decisions (one per sink for each valid record).
    """

    consumed: int
    invalid: int
    forwarded: int
    dropped: int


# What one valid record adds to its batch's tally: its decisions and its occurred_at (µs).
_Decided = tuple[tuple[SinkDecision, ...], int]
_reasons_of = partial(map, itemgetter(3))  # a SinkDecision's reason
_NOT_INVALID = ("", "")


class _Tally:
    """What one batch did, summed per batch and recorded in the metrics once it is acked.

    The hot loop only appends each valid record's decisions (`decided`); `close` counts them.
    Within one engine a sink decision's sink, topic and verdict follow from its position (one
    decision per sink, in config order) and its reason (`verdict_of`), so the decisions are
    counted once per distinct tuple of reasons and expanded per sink from one example of it.
    """

    __slots__ = ("audits", "consumed", "decided", "decisions", "forwarded", "invalid", "scrubs")

    def __init__(self) -> None:
        self.consumed: Counter[str] = Counter()  # per raw topic
        self.decided: list[_Decided] = []  # per valid record, in order
        # (sink, sink topic, verdict, reason): a SinkDecision's first four fields.
        self.decisions: dict[tuple[str, str, Verdict, str], int] = {}
        self.invalid: Counter[tuple[str, str]] = Counter()  # (topic, reason)
        self.forwarded: dict[str, list[int]] = {}  # sink -> occurred_at µs of each forward
        self.scrubs: Counter[tuple[str, str]] = Counter()  # (sink, identifier) the guard replaced
        self.audits = 0

    def close(self, audit_forwards: bool) -> None:
        """Count `decided` into `decisions`, `forwarded`, `scrubs` and `audits` (once per batch).

        `audit_forwards`: the batch's setting (a forward also wrote an audit record).
        """
        # reasons -> [records, the forwards' positions, an example of the decisions]
        patterns: dict[tuple[str, ...], tuple[list[int], tuple[int, ...], tuple[SinkDecision, ...]]]
        patterns = {}
        forwarded, scrubs = self.forwarded, self.scrubs
        for decisions, occurred_at_us in self.decided:
            reasons = tuple(_reasons_of(decisions))
            pattern = patterns.get(reasons)
            if pattern is None:
                forwards = tuple(i for i, d in enumerate(decisions) if d.verdict is _FORWARD)
                pattern = patterns[reasons] = ([0], forwards, decisions)
            pattern[0][0] += 1
            for i in pattern[1]:
                decision = decisions[i]
                sink = decision.sink
                times = forwarded.get(sink)
                if times is None:
                    times = forwarded[sink] = []
                times.append(occurred_at_us)
                if decision.scrubbed:
                    for _, identifier, n in decision.scrubbed:
                        scrubs[(sink, identifier)] += n
        tallied = self.decisions
        for (n,), forwards, example in patterns.values():
            for decision in example:
                key = decision[:4]
                tallied[key] = tallied.get(key, 0) + n
            self.audits += n * (len(example) if audit_forwards else len(example) - len(forwards))


class Enforcer:
    """The hot path of one worker: a batch of raw records in; sink, audit and DLQ records out.

    Owns the per-batch accounting, nothing else: what is written comes from the engine's
    `OutputRecords` (gateway.records), so `swap` (a config reload) changes the rules and every
    output's config version at once. Parameters: `engine` (the compiled config, its guard and
    records), `kinds` (raw topic -> EventKind), `consent` (subject id -> packed consent, None
    when unknown), `consent_in` (subject id and the record's partition of the co-partitioned
    table -> the same; used instead of `consent` when given), `writer` (where outputs go),
    `metrics` (None: nothing recorded), `clock` (wall time in seconds, for the end-to-end
    latency), `keep_gpc(subject_id, partition, state)` (keeps a GPC signal under
    `gpc: sticky` and returns the table's changelog record; None: never kept),
    `consent_many(subject_ids, partition)` (one value per id, in order, in one call: RocksDB's
    multi-get; when given, a batch's subjects are read with one call per partition before it is
    decided, and the per-record lookup serves only what that did not cover). `submit` raises
    only when the writer does (a record that cannot be decided costs itself only: module
    docstring).
    """

    def __init__(
        self,
        engine: Engine,
        *,
        kinds: Mapping[str, EventKind],
        consent: Callable[[str], int | None],
        consent_in: Callable[[str, int], int | None] | None = None,
        writer: OutputWriter,
        metrics: GatewayMetrics | None,
        clock: Callable[[], float],
        keep_gpc: Callable[[str, int, int], Output] | None = None,
        consent_many: Callable[[list[str], int], list[int | None]] | None = None,
    ) -> None:
        self._engine = engine
        self._keep_gpc = keep_gpc
        self._consent_many = consent_many
        # The batch in hand's consent, read ahead: (partition, subject id) -> state. Set and
        # cleared by `submit` with no await in between, so no other batch sees it.
        self._read_ahead: dict[tuple[int, str], int | None] = {}
        self._kinds = dict(kinds)
        self._consent = consent_in or (lambda subject, _partition: consent(subject))
        self._writer = writer
        self._metrics = metrics
        self._clock = clock

    def swap(self, engine: Engine) -> None:
        """New rules for the next batch (a config reload); the batch in hand keeps its own."""
        self._engine = engine

    async def process(self, records: Sequence[Record]) -> BatchResult:
        """Decide and write every record; return once the broker acknowledged every output."""
        return await (await self.submit(records))

    async def submit(self, records: Sequence[Record]) -> asyncio.Future[BatchResult]:
        """Decide every record and hand every output over; await the result for the acks.

        The returned task completes (with the batch's counts, and its metrics recorded) once
        the broker acknowledged every output, and fails if any output failed. A record that
        raises costs itself only (module docstring); the DLQ writer failing fails the batch.
        """
        engine, tally = self._engine, _Tally()
        add, outputs_of, decided = self._writer.add, self._outputs, tally.decided.append
        tally.consumed.update(map(_topic_of, records))
        if self._consent_many is not None:
            self._read_ahead = self._read_consent_ahead(records, self._consent_many)
        for record in records:
            try:
                outputs, valid, invalid = outputs_of(record, engine)
                if len(outputs) > 1 and len(record.value or b"") > _LARGE_RECORD_BYTES:
                    _largest_first(outputs)
                source = record.partition
                for topic, key, value, headers in outputs:
                    add(topic, source, key, value, headers)
            except Exception as exc:  # a poison pill costs itself only
                tally.invalid[(record.topic, Reason.INTERNAL_ERROR.value)] += 1
                self._internal_error(record, exc, engine)
            else:
                if valid is not None:
                    decided(valid)
                else:
                    tally.invalid[invalid] += 1
        self._read_ahead = {}
        tally.close(engine.config.settings.audit_forwards)
        acked = await self._writer.send()
        decisions = tally.decisions
        n_forwarded = sum(n for (_, _, v, _), n in decisions.items() if v is Verdict.FORWARD)
        result = BatchResult(
            consumed=len(records),
            invalid=sum(tally.invalid.values()),
            forwarded=n_forwarded,
            dropped=sum(decisions.values()) - n_forwarded,
        )

        async def once_acked() -> BatchResult:
            await acked
            self._record_metrics(tally, engine)
            return result

        return asyncio.ensure_future(once_acked())

    def _outputs(
        self, record: Record, engine: Engine
    ) -> tuple[list[Output], _Decided | None, tuple[str, str]]:
        """Every output of one record, built but not yet added, and what to count once added.

        Counting only after adding means a record that raises is counted as its DLQ record only.
        A valid record: (outputs, its decisions and occurred_at, ignored); an invalid one: (its
        DLQ record, None, its raw topic and reason).
        Raises whatever the core raises for a record it cannot handle (the caller's concern).
        """
        records = engine.records
        settings = engine.config.settings
        parsed = parse_event(
            record.value, record.key, self._kinds[record.topic], max_bytes=settings.max_event_bytes
        )
        if isinstance(parsed, Invalid):
            invalid = (record.topic, parsed.reason.value)
            return [self._dead_letter(record, parsed, engine)], None, invalid
        ahead = self._read_ahead
        state = ahead.get((record.partition, parsed.subject_id), _UNREAD) if ahead else _UNREAD
        if state == _UNREAD:
            state = self._consent(parsed.subject_id, record.partition)
        kept = None
        if (
            self._keep_gpc is not None
            and parsed.fields.get("gpc") is True
            and settings.gpc == "sticky"
        ):
            kept = sticky_gpc(state)  # None: unknown subject, or kept already
            state = state if kept is None else kept
        version = ConsentState.version(state)
        consent = records.consent_header(version)
        tail: bytes | None = None
        audit_forwards = settings.audit_forwards
        outputs: list[Output] = []
        decisions = engine.decide(parsed, state)
        for decision in decisions:
            if decision.verdict is _FORWARD:
                outputs.append(records.sink(decision, parsed, consent))
                if not audit_forwards:
                    continue
            if tail is None:  # the event's part of its audit records, built once
                source = _new_tuple(Source, (record.topic, record.partition, record.offset))
                tail = records.audit_tail(parsed, source, version)
            outputs.append(records.audit_of(decision, tail, consent))
        if kept is not None and self._keep_gpc is not None:  # decided: keep the signal now
            outputs.append(self._keep_gpc(parsed.subject_id, record.partition, kept))
            if self._read_ahead:  # the subject's later records in this batch see it kept
                self._read_ahead[(record.partition, parsed.subject_id)] = kept
        return outputs, (decisions, parsed.occurred_at_us), _NOT_INVALID

    @staticmethod
    def _read_consent_ahead(
        records: Sequence[Record], many: Callable[[list[str], int], list[int | None]]
    ) -> dict[tuple[int, str], int | None]:
        """The consent of a batch's subjects, one `many` call per partition.

        Subjects are taken from the record keys (a valid record's key is its subject id in
        UTF-8: gateway.events); a key that is not UTF-8 is skipped (its record is invalid). If a
        call raises, that partition's subjects are left to the per-record lookup (logged once
        per batch, without a value).
        """
        wanted: dict[int, dict[str, None]] = {}
        for record in records:
            key = record.key
            if key:
                try:
                    wanted.setdefault(record.partition, {})[key.decode()] = None
                except UnicodeDecodeError:
                    continue
        read: dict[tuple[int, str], int | None] = {}
        failed = 0
        for partition, subjects in wanted.items():
            ids = list(subjects)
            try:  # a store that raises, or answers with the wrong count, is not trusted
                pairs = list(zip([(partition, s) for s in ids], many(ids, partition), strict=True))
            except Exception:  # the per-record lookup is the fallback
                failed += 1
            else:
                read.update(pairs)
        if failed:
            log.warning("consent read-ahead failed for %d partition(s); reading per record", failed)
        return read

    def _dead_letter(self, record: Record, invalid: Invalid, engine: Engine) -> Output:
        """The DLQ output of an invalid record (redacted: reason and field names/types only)."""
        log.warning(
            "invalid record to the DLQ: topic=%s partition=%d offset=%d reason=%s",
            record.topic, record.partition, record.offset, invalid.reason.value,
        )  # fmt: skip
        return engine.records.dlq(invalid, Source(record.topic, record.partition, record.offset))

    def _internal_error(self, record: Record, exc: Exception, engine: Engine) -> None:
        """Send a record that raised to the DLQ as `internal_error`, naming the exception's type.

        Neither the exception's message nor its traceback is logged or written: either may
        quote the record. Raises only if the DLQ record itself cannot be added (then the batch
        fails, as it would for a broken writer).
        """
        kind = self._kinds.get(record.topic)
        size = len(record.value) if isinstance(record.value, bytes) else 0
        error = type(exc).__name__
        invalid = internal_error(
            exc, doing="deciding the record", kind=None if kind is None else kind.value, size=size
        )
        log.error(
            "record could not be decided, to the DLQ: topic=%s partition=%d offset=%d reason=%s"
            " error=%s",
            record.topic, record.partition, record.offset, Reason.INTERNAL_ERROR.value, error,
        )  # fmt: skip
        source = Source(record.topic, record.partition, record.offset)
        topic, key, value, headers = engine.records.dlq(invalid, source)
        self._writer.add(topic, record.partition, key, value, headers)

    def _record_metrics(self, tally: _Tally, engine: Engine) -> None:
        metrics = self._metrics
        if metrics is None:
            return
        for topic, n in tally.consumed.items():
            metrics.event_consumed(topic, n)
        sink_writes: Counter[str] = Counter()
        for (sink, _, verdict, reason), n in tally.decisions.items():
            metrics.decision(sink, "forward" if verdict is Verdict.FORWARD else "drop", reason, n)
            if verdict is Verdict.FORWARD:
                sink_writes[sink] += n
        for sink, n in sink_writes.items():
            metrics.sink_write(sink, n)
        for (topic, reason), n in tally.invalid.items():
            metrics.invalid_record(topic, reason, n)
            for plan in engine.plans:  # accounted for once per sink: a drop, with its reason
                metrics.decision(plan.name, "drop", reason, n)
        if tally.invalid:
            metrics.dlq_write(sum(tally.invalid.values()))
        if tally.audits:
            metrics.audit_write(tally.audits)
        for (sink, identifier), n in tally.scrubs.items():
            metrics.identifier_scrubbed(sink, identifier, n)
        now_us = self._clock() * 1_000_000
        for sink, occurred_at_us in tally.forwarded.items():
            metrics.observe_latencies(sink, now_us, occurred_at_us)


# An output is at most its input's size plus a few hundred bytes (pseudonyms, a parsed user
# agent); below this input size every output fits an empty producer batch (1 MiB by default,
# never below 16 KiB: GATEWAY_MAX_BATCH_BYTES), so the reordering is needed only above it.
_LARGE_RECORD_BYTES = 8 * 1024


def _largest_first(outputs: list[Output]) -> None:
    """Move the output with the largest value to the front, in place.

    A writer refuses only a record that does not fit an empty batch (aiokafka takes any record
    as a batch's first), so if the largest output is accepted the others are too: a record whose
    output is too large fails before any of its outputs is in the writer.
    """
    largest = max(range(len(outputs)), key=lambda i: len(outputs[i][2] or b""))
    if largest:
        outputs[0], outputs[largest] = outputs[largest], outputs[0]

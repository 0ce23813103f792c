"""The consent feed: the compacted consent topic into the faust consent table, off faust's path.

Why not a faust agent: faust delivers every topic through one fetch loop. While the enforcement
agent waits at the revocation barrier its queue fills, the fetch loop blocks, and the consent
records it waits for are never delivered: a deadlock. So consent is read by its own aiokafka
consumer, assigned by hand the consent partitions whose numbers faust assigned to this worker
for the raw topics (co-partitioning), and it never waits on enforcement.

The table stays faust's: values go into its store and its changelog (the record's own partition),
faust restores it on start and rebalance (the store's internals: `topologies.faust_adapter`).
The feed pauses from a revocation until faust reports recovery complete, then resumes from the
offsets it committed; it commits only after the changelog writes are acknowledged.
Re-applying a record is harmless: equal timestamps are stale. After an outage the changelog is
written again for the subjects changed since the last commit (`ConsentFeed._rewrite_changelog`).

Erasure notices (README, "Erasure notices"): a tombstone, or a record that makes the subject a
child without a parent's consent, adds the notices `gateway.erasure.erasure_reason` calls for
(built by `OutputRecords.erasure`) to the same writer as the changelog, so they are acknowledged
before the consent offset is committed; a crash before that redelivers the record and the
notices go out again with the same dedup ids. They are counted once acknowledged. The record is
applied before its notices are built: a failure to build them never cancels the erasure (or the
child's state); it is counted in `gateway_erasure_notice_failures_total` and logged instead.

Sticky GPC (`gpc: sticky`): the enforcer keeps a subject's GPC signal in the table through
`keep_gpc`, which writes the state and returns its changelog record for the enforcer's batch.

Each record is ordered by `gateway.consent`'s rule, with its Kafka record timestamp and the
configured clock tolerance: a future-dated record is ordered at its Kafka timestamp (counted in
`gateway_consent_future_dated_total`). A record that cannot be parsed or applied (whatever it
raises) goes to the DLQ with reason `internal_error` (the exception's type, never its message),
counts as invalid, and the barrier still moves past it: one bad record never stops the feed.

Why a changelog of its own, and not recovery from the compacted consent topic itself (Kafka
Streams' "source-topic changelog" optimisation): that optimisation holds for a table that is the
topic's last record per key. This table is not. It keeps, per subject, the state with the newest
`updated_at` (ordered with the Kafka timestamp and the clock tolerance), so a late, older record
is stale and leaves the table alone. Compaction keeps the *last-written* record per key, which
may be exactly that stale one: a withdrawal followed by a delayed older grant would be restored
as the grant. The changelog holds what was applied, so compaction keeps the right value.
Restoring from the source would also mean: parsing JSON on restore (faust's recovery only hands
raw bytes to the store's `apply_changelog_batch`, so a custom store, one more faust internal),
sending poison pills to the DLQ again, and reading larger records than the changelog's ASCII
ints, so it would not restore as fast. The barrier is unaffected either way: it is seeded from
the feed's committed offsets, and the changelog writes are acknowledged before those move.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping, Sequence
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, TopicPartition

from gateway.consent import (
    CONSENT_KIND,
    ConsentOutcome,
    ConsentUpdate,
    Tombstone,
    apply_consent,
    parse_consent,
)
from gateway.consent_state import ConsentState
from gateway.engine import Engine
from gateway.erasure import ErasureReason, erasure_reason
from gateway.events import Invalid, internal_error
from gateway.metrics import GatewayMetrics
from gateway.reasons import Reason
from gateway.records import Output, Source
from topologies.barrier import ConsentBarrier
from topologies.follower import ConsumerFactory, FollowingConsumer
from topologies.outage import Outage, Renewable, reconnect, settled, transient
from topologies.security import PLAINTEXT, ClientSecurity
from topologies.writer import BatchWriter

log = logging.getLogger("gateway.consent")
# One consent record's notices: the sinks told, why, and the record's Kafka timestamp (ms).
_Erasure = tuple[tuple[str, ...], ErasureReason, int | None]


class ConsentTable(Protocol):
    """The consent table as one dict: UTF-8 subject id -> packed consent int as ASCII."""

    @property
    def data(self) -> MutableMapping[bytes, bytes]:
        """The table's dict, written in place."""
        ...


class PartitionStore(Protocol):
    """One partition's part of the table (a dict, or a RocksDB partition's `Rdict`)."""

    def get(self, key: bytes) -> bytes | None:
        """The value held for `key`, None: none."""
        ...

    def __setitem__(self, key: bytes, value: bytes) -> None: ...

    def __delitem__(self, key: bytes) -> None: ...


def _no_partition_map(key: bytes, partition: int) -> None:
    """For a table that keeps no partition per key."""


class ConsentFeed:
    """Owns the consent topic's consumer, the table's writes and changelog, its offsets.

    `partition_store(partition)` is the part of the table a consent partition's records are
    applied to (None: `table.data` for every partition; one of the two is required, else
    `TypeError`); `remember_partition(key, partition)` is told each
    key written (faust's store drops a partition's keys when it moves away); `writer()` makes the
    writer of changelog and DLQ records; `changelog_topic` is the table's changelog; the barrier
    learns every applied offset and, on `resume`, the committed ones. `commit_interval` is in
    seconds. `consumer_factory` makes the feed's two aiokafka consumers (fakes in broker-free
    tests); `security` is how both authenticate; `outage` reports a Kafka outage (by default to
    `metrics`); `producer` is the output producer, replaced after an outage that broke its
    idempotence state. `persist_offsets` (a store kept across restarts: faust's RocksDB) is told,
    before each commit, the newest changelog offset acknowledged per partition, so recovery reads
    only what came after; such a store may also hold states whose changelog write a crash lost,
    so records read again after a restart rewrite the changelog even when stale
    (`_replayed`). `run` rides out a transient Kafka error (`topologies.outage`) and raises any
    other error the broker gives (the app exits without committing); a record that raises goes
    to the DLQ instead.
    """

    def __init__(
        self,
        *,
        bootstrap: str,
        topic: str,
        group_id: str,
        table: ConsentTable | None = None,
        barrier: ConsentBarrier,
        engine: Engine,
        metrics: GatewayMetrics,
        writer: Callable[[], Awaitable[BatchWriter]],
        changelog_topic: str,
        commit_interval: float = 1.0,
        remember_partition: Callable[[bytes, int], None] = _no_partition_map,
        partition_store: Callable[[int], PartitionStore] | None = None,
        persist_offsets: Callable[[Mapping[int, int]], None] | None = None,
        consumer_factory: ConsumerFactory = AIOKafkaConsumer,
        security: ClientSecurity = PLAINTEXT,
        outage: Outage | None = None,
        producer: Renewable | None = None,
    ) -> None:
        self._topic = topic
        self._producer = producer
        self._sent_on = 0  # the producer generation of the latest send
        self._outage = outage or Outage(
            "consent_feed", began=metrics.kafka_outage_began, ended=metrics.kafka_outage_ended
        )
        if partition_store is None:
            if table is None:
                raise TypeError("the consent feed needs a table or a partition_store")
            data = table.data
            partition_store = lambda _partition: data  # noqa: E731 - one dict for all
        self._store_of = partition_store
        self._persist_offsets = persist_offsets
        self._acked_changelog: dict[int, int] = {}  # partition -> an acknowledged offset
        self._replay_until: dict[int, int] = {}  # partition -> end offset when taken
        self._remember_partition = remember_partition
        self._barrier = barrier
        self._engine = engine
        self._metrics = metrics
        self._make_writer = writer  # for the changelog and the DLQ
        self._changelog = changelog_topic
        self._unacked: list[asyncio.Future[Any]] = []
        self._writer: BatchWriter | None = None
        self._commit_interval = commit_interval
        self._follower = FollowingConsumer(
            "consent feed", consumer_factory, bootstrap_servers=bootstrap, group_id=group_id,
            max_poll_records=2000, **security.aiokafka(),
        )  # fmt: skip
        # End offsets go over a connection of their own: Kafka answers one connection's requests
        # in order, so on the feed's connection they would queue behind its fetch long-poll.
        self._offsets = FollowingConsumer(
            "consent end-offset client", consumer_factory, bootstrap_servers=bootstrap,
            **security.aiokafka(),
        )  # fmt: skip
        self._wanted: set[int] = set()
        self._ready = asyncio.Event()
        self._pending: dict[TopicPartition, int] = {}
        # Subjects whose changelog write is not acknowledged yet: key -> consent partition.
        self._dirty: dict[bytes, int] = {}
        self._stopping = False
        self._starting = asyncio.Lock()  # `start` from the service and from `resume`

    def swap(self, engine: Engine) -> None:
        """Use `engine` from the next fetch on (a config reload).

        DLQ records then carry the new config version, and the new clock tolerance orders the
        consent records.
        """
        self._engine = engine

    # Rebalance hooks, called from faust's signals.

    def pause(self) -> None:
        """A rebalance began: apply nothing until `resume` (a fetch in hand is dropped)."""
        self._ready.clear()

    def assign(self, partitions: Iterable[int]) -> None:
        """The consent partition numbers to take on `resume`: those of the raw ones assigned."""
        self._wanted = set(partitions)

    async def resume(self) -> None:
        """Faust finished restoring the table: take the wanted partitions and go on."""
        await self.start()
        await self._commit()
        for gone in {tp.partition for tp in self._follower.assignment()} - self._wanted:
            self._barrier.forget(gone)
            self._metrics.forget_consent_partition(gone)
        tps = [TopicPartition(self._topic, p) for p in self._wanted]
        if self._persist_offsets is not None:  # what a crash may have applied, unacknowledged
            self._replay_until = await self.end_offsets(self._wanted)
        for tp, committed in (await self._follower.take(tps)).items():
            self._barrier.seed(tp.partition, committed)
        self._outage.end()  # the cluster answered (no-op unless an outage was being ridden)
        self._ready.set()

    async def end_offsets(self, partitions: Iterable[int]) -> dict[int, int]:
        """The end offset of each named consent partition (partition number -> offset).

        Asked on a connection of its own. Raises `RuntimeError` before `start`, and what
        aiokafka raises when the broker does not answer.
        """
        tps = [TopicPartition(self._topic, p) for p in partitions]
        ends = await self._offsets.client.end_offsets(tps)
        return {tp.partition: offset for tp, offset in ends.items()}

    # Life cycle.

    @property
    def _consumer(self) -> AIOKafkaConsumer:
        return self._follower.client

    async def start(self) -> None:
        """Start the feed's consumer and its end-offset client; idempotent.

        Calls overlap when faust reports recovery complete (`resume`) while the service is
        still starting the feed, at once with a warm RocksDB store: the later call waits for
        the first, so `resume` never uses a consumer whose start has not finished.
        """
        async with self._starting:
            await self._follower.start()
            await self._offsets.start()

    async def stop(self) -> None:
        """End `run`, commit what is acknowledged (a failure is ignored), stop both consumers.

        Records whose offsets could not be committed are applied again by the next owner.
        """
        self._stopping = True
        self._ready.set()
        with contextlib.suppress(Exception):
            await self._commit()
        await self._follower.stop()
        await self._offsets.stop()

    async def run(self) -> None:
        """Apply consent records until `stop`, committing every `commit_interval` seconds.

        Waits while paused or while no partition is assigned. Raises what the consumer, the
        writer or a commit raises; a record that raises goes to the DLQ instead.
        """
        last_commit = time.monotonic()
        while not self._stopping:
            await self._ready.wait()
            if self._stopping:
                break
            if not self._consumer.assignment():
                await asyncio.sleep(0.1)
                continue
            try:
                batch = await self._consumer.getmany(timeout_ms=100)
                if not self._ready.is_set():
                    continue  # a rebalance began while fetching: recovery restores the table
                if batch:
                    await self._apply_batch(batch)
                if time.monotonic() - last_commit >= self._commit_interval:
                    await self._commit()
                    last_commit = time.monotonic()
            except Exception as exc:
                if not transient(exc):
                    raise
                await self._ride_out(exc)

    async def _ride_out(self, exc: BaseException) -> None:
        """A Kafka outage: stop applying, then go on from the committed offsets once it answers.

        The changelog, DLQ and erasure writes not yet acknowledged are abandoned with their
        offsets (not committed): the records are read again (DLQ records and erasure notices
        written again, with the same dedup ids), and the table's current state of every subject
        changed since the last commit is written to the changelog again first
        (`_rewrite_changelog`: read again, those records are stale and write nothing). Errors
        that are not transient raise.
        """
        self._outage.begin(exc)
        for future in self._unacked:
            future.cancel()
        self._unacked, self._pending = [], {}
        # False: a rebalance or stop came first (`resume` takes the partitions, ends the outage)
        await reconnect(
            self._outage,
            exc,
            self._follower,
            producer=self._producer,
            sent_on=self._sent_on,
            going=lambda: not self._stopping and self._ready.is_set(),
            then=self._rewrite_changelog,
        )

    async def _rewrite_changelog(self) -> None:
        """Write the table's current state of every subject changed since the last commit.

        After an outage the changelog writes of those records may be lost while the table holds
        them; read again, the records are stale (already applied) and would write nothing, so a
        restart would restore the older state (a withdrawal forgotten). Raises what the send
        raises (the ride-out retries).
        """
        if not self._dirty:
            return
        if self._writer is None:
            self._writer = await self._make_writer()
        for key, partition in self._dirty.items():
            self._writer.add(
                self._changelog, partition, key, self._store_of(partition).get(key), []
            )
        await settled(await self._writer.send(), timeout=30)
        self._dirty.clear()

    async def _commit(self) -> None:
        if not self._pending:
            return
        offsets, self._pending = self._pending, {}
        # The changelog writes (and DLQ records) are acknowledged before the offsets move.
        unacked, self._unacked = self._unacked, []
        await settled(asyncio.gather(*unacked))  # a send its client cancelled: an error
        self._dirty.clear()  # every changelog write of the applied records is acknowledged
        if self._persist_offsets is not None and self._acked_changelog:
            acked, self._acked_changelog = self._acked_changelog, {}
            self._persist_offsets(acked)  # the store holds everything up to these
        assigned = self._consumer.assignment()
        offsets = {tp: o for tp, o in offsets.items() if tp in assigned}
        if offsets:
            await self._consumer.commit(offsets)

    async def _apply_batch(self, batch: Mapping[TopicPartition, Sequence[Any]]) -> None:
        """Apply a fetch: table and changelog per record, metrics and the send once per fetch."""
        if self._writer is None:
            self._writer = await self._make_writer()
        writer = self._writer
        barrier = self._barrier
        counts: Counter[ConsentOutcome] = Counter()
        tolerance = self._engine.config.settings.consent_clock_tolerance_seconds
        newest = future_dated = 0
        erasures: list[_Erasure] = []
        for tp, messages in batch.items():
            partition = tp.partition
            store = self._store_of(partition)
            for message in messages:
                try:
                    parsed = parse_consent(
                        message.value, message.key, record_timestamp_ms=message.timestamp,
                        clock_tolerance_seconds=tolerance,
                    )  # fmt: skip
                    if isinstance(parsed, Invalid):
                        self._dead_letter(writer, parsed, partition, message.offset)
                        outcome = ConsentOutcome.INVALID
                    else:
                        if isinstance(parsed, ConsentUpdate) and parsed.future_dated:
                            future_dated += 1
                        source = Source(self._topic, partition, message.offset)
                        outcome, applied_at, erased = self._apply(
                            store, writer, parsed, source, message.timestamp
                        )
                        newest = max(newest, applied_at)
                        if erased is not None:
                            erasures.append(erased)
                except Exception as exc:  # a poison pill costs itself only
                    outcome = ConsentOutcome.INVALID
                    self._internal_error(writer, exc, message, partition)
                counts[outcome] += 1
                barrier.applied(partition, message.offset)
            if messages:
                self._pending[tp] = messages[-1].offset + 1
        acked = await writer.send()
        self._sent_on = self._producer.generation if self._producer else 0
        self._unacked.append(acked)
        if self._persist_offsets is not None:
            acked.add_done_callback(self._changelog_acknowledged)
        if erasures:
            acked.add_done_callback(functools.partial(self._erasures_acknowledged, erasures))
        now, metrics = time.time(), self._metrics
        if counts[ConsentOutcome.APPLIED]:
            metrics.consent_applied(newest / 1e6, now, counts[ConsentOutcome.APPLIED])
        if counts[ConsentOutcome.TOMBSTONE]:
            metrics.consent_tombstone(now, counts[ConsentOutcome.TOMBSTONE])
        if counts[ConsentOutcome.STALE]:
            metrics.consent_stale(counts[ConsentOutcome.STALE])
        if counts[ConsentOutcome.INVALID]:
            metrics.consent_invalid(counts[ConsentOutcome.INVALID])
        if future_dated:
            metrics.consent_future_dated(future_dated)

    def _changelog_acknowledged(self, acked: asyncio.Future[Any]) -> None:
        """Note the changelog offsets of an acknowledged send (each batch's first record's).

        A batch's first offset is a safe mark: recovery reads on from the record after it, so
        at most the rest of that batch is read twice (the same values).
        """
        if acked.cancelled() or acked.exception() is not None:
            return
        noted = self._acked_changelog
        for sent in acked.result():
            if getattr(sent, "topic", None) == self._changelog:
                noted[sent.partition] = max(sent.offset, noted.get(sent.partition, -1))

    def _replayed(self, source: Source) -> bool:
        """Whether a persistent store may hold this record's state without its changelog write.

        True for records read again after a restart or rebalance (offsets below the end taken
        then): a crash may have applied them to the store and lost their changelog writes.
        """
        return source.offset < self._replay_until.get(source.partition, -1)

    def _apply(
        self,
        store: PartitionStore,
        writer: BatchWriter,
        update: ConsentUpdate | Tombstone,
        source: Source,
        timestamp_ms: int | None,
    ) -> tuple[ConsentOutcome, int, _Erasure | None]:
        """Apply one record to the table and its changelog, and add its erasure notices.

        `source` is the record's position, `timestamp_ms` its Kafka timestamp (epoch ms, None
        or negative: none). Returns (the outcome, the applied state's time in epoch µs, else 0,
        the notices added, or None). The record is applied first and its notices added after:
        a failure to build or add the notices never cancels the record (fail closed: an erased
        subject is gone from the table, a child is denied), it is counted and logged instead
        (`_erase`). A record whose changelog write raises (a corrupt table value, a writer
        refusing it) leaves the table as it was, except a tombstone, which erases the subject
        from the table first.
        """
        partition = source.partition
        key = update.subject_id.encode()
        packed = store.get(key)
        current = None if packed is None else int(packed)
        new, outcome = apply_consent(current, update)
        applied_at = 0
        if outcome is ConsentOutcome.APPLIED and new is not None:
            value = b"%d" % new
            writer.add(self._changelog, partition, key, value, [])
            store[key] = value
            self._dirty[key] = partition
            self._remember_partition(key, partition)
            applied_at = ConsentState.ordered_at_us(new)
        elif outcome is ConsentOutcome.TOMBSTONE and current is not None:
            del store[key]
            self._dirty[key] = partition
            writer.add(self._changelog, partition, key, None, [])
        elif self._replay_until and self._replayed(source):
            # Stale, or the tombstone of a subject not held: the store already holds the
            # outcome, and after a crash it may be the only place that does (the changelog
            # write lost). Write what it holds, so no later restore brings an older state back.
            writer.add(self._changelog, partition, key, packed, [])
            self._dirty[key] = partition
        erased = self._erase(
            writer, current, update, outcome, source=source, timestamp_ms=timestamp_ms
        )
        return outcome, applied_at, erased

    def _erase(
        self,
        writer: BatchWriter,
        current: int | None,
        update: ConsentUpdate | Tombstone,
        outcome: ConsentOutcome,
        *,
        source: Source,
        timestamp_ms: int | None,
    ) -> _Erasure | None:
        """Add the erasure notices one record calls for (gateway.erasure); None: it calls for none.

        The notices' consent version is the record's ordering time, a tombstone's its Kafka
        timestamp (µs). Logged by position and reason, never the subject. Raises nothing: when
        building or adding the notices raises, they are not sent (those added before the failure
        may be), the failure is counted (`gateway_erasure_notice_failures_total{stage="build"}`)
        and logged by position, reason and exception type, and None is returned; the record
        itself stays applied (README, "Erasure notices": resending them).
        """
        settings = self._engine.config.settings
        reason = erasure_reason(
            current, update, outcome, unknown_age_is_child=settings.unknown_age == "child"
        )
        if reason is None:
            return None
        stamp = timestamp_ms if timestamp_ms is not None and timestamp_ms >= 0 else None
        if isinstance(update, ConsentUpdate):
            version: int | None = update.updated_at_us
        else:
            version = None if stamp is None else stamp * 1000
        try:
            notices = self._engine.records.erasure(update.subject_id, reason, version, source)
            for topic, key, value, headers in notices.outputs:
                writer.add(topic, source.partition, key, value, headers)
        except Exception as exc:  # the record stays applied; its notices are reported missing
            self._metrics.erasure_notices_failed(reason.value, "build")
            log.error(
                "erasure notices not sent: topic=%s partition=%d offset=%d reason=%s error=%s",
                source.topic, source.partition, source.offset, reason.value, type(exc).__name__,
            )  # fmt: skip
            return None
        log.info(
            "erasure notices: topic=%s partition=%d offset=%d reason=%s sinks=%d",
            source.topic, source.partition, source.offset, reason.value, len(notices.sinks),
        )  # fmt: skip
        return notices.sinks, reason, stamp

    def _erasures_acknowledged(self, erasures: list[_Erasure], acked: asyncio.Future[Any]) -> None:
        """Count the notices of an acknowledged send, and how long after each record's timestamp.

        A failed send counts each record's notices as failed at stage `ack`: its offsets are
        not committed, so the notices are redone. A cancelled one (an outage abandoned the batch)
        counts nothing.
        """
        if acked.cancelled():
            return
        if acked.exception() is not None:
            for _, reason, _ in erasures:
                self._metrics.erasure_notices_failed(reason.value, "ack")
            return
        now, metrics = time.time(), self._metrics
        for sinks, reason, timestamp_ms in erasures:
            for sink in sinks:
                metrics.erasure_notices_acknowledged(sink, reason.value)
            if timestamp_ms is not None:
                metrics.erasure_acknowledged_after(reason.value, now - timestamp_ms / 1000)

    def keep_gpc(self, subject_id: str, partition: int, state: int) -> Output:
        """Keep a subject's GPC signal (`gpc: sticky`): the table holds `state` from now on.

        `state` is the subject's packed state with the sticky GPC bit set
        (gateway.consent.sticky_gpc); `partition` is the raw record's, the same number as the
        subject's consent and changelog partition. Returns the changelog record, which the caller
        writes with its batch before committing the raw offsets, so the signal survives restarts.
        """
        key = subject_id.encode()
        value = b"%d" % state
        self._store_of(partition)[key] = value
        return Output(self._changelog, key, value, [])

    def _dead_letter(
        self, writer: BatchWriter, parsed: Invalid, partition: int, offset: int
    ) -> None:
        topic, key, value, headers = self._engine.records.dlq(
            parsed, Source(self._topic, partition, offset)
        )
        writer.add(topic, partition, key, value, headers)
        self._metrics.dlq_write()
        log.warning(
            "invalid consent record to the DLQ: topic=%s partition=%d offset=%d reason=%s",
            self._topic, partition, offset, parsed.reason.value,
        )  # fmt: skip

    def _internal_error(
        self, writer: BatchWriter, exc: Exception, message: Any, partition: int
    ) -> None:
        """Send a consent record that raised to the DLQ as `internal_error`.

        Logged by position and exception type, never its message (it may quote the record).
        """
        value = message.value
        size = len(value) if isinstance(value, bytes) else 0
        log.error(
            "consent record could not be applied: topic=%s partition=%d offset=%d reason=%s"
            " error=%s",
            self._topic, partition, message.offset, Reason.INTERNAL_ERROR.value,
            type(exc).__name__,
        )  # fmt: skip
        invalid = internal_error(
            exc, doing="applying the consent record", kind=CONSENT_KIND, size=size
        )
        self._dead_letter(writer, invalid, partition, message.offset)

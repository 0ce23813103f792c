"""The fast path: raw events read in `getmany` batches by a plain aiokafka consumer.

Faust's per-event stream path (a `wait_first` with two tasks per message in its fetch loop, the
conductor, the stream's processors, a per-event ack) cost more than the whole policy decision:
profiled at about 100 µs per event on the 2-core CI machine, holding the worker near 6k events/s.
So faust keeps what it does well (group membership, co-partitioned assignment of the raw topics
with the consent table, the changelog-backed table and its recovery, the worker's life cycle)
and is told never to fetch the raw topics (`faust_adapter.RawTopicsPausedConsumer`); this
reader follows faust's assignment instead and hands whole batches to the `Enforcer`.

Pipelining: a batch's outputs are handed to the producer and the next batch is fetched and
decided while the acknowledgements travel (at most `max_inflight` batches in flight); batches
are settled in order. Offsets go to the reader's own consumer group (`<app id>-raw`) only for
settled batches, every `commit_interval`, when idle, and before a partition is given up in a
rebalance. A crash in between means those records are decided again (at least once); nothing
is committed before its outputs were acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.types import TP

from topologies.barrier import ConsentBarrier
from topologies.enforce import Enforcer
from topologies.follower import ConsumerFactory, FollowingConsumer
from topologies.outage import Outage, Renewable, reconnect, settled, transient
from topologies.security import PLAINTEXT, ClientSecurity

log = logging.getLogger("gateway.raw")

PROBE_EVERY = 5.0  # seconds without a record before the reader checks that Kafka answers
PROBE_TIMEOUT = 10.0  # seconds the check may take before the cluster counts as away


class RawReader:
    """Owns the raw topics' fetching, the batches in flight and the reader group's offsets.

    Parameters: `batch_max` records per fetch; `barrier_timeout`, `commit_interval` in seconds
    (the barrier logs and keeps waiting past its timeout); `max_inflight` batches whose
    acknowledgements may be outstanding; `on_batch(size, waited s, took s)`,
    `on_lag(topic, partition, records)`, `on_forget(topic, partition)` report to the metrics;
    `topics` are the raw topics and `group_id` the reader's consumer group; `make_enforcer` is
    called once, on the first `start`; `barrier` is passed once per batch.
    `consumer_factory` makes the aiokafka consumer (a fake one in broker-free tests);
    `security` is how it authenticates (`topologies.security`); `outage` reports a Kafka outage
    (`topologies.outage`: degraded in the log and the metrics); `producer` is the output
    producer, replaced after an outage that broke its idempotence state.
    Raises nothing from `run`: a transient Kafka error (an outage) is ridden out (`_ride_out`);
    any other failure of a batch (an output refused, the enforcer raising) is handed to
    `on_failure` before anything of it is committed, and the loop ends.
    """

    def __init__(
        self,
        *,
        bootstrap: str,
        topics: Iterable[str],
        group_id: str,
        barrier: ConsentBarrier,
        make_enforcer: Callable[[], Awaitable[Enforcer]],
        on_batch: Callable[[int, float, float], None],
        on_lag: Callable[[str, int, int], None],
        on_forget: Callable[[str, int], None],
        batch_max: int,
        barrier_timeout: float,
        max_inflight: int,
        commit_interval: float,
        on_failure: Callable[[BaseException], None],
        consumer_factory: ConsumerFactory = AIOKafkaConsumer,
        security: ClientSecurity = PLAINTEXT,
        outage: Outage | None = None,
        producer: Renewable | None = None,
    ) -> None:
        self._topics = frozenset(topics)
        self._follower = FollowingConsumer(
            "raw reader", consumer_factory, bootstrap_servers=bootstrap, group_id=group_id,
            max_poll_records=batch_max, fetch_max_bytes=16 * 1024 * 1024,
            max_partition_fetch_bytes=4 * 1024 * 1024, **security.aiokafka(),
        )  # fmt: skip
        self._barrier = barrier
        self._make_enforcer = make_enforcer
        self._on_batch = on_batch
        self._on_lag = on_lag
        self._on_forget = on_forget
        self._batch_max = batch_max
        self._barrier_timeout = barrier_timeout
        self._on_failure = on_failure
        self._enforcer: Enforcer | None = None
        self._inflight: deque[_InFlight] = deque()
        self._committable: dict[TopicPartition, int] = {}
        self._max_inflight = max_inflight
        self._commit_interval = commit_interval
        self._last_commit = time.monotonic()
        self._wanted: set[TopicPartition] = set()
        self._ready = asyncio.Event()
        self._lock = asyncio.Lock()  # one batch at a time; rebalances wait for it
        self._give_up = asyncio.Event()  # a rebalance or stop: leave the barrier undecided
        self._stopping = False
        self._outage = outage or Outage("raw_reader", began=_ignore, ended=_ignore)
        self._producer = producer
        self._sent_on = 0  # the producer generation of the latest send
        self._last_heard = time.monotonic()

    @property
    def _consumer(self) -> AIOKafkaConsumer:
        return self._follower.client

    async def start(self) -> None:
        """Start the consumer and make the enforcer (and so its writer); idempotent."""
        await self._follower.start()
        if self._enforcer is None:
            self._enforcer = await self._make_enforcer()

    def swap(self, engine: Any) -> None:
        """A config reload: the next batch is decided and written by `engine`."""
        if self._enforcer is not None:
            self._enforcer.swap(engine)

    # Rebalance hooks, called from faust's signals.

    async def revoke(self) -> None:
        """Before partitions move: every batch in flight is acknowledged, then committed.

        A batch still waiting at the barrier is given up undecided (the feed is paused, so it
        would wait for ever): its offsets are not committed, and `resume` (or the partition's
        next owner) fetches it again from the committed offset.
        """
        self._ready.clear()
        self._give_up.set()
        async with self._lock:
            self._give_up.clear()
            try:
                await self._settle(everything=True)
                await self._commit()
            except Exception as exc:
                if not transient(exc):
                    raise
                # The cluster is away: what is not committed is decided again by the next owner.
                log.warning("partitions revoked during a Kafka outage: uncommitted work redone")
                for batch in self._inflight:
                    batch.acked.cancel()
                self._inflight.clear()
                self._committable.clear()

    def assign(self, tps: Iterable[TP]) -> None:
        """The raw topic-partitions to take on `resume`; those of other topics are left out."""
        self._wanted = {
            TopicPartition(tp.topic, tp.partition) for tp in tps if tp.topic in self._topics
        }

    async def resume(self) -> None:
        """Faust finished restoring the table: take the wanted partitions and go on.

        Each is resumed from its committed offset; partitions given up leave the lag metrics.
        """
        await self.start()
        async with self._lock:
            for gone in self._follower.assignment() - self._wanted:
                self._on_forget(gone.topic, gone.partition)
            await self._follower.take(self._wanted)
        self._outage.end()  # the cluster answered (no-op unless an outage was being ridden)
        self._ready.set()

    async def stop(self) -> None:
        """End `run`: settle and commit what is acknowledged, then stop the consumer.

        A batch waiting at the barrier is given up; a batch that fails to settle or commit is
        not committed, so the partition's next owner decides it again.
        """
        self._stopping = True
        self._ready.set()
        self._give_up.set()
        async with self._lock:
            with contextlib.suppress(Exception):  # a failed batch is redone by the next worker
                await self._settle(everything=True)
                await self._commit()
            await self._follower.stop()

    async def run(self) -> None:
        """Fetch, decide and write batches until `stop`; a failure goes to `on_failure`."""
        try:
            while not self._stopping:
                await self._ready.wait()
                if self._stopping:
                    break
                if not self._consumer.assignment():
                    await asyncio.sleep(0.05)
                    continue
                async with self._lock:
                    if self._ready.is_set() and not self._stopping:
                        try:
                            await self._one_batch()
                        except Exception as exc:
                            if not transient(exc):
                                raise
                            await self._ride_out(exc)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._on_failure(exc)

    async def _ride_out(self, exc: BaseException) -> None:
        """A Kafka outage: stop fetching, then go on from the committed offsets once it answers.

        The batches in flight are abandoned, not committed (their outputs may or may not have
        been written; they are decided again, with the same dedup ids). Once the cluster
        answers, a new consumer takes the same partitions, the offsets of batches acknowledged
        before the outage are committed, and reading goes on after them. Errors that are not
        transient end `run` as before.
        """
        outage = self._outage
        outage.begin(exc)
        settled_in_order = True  # only the leading acknowledged batches may be committed
        while self._inflight:
            batch = self._inflight.popleft()
            acked = batch.acked
            landed = acked.done() and not acked.cancelled() and not acked.exception()
            if settled_in_order and landed:
                self._committable.update(batch.positions)
            else:  # this batch and every later one is decided again
                settled_in_order = False
                acked.cancel()
        acknowledged: dict[TopicPartition, int] = {}

        async def commit_acknowledged() -> None:
            acknowledged.clear()
            acknowledged.update(self._committable)
            await settled(self._commit(), timeout=30)

        back = await reconnect(
            outage,
            exc,
            self._follower,
            producer=self._producer,
            sent_on=self._sent_on,
            going=lambda: not self._stopping and not self._give_up.is_set(),
            then=commit_acknowledged,
        )
        if back:
            for tp, position in acknowledged.items():  # go on after what was acknowledged
                self._consumer.seek(tp, position)
        # else a rebalance or stop came first: `resume` takes the partitions, ends the outage

    async def _one_batch(self) -> None:
        """Fetch, pass the barrier, decide and send; acks are settled while the next is fetched."""
        consumer = self._consumer
        fetched = await consumer.getmany(timeout_ms=100, max_records=self._batch_max)
        if fetched:
            started = time.perf_counter()
            records = [m for messages in fetched.values() for m in messages]
            waited = await self._pass_barrier({tp.partition for tp in fetched})
            if waited is None:
                return  # given up for a rebalance: fetched again from the committed offsets
            assert self._enforcer is not None
            acked = await self._enforcer.submit(records)
            self._sent_on = self._producer.generation if self._producer else 0
            positions = {tp: messages[-1].offset + 1 for tp, messages in fetched.items()}
            self._inflight.append(_InFlight(acked, positions, started, waited, len(records)))
        # Idle, or too many batches in flight: wait for the oldest; otherwise only collect.
        await self._settle(everything=not fetched, at_most=self._max_inflight)
        if not fetched or time.monotonic() - self._last_commit >= self._commit_interval:
            await self._commit()
        if fetched:
            self._last_heard = time.monotonic()
        elif time.monotonic() - self._last_heard >= PROBE_EVERY:
            await self._probe()

    async def _probe(self) -> None:
        """Idle for a while: ask the end offsets, so an outage shows even with nothing to do.

        aiokafka's fetcher keeps a lost cluster to itself; this request raises a transient
        error (a timeout after `PROBE_TIMEOUT` s) that `run` rides out, reporting it.
        """
        assigned = list(self._consumer.assignment())
        if assigned:
            await settled(self._consumer.end_offsets(assigned), timeout=PROBE_TIMEOUT)
        self._last_heard = time.monotonic()

    async def _pass_barrier(self, partitions: set[int]) -> float | None:
        """The seconds waited at the barrier, or None if a rebalance or stop came first."""
        passing = asyncio.ensure_future(
            self._barrier.wait(partitions, timeout=self._barrier_timeout)
        )
        giving_up = asyncio.ensure_future(self._give_up.wait())
        await asyncio.wait({passing, giving_up}, return_when=asyncio.FIRST_COMPLETED)
        giving_up.cancel()
        if passing.done():
            return passing.result()
        passing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await passing
        return None

    async def _settle(self, *, everything: bool = False, at_most: int | None = None) -> None:
        """Collect acknowledged batches in order; their offsets become committable."""
        inflight = self._inflight
        while inflight and (
            everything
            or inflight[0].acked.done()
            or (at_most is not None and len(inflight) > at_most)
        ):
            batch = inflight.popleft()
            await settled(batch.acked)  # raises if an output failed: never committed
            self._committable.update(batch.positions)
            self._on_batch(batch.size, batch.waited, time.perf_counter() - batch.started)

    async def _commit(self) -> None:
        self._last_commit = time.monotonic()
        if not self._committable:
            return
        positions, self._committable = self._committable, {}
        consumer = self._consumer
        assigned = consumer.assignment()
        await consumer.commit({tp: o for tp, o in positions.items() if tp in assigned})
        for tp, position in positions.items():
            end = consumer.highwater(tp)  # known from the fetch response: no extra request
            if end is not None:
                self._on_lag(tp.topic, tp.partition, max(0, end - position))


def _ignore(*_: object) -> None:
    """No metrics: a reader built without an `Outage` (tests)."""


@dataclass(frozen=True, slots=True)
class _InFlight:
    acked: asyncio.Future[Any]
    positions: dict[TopicPartition, int]
    started: float
    waited: float
    size: int

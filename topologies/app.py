"""The faust app: group membership, the consent table, and the wiring of the fast path.

- `consent` is a changelog-backed faust Table (UTF-8 subject id -> packed consent int), restored
  by faust on start and rebalance. The `ConsentFeed` fills it from the compacted consent topic.
- The raw topics are subscribed through a faust agent, so faust's assignor hands out raw
  partitions co-partitioned with the table's, but faust never fetches them: the `RawReader`
  does, in `getmany` batches, passes the revocation barrier once per batch, lets the `Enforcer`
  decide and write every output, and commits only after the broker acknowledged them.
- Rebalances: faust's signals pause the feed and the reader (after the batch in hand), hand them
  the new partitions, and resume them once faust has restored the table.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import time
import traceback
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faust
import mode
from aiokafka import AIOKafkaProducer

from gateway.config import GatewayConfig
from gateway.consent import consent_updated_at_us
from gateway.engine import Engine
from gateway.events import EventKind
from gateway.keys import Keyring
from gateway.metrics import GatewayMetrics
from topologies.barrier import ConsentBarrier
from topologies.consent_feed import ConsentFeed
from topologies.enforce import Enforcer
from topologies.raw_reader import RawReader, RawTopicsPausedConsumer
from topologies.reload import ConfigReloader
from topologies.writer import BatchWriter

log = logging.getLogger("gateway.app")


@dataclass(frozen=True)
class Tuning:
    batch_max: int = 2000
    barrier_timeout: float = 30.0
    linger_ms: int = 5
    max_batch_bytes: int = 1024 * 1024
    commit_interval: float = 1.0
    max_inflight: int = 4

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Tuning:
        """`GATEWAY_BATCH_MAX`, `GATEWAY_LINGER_MS`, `GATEWAY_MAX_BATCH_BYTES`,
        `GATEWAY_COMMIT_INTERVAL`, `GATEWAY_MAX_INFLIGHT`; defaults where unset."""
        default = cls()
        return cls(
            batch_max=int(env.get("GATEWAY_BATCH_MAX", default.batch_max)),
            barrier_timeout=default.barrier_timeout,
            linger_ms=int(env.get("GATEWAY_LINGER_MS", default.linger_ms)),
            max_batch_bytes=int(env.get("GATEWAY_MAX_BATCH_BYTES", default.max_batch_bytes)),
            commit_interval=float(env.get("GATEWAY_COMMIT_INTERVAL", default.commit_interval)),
            max_inflight=int(env.get("GATEWAY_MAX_INFLIGHT", default.max_inflight)),
        )


def build_app(
    *,
    app_id: str,
    bootstrap: str,
    config: GatewayConfig,
    engine: Engine,
    keyring: Keyring,
    metrics: GatewayMetrics,
    partitions: int,
    output_partitions: Mapping[str, int],
    tuning: Tuning,
    config_dir: Path | None = None,
    replication: int = 1,
) -> faust.App:
    topics = config.settings.topics
    raw_names = frozenset({topics.usage_raw, topics.device_raw})
    app = faust.App(
        app_id,
        broker=f"kafka://{bootstrap}",
        store="memory://",
        web_enabled=False,
        topic_replication_factor=replication,
        topic_partitions=partitions,
        topic_allow_declare=True,
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=tuning.commit_interval,
        broker_session_timeout=10.0,  # a crashed worker's partitions move within seconds
        broker_heartbeat_interval=1.0,
        producer_acks=-1,
        producer_linger_ms=tuning.linger_ms,
        processing_guarantee="at_least_once",
        table_standby_replicas=0,
    )
    # The transport makes the app's consumer from this class when the app starts.
    consumer_class = type("GatewayConsumer", (RawTopicsPausedConsumer,), {"never_fetch": raw_names})
    setattr(app.transport, "Consumer", consumer_class)  # noqa: B010 - a ClassVar, set per app
    raw_topics = app.topic(*sorted(raw_names), key_serializer="raw", value_serializer="raw")
    table = app.Table(
        "consent",
        partitions=partitions,
        key_type=bytes,  # faust's "raw" codec on every path (writes, changelog, recovery)
        value_type=bytes,
        help="current consent per subject: UTF-8 subject id -> packed consent int as ASCII",
    )

    def table_dict() -> Mapping[bytes, bytes]:
        store = table.data
        inner = getattr(store, "data", None)  # the memory store keeps a plain dict
        return inner if isinstance(inner, dict) else store

    def consent_of(subject: str) -> int | None:
        packed = table_dict().get(subject.encode())
        return None if packed is None else int(packed)

    output = OutputProducer(bootstrap, tuning, output_partitions)
    changelog = table.changelog_topic.get_topic_name()
    barrier = ConsentBarrier(lambda parts: feed.end_offsets(parts))  # noqa: PLW0108 - late bound
    feed = ConsentFeed(
        bootstrap=bootstrap,
        topic=topics.consent,
        group_id=f"{app_id}-consent-feed",
        table=table,
        barrier=barrier,
        engine=engine,
        metrics=metrics,
        writer=lambda: output.writer(
            {changelog: partitions, topics.dlq: output_partitions[topics.dlq]}
        ),
        changelog_topic=changelog,
        commit_interval=tuning.commit_interval,
    )
    kinds = {topics.usage_raw: EventKind.USAGE, topics.device_raw: EventKind.DEVICE}

    async def make_enforcer() -> Enforcer:
        return Enforcer(
            engine,
            kinds=kinds,
            consent=consent_of,
            writer=await output.start(),
            metrics=metrics,
            clock=time.time,
        )

    def on_batch(size: int, waited: float, seconds: float) -> None:
        metrics.barrier_waited(waited)
        metrics.batch_processed(size, seconds, time.time())

    reader = RawReader(
        bootstrap=bootstrap,
        topics=raw_names,
        group_id=f"{app_id}-raw",
        barrier=barrier,
        make_enforcer=make_enforcer,
        on_batch=on_batch,
        on_lag=metrics.set_consumer_lag,
        on_forget=metrics.forget_consumer_partition,
        batch_max=tuning.batch_max,
        barrier_timeout=tuning.barrier_timeout,
        max_inflight=tuning.max_inflight,
        commit_interval=tuning.commit_interval,
        on_failure=_exit_without_commit,
    )

    def swap(new_engine: Engine) -> None:
        """A reload reaches every writer: the reader's enforcer and the consent feed."""
        reader.swap(new_engine)
        feed.swap(new_engine)

    reloader = ConfigReloader(config_dir or Path("config"), config, keyring, metrics, swap=swap)

    class FastPathService(mode.Service):
        async def on_start(self) -> None:
            await output.start()
            await feed.start()
            await reader.start()
            if config_dir is not None:  # `kill -HUP` reloads the sink rules between two batches
                asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, reloader.reload)
            self.add_future(_guard(feed.run()))
            self.add_future(reader.run())

        async def on_stop(self) -> None:
            await reader.stop()
            await feed.stop()
            await output.stop()

    app.service(FastPathService)

    _follow_rebalances(
        app, feed=feed, reader=reader, raw_names=raw_names, table_dict=table_dict, metrics=metrics
    )

    @app.agent(raw_topics, name="raw-topics")
    async def raw_topics_agent(stream: faust.StreamT[bytes]) -> None:
        """Subscribes the raw topics, so faust assigns them co-partitioned with the table.

        Faust never fetches them (`RawTopicsPausedConsumer`); the `RawReader` does. A record
        arriving here would be a bug: leave without acking, so nothing is committed unread.
        """
        async for _ in stream.events():
            _exit_without_commit(RuntimeError("faust delivered a raw record; the reader owns them"))

    @app.timer(interval=2.0)  # type: ignore[untyped-decorator]
    async def report_state() -> None:
        metrics.set_consent_subjects(len(table_dict()))
        for partition, lag in barrier.lag().items():
            metrics.set_consent_lag(partition, lag)

    return app


def _follow_rebalances(
    app: faust.App,
    *,
    feed: ConsentFeed,
    reader: RawReader,
    raw_names: frozenset[str],
    table_dict: Callable[[], Mapping[bytes, bytes]],
    metrics: GatewayMetrics,
) -> None:
    """Faust's rebalance signals drive the consent feed and the raw reader."""

    @app.on_partitions_revoked.connect
    async def on_revoked(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        feed.pause()
        await reader.revoke()

    @app.on_partitions_assigned.connect
    async def on_assigned(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        assigned = args[0] if args else kwargs["assigned"]  # faust sends the whole assignment
        feed.pause()
        await reader.revoke()
        raw = {tp for tp in assigned if tp.topic in raw_names}
        app.consumer.pause_partitions(raw)  # no prefetching by faust's own consumer
        feed.assign({tp.partition for tp in raw})
        reader.assign(raw)

    @app.on_rebalance_complete.connect
    async def on_rebalance_complete(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        restored = table_dict()
        if restored:  # freshness survives a restart: the newest record in the restored table
            newest = max(consent_updated_at_us(int(v)) for v in restored.values())
            metrics.restore_consent_newest(newest / 1e6)
        await feed.resume()
        await reader.resume()
        # Objects alive now (faust, the restored table, caches) stay alive: keep them out of the
        # cyclic collector's full passes, whose pauses otherwise show up as p99 latency.
        gc.freeze()


class OutputProducer:
    """The producer of sink, audit and DLQ records, made on the app's loop when first needed."""

    def __init__(self, bootstrap: str, tuning: Tuning, partitions: Mapping[str, int]) -> None:
        self._settings: dict[str, Any] = {
            "bootstrap_servers": bootstrap, "acks": "all", "enable_idempotence": True,
            "linger_ms": tuning.linger_ms, "max_batch_size": tuning.max_batch_bytes,
            "max_request_size": 4 * tuning.max_batch_bytes,
        }  # fmt: skip
        self._partitions = dict(partitions)
        self._producer: AIOKafkaProducer | None = None
        self._writer: BatchWriter | None = None
        self._lock = asyncio.Lock()

    async def start(self) -> BatchWriter:
        async with self._lock:
            if self._writer is None:
                self._producer = AIOKafkaProducer(**self._settings)
                await self._producer.start()
                for topic in self._partitions:  # metadata now, not on the first batch's clock
                    await self._producer.partitions_for(topic)
                self._writer = BatchWriter(self._producer, self._partitions)
            return self._writer

    async def writer(self, partitions: Mapping[str, int]) -> BatchWriter:
        """Another writer on the same producer, with its own batches and acknowledgements."""
        await self.start()
        assert self._producer is not None
        return BatchWriter(self._producer, partitions)

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()


async def _guard(work: Awaitable[None]) -> None:
    """The consent feed must not die quietly: the barrier would then hold every batch."""
    try:
        await work
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        _exit_without_commit(exc)


def _exit_without_commit(exc: BaseException) -> None:
    """A batch could not be completed: exit at once, committing nothing.

    Exiting the process leaves the batch's offsets uncommitted, so a restarted worker decides
    those records again (at least once, no loss); a half-sent batch is sent again, and its
    outputs carry dedup ids. The exception's text is not logged: it may quote record data.
    """
    frames = "".join(traceback.format_tb(exc.__traceback__))  # code locations only, no values
    log.critical(
        "enforcement failed (%s); exiting without committing so the batch is redone on restart\n%s",
        type(exc).__name__,
        frames,
    )
    logging.shutdown()
    os._exit(70)

"""The faust app: the consent table and agent, the enforcement agent, their wiring to `gateway`.

- `consent` is a changelog-backed faust Table (subject id -> packed consent int), fed record by
  record from the compacted consent topic, so each changelog write lands in the partition of the
  consent record that caused it and the table stays co-partitioned with the raw topics.
- `enforce` reads both raw topics in batches (`take_events`), passes the revocation barrier once
  per batch, and hands the batch to `Enforcer`, which sends without awaiting per record and
  awaits all outputs before the batch is acked: offsets are committed only after that.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import traceback
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from typing import Any

import faust
import mode

from gateway.config import GatewayConfig
from gateway.engine import Engine
from gateway.events import EventKind
from gateway.keys import Keyring
from gateway.metrics import GatewayMetrics
from topologies.barrier import ConsentBarrier
from topologies.consent_feed import ConsentFeed
from topologies.enforce import Enforcer, Record

log = logging.getLogger("gateway.app")


@dataclass(frozen=True)
class Tuning:
    batch_max: int = 2000
    batch_within: float = 0.02
    barrier_timeout: float = 30.0
    linger_ms: int = 5
    max_batch_bytes: int = 512 * 1024
    commit_interval: float = 1.0


def build_app(
    *,
    app_id: str,
    bootstrap: str,
    config: GatewayConfig,
    engine: Engine,
    keyring: Keyring,
    metrics: GatewayMetrics,
    partitions: int,
    tuning: Tuning,
    replication: int = 1,
) -> faust.App:
    topics = config.settings.topics
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
        broker_max_poll_records=tuning.batch_max,
        stream_buffer_maxsize=tuning.batch_max * 2,
        producer_acks=-1,
        producer_linger_ms=tuning.linger_ms,
        producer_max_batch_size=tuning.max_batch_bytes,
        producer_compression_type=None,
        processing_guarantee="at_least_once",
        table_standby_replicas=0,
    )
    raw_topics = app.topic(
        topics.usage_raw, topics.device_raw, key_serializer="raw", value_serializer="raw"
    )
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

    async def send(topic: str, value: bytes | None, *, key: bytes | None, headers: Any) -> Any:
        return await app.producer.send(topic, key, value, None, None, headers)

    barrier = ConsentBarrier(lambda parts: feed.end_offsets(parts))
    feed = ConsentFeed(
        bootstrap=bootstrap,
        topic=topics.consent,
        group_id=f"{app_id}-consent-feed",
        table=table,
        barrier=barrier,
        engine=engine,
        metrics=metrics,
        send=send,
        flush=app.producer.flush,
        dlq_topic=topics.dlq,
        commit_interval=tuning.commit_interval,
    )
    raw_names = {topics.usage_raw, topics.device_raw}
    kinds = {topics.usage_raw: EventKind.USAGE, topics.device_raw: EventKind.DEVICE}
    enforcer = Enforcer(
        engine,
        kinds=kinds,
        dlq_topic=topics.dlq,
        audit_topic=topics.audit,
        config_version=config.version,
        max_event_bytes=config.settings.max_event_bytes,
        consent=consent_of,
        send=send,
        metrics=metrics,
        clock=time.time,
        dedup_keys={rule.name: keyring.current(rule.name).secret for rule in config.sinks},
    )

    class ConsentFeedService(mode.Service):
        async def on_start(self) -> None:
            await feed.start()
            self.add_future(_guard(feed.run()))

        async def on_stop(self) -> None:
            await feed.stop()

    app.service(ConsentFeedService)

    @app.on_partitions_revoked.connect
    async def on_revoked(sender: Any, revoked: Any, **_: Any) -> None:
        feed.pause()

    @app.on_partitions_assigned.connect
    async def on_assigned(sender: Any, assigned: Any, **_: Any) -> None:
        feed.pause()
        feed.assign({tp.partition for tp in assigned if tp.topic in raw_names})

    @app.on_rebalance_complete.connect
    async def on_rebalance_complete(sender: Any, **_: Any) -> None:
        await feed.resume()

    @app.agent(raw_topics, name="enforce-agent")
    async def enforce_agent(stream: faust.StreamT[bytes]) -> None:
        async for events in stream.take_events(tuning.batch_max, within=tuning.batch_within):
            started = time.perf_counter()
            records = [
                Record(m.topic, m.partition, m.offset, m.key, m.value)
                for m in (e.message for e in events)
            ]
            try:
                waited = await barrier.wait({r.partition for r in records}, timeout=tuning.barrier_timeout)
                metrics.barrier_waited(waited)
                await enforcer.process(records)
            except Exception as exc:  # noqa: BLE001 - see _exit_without_commit
                _exit_without_commit(exc)
            metrics.batch_processed(len(records), time.perf_counter() - started, time.time())

    @app.timer(interval=2.0)
    async def report_state() -> None:
        metrics.set_consent_subjects(len(table_dict()))
        for partition, lag in barrier.lag().items():
            metrics.set_consent_lag(partition, lag)

    return app


async def _guard(work: Awaitable[None]) -> None:
    """The consent feed must not die quietly: the barrier would then hold every batch."""
    try:
        await work
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # noqa: BLE001
        _exit_without_commit(exc)


def _exit_without_commit(exc: BaseException) -> None:
    """A batch could not be completed: exit at once, committing nothing.

    Faust's `take_events` acks a batch in a `finally`, even when the agent raises, which would
    commit offsets of records that were never forwarded or dropped. Exiting the process here
    leaves them uncommitted, so a restarted worker redoes the batch (at least once, no loss).
    The exception's text is not logged: it may quote record data.
    """
    frames = "".join(traceback.format_tb(exc.__traceback__))  # code locations only, no values
    log.critical(
        "enforcement failed (%s); exiting without committing so the batch is redone on "
        "restart\n%s",
        type(exc).__name__,
        frames,
    )
    logging.shutdown()
    os._exit(70)

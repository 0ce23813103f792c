"""The faust app: the consent table and agent, the enforcement agent, their wiring to `gateway`.

- `consent` is a changelog-backed faust Table (subject id -> packed consent int), fed record by
  record from the compacted consent topic, so each changelog write lands in the partition of the
  consent record that caused it and the table stays co-partitioned with the raw topics.
- `enforce` reads both raw topics in batches (`take_events`), passes the revocation barrier once
  per batch, and hands the batch to `Enforcer`, which sends without awaiting per record and
  awaits all outputs before the batch is acked: offsets are committed only after that.
"""

from __future__ import annotations

import logging
import os
import time
import traceback
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import faust
from faust.serializers import codecs
from faust.types import TP

from gateway.config import GatewayConfig
from gateway.consent import ConsentOutcome, Tombstone, apply_consent, consent_updated_at_us, parse_consent
from gateway.engine import Engine
from gateway.events import EventKind, Invalid
from gateway.metrics import GatewayMetrics
from topologies.barrier import ConsentBarrier
from topologies.enforce import HEADER_REASON, HEADER_SOURCE, Enforcer, Record

log = logging.getLogger("gateway.app")


class _Utf8(codecs.Codec):
    def _dumps(self, obj: Any) -> bytes:
        return str(obj).encode()

    def _loads(self, s: bytes) -> Any:
        return s.decode()


class _PackedConsent(codecs.Codec):
    """The table's values are packed consent ints; on the changelog they are decimal ASCII."""

    def _dumps(self, obj: Any) -> bytes:
        return b"%d" % obj

    def _loads(self, s: bytes) -> Any:
        return int(s)


codecs.register("gateway-utf8", _Utf8())
codecs.register("gateway-consent", _PackedConsent())


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
    consent_topic = app.topic(
        topics.consent, key_serializer="raw", value_serializer="raw", partitions=partitions
    )
    raw_topics = app.topic(
        topics.usage_raw, topics.device_raw, key_serializer="raw", value_serializer="raw"
    )
    table = app.Table(
        "consent",
        partitions=partitions,
        help="current consent per subject (packed int), restored from its changelog",
    )
    # Faust picks table serializers from key/value types (json otherwise); set ours before the
    # changelog topic is first built, so writes and recovery use the same codecs.
    table.key_serializer = "gateway-utf8"
    table.value_serializer = "gateway-consent"

    def table_dict() -> Mapping[str, int]:
        store = table.data
        inner = getattr(store, "data", None)  # the memory store keeps a plain dict
        return inner if isinstance(inner, dict) else store

    def committed(partition: int) -> int | None:
        offsets = getattr(app.consumer, "_committed_offset", {})
        value = offsets.get(TP(topics.consent, partition))
        return value if isinstance(value, int) else None

    async def end_offsets(parts: Iterable[int]) -> dict[int, int]:
        tps = [TP(topics.consent, p) for p in parts]
        ends = await app.consumer.highwaters(*tps)
        return {tp.partition: offset for tp, offset in ends.items()}

    barrier = ConsentBarrier(end_offsets, seed_from=committed)
    kinds = {topics.usage_raw: EventKind.USAGE, topics.device_raw: EventKind.DEVICE}

    async def send(topic: str, value: bytes | None, *, key: bytes | None, headers: Any) -> Any:
        return await app.producer.send(topic, key, value, None, None, headers)

    enforcer = Enforcer(
        engine,
        kinds=kinds,
        dlq_topic=topics.dlq,
        audit_topic=topics.audit,
        config_version=config.version,
        max_event_bytes=config.settings.max_event_bytes,
        consent=lambda subject: table_dict().get(subject),
        send=send,
        metrics=metrics,
        clock=time.time,
    )

    @app.agent(consent_topic, name="consent-agent")
    async def consent_agent(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            message = event.message
            parsed = parse_consent(message.value, message.key)
            if isinstance(parsed, Invalid):
                metrics.consent_invalid()
                dlq = engine.dlq_record(
                    parsed, topic=message.topic, partition=message.partition, offset=message.offset
                )
                source = f"{message.topic}/{message.partition}/{message.offset}".encode()
                await app.producer.send(
                    topics.dlq, None, dlq, None, None,
                    [(HEADER_REASON, parsed.reason.value.encode()), (HEADER_SOURCE, source)],
                )  # fmt: skip
                metrics.dlq_write()
                log.warning(
                    "invalid consent record to the DLQ: topic=%s partition=%d offset=%d reason=%s",
                    message.topic, message.partition, message.offset, parsed.reason.value,
                )  # fmt: skip
            else:
                subject = parsed.subject_id
                current = table_dict().get(subject)
                new, outcome = apply_consent(current, parsed)
                now = time.time()
                if outcome is ConsentOutcome.APPLIED and new is not None:
                    table[subject] = new
                    metrics.consent_applied(consent_updated_at_us(new) / 1e6, now)
                elif outcome is ConsentOutcome.TOMBSTONE:
                    if current is not None or isinstance(parsed, Tombstone):
                        table.pop(subject, None)
                    metrics.consent_tombstone(now)
                else:
                    metrics.consent_stale()
            barrier.applied(message.partition, message.offset)

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

    app.gateway_barrier = barrier  # type: ignore[attr-defined]
    app.gateway_table = table  # type: ignore[attr-defined]
    return app


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

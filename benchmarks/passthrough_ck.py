"""The librdkafka baseline: the passthrough of `benchmarks.passthrough` on confluent-kafka.

Run as its own process (`python -m benchmarks.passthrough_ck ...`, the same arguments as the
aiokafka passthrough without `--mode`) so its CPU time, librdkafka's threads included, is read
from /proc like the others'. It `consume`s batches of at most `--max-records` records, `produce`s
each record unchanged (same key, value and partition number) to every output topic (acks=all, no
compression, the gateway's linger and batch size), and counts a batch, and lets its offsets be
committed every `--commit-interval` seconds, only once every copy has been delivered; up to
`--max-inflight` batches await their deliveries at once, settled in order. It exposes
`passthrough_records_consumed_total` on a loopback /metrics port.
"""

from __future__ import annotations

import signal
import time
from collections import deque
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

from benchmarks.passthrough import ASSIGNED, COUNTER, parse_args


@dataclass
class Pending:
    """One consumed batch: copies not yet delivered, records, next offsets per partition."""

    outstanding: int
    count: int
    offsets: dict[tuple[str, int], int]
    failed: list[str] = field(default_factory=list)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    registry = CollectorRegistry()
    consumed = Counter(COUNTER.removesuffix("_total"), "Records passed through.", registry=registry)
    assigned = Gauge(ASSIGNED, "Input partitions assigned.", registry=registry)
    start_http_server(args.metrics_port, addr="127.0.0.1", registry=registry)
    consumer = Consumer(
        {
            "bootstrap.servers": args.bootstrap, "group.id": args.group,
            "enable.auto.commit": False, "auto.offset.reset": "earliest",
        }
    )  # fmt: skip
    producer = Producer(
        {
            "bootstrap.servers": args.bootstrap, "acks": "all", "linger.ms": args.linger_ms,
            "batch.size": args.max_batch_bytes, "compression.type": "none",
            "queue.buffering.max.messages": 1_000_000, "queue.buffering.max.kbytes": 1_048_576,
        }
    )  # fmt: skip
    stopping: list[bool] = []

    def stop(_sig: int, _frame: FrameType | None) -> None:
        stopping.append(True)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, stop)
    consumer.subscribe(list(args.inputs))
    print("passthrough (confluent-kafka) ready", flush=True)
    inflight: deque[Pending] = deque()
    pending_offsets: dict[tuple[str, int], int] = {}
    last_commit = time.monotonic()

    def delivered_to(batch: Pending) -> Any:
        def on_delivery(err: Any, _msg: Any) -> None:
            batch.outstanding -= 1
            if err is not None:
                batch.failed.append(str(err))

        return on_delivery

    def settle() -> None:
        while inflight and inflight[0].outstanding == 0:
            done = inflight.popleft()
            if done.failed:
                raise KafkaException(done.failed[0])
            consumed.inc(done.count)
            pending_offsets.update(done.offsets)

    try:
        while not stopping:
            # librdkafka waits for a full batch or the timeout: a short one keeps latency low
            messages = consumer.consume(num_messages=args.max_records, timeout=0.01)
            assigned.set(len(consumer.assignment()))
            records = [m for m in messages if m.error() is None]
            if records:
                batch = Pending(len(records) * len(args.outputs), len(records), {})
                callback = delivered_to(batch)
                for m in records:
                    key, value = m.key(), m.value()
                    partition, offset = m.partition() or 0, m.offset() or 0
                    for topic in args.outputs:
                        producer.produce(topic, value, key, partition=partition, callback=callback)
                    batch.offsets[(m.topic() or "", partition)] = offset + 1
                inflight.append(batch)
            producer.poll(0)
            settle()
            while len(inflight) >= args.max_inflight and not stopping:
                producer.poll(0.01)
                settle()
            if pending_offsets and time.monotonic() - last_commit >= args.commit_interval:
                consumer.commit(
                    offsets=[TopicPartition(t, p, o) for (t, p), o in pending_offsets.items()],
                    asynchronous=True,
                )
                pending_offsets = {}
                last_commit = time.monotonic()
    finally:
        producer.flush(30)
        consumer.close()


if __name__ == "__main__":
    main()

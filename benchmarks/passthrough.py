"""The baseline: a plain aiokafka consume-to-produce passthrough with no policy at all.

Run as its own process (`python -m benchmarks.passthrough ...`) so its CPU time is measured from
/proc exactly like the gateway worker's. It reads the raw topics with `getmany` in batches of at
most `--max-records` (the gateway's faust `broker_max_poll_records`), sends every record unchanged
(same key, same value) to each output topic, awaits every acknowledgement (acks=all) before it
counts the batch and lets its offsets be committed, and commits every `--commit-interval` seconds:
the same at-least-once shape as the gateway, without parsing, deciding or transforming anything.
It exposes `passthrough_records_consumed_total` on a loopback /metrics port.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import time
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

COUNTER = "passthrough_records_consumed_total"
ASSIGNED = "passthrough_assigned_partitions"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--inputs", nargs="+", required=True)
    parser.add_argument("--outputs", nargs="+", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--metrics-port", type=int, required=True)
    parser.add_argument("--max-records", type=int, default=2000)
    parser.add_argument("--linger-ms", type=int, default=5)
    parser.add_argument("--max-batch-bytes", type=int, default=512 * 1024)
    parser.add_argument("--commit-interval", type=float, default=1.0)
    return parser.parse_args(argv)


async def run(args: argparse.Namespace) -> None:
    registry = CollectorRegistry()
    consumed = Counter(COUNTER.removesuffix("_total"), "Records passed through.", registry=registry)
    assigned = Gauge(ASSIGNED, "Input partitions assigned.", registry=registry)
    start_http_server(args.metrics_port, addr="127.0.0.1", registry=registry)
    consumer = AIOKafkaConsumer(
        *args.inputs, bootstrap_servers=args.bootstrap, group_id=args.group,
        enable_auto_commit=False, auto_offset_reset="earliest", max_poll_records=args.max_records,
    )  # fmt: skip
    producer = AIOKafkaProducer(
        bootstrap_servers=args.bootstrap, acks="all", linger_ms=args.linger_ms,
        max_batch_size=args.max_batch_bytes, compression_type=None,
    )  # fmt: skip
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    await producer.start()
    await consumer.start()
    print("passthrough ready", flush=True)
    outputs = list(args.outputs)
    pending_offsets: dict[TopicPartition, int] = {}
    last_commit = time.monotonic()
    try:
        while not stopping.is_set():
            batch = await consumer.getmany(timeout_ms=100, max_records=args.max_records)
            assigned.set(len(consumer.assignment()))
            futures: list[Any] = []
            count = 0
            for tp, messages in batch.items():
                for m in messages:
                    for topic in outputs:
                        futures.append(await producer.send(topic, m.value, key=m.key))
                count += len(messages)
                if messages:
                    pending_offsets[tp] = messages[-1].offset + 1
            if futures:
                await asyncio.gather(*futures)
            if count:
                consumed.inc(count)
            if pending_offsets and time.monotonic() - last_commit >= args.commit_interval:
                offsets, pending_offsets = pending_offsets, {}
                await consumer.commit(offsets)
                last_commit = time.monotonic()
    finally:
        with contextlib.suppress(Exception):
            if pending_offsets:
                await consumer.commit(pending_offsets)
        await consumer.stop()
        await producer.stop()


def main(argv: list[str] | None = None) -> None:
    asyncio.run(run(parse_args(argv)))


if __name__ == "__main__":
    main()

"""The aiokafka baselines: a plain consume-to-produce passthrough with no policy at all.

Run as its own process (`python -m benchmarks.passthrough --mode batch|per-record ...`) so its
CPU time is measured from /proc exactly like the gateway worker's. It reads the raw topics with
`getmany` in batches of at most `--max-records` (the gateway's `GATEWAY_BATCH_MAX`), copies every
record unchanged (same key, same value, same partition number) to each output topic, and counts
a batch (and lets its offsets be committed, every `--commit-interval` seconds) only once every
copy is acknowledged (acks=all): the gateway's at-least-once shape without parsing, deciding or
transforming anything. It exposes `passthrough_records_consumed_total` on a loopback /metrics port.

Two ways to produce, the two aiokafka offers:

- `batch` (the headline baseline): per fetched batch, per input partition and output topic, one
  `producer.create_batch()` builder filled with `append` and handed over with `send_batch`, as
  the gateway's own writer does; up to `--max-inflight` fetched batches await their
  acknowledgements at once (the gateway's `GATEWAY_MAX_INFLIGHT`), acknowledged in order.
- `per-record`: one awaited `producer.send()` per copy, the whole batch acknowledged before the
  next fetch (the slowest way; kept for reference).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import time
from collections import deque
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

COUNTER = "passthrough_records_consumed_total"
ASSIGNED = "passthrough_assigned_partitions"
MODES = ("batch", "per-record")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mode", choices=MODES, default="batch")
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--inputs", nargs="+", required=True)
    parser.add_argument("--outputs", nargs="+", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--metrics-port", type=int, required=True)
    parser.add_argument("--max-records", type=int, default=2000)
    parser.add_argument("--linger-ms", type=int, default=5)
    parser.add_argument("--max-batch-bytes", type=int, default=512 * 1024)
    parser.add_argument("--commit-interval", type=float, default=1.0)
    parser.add_argument("--max-inflight", type=int, default=4)
    return parser.parse_args(argv)


Batch = dict[TopicPartition, list[Any]]


async def send_per_record(producer: AIOKafkaProducer, outputs: Sequence[str], batch: Batch) -> Any:
    """One awaited `send` per copy; returns a future of every acknowledgement."""
    futures: list[Any] = []
    for messages in batch.values():
        for m in messages:
            for topic in outputs:
                futures.append(await producer.send(topic, m.value, key=m.key))
    return asyncio.gather(*futures)


async def send_batched(producer: AIOKafkaProducer, outputs: Sequence[str], batch: Batch) -> Any:
    """One `create_batch` builder per (input partition, output topic), handed over whole."""
    futures: list[Any] = []
    for tp, messages in batch.items():
        for topic in outputs:
            builder = producer.create_batch()
            for m in messages:
                if builder.append(key=m.key, value=m.value, timestamp=None) is None:
                    futures.append(
                        await producer.send_batch(builder, topic, partition=tp.partition)
                    )
                    builder = producer.create_batch()
                    builder.append(key=m.key, value=m.value, timestamp=None)
            futures.append(await producer.send_batch(builder, topic, partition=tp.partition))
    return asyncio.gather(*futures)


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
    print(f"passthrough ({args.mode}) ready", flush=True)
    send = send_batched if args.mode == "batch" else send_per_record
    inflight_cap = args.max_inflight if args.mode == "batch" else 1
    outputs = list(args.outputs)
    inflight: deque[tuple[Any, int, dict[TopicPartition, int]]] = deque()
    pending_offsets: dict[TopicPartition, int] = {}
    last_commit = time.monotonic()

    async def settle_oldest() -> None:
        acks, count, offsets = inflight.popleft()
        await acks
        consumed.inc(count)
        pending_offsets.update(offsets)

    try:
        while not stopping.is_set():
            batch = await consumer.getmany(timeout_ms=100, max_records=args.max_records)
            assigned.set(len(consumer.assignment()))
            if batch:
                offsets = {tp: ms[-1].offset + 1 for tp, ms in batch.items() if ms}
                count = sum(len(ms) for ms in batch.values())
                inflight.append((await send(producer, outputs, batch), count, offsets))
            while inflight and (len(inflight) >= inflight_cap or inflight[0][0].done()):
                await settle_oldest()
            if pending_offsets and time.monotonic() - last_commit >= args.commit_interval:
                to_commit, pending_offsets = dict(pending_offsets), {}
                await consumer.commit(to_commit)
                last_commit = time.monotonic()
    finally:
        with contextlib.suppress(Exception):
            while inflight:
                await settle_oldest()
            if pending_offsets:
                await consumer.commit(pending_offsets)
        await consumer.stop()
        await producer.stop()


def main(argv: list[str] | None = None) -> None:
    asyncio.run(run(parse_args(argv)))


if __name__ == "__main__":
    main()

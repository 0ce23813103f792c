"""The worker's hot path in one process: the enforcer against a passthrough, on `make bench`'s mix.

Run: .venv/bin/python -m benchmarks.bench_enforce [EVENTS] [ROUNDS]. Prints figures; never
asserts on time. Between `make bench-decide` (the pure core, no Kafka records) and `make bench`
(a real broker, 15 minutes, a noisy figure on a shared machine), this measures what a worker
spends per event between a fetched batch and the bytes of its produce requests, without the
network:

- **enforcer**: `topologies.enforce.Enforcer.submit` with the shipped config (three sinks, real
  random keys, the value guard), real `GatewayMetrics`, the consent of `make bench`'s workload
  in the memory store's shape (subject key bytes -> packed state as bytes), batches of 2,000
  records, every output appended into real aiokafka `BatchBuilder`s (the worker's
  `BatchWriter`), which are closed (built into their wire bytes) at each batch's send and then
  dropped instead of sent; the metrics are recorded as after an acknowledgement.
- **passthrough**: what the batch-API yardstick of `make bench` does per record in the same
  place: each record appended to one builder per output topic (3), closed per batch.

The events are `make bench`'s (`benchmarks.workload.make_templates`: `devtools.synthetic.Traffic`
over 100,000 subjects, ~590 bytes), each with its own event id. The two take turns on the same
batches within each round (enforcer then passthrough, then the other way round), so a change in
the shared machine's speed falls on both alike; the figure is per event, best round and median,
and the enforcer's cost above the passthrough is the median of the rounds' paired differences
(the issue's target: at most 10 µs per event above the batch-API passthrough, end to end).
"""

from __future__ import annotations

import asyncio
import gc
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from statistics import median
from typing import Any, NamedTuple

from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import murmur2
from prometheus_client import CollectorRegistry

from benchmarks.workload import make_templates, rfc3339_ms
from devtools.synthetic import Traffic
from gateway.config import load_config
from gateway.consent import ConsentUpdate, parse_consent
from gateway.engine import Engine
from gateway.events import EventKind
from gateway.keys import load_keyring
from topologies.enforce import Enforcer
from topologies.worker import build_metrics
from topologies.writer import BatchWriter, Headers

ROOT = Path(__file__).resolve().parent.parent
SUBJECTS = 100_000
PARTITIONS = 6
BATCH = 2_000  # GATEWAY_BATCH_MAX
TOPICS = {"usage": "events.usage.raw", "device": "events.device.raw"}


class Raw(NamedTuple):
    """A consumed record: the fields the enforcer reads of aiokafka's `ConsumerRecord`."""

    topic: str
    partition: int
    offset: int
    key: bytes
    value: bytes


class BuiltWriter:
    """The worker's `BatchWriter` whose `send` builds each batch's bytes and drops them.

    `built` counts the bytes built (so the work cannot be skipped).
    """

    def __init__(self, producer: AIOKafkaProducer, partitions: dict[str, int]) -> None:
        self._writer = BatchWriter(producer, partitions)
        self.add = self._writer.add
        self.built = 0

    async def send(self) -> asyncio.Future[Any]:
        """Close every open and full batch (aiokafka builds its bytes there) and forget it."""
        writer = self._writer
        ready = [builder for _, _, builder in writer._full]
        for topic, partition in writer._opened:
            ready.append(writer._open[topic][partition])
            writer._open[topic][partition] = None
        writer._full, writer._opened = [], []
        for builder in ready:
            builder.close()
            self.built += len(builder._build())  # what the producer's sender does with it
        done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


def consent_table(subjects: int) -> dict[bytes, bytes]:
    """The workload's consent as the memory store holds it: key bytes -> packed state bytes."""
    traffic, table = Traffic(subjects, seed=7), {}
    for index in range(subjects):
        value = traffic.consent(index, rfc3339_ms(1_700_000_000_000))
        if value is None:
            continue
        key = f"u-{index:08d}".encode()
        update = parse_consent(value, key)
        if isinstance(update, ConsentUpdate):
            table[key] = b"%d" % update.state
    return table


def batches(count: int) -> list[list[Raw]]:
    """`count` events of the workload as raw records in batches of `BATCH`."""
    templates = make_templates(min(count, 100_000), SUBJECTS)
    stamp = rfc3339_ms(1_764_000_000_000).encode()
    records = []
    for number in range(count):
        template = templates[number % len(templates)]
        value = template.fill(stamp, b"e-%012d" % number)
        partition = (murmur2(template.key) & 0x7FFFFFFF) % PARTITIONS
        records.append(Raw(TOPICS[template.kind], partition, number, template.key, value))
    return [records[at : at + BATCH] for at in range(0, count, BATCH)]


def passthrough(writer: BuiltWriter, sinks: Sequence[str]) -> Any:
    """The batch-API yardstick's per-record work: one append per output topic."""
    add = writer.add
    none: Headers = []

    async def copy(records: Sequence[Raw]) -> None:
        for record in records:
            for topic in sinks:
                add(topic, record.partition, record.key, record.value, none)
        await writer.send()

    return copy


async def measure(count: int, rounds: int) -> None:
    config = load_config(ROOT / "config")
    sinks = [rule.name for rule in config.sinks]
    keyring = load_keyring({}, sinks, demo=True, random_bytes=os.urandom)
    engine = Engine(config, keyring)
    settings = config.settings
    topics = [rule.topic for rule in config.sinks]
    partitions = dict.fromkeys([*topics, settings.topics.audit, settings.topics.dlq], PARTITIONS)
    producer = AIOKafkaProducer(
        bootstrap_servers="127.0.0.1:9", max_batch_size=1_048_576, linger_ms=5
    )
    table = consent_table(SUBJECTS)
    get = table.get

    def consent_in(subject: str, partition: int) -> int | None:  # the memory store's lookup
        packed = get(subject.encode())
        return None if packed is None else int(packed)

    enforcer_writer = BuiltWriter(producer, partitions)
    enforcer = Enforcer(
        engine,
        kinds={TOPICS["usage"]: EventKind.USAGE, TOPICS["device"]: EventKind.DEVICE},
        consent=lambda subject: consent_in(subject, 0),
        consent_in=consent_in,
        writer=enforcer_writer,
        metrics=build_metrics(config, CollectorRegistry()),
        clock=time.time,
    )
    copy_writer = BuiltWriter(producer, partitions)
    copy = passthrough(copy_writer, topics)

    async def enforce(records: Sequence[Raw]) -> None:
        await (await enforcer.submit(records))

    work = batches(count)
    for batch in work[:5]:  # warm: UA parsing, routes, the guard's first sights of a few
        await enforce(batch)
        await copy(batch)
    gc.collect()
    gc.freeze()  # as the worker does after a rebalance
    took: dict[str, list[float]] = {"enforcer": [], "passthrough": []}
    for _ in range(rounds):
        spent = dict.fromkeys(took, 0.0)
        for number, batch in enumerate(work):
            pair = (("enforcer", enforce), ("passthrough", copy))
            for name, run in pair if number % 2 == 0 else pair[::-1]:
                start = time.process_time()
                await run(batch)
                spent[name] += time.process_time() - start
        for name, seconds in spent.items():
            took[name].append(seconds / count * 1e6)
    costs = sorted(a - b for a, b in zip(took["enforcer"], took["passthrough"], strict=True))
    print(f"events: {count} in batches of {BATCH}, {PARTITIONS} partitions, rounds: {rounds}")
    print(f"consent table: {len(table):,} of {SUBJECTS:,} subjects; sinks: {', '.join(sinks)}")
    for name, figures in took.items():
        print(
            f"{name:<12} {min(figures):6.2f} CPU µs/event (median {median(figures):.2f}),"
            f" {1e6 / min(figures):,.0f} events/s on one core"
        )
    print(
        f"the enforcer above the passthrough: {median(costs):+.2f} µs/event, median of the"
        f" rounds' paired differences ({costs[0]:+.2f} to {costs[-1]:+.2f})"
    )
    print(f"bytes built: enforcer {enforcer_writer.built:,}, passthrough {copy_writer.built:,}")


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 60_000
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    asyncio.run(measure(count, rounds))


if __name__ == "__main__":
    main()

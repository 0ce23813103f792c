"""The broker's own ceiling for the passthrough's shape, measured with Kafka's perf tools.

Kafka's `ProducerPerformance` and `ConsumerPerformance` (the classes behind
`kafka-producer-perf-test.sh` and `kafka-consumer-perf-test.sh`, from the `kafka-tools` jar the
local broker's cache holds) run from the jars in their own JVM, on the same broker:

- produce: the run's event bytes (a payload file of the synthetic mix, ~590 B each) into a
  fresh topic with the run's partitions, acks=all, no compression, the gateway's linger and
  batch size, unthrottled. The tool runs until stopped; the window (3 s of warm-up for the JIT,
  then time-boxed like the others) is counted at the broker (the sum of the topic's end
  offsets), CPU of the tool's JVM from /proc. (`produce_window` can run one tool per topic at
  once; on 2 cores three JVMs starve each other, so the benchmark runs one.)
- consume: that topic from the start, 50,000 more than the least events of a window (250,000: a
  few seconds for the Java consumer, a shorter window than the others', to stay in the time
  budget); the tool's own `fetch.nMsg.sec` (fetch time, without the group join).

The ceiling in events/s for the shape (one record read, three copies written acks=all per event)
is `1 / (3 / produce_rate + 1 / consume_rate)`: the broker and its clients time-share the cores.
"""

from __future__ import annotations

import asyncio
import csv
import io
import shutil
from dataclasses import dataclass
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition

from benchmarks import workload
from benchmarks.procs import BenchError, Child, Window, measure_timed
from devtools import local_broker

PRODUCER = "org.apache.kafka.tools.ProducerPerformance"
CONSUMER = "org.apache.kafka.tools.ConsumerPerformance"
COPIES = 3  # output topics per event in the passthrough shape


def java_command(main_class: str, *args: str) -> list[str]:
    lib, _ = local_broker.assemble(log=False)  # adds kafka-tools to an older cache, once
    java = shutil.which("java") or "java"
    return [java, "-Xmx512m", "-XX:+UseG1GC", "-cp", f"{lib}/*", main_class, *args]


def write_payloads(path: Path, templates: list[workload.Template], stamp: bytes) -> int:
    """The events as ProducerPerformance payloads, one per line; returns how many."""
    lines = [t.fill(stamp, b"perf-%d" % i) for i, t in enumerate(templates)]
    if any(b"\n" in line for line in lines):
        raise BenchError("an event holds a newline; it cannot be a line of the payload file")
    path.write_bytes(b"\n".join(lines))
    return len(lines)


def ceiling(produce_rate: float, consume_rate: float, copies: int = COPIES) -> float:
    """Events/s of the shape when the broker time-shares `copies` writes and one read per event.

    >>> round(ceiling(90_000, 300_000))
    25000
    """
    if produce_rate <= 0 or consume_rate <= 0:
        return 0.0
    return 1.0 / (copies / produce_rate + 1.0 / consume_rate)


@dataclass(frozen=True)
class ConsumeResult:
    records: int
    fetch_seconds: float
    rate: float  # records/s over the fetch time (the tool's fetch.nMsg.sec)


def parse_consumer_output(text: str) -> ConsumeResult:
    """The last CSV row ConsumerPerformance prints (header `start.time, end.time, ...`)."""
    lines = [line for line in text.splitlines() if line.count(",") >= 8]
    header = next((i for i, line in enumerate(lines) if line.startswith("start.time")), None)
    if header is None or header + 1 >= len(lines):
        raise BenchError(f"ConsumerPerformance printed no result:\n{text[-1500:]}")
    rows = list(csv.reader(io.StringIO("\n".join([lines[header], lines[-1]]))))
    row = {k.strip(): v.strip() for k, v in zip(rows[0], rows[1], strict=False)}
    records = int(float(row["data.consumed.in.nMsg"]))
    fetch_ms = float(row["fetch.time.ms"])
    return ConsumeResult(records, fetch_ms / 1000, records / (fetch_ms / 1000) if fetch_ms else 0.0)


async def end_offsets_total(bootstrap: str, topic: str, partitions: int) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        ends = await consumer.end_offsets([TopicPartition(topic, p) for p in range(partitions)])
        return sum(ends.values())
    finally:
        await consumer.stop()


async def produce_window(
    bootstrap: str, topics: list[str], partitions: int, payloads: Path, workdir: Path, *,
    seconds: float, min_events: float, linger_ms: int, batch_bytes: int,
    broker_pid: int | None,
) -> Window:  # fmt: skip
    """ProducerPerformance into each of `topics` at once, unthrottled, time-boxed.

    The window's events are records acknowledged into all the topics together.
    """
    await workload.create_topics(bootstrap, topics, partitions)
    props = [
        f"bootstrap.servers={bootstrap}", "acks=all", f"linger.ms={linger_ms}",
        f"batch.size={batch_bytes}", "compression.type=none",
    ]  # fmt: skip
    children = [
        Child(
            java_command(
                PRODUCER,
                "--topic",
                topic,
                "--num-records",
                "1000000000",
                "--throughput",
                "-1",
                "--payload-file",
                str(payloads),
                "--producer-props",
                *props,
            ),
            log=workdir / f"{topic}.producer-perf.log",
            env={},
            name=f"producer-perf {topic}",
        )
        for topic in topics
    ]
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    tps = [TopicPartition(topic, p) for topic in topics for p in range(partitions)]

    async def count() -> tuple[float, ...]:
        ends = await consumer.end_offsets(tps)
        return tuple(float(sum(ends[tp] for tp in tps if tp.topic == t)) for t in topics)

    def check() -> None:
        for child in children:
            child.check_alive()

    try:
        return await measure_timed(
            count, [c.pid for c in children], seconds=seconds, min_events=min_events,
            available=float("inf"), within=seconds + 120, warmup=3.0, broker_pid=broker_pid,
            check=check,
        )  # fmt: skip
    finally:
        await consumer.stop()
        for child in children:
            child.popen.terminate()
        for child in children:
            child.stop(timeout=10)


async def consume_all(
    bootstrap: str, topic: str, records: int, workdir: Path, group: str
) -> ConsumeResult:
    """ConsumerPerformance over `records` records of `topic` from the start."""
    argv = java_command(
        CONSUMER, "--bootstrap-server", bootstrap, "--topic", topic, "--messages", str(records),
        "--group", group, "--timeout", "20000",
    )  # fmt: skip
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=180)
    text = out.decode(errors="replace")
    (workdir / f"{topic}.consumer-perf.log").write_text(text)
    return parse_consumer_output(text)

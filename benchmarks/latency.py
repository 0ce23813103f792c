"""Latency at a fixed offered load: paced producing, per-second monitoring, reading the outputs.

The harness produces the run's events with librdkafka (confluent-kafka, a few µs per record, so
the harness takes little of the cores the processes under test need) at a fixed rate, each
event stamped `occurred_at` = send time and a unique `event_id` (`<prefix>-<index>`). Output
topics use LogAppendTime; an event's latency is the append time of its last observed output
minus its send time (ms, wall clocks of one machine). Every second of the window the harness
also records the cores used by the processes under test, the broker and everything else, the
load average, and (for the gateway) deltas of a few of its metrics, so spikes can be set
against what happened in that second.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from benchmarks import stats, workload
from benchmarks.procs import Sample, loadavg, take_sample

# Metrics of the gateway whose per-second deltas are kept with the latency series.
GATEWAY_SERIES = (
    "gateway_barrier_wait_seconds_sum", "gateway_processing_seconds_sum",
    "gateway_processing_seconds_count", "gateway_consent_records_total",
)  # fmt: skip


def fast_producer(bootstrap: str) -> Producer:
    """acks=all, Java's murmur2 partitioner (the raw and consent topics stay co-partitioned)."""
    return Producer(
        {
            "bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5,
            "batch.size": 1_048_576, "partitioner": "murmur2_random",
            "queue.buffering.max.messages": 2_000_000, "queue.buffering.max.kbytes": 2_097_151,
        }
    )  # fmt: skip


async def produce_fast(bootstrap: str, records: Any) -> tuple[int, float]:
    """Send (topic, key, value) records as fast as librdkafka takes them; (count, seconds)."""
    producer = fast_producer(bootstrap)
    started = time.monotonic()
    count = 0
    for topic, key, value in records:
        while True:
            try:
                producer.produce(topic, value, key)
                break
            except BufferError:
                producer.poll(0.05)
        count += 1
        if count % 20_000 == 0:
            producer.poll(0)
            await asyncio.sleep(0)
    if producer.flush(120) > 0:
        raise RuntimeError("records still undelivered after 120 s")
    return count, time.monotonic() - started


@dataclass
class Offered:
    """What one offered-load window sent and saw."""

    prefix: bytes
    warm: int  # the first `warm` events are warm-up, not measured
    send_wall: list[float]  # wall-clock send time of every event (s)
    started_wall: float  # wall clock when the measured part began
    sent_rate: float
    load: dict[str, float]
    seconds: list[dict[str, float]] = field(default_factory=list)  # per-second resources


def resources(before: Sample, after: Sample) -> dict[str, float]:
    secs = max(after.at - before.at, 1e-9)
    return {
        "process_cores": round((after.cpu - before.cpu) / secs, 3),
        "broker_cores": round((after.broker - before.broker) / secs, 3),
        "foreign_cores": round((after.others - before.others) / secs, 3),
    }


async def offered_load(
    bootstrap: str, topic_of: Callable[[str], str], templates: Sequence[workload.Template],
    rate: float, seconds: float, prefix: bytes, *, pids: Sequence[int], broker_pid: int | None,
    metrics: Callable[[], dict[str, float]] | None = None, warmup: float = 1.0,
) -> Offered:  # fmt: skip
    """Produce at `rate` events/s for `warmup` + `seconds`; sample resources every second."""
    warm = int(rate * warmup)
    count = warm + max(1, int(rate * seconds))
    producer = fast_producer(bootstrap)
    producer.list_topics(timeout=10)  # metadata before the clock runs
    send_wall: list[float] = []
    pool = len(templates)
    offered = Offered(prefix, warm, send_wall, 0.0, 0.0, {})
    started = time.monotonic()
    whole: Sample | None = None
    tick: Sample | None = None
    tick_metrics: dict[str, float] = {}
    # The process's /metrics is scraped in a thread: a busy worker answers slowly, and a scrape
    # inline would stall the paced producing (a burst after each stall). Each second's row gets
    # the deltas of the scrape started in it, once that scrape has answered.
    scrape: tuple[asyncio.Task[dict[str, float]], dict[str, float]] | None = None
    i = 0
    while i < count:
        now_mono = time.monotonic()
        due = min(count, int(rate * (now_mono - started)) + 1)
        now = time.time()
        stamp = workload.rfc3339_ms(int(now * 1000)).encode()
        while i < due:
            template = templates[i % pool]
            value = template.fill(stamp, b"%s-%d" % (prefix, i))
            try:
                producer.produce(topic_of(template.kind), value, template.key)
            except BufferError:
                producer.poll(0.01)
                continue
            send_wall.append(now)
            i += 1
        producer.poll(0)
        if i >= warm and whole is None:
            offered.started_wall = now
            whole = tick = take_sample(0, pids, broker_pid)
            tick_metrics = await asyncio.to_thread(metrics) if metrics else {}
        elif tick is not None and now_mono - tick.at >= 1.0:
            sample = take_sample(0, pids, broker_pid)
            row: dict[str, float] = {"t": round(now - offered.started_wall, 3)}
            row |= resources(tick, sample)
            row["loadavg"] = loadavg()
            offered.seconds.append(row)
            tick = sample
            if metrics and (scrape is None or scrape[0].done()):
                if scrape is not None:
                    current = scrape[0].result()
                    scrape[1].update(
                        {k: round(current[k] - tick_metrics.get(k, 0.0), 6) for k in current}
                    )
                    tick_metrics = current
                scrape = (asyncio.create_task(asyncio.to_thread(metrics)), row)
        await asyncio.sleep(0.002)
    elapsed = time.monotonic() - started
    if scrape is not None:
        await scrape[0]  # not recorded: it ends after the window
    if whole is not None:
        offered.load = resources(whole, take_sample(0, pids, broker_pid)) | {"loadavg": loadavg()}
    producer.flush(60)
    offered.sent_rate = count / elapsed if elapsed > 0 else rate
    return offered


def event_index(value: bytes | None, needle: bytes) -> int | None:
    """The index in `"event_id":"<prefix>-<index>"` of a JSON value, or None."""
    if value is None:
        return None
    pos = value.find(needle)
    if pos < 0:
        return None
    start = pos + len(needle)
    end = value.find(b'"', start)
    digits = value[start:end]
    return int(digits) if digits.isdigit() else None


def read_latencies(bootstrap: str, topics: Sequence[str], offered: Offered) -> list[float]:
    """Per measured event: last output append time - send time (ms); NaN if none was seen."""
    needle = b'"event_id":"' + offered.prefix + b"-"
    last: list[float] = [math.nan] * len(offered.send_wall)
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "bench-reader", "enable.auto.commit": False}
    )
    try:
        metadata = consumer.list_topics(timeout=10)
        remaining: dict[tuple[str, int], int] = {}
        assignment = []
        for topic in topics:
            for p in metadata.topics[topic].partitions:
                high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                if high > 0:
                    remaining[(topic, p)] = high
                    assignment.append(TopicPartition(topic, p, OFFSET_BEGINNING))
        consumer.assign(assignment)
        while remaining:
            for m in consumer.consume(num_messages=10_000, timeout=1.0):
                if m.error() is not None:
                    continue
                index = event_index(m.value(), needle)
                if index is not None and index < len(last):
                    appended = float(m.timestamp()[1])
                    if math.isnan(last[index]) or appended > last[index]:
                        last[index] = appended
                key = (m.topic() or "", m.partition() or 0)
                if key in remaining and (m.offset() or 0) + 1 >= remaining[key]:
                    del remaining[key]
    finally:
        consumer.close()
    return [
        last[i] - offered.send_wall[i] * 1000 if not math.isnan(last[i]) else math.nan
        for i in range(offered.warm, len(last))
    ]


@dataclass(frozen=True)
class LatencyResult:
    offered_rate: float
    sent_rate: float
    events: int
    measured: int  # events with at least one output seen
    p50_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float
    drain_seconds: float  # from the last send to the last record consumed
    load: dict[str, float]  # cores while the load was offered, and the load average
    series: list[dict[str, float]]  # per second: latency percentiles, resources, metric deltas
    spikes: list[int]  # seconds whose p99 stands out (stats.spikes)
    gc_pauses: list[dict[str, float]]  # the gateway's notable collections in the window


def summarise(
    offered: Offered, latencies: list[float], rate: float, drain: float,
    gc_pauses: list[dict[str, float]] | None = None,
) -> LatencyResult:  # fmt: skip
    seen = sorted(v for v in latencies if not math.isnan(v))
    # Events with no output seen (not consumed within the drain limit) are later than any seen:
    # they rank last, so a p99 with more than 1% of them is +inf ("overloaded").
    ranked = seen + [math.inf] * (len(latencies) - len(seen))
    offsets = [t - offered.started_wall for t in offered.send_wall[offered.warm :]]
    seconds = stats.per_second(offsets, latencies)
    by_second = {round(row["t"]) - 1: row for row in offered.seconds}  # t: end of its second
    series = []
    for s in seconds:
        row = {"second": float(s.second), "events": float(s.events), "p50_ms": s.p50_ms,
               "p99_ms": s.p99_ms, "max_ms": s.max_ms}  # fmt: skip
        row |= {k: v for k, v in by_second.get(s.second, {}).items() if k != "t"}
        series.append(row)
    return LatencyResult(
        offered_rate=rate, sent_rate=offered.sent_rate, events=len(latencies), measured=len(seen),
        p50_ms=stats.percentile_sorted(ranked, 50), p99_ms=stats.percentile_sorted(ranked, 99),
        p999_ms=stats.percentile_sorted(ranked, 99.9), max_ms=ranked[-1] if ranked else math.nan,
        drain_seconds=drain, load=offered.load, series=series, spikes=stats.spikes(seconds),
        gc_pauses=gc_pauses or [],
    )  # fmt: skip


def read_gc_log(text: str, started_wall: float, until_wall: float) -> list[dict[str, float]]:
    """The `benchmarks.gcprobe` lines inside [started_wall, until_wall], offsets in seconds."""
    out = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) != 4 or line.startswith("#"):
            continue
        at = float(parts[0])
        if started_wall <= at <= until_wall:
            out.append({"t": round(at - started_wall, 3), "generation": float(parts[1]),
                        "ms": float(parts[2])})  # fmt: skip
    return out

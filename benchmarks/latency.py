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
import multiprocessing
import time
from array import array
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
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
# The metric of `offered_load`'s `metrics` that counts the records the process has consumed.
CONSUMED = "consumed"
# give_up(measured seconds so far, events sent, events consumed) -> stop offering the load.
GiveUp = Callable[[float, int, float], bool]


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
    planned: int = 0  # events the whole window would have sent
    stopped_after: float = 0.0  # measured seconds when `give_up` stopped the load (0: never)
    measured_seconds: float = 0.0  # seconds the measured part lasted
    consumed_start: float = math.nan  # the process's consumed counter when the measured part
    consumed_end: float = math.nan  # began and when the last send was done

    @property
    def consumed_rate(self) -> float:
        """Events/s the process consumed while the measured load was offered."""
        if self.measured_seconds <= 0:
            return math.nan
        return (self.consumed_end - self.consumed_start) / self.measured_seconds


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
    give_up: GiveUp | None = None,
) -> Offered:  # fmt: skip
    """Produce at `rate` events/s for `warmup` + `seconds`; sample resources every second.

    `metrics` (scraped once a second in a thread; its `CONSUMED` entry, if any, is the
    process's consumed counter): per-second deltas go into the series. `give_up` is asked at
    each scrape with the events sent when the scrape began; when it says so, the load stops
    there (`stopped_after`) and the window is the events sent until then.
    """
    warm = int(rate * warmup)
    count = warm + max(1, int(rate * seconds))
    producer = fast_producer(bootstrap)
    producer.list_topics(timeout=10)  # metadata before the clock runs
    send_wall: list[float] = []
    pool = len(templates)
    offered = Offered(prefix, warm, send_wall, 0.0, 0.0, {}, planned=count)
    started = time.monotonic()
    whole: Sample | None = None
    tick: Sample | None = None
    tick_metrics: dict[str, float] = {}
    # The process's /metrics is scraped in a thread: a busy worker answers slowly, and a scrape
    # inline would stall the paced producing (a burst after each stall). Each second's row gets
    # the deltas of the scrape started in it, once that scrape has answered.
    scrape: tuple[asyncio.Task[dict[str, float]], dict[str, float], int] | None = None
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
            offered.consumed_start = tick_metrics.get(CONSUMED, math.nan)
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
                    measured = now - offered.started_wall
                    if give_up is not None and give_up(
                        measured, scrape[2], current.get(CONSUMED, math.nan)
                    ):
                        offered.stopped_after = measured
                        break
                scrape = (asyncio.create_task(asyncio.to_thread(metrics)), row, i)
        await asyncio.sleep(0.002)
    elapsed = time.monotonic() - started
    if whole is not None:
        offered.load = resources(whole, take_sample(0, pids, broker_pid)) | {"loadavg": loadavg()}
    if scrape is not None:
        await scrape[0]  # not in the series: it ends after the window
    if metrics and whole is not None:
        offered.measured_seconds = time.time() - offered.started_wall
        offered.consumed_end = (await asyncio.to_thread(metrics)).get(CONSUMED, math.nan)
    producer.flush(60)
    offered.sent_rate = i / elapsed if elapsed > 0 else rate
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


# The read-back consumer: large fetches and no back-off between them. With librdkafka's defaults
# neither the reader nor the broker was busy (1.4 + 0.5 CPU s for 1M records in 5 s of wall
# time): each fetch waited for the previous one to be drained; tuned, the same read takes 2 s.
READER = {
    "enable.auto.commit": False, "fetch.queue.backoff.ms": 0, "fetch.wait.max.ms": 5,
    "max.partition.fetch.bytes": 8_000_000, "queued.max.messages.kbytes": 1_000_000,
    "queued.min.messages": 1_000_000,
}  # fmt: skip


PARALLEL_READ = 500_000  # output records from which the read-back uses several processes


def read_latencies(
    bootstrap: str, topics: Sequence[str], offered: Offered, *, readers: int = 2
) -> list[float]:
    """Per measured event: last output append time - send time (ms); NaN if none was seen.

    Every record of `topics` up to the high watermarks when the read starts, split by partition
    over `readers` processes (the read is CPU-bound in Python: ~3 µs a record, and the 2-core
    machine has nothing else to do while it runs).
    """
    prefix = b'"event_id":"' + offered.prefix + b"-"
    sent = len(offered.send_wall)
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-reader", **READER})
    try:
        metadata = consumer.list_topics(timeout=10)
        high: list[tuple[str, int, int]] = []
        for topic in topics:
            for p in metadata.topics[topic].partitions:
                end = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                if end > 0:
                    high.append((topic, p, end))
    finally:
        consumer.close()
    if sum(end for _, _, end in high) < PARALLEL_READ:  # not worth starting processes
        readers = 1
    shares = [high[i :: max(1, readers)] for i in range(max(1, readers))]
    shares = [share for share in shares if share]
    if len(shares) <= 1:
        last = array("d", last_appended(bootstrap, high, prefix, sent))
    else:
        context = multiprocessing.get_context("spawn")  # librdkafka's threads do not fork
        with ProcessPoolExecutor(len(shares), mp_context=context) as pool:
            n = len(shares)
            parts = list(pool.map(last_appended, [bootstrap] * n, shares, [prefix] * n, [sent] * n))
        last = array("d", parts[0])
        for part in parts[1:]:
            other = array("d", part)
            for i, appended in enumerate(other):
                seen = last[i]
                if appended == appended and (seen != seen or appended > seen):
                    last[i] = appended
    return [
        last[i] - offered.send_wall[i] * 1000 if last[i] == last[i] else math.nan
        for i in range(offered.warm, sent)
    ]


def last_appended(
    bootstrap: str, partitions: Sequence[tuple[str, int, int]], prefix: bytes, sent: int
) -> bytes:
    """Per event index below `sent`: the latest append time (ms) of its outputs in the
    (topic, partition, high watermark) `partitions`, NaN if none; an `array("d")` as bytes."""
    last = array("d", [math.nan]) * sent
    skip = len(prefix)
    high = {(t, p): end for t, p, end in partitions}
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-reader", **READER})
    try:
        consumer.assign([TopicPartition(t, p, OFFSET_BEGINNING) for t, p in high])
        while high:
            for m in consumer.consume(num_messages=20_000, timeout=0.1):
                value = m.value()
                if value is None:  # an error event
                    continue
                pos = value.find(prefix)
                if pos < 0:
                    continue
                start = pos + skip
                digits = value[start : value.find(b'"', start)]
                if not digits.isdigit():
                    continue
                index = int(digits)
                if index < sent:
                    appended = float(m.timestamp()[1])
                    seen = last[index]
                    if seen != seen or appended > seen:  # NaN: the first output seen
                        last[index] = appended
            # The position of each partition (next offset the application gets), not a
            # per-record check.
            for tp in consumer.position([TopicPartition(t, p) for t, p in high]):
                if tp.offset >= high[(tp.topic, tp.partition)]:
                    del high[(tp.topic, tp.partition)]
    finally:
        consumer.close()
    return last.tobytes()


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
    unconsumed: int  # events sent that the process had not consumed when it was stopped
    load: dict[str, float]  # cores while the load was offered, and the load average
    series: list[dict[str, float]]  # per second: latency percentiles, resources, metric deltas
    spikes: list[int]  # seconds whose p99 stands out (stats.spikes)
    gc_pauses: list[dict[str, float]]  # the gateway's notable collections in the window
    # Whether the process kept up: at most 1% of the events undelivered (a finite p99) and the
    # load offered for the whole window (not stopped early, see `stopped_after`).
    sustained: bool = True
    stopped_after: float = 0.0  # measured seconds after which the load was stopped (0: never)
    planned: int = 0  # measured events the whole window would have had
    consumed_rate: float = math.nan  # events/s the process consumed while the load was offered
    p50_delivered_ms: float = math.nan  # p50 over the delivered events only (a lower bound)


def summarise(
    offered: Offered, latencies: list[float], rate: float, drain: float,
    gc_pauses: list[dict[str, float]] | None = None, unconsumed: int = 0,
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
    p99 = stats.percentile_sorted(ranked, 99)
    return LatencyResult(
        offered_rate=rate, sent_rate=offered.sent_rate, events=len(latencies), measured=len(seen),
        p50_ms=stats.percentile_sorted(ranked, 50), p99_ms=p99,
        p999_ms=stats.percentile_sorted(ranked, 99.9), max_ms=ranked[-1] if ranked else math.nan,
        drain_seconds=drain, unconsumed=unconsumed, load=offered.load, series=series,
        spikes=stats.spikes(seconds), gc_pauses=gc_pauses or [],
        sustained=not offered.stopped_after and math.isfinite(p99),
        stopped_after=offered.stopped_after, planned=max(offered.planned - offered.warm, 0),
        consumed_rate=offered.consumed_rate, p50_delivered_ms=stats.percentile_sorted(seen, 50),
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

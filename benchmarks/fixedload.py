"""Phases at a fixed offered load: latency of the batch-API baseline and of the gateway, consent
propagation probes, and the memory of a large consent table.

Latency windows (see `benchmarks.latency`): a fresh pair of raw topics and a process that holds
its partitions before the clock runs; the harness offers the load for 1 s of warm-up plus the
window, waits until the process has consumed everything, stops it, then reads the outputs.
The gateway runs under `benchmarks.gcprobe`, so its collector's pauses are logged with the
per-second latency series.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition

from benchmarks import latency, workload
from benchmarks.latency import CONSUMED, LatencyResult
from benchmarks.passthrough import ASSIGNED
from benchmarks.phases import (
    Bench,
    RawTopics,
    start_gateway,
    start_passthrough,
    wait_consent_loaded,
)
from benchmarks.procs import BenchError, Monitored, memory_kib, metric_sum, scrape
from benchmarks.stats import OverloadWatch
from devtools.synthetic import PURPOSES, consent_record
from gateway.records import HEADER_CONSENT
from topologies.admin import describe_partitions

LATENCY_SINK = "analytics"  # keeps event_id; its drops reach the audit topic with the event id
# Awaited right before a window's load starts: lets the previous window's read-back, which runs
# while this window's process starts, finish first, so that it never runs inside a window.
Quiet = Callable[[], Awaitable[None]]


async def nothing() -> None:
    return None


# Seconds a latency window's process may take, after the last send, to consume what was sent.
# A process that cannot keep up with the offered load would otherwise drain its backlog for
# minutes; its unconsumed events then count as not delivered (latency +inf in the
# percentiles), so the figures say "overloaded" instead of the run overrunning its budget.
DRAIN_LIMIT = 15.0


async def wait_consumed(procs: Sequence[Monitored], total: int, within: float) -> float:
    """Seconds until the processes have consumed `total` records, at most `within`."""
    started = time.monotonic()
    while sum(p.consumed() for p in procs) < total:
        if time.monotonic() - started > within:
            break
        for p in procs:
            p.child.check_alive()
        await asyncio.sleep(0.1)
    return time.monotonic() - started


async def partitions_of(bootstrap: str, topics: Sequence[str]) -> list[TopicPartition]:
    counts = await describe_partitions(bootstrap, topics)
    return [TopicPartition(t, p) for t in topics for p in range(counts.get(t, 0))]


async def baseline_latency(
    bench: Bench, consent: str, templates: Sequence[workload.Template], rate: float,
    seconds: float, label: str, quiet: Quiet = nothing, kind: str = "batch",
) -> asyncio.Task[LatencyResult]:  # fmt: skip
    """A passthrough (`kind`, the batch API by default) at `rate` events/s for `seconds` (plus
    1 s of warm-up).

    Returns a task that reads the outputs back and summarises (it runs while the next window's
    process starts).
    """
    raw = await bench.raw_topics(label, consent)
    proc, outputs = await start_passthrough(bench, raw, label, kind)
    try:
        deadline = time.monotonic() + 60
        while proc.gauge(ASSIGNED) < 2 * bench.partitions:
            if time.monotonic() > deadline:
                raise BenchError("the passthrough was never assigned its partitions")
            await asyncio.sleep(0.1)
        await quiet()
        await asyncio.sleep(0.5)
        offered = await latency.offered_load(
            bench.bootstrap, raw.of, templates, rate, seconds, label.encode(),
            pids=[proc.child.pid], broker_pid=bench.broker_pid,
            metrics=lambda: {CONSUMED: proc.consumed()},
        )  # fmt: skip
        drain = await wait_consumed([proc], len(offered.send_wall), DRAIN_LIMIT)
        unconsumed = max(0, len(offered.send_wall) - int(proc.consumed()))
    finally:
        bench.stop([proc.child])

    async def finish() -> LatencyResult:
        lat = await read_back(bench, label, outputs, offered)
        return latency.summarise(offered, lat, rate, drain, unconsumed=unconsumed)

    return asyncio.create_task(finish())


async def read_back(
    bench: Bench, label: str, topics: Sequence[str], offered: latency.Offered
) -> list[float]:
    """The window's latencies from its output topics (in a thread), then its topics dropped."""
    started = time.monotonic()
    lat = await asyncio.to_thread(latency.read_latencies, bench.bootstrap, topics, offered)
    bench.log(f"  {label}: read back in {time.monotonic() - started:.1f}s")
    await bench.drop_topics(label)
    return lat


def gateway_series(worker: Monitored) -> dict[str, float]:
    names = (*latency.GATEWAY_SERIES, worker.counter)
    text = scrape(worker.port, names)
    values = {name: metric_sum(text, name) for name in names}
    values[CONSUMED] = values.pop(worker.counter)
    return values


async def gateway_latency(
    bench: Bench, consent: str, consent_subjects: int, templates: Sequence[workload.Template],
    rate: float, seconds: float, label: str, probes: int, quiet: Quiet = nothing,
    ceiling_hint: float = 0.0, stop_early: bool = True,
) -> tuple[asyncio.Task[LatencyResult], list[float], bool]:  # fmt: skip
    """Latency at the offered load, then consent propagation probes on the same worker.

    `stop_early`: the load stops as soon as the worker certainly cannot sustain it
    (`stats.OverloadWatch`, `ceiling_hint`: the worker's best throughput of the run): the
    window's p99 is then +inf whatever happens next, and it is reported as not sustained with
    what was measured until then. Returns a task that reads the outputs back and summarises,
    the probes' latencies (ms), and whether the worker consumed every event in time.
    """
    raw = await bench.raw_topics(label, consent)
    group = await start_gateway(bench, raw, label, gc_log=True)
    worker = group.workers[0]
    observed = [group.topics[LATENCY_SINK], group.topics["audit"]]
    try:
        await wait_consent_loaded(group, consent_subjects, bench.budget(consent_subjects / 10))
        await quiet()
        await asyncio.sleep(0.5)
        warm = int(rate)  # offered_load's 1 s of warm-up
        watch = OverloadWatch(
            planned=warm + max(1, int(rate * seconds)), warm=warm, seconds=seconds,
            drain=DRAIN_LIMIT, hint=ceiling_hint,
        )  # fmt: skip
        offered = await latency.offered_load(
            bench.bootstrap, raw.of, templates, rate, seconds, label.encode(),
            pids=group.pids, broker_pid=bench.broker_pid, metrics=lambda: gateway_series(worker),
            give_up=watch if stop_early else None,
        )  # fmt: skip
        ended = time.time()
        sent = len(offered.send_wall)
        if offered.stopped_after:  # the verdict is in: no drain, no probes
            drain = 0.0
            bench.log(
                f"  {label}: not sustained, load stopped after {offered.stopped_after:.0f}s of "
                f"{seconds:.0f}: consumed {offered.consumed_rate:,.0f} ev/s of {rate:,.0f} "
                f"offered, backlog {sent - offered.consumed_end:,.0f}; even at "
                f"{watch.ceiling:,.0f} ev/s ({watch.margin}x its best) it could not end with "
                f"<= 1% of the window's events left"
            )
        else:
            drain = await wait_consumed(group.workers, sent, DRAIN_LIMIT)
        consumed = int(sum(w.consumed() for w in group.workers))
        if offered.stopped_after:
            propagation = []
        elif consumed >= sent:
            propagation = await consent_probes(bench, raw, observed, label, probes)
        else:  # the probes' events would queue behind the backlog: they would time the backlog
            bench.log(f"  {label}: backlog left after {DRAIN_LIMIT:.0f}s, consent probes skipped")
            propagation = []
    finally:
        bench.stop([w.child for w in group.workers])
    gc_log = bench.workdir / label / "gc-0.log"
    pauses = latency.read_gc_log(
        gc_log.read_text() if gc_log.exists() else "", offered.started_wall, ended + drain
    )

    async def finish() -> LatencyResult:
        lat = await read_back(bench, label, observed, offered)
        return latency.summarise(
            offered, lat, rate, drain, pauses, unconsumed=max(0, sent - consumed)
        )

    return asyncio.create_task(finish()), propagation, consumed >= sent


async def consent_probes(
    bench: Bench, raw: RawTopics, observed: Sequence[str], label: str, count: int,
    *, interval: float = 0.005, give_up: float = 10.0,
) -> list[float]:  # fmt: skip
    """Consent record appended at the broker -> first output decided with it (ms), per probe.

    Probe subjects (new ids, so nothing else carries their consent versions) alternate grants
    and withdrawals; while a probe runs, the probed subject sends a usage event every
    `interval` seconds. The output decided with the new consent is the first record on the
    analytics sink (a forward) or the audit topic (a drop) whose `gateway-consent-version`
    header is that record's `updated_at` in microseconds. Both ends are broker timestamps
    (LogAppendTime topics).
    """
    if count <= 0:
        return []
    subjects = [f"probe-{bench.run_id}-{label}-{n}" for n in range(4)]
    first_seen: dict[int, int] = {}
    wanted: dict[int, asyncio.Event] = {}
    consumer = AIOKafkaConsumer(bootstrap_servers=bench.bootstrap, enable_auto_commit=False)
    events = workload.producer(bench.bootstrap, linger_ms=0)
    consents = workload.producer(bench.bootstrap, linger_ms=0)
    await consumer.start()
    await events.start()
    await consents.start()
    stop = asyncio.Event()
    current = [subjects[0]]

    async def read() -> None:
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=50)
            for messages in batch.values():
                for m in messages:
                    for name, value in m.headers or ():
                        if name == HEADER_CONSENT and value.isdigit():
                            version = int(value)
                            if version in wanted and version not in first_seen:
                                first_seen[version] = m.timestamp
                                wanted[version].set()

    async def send_events() -> None:
        seq = 0
        while not stop.is_set():
            seq += 1
            subject = current[0]
            value = workload.probe_event(subject, seq, int(time.time() * 1000))
            await events.send(raw.usage, value, key=subject.encode())
            await asyncio.sleep(interval)

    try:
        tps = await partitions_of(bench.bootstrap, observed)
        consumer.assign(tps)
        await consumer.seek_to_end(*tps)
        tasks = [asyncio.create_task(read()), asyncio.create_task(send_events())]
        latencies: list[float] = []
        last_ms = 0
        for n in range(count):
            subject = subjects[n % len(subjects)]
            current[0] = subject
            await asyncio.sleep(0.1)  # the subject's event stream is flowing
            grant = (n // len(subjects)) % 2 == 1  # first unknown -> withdrawn, then granted, ...
            ms = max(int(time.time() * 1000), last_ms + 1)
            last_ms = ms
            version = ms * 1000
            seen = wanted[version] = asyncio.Event()
            record = consent_record(
                subject, workload.rfc3339_ms(ms), dict.fromkeys(PURPOSES, grant),
                under_13=False, parental_consent=False,
            )  # fmt: skip
            meta = await consents.send_and_wait(raw.consent, record, key=subject.encode())
            appended = meta.timestamp if meta.timestamp_type == 1 and meta.timestamp > 0 else ms
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(seen.wait(), give_up)
            if version in first_seen:
                latencies.append(float(first_seen[version] - appended))
            else:
                latencies.append(float("inf"))
                bench.log(f"  probe {n}: no output with consent version {version} in {give_up}s")
        stop.set()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        return latencies
    finally:
        stop.set()
        await events.stop()
        await consents.stop()
        await consumer.stop()


@dataclass(frozen=True)
class MemoryResult:
    subjects: int
    vmhwm_mb: float
    vmrss_mb: float
    produce_seconds: float
    apply_seconds: float  # worker metrics up -> table holds every subject


async def consent_memory(bench: Bench, subjects: int, label: str) -> MemoryResult:
    consent = bench.topic("consent.state", label)
    await workload.create_topics(bench.bootstrap, [consent], bench.partitions, compacted=True)
    raw = await bench.raw_topics(label, consent)
    stamp = workload.rfc3339_ms(int(time.time() * 1000))
    _, produce_seconds = await workload.produce_all(
        bench.bootstrap,
        ((consent, k, v) for k, v in workload.many_consent_records(subjects, stamp)),
    )
    group = await start_gateway(bench, raw, label)
    try:
        apply_seconds = await wait_consent_loaded(group, subjects, bench.budget(subjects / 5))
        mem = memory_kib(group.pids[0])
    finally:
        bench.stop([w.child for w in group.workers])
    return MemoryResult(
        subjects=subjects, vmhwm_mb=mem["VmHWM"] * 1024 / 1e6, vmrss_mb=mem["VmRSS"] * 1024 / 1e6,
        produce_seconds=produce_seconds, apply_seconds=apply_seconds,
    )  # fmt: skip

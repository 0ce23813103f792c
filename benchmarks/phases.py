"""The benchmark's phases: throughput, latency at a fixed load, consent propagation, memory.

Every repetition gets its own output topics and a fresh gateway app id (or baseline group id),
so it reads the pre-loaded raw topics from offset 0 and writes to empty topics.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import shutil
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import yaml
from aiokafka import AIOKafkaConsumer, TopicPartition

from benchmarks import workload
from benchmarks.passthrough import ASSIGNED, COUNTER
from benchmarks.procs import (
    BenchError,
    Child,
    LoadMeter,
    Monitored,
    Window,
    measure_window,
    memory_kib,
)
from devtools.local_broker import free_port
from devtools.synthetic import PURPOSES, consent_record
from gateway.keys import env_name
from gateway.records import HEADER_CONSENT
from topologies.admin import describe_partitions
from topologies.app import Tuning

REPO = Path(__file__).resolve().parents[1]
GATEWAY_COUNTER = "gateway_events_consumed_total"
LATENCY_SINK = "analytics"  # keeps event_id; its drops reach the audit topic with the event id


@dataclass(frozen=True)
class RawTopics:
    usage: str
    device: str
    consent: str

    def of(self, kind: str) -> str:
        return self.usage if kind == "usage" else self.device


@dataclass
class Bench:
    """Run-wide settings and the bookkeeping every phase shares."""

    bootstrap: str
    run_id: str
    workdir: Path
    partitions: int
    min_rate: float  # events/s below which a phase is declared stuck (scales the time budget)
    sinks: list[str] = field(default_factory=list)
    broker_pid: int | None = None  # the local broker's, for its CPU share (None: not local)
    children: list[Child] = field(default_factory=list)
    log: Any = print

    def __post_init__(self) -> None:
        self.sinks = sorted(p.stem for p in (REPO / "config" / "sinks").glob("*.yaml"))

    def topic(self, base: str, label: str = "") -> str:
        return f"{base}.bench-{self.run_id}" + (f".{label}" if label else "")

    def budget(self, events: float) -> float:
        return 120.0 + events / self.min_rate

    def stop(self, children: Sequence[Child]) -> None:
        """SIGTERM all first, then wait for each (the workers shut down in parallel)."""
        for child in children:
            if child.alive():
                child.popen.terminate()
        for child in children:
            child.stop(timeout=30)
            if child in self.children:
                self.children.remove(child)

    def stop_all(self) -> None:
        self.stop(list(self.children))

    async def raw_topics(self, label: str, consent: str) -> RawTopics:
        raw = RawTopics(
            self.topic("events.usage.raw", label), self.topic("events.device.raw", label), consent
        )
        await workload.create_topics(self.bootstrap, [raw.usage, raw.device], self.partitions)
        return raw


# The gateway.


@dataclass
class GatewayGroup:
    """One or more `gateway run` workers sharing an app id and a config."""

    app_id: str
    topics: dict[str, str]
    keys: dict[str, bytes]
    workers: list[Monitored]

    @property
    def pids(self) -> list[int]:
        return [w.child.pid for w in self.workers]


async def start_gateway(bench: Bench, raw: RawTopics, label: str, workers: int = 1) -> GatewayGroup:
    root = bench.workdir / label
    config_dir = root / "config"
    app_id = f"bench-{bench.run_id}-{label}"
    topics = {
        "usage_raw": raw.usage, "device_raw": raw.device, "consent": raw.consent,
        "dlq": bench.topic("gateway.dlq", label), "audit": bench.topic("gateway.audit", label),
    }  # fmt: skip
    sink_topics = {sink: bench.topic(f"sink.{sink}", label) for sink in bench.sinks}
    await workload.create_topics(
        bench.bootstrap, [topics["audit"], *sink_topics.values()], bench.partitions, log_append=True
    )
    shutil.copytree(REPO / "config" / "sinks", config_dir / "sinks", dirs_exist_ok=True)
    settings = yaml.safe_load((REPO / "config" / "gateway.yaml").read_text())
    settings["topics"] = topics
    (config_dir / "gateway.yaml").write_text(yaml.safe_dump(settings))
    for sink, topic in sink_topics.items():
        path = config_dir / "sinks" / f"{sink}.yaml"
        rule = yaml.safe_load(path.read_text())
        rule["topic"] = topic
        path.write_text(yaml.safe_dump(rule))
    keys = {sink: os.urandom(32) for sink in bench.sinks}
    env = {
        "KAFKA_BOOTSTRAP": bench.bootstrap,
        "GATEWAY_CONFIG_DIR": str(config_dir),
        "GATEWAY_APP_ID": app_id,
        "GATEWAY_PARTITIONS": str(bench.partitions),
        "GATEWAY_LOG_LEVEL": "warning",
        "PYTHONUNBUFFERED": "1",
    }
    for sink, key in keys.items():
        env[env_name(sink)] = f"bench-{sink}:{base64.b64encode(key).decode()}"
    group = GatewayGroup(app_id, {**topics, **sink_topics}, keys, [])
    for n in range(workers):
        port = free_port()
        child = Child(
            [sys.executable, "-m", "topologies.cli", "run"],
            log=root / f"worker-{n}.log", cwd=root, name=f"gateway worker {label}/{n}",
            env={**env, "GATEWAY_METRICS_PORT": str(port)},
        )  # fmt: skip
        bench.children.append(child)
        group.workers.append(Monitored(child, port, GATEWAY_COUNTER))
    for worker in group.workers:
        await worker.wait_metrics(within=120)
    return group


async def wait_consent_loaded(group: GatewayGroup, subjects: int, within: float) -> float:
    """Until the workers' consent tables hold `subjects` entries; returns the seconds it took.

    That also says each worker has been assigned its partitions (the consent feed reads the
    consent partitions whose numbers faust assigned to it for the raw topics).

    `gateway_consent_subjects` is refreshed by a 2 s timer in the worker, so this resolves to
    about 2 s.
    """
    started = time.monotonic()
    deadline = started + within
    while time.monotonic() < deadline:
        have = sum(w.gauge("gateway_consent_subjects") for w in group.workers)
        if have >= subjects:
            return time.monotonic() - started
        for w in group.workers:
            w.child.check_alive()
        await asyncio.sleep(0.25)
    raise BenchError(f"the consent table did not reach {subjects} subjects in {within:.0f}s")


async def gateway_throughput(
    bench: Bench, raw: RawTopics, total: int, consents: int, label: str, workers: int = 1
) -> Window:
    """On the pre-loaded topics; the window opens once the whole consent topic has been read."""
    group = await start_gateway(bench, raw, label, workers)
    try:
        return await measure_window(
            group.workers, total, within=bench.budget(total), broker_pid=bench.broker_pid,
            gate=("gateway_consent_records_total", consents),
        )  # fmt: skip
    finally:
        bench.stop([w.child for w in group.workers])


async def gateway_live_throughput(
    bench: Bench, consent: str, consents: int, templates: Sequence[workload.Template],
    label: str, workers: int,
) -> Window:  # fmt: skip
    """Throughput of `workers` workers that all hold their partitions before the events arrive.

    Workers do not start in step: on pre-loaded topics the first to join would take every
    partition and process a good part of the load before the other joins. So here the raw
    topics are empty until every worker is ready and its share of the consent table is loaded;
    then the events are produced as fast as possible (~65k/s, well above the gateway's rate)
    and the window is measured as usual.
    """
    raw = await bench.raw_topics(label, consent)
    group = await start_gateway(bench, raw, label, workers)
    try:
        await wait_consent_loaded(group, consents, bench.budget(consents / 10))
        deadline = time.monotonic() + 60
        while not all(w.gauge("gateway_consent_subjects") > 0 for w in group.workers):
            if time.monotonic() > deadline:
                raise BenchError(f"{label}: a worker never got a share of the consent table")
            await asyncio.sleep(0.25)
        stamp = workload.rfc3339_ms(int(time.time() * 1000)).encode()
        records = (
            (raw.of(t.kind), t.key, t.fill(stamp, b"%s-%d" % (label.encode(), i)))
            for i, t in enumerate(templates)
        )
        loading = asyncio.create_task(workload.produce_all(bench.bootstrap, records))
        window = await measure_window(
            group.workers, len(templates), within=bench.budget(len(templates)),
            broker_pid=bench.broker_pid,
        )  # fmt: skip
        await loading
        return window
    finally:
        bench.stop([w.child for w in group.workers])


# The baseline.


def passthrough_tuning() -> list[str]:
    """The gateway's own batch, linger, batch-size and commit settings, for the baseline."""
    t = Tuning()
    return [
        "--max-records", str(t.batch_max), "--linger-ms", str(t.linger_ms),
        "--max-batch-bytes", str(t.max_batch_bytes), "--commit-interval", str(t.commit_interval),
    ]  # fmt: skip


async def start_passthrough(
    bench: Bench, raw: RawTopics, label: str
) -> tuple[Monitored, list[str]]:
    outputs = [bench.topic("passthrough.out", f"{label}.{i}") for i in range(len(bench.sinks))]
    await workload.create_topics(bench.bootstrap, outputs, bench.partitions, log_append=True)
    port = free_port()
    root = bench.workdir / label
    root.mkdir(parents=True, exist_ok=True)
    child = Child(
        [
            sys.executable, "-m", "benchmarks.passthrough", "--bootstrap", bench.bootstrap,
            "--inputs", raw.usage, raw.device, "--outputs", *outputs,
            "--group", f"bench-{bench.run_id}-{label}", "--metrics-port", str(port),
            *passthrough_tuning(),
        ],
        log=root / "passthrough.log", cwd=REPO, name=f"passthrough {label}",
        env={"PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    bench.children.append(child)
    proc = Monitored(child, port, COUNTER)
    await proc.wait_metrics(within=60)
    return proc, outputs


async def baseline_throughput(bench: Bench, raw: RawTopics, total: int, label: str) -> Window:
    proc, _ = await start_passthrough(bench, raw, label)
    try:
        return await measure_window(
            [proc], total, within=bench.budget(total), broker_pid=bench.broker_pid
        )
    finally:
        bench.stop([proc.child])


# Latency at a fixed offered load.


@dataclass(frozen=True)
class LatencyResult:
    offered_rate: float  # what was asked
    sent_rate: float  # what the producer achieved
    events: int
    measured: int  # events with at least one output seen
    p50_ms: float
    p99_ms: float
    max_ms: float
    drain_seconds: float  # from the last send to the last record consumed
    load: dict[str, float]  # cores used while the load was offered (procs.LoadMeter)


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of unsorted values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, round(q / 100 * len(ordered) + 0.5 - 1e-9))
    return ordered[min(rank, len(ordered)) - 1]


async def offered_load(
    bench: Bench, raw: RawTopics, templates: Sequence[workload.Template], rate: float,
    seconds: float, prefix: bytes, warmup: float = 1.0,
) -> tuple[dict[bytes, float], float, int]:  # fmt: skip
    """Produce at `rate` events/s for `seconds`, occurred_at = send time; return send times.

    The first `warmup` seconds of the same load are sent but not returned: they take the
    one-time costs (metadata of new topics, first fetches, connections) out of the figures.
    Returns the send time of each measured event by id, the achieved rate, and the number of
    events produced (warm-up included).
    """
    warm = int(rate * warmup)
    count = warm + max(1, int(rate * seconds))
    sent_at: dict[bytes, float] = {}
    producer = workload.producer(bench.bootstrap)
    await producer.start()
    try:
        for topic in (raw.usage, raw.device):
            await producer.partitions_for(topic)  # metadata before the clock runs
        started = time.monotonic()
        i = 0
        pool = len(templates)
        while i < count:
            due = min(count, int(rate * (time.monotonic() - started)) + 1)
            now = time.time()
            stamp = workload.rfc3339_ms(int(now * 1000)).encode()
            while i < due:
                template = templates[i % pool]
                event_id = b"%s-%d" % (prefix, i)
                await producer.send(
                    raw.of(template.kind), template.fill(stamp, event_id), key=template.key
                )
                if i >= warm:
                    sent_at[event_id] = now
                i += 1
            await asyncio.sleep(0.002)
        elapsed = time.monotonic() - started
        await producer.flush()
    finally:
        await producer.stop()
    return sent_at, count / elapsed if elapsed > 0 else rate, count


async def wait_consumed(procs: Sequence[Monitored], total: int, within: float) -> float:
    started = time.monotonic()
    while sum(p.consumed() for p in procs) < total:
        if time.monotonic() - started > within:
            raise BenchError(
                f"{procs[0].child.name}: {total} records not consumed in {within:.0f}s"
            )
        for p in procs:
            p.child.check_alive()
        await asyncio.sleep(0.1)
    return time.monotonic() - started


async def partitions_of(bootstrap: str, topics: Sequence[str]) -> list[TopicPartition]:
    counts = await describe_partitions(bootstrap, topics)
    return [TopicPartition(t, p) for t in topics for p in range(counts.get(t, 0))]


async def read_all(bootstrap: str, topics: Sequence[str]) -> list[Any]:
    """Every record of the topics, from the beginning to the end offsets seen at the start."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, max_poll_records=5000
    )
    await consumer.start()
    try:
        tps = await partitions_of(bootstrap, topics)
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        records: list[Any] = []
        remaining = {tp for tp, end in ends.items() if end > 0}
        while remaining:
            batch = await consumer.getmany(timeout_ms=500)
            for tp, messages in batch.items():
                records.extend(messages)
                if messages and messages[-1].offset + 1 >= ends[tp]:
                    remaining.discard(tp)
        return records
    finally:
        await consumer.stop()


def latency_of(sent_at: dict[bytes, float], records: Sequence[Any]) -> list[float]:
    """Per event: the broker append time of its last observed output minus its send time (ms)."""
    last: dict[bytes, int] = {}
    for record in records:
        event_id: bytes | None = None  # in the body: analytics keeps it, audit records carry it
        if record.value is not None:
            found = orjson.loads(record.value).get("event_id")
            event_id = found.encode() if isinstance(found, str) else None
        if event_id is not None and event_id in sent_at:
            last[event_id] = max(last.get(event_id, 0), record.timestamp)
    return [ts - sent_at[eid] * 1000 for eid, ts in last.items()]


def summarise(
    sent_at: dict[bytes, float], records: Sequence[Any], rate: float, sent_rate: float,
    drain: float, load: dict[str, float],
) -> LatencyResult:  # fmt: skip
    lat = latency_of(sent_at, records)
    return LatencyResult(
        offered_rate=rate, sent_rate=sent_rate, events=len(sent_at), measured=len(lat),
        p50_ms=percentile(lat, 50), p99_ms=percentile(lat, 99), max_ms=max(lat, default=0.0),
        drain_seconds=drain, load=load,
    )  # fmt: skip


async def baseline_latency(
    bench: Bench, consent: str, templates: Sequence[workload.Template], rate: float,
    seconds: float, label: str,
) -> LatencyResult:  # fmt: skip
    raw = await bench.raw_topics(label, consent)
    proc, outputs = await start_passthrough(bench, raw, label)
    try:
        deadline = time.monotonic() + 60
        while proc.gauge(ASSIGNED) < 2 * bench.partitions:
            if time.monotonic() > deadline:
                raise BenchError("the passthrough was never assigned its partitions")
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)
        meter = LoadMeter([proc.child.pid], bench.broker_pid)
        sent_at, sent_rate, total = await offered_load(
            bench, raw, templates, rate, seconds, label.encode()
        )
        load = meter.cores()
        drain = await wait_consumed([proc], total, bench.budget(len(sent_at)))
    finally:
        bench.stop([proc.child])
    records = await read_all(bench.bootstrap, outputs)
    return summarise(sent_at, records, rate, sent_rate, drain, load)


async def gateway_latency(
    bench: Bench, consent: str, consent_subjects: int, templates: Sequence[workload.Template],
    rate: float, seconds: float, label: str, probes: int,
) -> tuple[LatencyResult, list[float]]:  # fmt: skip
    """Latency at the offered load, then consent propagation probes on the same worker."""
    raw = await bench.raw_topics(label, consent)
    group = await start_gateway(bench, raw, label)
    observed = [group.topics[LATENCY_SINK], group.topics["audit"]]
    try:
        await wait_consent_loaded(group, consent_subjects, bench.budget(consent_subjects / 10))
        await asyncio.sleep(0.5)
        meter = LoadMeter(group.pids, bench.broker_pid)
        sent_at, sent_rate, total = await offered_load(
            bench, raw, templates, rate, seconds, label.encode()
        )
        load = meter.cores()
        drain = await wait_consumed(group.workers, total, bench.budget(len(sent_at)))
        propagation = await consent_probes(bench, raw, observed, label, probes)
    finally:
        bench.stop([w.child for w in group.workers])
    records = await read_all(bench.bootstrap, observed)
    return summarise(sent_at, records, rate, sent_rate, drain, load), propagation


# Consent propagation.


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
                under_13=False, parental_consent=False, source="bench-probe",
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


# Memory with a large consent table.


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


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")

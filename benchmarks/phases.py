"""The benchmark's processes and throughput phases: the gateway, the passthroughs, the broker.

Every repetition gets its own output topics and a fresh gateway app id (or baseline group id),
so it reads the pre-loaded raw topics from offset 0 and writes to empty topics, which are
deleted when the repetition ends (the broker does not carry them into the next window).
"""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from benchmarks import brokerperf, latency, workload
from benchmarks.passthrough import COUNTER
from benchmarks.procs import BenchError, Child, Monitored, Window, measure_timed, measure_window
from devtools.local_broker import free_port
from gateway.keys import env_name
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
    cleanups: list[asyncio.Task[None]] = field(default_factory=list)
    log: Any = print

    def __post_init__(self) -> None:
        self.sinks = sorted(p.stem for p in (REPO / "config" / "sinks").glob("*.yaml"))

    def topic(self, base: str, label: str = "") -> str:
        return f"{base}.bench-{self.run_id}" + (f".{label}" if label else "")

    # Throughput windows: time box (s) and least events; the pre-loaded events available.
    window_seconds: float = 20.0
    window_events: int = 200_000
    preloaded: int = 0

    def budget(self, events: float) -> float:
        return 120.0 + events / self.min_rate

    async def drop_topics(self, label: str) -> None:
        """Delete a repetition's topics in the background (best effort): the broker does not
        carry them into later windows, and the run does not wait for the admin round trips."""

        async def drop() -> None:
            try:
                marker = f"bench-{self.run_id}.{label}"
                await workload.delete_topics_containing(self.bootstrap, marker)
            except Exception as exc:  # cleanup is best effort
                self.log(f"  could not delete the topics of {label}: {exc!r}")

        self.cleanups.append(asyncio.create_task(drop()))

    async def cleaned(self) -> None:
        """Wait for the background deletions."""
        while self.cleanups:
            await self.cleanups.pop()

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

    def check(self) -> None:
        for worker in self.workers:
            worker.child.check_alive()


async def start_gateway(
    bench: Bench, raw: RawTopics, label: str, workers: int = 1, *, gc_log: bool = False
) -> GatewayGroup:
    """`workers` workers with one app id; `gc_log`: under `benchmarks.gcprobe` (gc.log)."""
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
        "PYTHONPATH": str(REPO),
    }
    for sink, key in keys.items():
        env[env_name(sink)] = f"bench-{sink}:{base64.b64encode(key).decode()}"
    group = GatewayGroup(app_id, {**topics, **sink_topics}, keys, [])
    for n in range(workers):
        port = free_port()
        probe = ["benchmarks.gcprobe", str(root / f"gc-{n}.log")] if gc_log else []
        child = Child(
            [sys.executable, "-m", *probe, "topologies.cli", "run"],
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
    bench: Bench, raw: RawTopics, consents: int, label: str, workers: int = 1
) -> Window:
    """On the pre-loaded topics; the window opens once the whole consent topic has been read."""
    group = await start_gateway(bench, raw, label, workers)

    async def count() -> tuple[float, ...]:
        return tuple(w.consumed() for w in group.workers)

    async def ready() -> bool:
        return sum(w.gauge("gateway_consent_records_total") for w in group.workers) >= consents

    try:
        return await timed(bench, count, group.pids, ready=ready, check=group.check)
    finally:
        bench.stop([w.child for w in group.workers])
        await bench.drop_topics(label)


async def timed(
    bench: Bench, count: Any, pids: Sequence[int], *, time_box_only: bool = False, **kw: Any
) -> Window:
    """The run's throughput window; `time_box_only`: closes at the time box whatever the count."""
    return await measure_timed(
        count, pids, seconds=bench.window_seconds,
        min_events=0 if time_box_only else bench.window_events,
        available=bench.preloaded, within=bench.budget(bench.preloaded), warmup=0.5,
        max_seconds=1.5 * bench.window_seconds,
        broker_pid=bench.broker_pid, **kw,
    )  # fmt: skip


# The baselines.

PASSTHROUGHS = {
    "batch": ["-m", "benchmarks.passthrough", "--mode", "batch"],
    "per-record": ["-m", "benchmarks.passthrough", "--mode", "per-record"],
    "confluent": ["-m", "benchmarks.passthrough_ck"],
}


def passthrough_tuning() -> list[str]:
    """The gateway's own batch, linger, batch-size, commit and in-flight settings."""
    t = Tuning()
    return [
        "--max-records", str(t.batch_max), "--linger-ms", str(t.linger_ms),
        "--max-batch-bytes", str(t.max_batch_bytes), "--commit-interval", str(t.commit_interval),
        "--max-inflight", str(t.max_inflight),
    ]  # fmt: skip


async def start_passthrough(
    bench: Bench, raw: RawTopics, label: str, kind: str = "batch"
) -> tuple[Monitored, list[str]]:
    """A passthrough process (`PASSTHROUGHS`) copying the raw topics to 3 fresh output topics."""
    outputs = [bench.topic("passthrough.out", f"{label}.{i}") for i in range(len(bench.sinks))]
    await workload.create_topics(bench.bootstrap, outputs, bench.partitions, log_append=True)
    port = free_port()
    root = bench.workdir / label
    root.mkdir(parents=True, exist_ok=True)
    child = Child(
        [
            sys.executable, *PASSTHROUGHS[kind], "--bootstrap", bench.bootstrap,
            "--inputs", raw.usage, raw.device, "--outputs", *outputs,
            "--group", f"bench-{bench.run_id}-{label}", "--metrics-port", str(port),
            *passthrough_tuning(),
        ],
        log=root / "passthrough.log", cwd=REPO, name=f"passthrough {kind} {label}",
        env={"PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    bench.children.append(child)
    proc = Monitored(child, port, COUNTER)
    await proc.wait_metrics(within=60)
    return proc, outputs


async def baseline_throughput(bench: Bench, raw: RawTopics, label: str, kind: str) -> Window:
    proc, _ = await start_passthrough(bench, raw, label, kind)

    async def count() -> tuple[float, ...]:
        return (proc.consumed(),)

    try:
        return await timed(
            bench, count, [proc.child.pid], check=proc.child.check_alive,
            time_box_only=kind == "per-record",  # kept for reference: the time box suffices
        )  # fmt: skip
    finally:
        bench.stop([proc.child])
        await bench.drop_topics(label)


# The broker's ceiling.


@dataclass(frozen=True)
class BrokerCeiling:
    produce: Window  # records acknowledged per second by ProducerPerformance (acks=all)
    consume: brokerperf.ConsumeResult  # ConsumerPerformance over what was produced
    events_per_s: float  # brokerperf.ceiling of the two


async def broker_ceiling(bench: Bench, payloads: Path, label: str) -> BrokerCeiling:
    """One producer-perf tool, then consumer-perf over what it wrote.

    One JVM, not one per output topic: on the 2-core machine three JVMs starve each other (three
    tools together acknowledged fewer records/s than one did).
    """
    t = Tuning()
    topics = [bench.topic("perf", f"{label}.0")]
    try:
        produced = await brokerperf.produce_window(
            bench.bootstrap, topics, bench.partitions, payloads, bench.workdir,
            seconds=bench.window_seconds, min_events=bench.window_events,
            linger_ms=t.linger_ms, batch_bytes=t.max_batch_bytes, broker_pid=bench.broker_pid,
        )  # fmt: skip
        total = await brokerperf.end_offsets_total(bench.bootstrap, topics[0], bench.partitions)
        consumed = await brokerperf.consume_all(
            bench.bootstrap, topics[0], min(total, bench.window_events + 50_000), bench.workdir,
            f"bench-{bench.run_id}-{label}",
        )  # fmt: skip
    finally:
        await bench.drop_topics(label)
    return BrokerCeiling(produced, consumed, brokerperf.ceiling(produced.rate, consumed.rate))


async def gateway_live_throughput(
    bench: Bench, consent: str, consents: int, templates: Sequence[workload.Template],
    count: int, label: str, workers: int,
) -> Window:  # fmt: skip
    """Throughput of `workers` workers that all hold their partitions before the events arrive.

    Workers do not start in step: on pre-loaded topics the first to join would take every
    partition and process a good part of the load before the other joins. So here the raw
    topics are empty until every worker is ready and its share of the consent table is loaded;
    then the events are produced as fast as librdkafka takes them (well above the gateway's rate)
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
        pool = len(templates)
        records = (
            (raw.of(t.kind), t.key, t.fill(stamp, b"%s-%d" % (label.encode(), i)))
            for i, t in ((i, templates[i % pool]) for i in range(count))
        )
        loading = asyncio.create_task(latency.produce_fast(bench.bootstrap, records))
        window = await measure_window(
            group.workers, count, within=bench.budget(count),
            broker_pid=bench.broker_pid,
        )  # fmt: skip
        await loading
        return window
    finally:
        bench.stop([w.child for w in group.workers])
        await bench.drop_topics(label)

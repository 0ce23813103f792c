"""The consent table's two stores, measured: memory and RocksDB (rocksdict), at 1M and 10M subjects.

    python -m benchmarks.store [--subjects 1000000 10000000] [--stores memory rocksdb]
                               [--repeat 3] [--keep]     (KAFKA_BOOTSTRAP: the broker)

For each subject count, on topics of its own (reused by later runs: loading 10M records takes
a while):

1. **Changelog.** The table's changelog topic (`bench-store-<n>-consent-changelog`, compacted)
   gets one record per subject, key `m-%09d` (as `benchmarks.workload`), value the packed
   consent int as ASCII of a full grant: the records the consent feed writes. Produced with
   librdkafka's batch API (`produce_batch`, Java's murmur2 partitioner, so the raw probes land
   in the same partition). Reused when it already holds as many records.
2. **Cold start** (per store): local state wiped, `gateway run --demo` started; the time from
   the spawn to the first raw event decided (the reader resumes only once faust restored the
   table, so the first decision means the whole table is there). A probe event of a loaded
   subject is produced every 0.2 s. Then 20,000 events of random loaded subjects go through,
   the worker's `gateway_consent_subjects` is read, and its peak RSS (`VmHWM`) taken before
   SIGTERM.
3. **Warm restart** (per store): 10,000 changelog records (a tail, rewriting the first
   subjects) are appended, and the worker restarted on the local state kept. The memory store
   has none, so for it this is a second cold start. Faust's "Reading Starts At" and highwater
   tables are kept from the log: with RocksDB, recovery starts at the persisted offsets and
   reads only the tail.
4. **Lookups**, in this process, over the real store: the RocksDB DBs the worker left (opened
   through faust's store and the gateway's adapter, as the worker does), and a memory store
   filled with the same subjects. The hot path's function `ConsentLookup.in_partition` (the
   record's partition, no scan) per event, and `many_in_partition` (RocksDB multi-get) per
   batch of 500 subjects of one partition. Each repetition looks up 100,000 subjects drawn
   uniformly from all (no locality: the worst case for a cache), after one warm-up; the median
   of `--repeat` repetitions is reported, hits and misses (unknown subjects) apart, as CPU
   time of the looking-up thread (`time.thread_time`: the cost, less inflated by other
   processes on a shared machine) and as wall time.

Results go to stdout as JSON lines and to `store-results.json` (`--out`). Times are wall time on
a shared machine: the 1-minute load average is recorded with each figure. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import shutil
import statistics
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import rocksdict
import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.partitioner import murmur2

from devtools.local_broker import free_port
from devtools.processes import Child
from gateway.config import load_config
from gateway.consent import ConsentUpdate, apply_consent, parse_consent
from gateway.consent_state import PURPOSES
from topologies.admin import TopicSpec, ensure_topics
from topologies.app import Tuning, make_faust_app
from topologies.faust_adapter import ConsentLookup, ConsentStoreConfig, consent_table_view
from topologies.worker import prepare_topics

REPO = Path(__file__).resolve().parents[1]
PARTITIONS = 6
TAIL = 10_000  # changelog records appended before a warm restart
BURST = 20_000  # events of random subjects after the worker is enforcing
SAMPLE = 100_000  # lookups per repetition
BATCH = 500  # subjects per multi-get (a 2,000-record batch spread over partitions)


def subject(index: int) -> bytes:
    return b"m-%09d" % index


def granted_value() -> bytes:
    """The packed consent of a full grant, as the consent feed writes it to the changelog."""
    record = orjson.dumps({
        "subject_id": "m-000000000", "updated_at": "2026-11-26T12:00:00Z",
        "purposes": dict.fromkeys(PURPOSES, True),
        "age": {"under_13": False, "parental_consent": False}, "source": "bench",
    })  # fmt: skip
    update = parse_consent(record, b"m-000000000")
    assert isinstance(update, ConsentUpdate)
    state, _ = apply_consent(None, update)
    assert state is not None
    return b"%d" % state


def partition_of(key: bytes, partitions: int) -> int:
    """The partition Java's (and aiokafka's, and librdkafka's murmur2) partitioner picks."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def loadavg() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def peak_rss_mib(pid: int) -> float:
    """`VmHWM` of a live process, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


def scrape(port: int) -> dict[str, float]:
    """The worker's /metrics, summed per metric name (labels dropped)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    sums: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name = re.split(r"[{ ]", line, maxsplit=1)[0]
            sums[name] = sums.get(name, 0.0) + float(line.rsplit(" ", 1)[1])
    return sums


@dataclass
class Setup:
    """One subject count's topics, config, app id and state directories."""

    bootstrap: str
    subjects: int
    root: Path

    @property
    def app_id(self) -> str:
        return f"bench-store-{self.subjects}"

    @property
    def changelog(self) -> str:
        return f"{self.app_id}-consent-changelog"

    @property
    def config_dir(self) -> Path:
        return self.root / f"config-{self.subjects}"

    def topic(self, name: str) -> str:
        return f"{name}.store-{self.subjects}"

    def state_dir(self, store: str) -> Path:
        return self.root / f"state-{store}-{self.subjects}"

    async def prepare(self) -> None:
        """The config with this count's topics, the topics, the changelog topic."""
        shutil.copytree(REPO / "config" / "sinks", self.config_dir / "sinks", dirs_exist_ok=True)
        settings = yaml.safe_load((REPO / "config" / "gateway.yaml").read_text())
        names = {
            "usage_raw": "events.usage.raw", "device_raw": "events.device.raw",
            "consent": "consent.state", "dlq": "gateway.dlq", "audit": "gateway.audit",
            "erasure": "gateway.erasure",
        }  # fmt: skip
        settings["topics"] = {key: self.topic(name) for key, name in names.items()}
        (self.config_dir / "gateway.yaml").write_text(yaml.safe_dump(settings))
        for path in (self.config_dir / "sinks").glob("*.yaml"):
            rule = yaml.safe_load(path.read_text())
            rule["topic"] = self.topic(rule["topic"])
            path.write_text(yaml.safe_dump(rule))
        await prepare_topics(self.bootstrap, load_config(self.config_dir), PARTITIONS)
        await ensure_topics(self.bootstrap, [TopicSpec(self.changelog, PARTITIONS, True)])

    async def changelog_records(self) -> int:
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap)
        await consumer.start()
        try:
            tps = [TopicPartition(self.changelog, p) for p in range(PARTITIONS)]
            return sum((await consumer.end_offsets(tps)).values())
        finally:
            await consumer.stop()


def produce(bootstrap: str, topic: str, keys: range, value: bytes) -> float:
    """Produce `subject(i): value` for every i in `keys` with librdkafka's batch API; seconds."""
    from confluent_kafka import Producer

    producer = Producer({
        "bootstrap.servers": bootstrap, "partitioner": "murmur2_random", "linger.ms": 100,
        "batch.size": 1_000_000, "acks": "all",  # no compression: aiokafka has no lz4 here
        "queue.buffering.max.messages": 2_000_000, "queue.buffering.max.kbytes": 1_048_576,
    })  # fmt: skip
    started = time.monotonic()
    chunk = 50_000
    for first in range(keys.start, keys.stop, chunk):
        pending = [
            {"key": subject(i), "value": value} for i in range(first, min(first + chunk, keys.stop))
        ]
        while pending:
            with contextlib.suppress(BufferError):  # the queue is full: poll, retry the rest
                producer.produce_batch(topic, pending)
            pending = [m for m in pending if "_error" in m]
            for message in pending:
                del message["_error"]
            producer.poll(0.05 if pending else 0)
    left = producer.flush(300)
    if left:
        raise RuntimeError(f"{left} changelog records were not acknowledged")
    return time.monotonic() - started


@dataclass
class Run:
    """One worker run: from spawn to enforcing, its peak RSS, what it restored."""

    store: str
    kind: str  # cold | warm
    enforcing_s: float
    peak_rss_mib: float
    subjects_reported: float
    decided: float
    load: float
    recovery_log: list[str]


async def run_worker(setup: Setup, store: str, *, kind: str) -> Run:
    """Start a worker, wait until it decides events, send a burst, take its peak RSS, stop it."""
    state = setup.state_dir(store)
    if kind == "cold":
        shutil.rmtree(state, ignore_errors=True)
    port = free_port()
    env = {
        "KAFKA_BOOTSTRAP": setup.bootstrap, "GATEWAY_CONFIG_DIR": str(setup.config_dir),
        "GATEWAY_APP_ID": setup.app_id, "GATEWAY_METRICS_PORT": str(port),
        "GATEWAY_PARTITIONS": str(PARTITIONS), "GATEWAY_CONSENT_STORE": store,
        "GATEWAY_CONSENT_STORE_DIR": str(state), "GATEWAY_LOG_LEVEL": "info",
        "PYTHONUNBUFFERED": "1",
    }  # fmt: skip
    log = setup.root / f"worker-{store}-{setup.subjects}-{kind}.log"
    producer = AIOKafkaProducer(bootstrap_servers=setup.bootstrap, linger_ms=5)
    await producer.start()
    usage = setup.topic("events.usage.raw")
    rng = random.Random(11)
    started = time.monotonic()
    child = Child([sys.executable, "-m", "topologies.cli", "run", "--demo"], log, env, name=store)
    try:
        seq = 0
        decided = 0.0
        while decided < 1:
            child.check_alive()
            if time.monotonic() - started > 1800:
                raise RuntimeError(f"{store} {kind}: not enforcing after 30 min:\n{child.tail()}")
            seq += 1
            index = rng.randrange(setup.subjects)
            await producer.send(usage, probe(index, seq), key=subject(index))
            await asyncio.sleep(0.2)
            try:
                decided = scrape(port).get("gateway_events_consumed_total", 0.0)
            except OSError:
                continue
        enforcing = time.monotonic() - started
        load = loadavg()
        for _ in range(BURST):
            seq += 1
            index = rng.randrange(setup.subjects)
            await producer.send(usage, probe(index, seq), key=subject(index))
        await producer.flush()
        deadline = time.monotonic() + 300
        while decided < BURST and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
            decided = scrape(port).get("gateway_events_consumed_total", 0.0)
        await asyncio.sleep(2.5)  # a report of the table's size, offsets persisted
        metrics = scrape(port)
        rss = peak_rss_mib(child.pid)
    finally:
        await producer.stop()
        code = child.stop(timeout=120)
    recovery = [
        line.strip() for line in log.read_text(errors="replace").splitlines()
        if "consent-changelog" in line or "Reading Starts At" in line or "Highwater" in line
    ][:40]  # fmt: skip
    if code != 0:
        print(f"warning: {store} {kind} exited {code}; log {log}", file=sys.stderr)
    return Run(
        store, kind, enforcing, rss, metrics.get("gateway_consent_subjects", 0.0),
        metrics.get("gateway_events_consumed_total", 0.0), load, recovery,
    )  # fmt: skip


def probe(index: int, seq: int) -> bytes:
    return orjson.dumps({
        "event_id": f"store-probe-{seq}", "subject_id": subject(index).decode(),
        "occurred_at": "2026-11-26T12:00:00Z", "event_type": "page_view",
        "page": "https://www.example.com/pricing",
    })  # fmt: skip


def sample(subjects: int, count: int, seed: int, *, miss: bool = False) -> list[tuple[str, int]]:
    """`count` (subject id, partition) drawn uniformly; `miss`: ids the table does not hold."""
    rng = random.Random(seed)
    keys = [
        (b"x-%09d" if miss else b"m-%09d") % rng.randrange(subjects) for _ in range(count)
    ]  # fmt: skip
    return [(key.decode(), partition_of(key, PARTITIONS)) for key in keys]


Timing = tuple[float, float, int]  # CPU µs per lookup (this thread), wall µs, found


def time_single(lookup: ConsentLookup, keys: list[tuple[str, int]]) -> Timing:
    """µs per lookup of `in_partition` over `keys` (CPU of this thread, wall), and found."""
    in_partition = lookup.in_partition
    found = 0
    cpu, wall = time.thread_time(), time.perf_counter()
    for subject_id, partition in keys:
        if in_partition(subject_id, partition) is not None:
            found += 1
    cpu, wall = time.thread_time() - cpu, time.perf_counter() - wall
    return cpu / len(keys) * 1e6, wall / len(keys) * 1e6, found


def time_batched(lookup: ConsentLookup, keys: list[tuple[str, int]]) -> Timing:
    """µs per subject of `many_in_partition`, `BATCH` subjects of one partition per call."""
    per_partition: dict[int, list[str]] = {}
    for subject_id, partition in keys:
        per_partition.setdefault(partition, []).append(subject_id)
    batches = [
        (ids[i : i + BATCH], partition)
        for partition, ids in per_partition.items()
        for i in range(0, len(ids), BATCH)
    ]
    many = lookup.many_in_partition
    found = 0
    cpu, wall = time.thread_time(), time.perf_counter()
    for ids, partition in batches:
        found += sum(1 for value in many(ids, partition) if value is not None)
    cpu, wall = time.thread_time() - cpu, time.perf_counter() - wall
    return cpu / len(keys) * 1e6, wall / len(keys) * 1e6, found


def measure_lookups(lookup: ConsentLookup, subjects: int, repeat: int) -> dict[str, Any]:
    """Medians over `repeat` fresh uniform samples (after one warm-up) of each way of looking up."""
    time_single(lookup, sample(subjects, SAMPLE, 0))  # warm-up
    figures: dict[str, list[float]] = {}
    walls: dict[str, list[float]] = {}
    found: dict[str, int] = {}
    for rep in range(repeat):
        hits, misses = sample(subjects, SAMPLE, rep + 1), sample(subjects, SAMPLE, rep, miss=True)
        for name, timer, keys in (
            ("single_hit", time_single, hits), ("single_miss", time_single, misses),
            ("batched_hit", time_batched, hits), ("batched_miss", time_batched, misses),
        ):  # fmt: skip
            cpu, wall, n = timer(lookup, keys)
            figures.setdefault(name, []).append(cpu)
            walls.setdefault(name, []).append(wall)
            found[name] = found.get(name, 0) + n
    result: dict[str, Any] = {
        f"{k}_cpu_us": round(statistics.median(v), 3) for k, v in figures.items()
    }
    result |= {f"{k}_wall_us": round(statistics.median(v), 3) for k, v in walls.items()}
    result["runs_cpu_us"] = {k: [round(x, 3) for x in v] for k, v in figures.items()}
    result["found"] = found
    result["load"] = loadavg()
    return result


def memory_lookups(subjects: int, repeat: int) -> dict[str, Any]:
    """The memory store (faust's, through the adapter) filled with the subjects, looked up."""
    with tempfile.TemporaryDirectory() as scratch:
        tuning = Tuning(consent_store=ConsentStoreConfig("memory", Path(scratch)))
        app, table = make_faust_app("bench-lookup", "127.0.0.1:9", tuning=tuning,
                                    partitions=PARTITIONS, replication=1)  # fmt: skip
        view = consent_table_view(table, tuning.consent_store)
        value = granted_value()
        data = view.in_partition(0)
        for i in range(subjects):
            data[subject(i)] = value
        result = measure_lookups(view.lookup(), subjects, repeat)
        del app, table, view, data
        return result


def rocksdb_lookups(setup: Setup, repeat: int) -> dict[str, Any]:
    """The RocksDB DBs the worker left, opened through faust's store and the adapter."""
    store = ConsentStoreConfig("rocksdb", setup.state_dir("rocksdb"))
    tuning = Tuning(consent_store=store)
    _app, table = make_faust_app(setup.app_id, "127.0.0.1:9", tuning=tuning,
                                partitions=PARTITIONS, replication=1)  # fmt: skip
    view = consent_table_view(table, store)
    for partition in range(PARTITIONS):
        view.in_partition(partition)  # open each, as faust does on assignment
    result = measure_lookups(view.lookup(), setup.subjects, repeat)
    result["subjects_estimate"] = view.size()
    return result


def median_run(runs: list[Run]) -> dict[str, Any]:
    middle = sorted(runs, key=lambda r: r.enforcing_s)[len(runs) // 2]
    return {
        "enforcing_s": round(middle.enforcing_s, 2),
        "runs_s": [round(r.enforcing_s, 2) for r in runs],
        "peak_rss_mib": round(max(r.peak_rss_mib for r in runs)),
        "subjects_reported": middle.subjects_reported,
        "decided": middle.decided,
        "load": [r.load for r in runs],
        "recovery_log": middle.recovery_log,
    }


def seed_rocksdb(setup: Setup) -> dict[str, Any]:
    """What a finished cold start leaves, made fast: the changelog read into the RocksDB store.

    The changelog is read with librdkafka and written through faust's store and the adapter
    (one `WriteBatch` per 100,000 records), and each partition's last offset is persisted as
    faust's recovery does; a warm restart then starts from there. Faust's own recovery applies
    a few thousand records per second on this machine, too slow for 10M (docs/consent-store.md).
    """
    from confluent_kafka import OFFSET_BEGINNING, Consumer
    from confluent_kafka import TopicPartition as KafkaPartition

    state = setup.state_dir("rocksdb")
    shutil.rmtree(state, ignore_errors=True)
    store = ConsentStoreConfig("rocksdb", state)
    _app, table = make_faust_app(setup.app_id, "127.0.0.1:9", tuning=Tuning(consent_store=store),
                                 partitions=PARTITIONS, replication=1)  # fmt: skip
    view = consent_table_view(table, store)
    consumer = Consumer({
        "bootstrap.servers": setup.bootstrap, "group.id": f"{setup.app_id}-seed",
        "enable.auto.commit": False, "fetch.max.bytes": 64 * 1024 * 1024,
    })  # fmt: skip
    started, written = time.monotonic(), 0
    try:
        for partition in range(PARTITIONS):
            _low, high = consumer.get_watermark_offsets(
                KafkaPartition(setup.changelog, partition), timeout=30
            )
            consumer.assign([KafkaPartition(setup.changelog, partition, OFFSET_BEGINNING)])
            db: Any = view.in_partition(partition)
            last = -1
            while last < high - 1:
                batch = rocksdict.WriteBatch(raw_mode=True)
                for message in consumer.consume(100_000, timeout=1.0):
                    if message.error():
                        continue
                    if message.value() is None:
                        batch.delete(message.key())
                    else:
                        batch.put(message.key(), message.value())
                    last = message.offset()
                    written += 1
                db.write(batch)
            view.persist_changelog_offsets({partition: last})
            db.flush()
            db.close()  # the worker opens it next: the lock must be free
    finally:
        consumer.close()
    return {"records": written, "seconds": round(time.monotonic() - started, 1)}


def memory_fill_rss(subjects: int) -> dict[str, Any]:
    """Peak RSS of a process holding faust's memory store of `subjects` (filled, not restored).

    Runs `--fill-memory` in a child process: the gateway's imports, the faust app and its
    memory table, every subject put through the adapter with the changelog's value.
    """
    import subprocess

    started = time.monotonic()
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.store", "--fill-memory", str(subjects)],
        capture_output=True, text=True, check=True, cwd=REPO,
    )  # fmt: skip
    return {**json.loads(out.stdout), "seconds": round(time.monotonic() - started, 1)}


def fill_memory(subjects: int) -> int:
    """The child of `memory_fill_rss`: fill, then print the peak RSS (MiB) as JSON."""
    tuning = Tuning()
    _app, table = make_faust_app("bench-fill", "127.0.0.1:9", tuning=tuning,
                                 partitions=PARTITIONS, replication=1)  # fmt: skip
    view = consent_table_view(table, tuning.consent_store)
    before = peak_rss_mib(os.getpid())
    state = int(granted_value())
    data = view.in_partition(0)
    for i in range(subjects):  # the partition map costs too: faust keeps one per key
        key = subject(i)
        data[key] = b"%d" % (state + (i << 16))  # one value object per subject, as restored
        view.remember_partition(key, i % PARTITIONS)
    peak = peak_rss_mib(os.getpid())
    print(json.dumps({"baseline_mib": round(before), "peak_rss_mib": round(peak),
                      "subjects": view.size()}))  # fmt: skip
    return 0


async def bench_count(
    bootstrap: str,
    subjects: int,
    stores: list[str],
    *,
    repeat: int,
    worker_runs: int,
    root: Path,
    cold_limit: int,
    reuse_state: bool = False,
    tail: int = TAIL,
) -> dict[str, Any]:
    setup = Setup(bootstrap, subjects, root)
    await setup.prepare()
    result: dict[str, Any] = {"subjects": subjects, "partitions": PARTITIONS}
    held = await setup.changelog_records()
    value = granted_value()
    if held >= subjects:
        result["changelog"] = {"reused": held}
    else:
        seconds = produce(bootstrap, setup.changelog, range(subjects), value)
        result["changelog"] = {"produced": subjects, "seconds": round(seconds, 1)}
    emit({"subjects": subjects, "changelog": result["changelog"]})
    runs = worker_runs if subjects <= 1_000_000 else 1
    for store in stores:
        if subjects > cold_limit:  # faust's recovery would take the better part of an hour
            if store == "memory":
                result[store] = {"filled": memory_fill_rss(subjects)}
            else:
                kept = reuse_state and setup.state_dir(store).is_dir()
                result[store] = {"seeded": "kept" if kept else seed_rocksdb(setup)}
                warm = []
                for _ in range(runs):
                    if tail:
                        produce(bootstrap, setup.changelog, range(tail), value)
                    warm.append(await run_worker(setup, store, kind="warm"))
                result[store]["warm"] = median_run(warm)
        else:
            cold = [await run_worker(setup, store, kind="cold") for _ in range(runs)]
            result[store] = {"cold": median_run(cold)}
            emit({"subjects": subjects, "store": store, **result[store]})
            warm = []
            for _ in range(runs):
                # Start the warm run from the state a cold run left (memory: nothing is left).
                if tail:
                    produce(bootstrap, setup.changelog, range(tail), value)
                warm.append(await run_worker(setup, store, kind="warm"))
            result[store]["warm"] = median_run(warm)
        emit({"subjects": subjects, "store": store, **result[store]})
        if store == "rocksdb":
            result[store]["lookups"] = rocksdb_lookups(setup, repeat)
        else:
            result[store]["lookups"] = memory_lookups(subjects, repeat)
        emit({"subjects": subjects, "store": store, "lookups": result[store]["lookups"]})
    return result


def emit(line: dict[str, Any]) -> None:
    print(json.dumps(line), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.store", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    parser.add_argument("--subjects", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--stores", nargs="+", default=["memory", "rocksdb"],
                        choices=["memory", "rocksdb"])  # fmt: skip
    parser.add_argument("--repeat", type=int, default=5, help="repetitions of the lookups")
    parser.add_argument(
        "--runs",
        type=int,
        default=3,
        help="cold and warm worker runs per store up to 1M subjects (10M: one)",
    )
    parser.add_argument("--root", type=Path, default=Path(tempfile.gettempdir()) / "bench-store")
    parser.add_argument("--out", type=Path, default=Path("store-results.json"))
    parser.add_argument(
        "--cold-limit",
        type=int,
        default=1_000_000,
        help="above this many subjects: no faust cold starts (RocksDB seeded "
        "from the changelog, the memory store's RSS measured filled)",
    )
    parser.add_argument(
        "--reuse-state",
        action="store_true",
        help="above --cold-limit: keep a RocksDB state a previous run seeded",
    )
    parser.add_argument(
        "--tail",
        type=int,
        default=TAIL,
        help="changelog records appended before each warm restart (0: a plain "
        "restart, nothing written while the worker was down)",
    )
    parser.add_argument("--fill-memory", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.fill_memory:
        return fill_memory(args.fill_memory)
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP", "127.0.0.1:9092")
    args.root.mkdir(parents=True, exist_ok=True)
    results = []
    for subjects in args.subjects:
        run = bench_count(
            bootstrap, subjects, args.stores, repeat=max(args.repeat, 1),
            worker_runs=max(args.runs, 1), root=args.root, cold_limit=args.cold_limit,
            reuse_state=args.reuse_state, tail=args.tail,
        )  # fmt: skip
        results.append(asyncio.run(run))
        args.out.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

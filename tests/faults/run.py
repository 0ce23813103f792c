"""Running one fault scenario on a real broker: load, faults during the load, drain, check.

A `FaultRun` owns unique topics and a config (through the integration tests' `Stack`), the
workers it starts (each `gateway run` in its own process and working directory), the traffic
it produces, and the records it reads back for the checker.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import time
import urllib.request
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from aiokafka.structs import RecordMetadata

from devtools.local_broker import free_port
from gateway.acls import worker_groups
from gateway.consent_state import PURPOSES
from gateway.keys import pseudonymize
from tests.faults.checker import (
    Coordinates,
    Report,
    Written,
    canary_pattern,
    check,
    joinable,
    leaks_in,
)
from tests.faults.traffic import GRANTED_AT, Plan, Planned, Withdrawal
from tests.integration.procs import Proc
from tests.integration.stack import SINKS, Stack
from topologies.consent_cli import consent_record

Fault = Callable[["FaultRun"], Awaitable[None]]


class FaultRun:
    """One scenario: a stack on unique topics, its workers, its traffic and what it wrote."""

    def __init__(
        self, bootstrap: str, root: Path, plan: Plan, *, rate: float, partitions: int = 3,
        log_level: str = "info",
    ) -> None:  # fmt: skip
        self.bootstrap = bootstrap
        self.root = root
        self.plan = plan
        self.rate = rate  # events per second offered
        self.stack = Stack(bootstrap, root, uuid.uuid4().hex[:8], partitions=partitions)
        self.workers: list[Proc] = []
        self.produced: list[tuple[Planned, Coordinates]] = []
        self.progress = 0.0  # share of the steps produced
        self.faults: list[str] = []
        self.killed: set[int] = set()
        self.crashes: list[str] = []  # workers found dead that no fault had killed
        self.log_level = log_level
        self.metrics_ports: dict[int, int] = {}
        self.exposed: list[str] = []  # /metrics pages scraped before the workers stopped
        self.notes: list[str] = []
        self._producer: AIOKafkaProducer | None = None

    # Workers.

    def workdir(self, index: int) -> Path:
        return self.root / f"worker-{index}-state"

    async def start_worker(self, index: int = 0) -> Proc:
        """Start `gateway run` number `index` (its own metrics port and working directory)."""
        port = self.metrics_ports[index] = free_port()
        env = self.stack.env() | {
            "GATEWAY_METRICS_PORT": str(port), "GATEWAY_LOG_LEVEL": self.log_level,
        }  # fmt: skip
        log = self.root / f"worker-{index}-{len(self.stack.logs)}.log"
        self.stack.logs.append(log)
        workdir = self.workdir(index)
        workdir.mkdir(parents=True, exist_ok=True)
        proc = Proc(self.stack.argv("run"), log, env, name=f"worker {index}", cwd=workdir)
        while len(self.workers) <= index:
            self.workers.append(proc)
        self.workers[index] = proc
        self.killed.discard(index)
        await proc.wait_for_log("Worker ready", timeout=180)
        return proc

    def kill9(self, index: int = 0) -> None:
        self.faults.append(f"kill -9 worker {index} at {self.progress:.0%}")
        self.check_alive(index)
        self.killed.add(index)
        self.workers[index].signal(signal.SIGKILL)
        self.workers[index].stop()  # reaps it and closes its log

    def check_alive(self, index: int) -> None:
        """Record a crash if worker `index` died without a fault killing it."""
        proc = self.workers[index]
        if index not in self.killed and not proc.alive():
            code = proc.popen.returncode
            self.crashes.append(f"worker {index} exited with {code} at {self.progress:.0%}")

    def stop_worker(self, index: int) -> None:
        """SIGTERM worker `index` (a crash before it is recorded)."""
        self.check_alive(index)
        self.killed.add(index)
        self.workers[index].stop()

    def scrape_metrics(self) -> None:
        """Keep each live worker's /metrics page, for the canary scan."""
        for index, proc in enumerate(self.workers):
            if proc.alive():
                url = f"http://127.0.0.1:{self.metrics_ports[index]}/metrics"
                with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=5) as page:
                    self.exposed.append(page.read().decode(errors="replace"))

    def stop_workers(self) -> None:
        for proc in self.workers:
            if proc.alive():
                proc.stop()

    def wipe_state(self, index: int = 0) -> None:
        """Delete worker `index`'s local state (the consent table comes back from Kafka)."""
        shutil.rmtree(self.workdir(index), ignore_errors=True)
        self.faults.append(f"local state of worker {index} wiped at {self.progress:.0%}")

    async def owns_broker(self) -> bool:
        """True when the run's broker is the project's local one (it can be restarted)."""
        from devtools import local_broker

        state = await asyncio.to_thread(local_broker.running_state)  # it probes the broker
        return state is not None and state.bootstrap == self.bootstrap

    async def broker_outage(self, seconds: float) -> None:
        """Stop the local broker, keep it down `seconds`, start it again with its data.

        Only for the project's own broker (`devtools.local_broker`, GATEWAY_STATE_DIR).
        """
        from devtools import local_broker

        self.faults.append(f"broker down {seconds:.0f}s at {self.progress:.0%}")
        started = time.monotonic()
        await asyncio.to_thread(local_broker.restart, down_seconds=seconds)
        self.notes.append(f"broker outage with restart took {time.monotonic() - started:.0f}s")
        for index, proc in enumerate(self.workers):
            if not proc.alive() and index not in self.killed:
                self.notes.append(f"worker {index} exited during the outage")

    # Traffic.

    async def producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            self._producer = AIOKafkaProducer(
                bootstrap_servers=self.bootstrap, acks="all", linger_ms=5,
                request_timeout_ms=300_000, retry_backoff_ms=500,
            )  # fmt: skip
            await self._producer.start()
        return self._producer

    async def setup(self) -> None:
        """Create the topics and publish the initial consent records (acks=all)."""
        await self.stack.create_topics()
        producer = await self.producer()
        topic = self.stack.topics["consent"]
        pending = [await producer.send(topic, value, key=key) for key, value in self.plan.consents]
        await asyncio.gather(*pending)

    async def at(self, share: float) -> None:
        """Until `share` of the traffic has been produced."""
        while self.progress < share:
            await asyncio.sleep(0.05)

    async def produce(self) -> None:
        """Every step at the offered rate; a withdrawal waits for its acknowledgement first.

        A send the broker refused (an outage) is sent again afterwards until acknowledged; a
        record that was written before the refusal then appears twice in its raw topic.
        """
        producer = await self.producer()
        steps = self.plan.steps
        pending: list[tuple[Planned, asyncio.Future[RecordMetadata]]] = []
        started = time.monotonic()
        sent = 0
        for number, step in enumerate(steps):
            if isinstance(step, Withdrawal):
                key = self.plan.subjects[step.subject].id.encode()
                await self._until_acknowledged(self.stack.topics["consent"], key, step.value)
            else:
                topic = self.stack.topics[step.topic]
                headers = list(step.headers) or None
                sending = await producer.send(topic, step.value, key=step.key, headers=headers)
                pending.append((step, sending))
                sent += 1
                ahead = sent / self.rate - (time.monotonic() - started)
                if ahead > 0.02:
                    await asyncio.sleep(ahead)
            self.progress = (number + 1) / len(steps)
        for planned, future in pending:
            try:
                meta = await future
            except KafkaError:
                topic = self.stack.topics[planned.topic]
                meta = await self._until_acknowledged(
                    topic, planned.key, planned.value, planned.headers
                )
            self.produced.append((planned, (meta.topic, meta.partition, meta.offset)))

    async def _until_acknowledged(
        self, topic: str, key: bytes | None, value: bytes | None,
        headers: tuple[tuple[str, bytes], ...] = (),
    ) -> RecordMetadata:  # fmt: skip
        producer = await self.producer()
        while True:
            try:
                return await producer.send_and_wait(
                    topic, value, key=key, headers=list(headers) or None
                )
            except KafkaError:
                await asyncio.sleep(1.0)

    async def consent_burst(self, count: int) -> None:
        """`count` consent records for subjects outside the traffic, as fast as they go."""
        self.faults.append(f"consent burst of {count} records at {self.progress:.0%}")
        producer = await self.producer()
        topic = self.stack.topics["consent"]
        pending = []
        for n in range(count):  # real grants for subjects outside the traffic: table writes
            subject = f"burst-{self.plan.run}-{n:06d}"
            record = consent_record(
                subject, GRANTED_AT, dict.fromkeys(PURPOSES, True), under_13=False,
                parental_consent=False, source="faults",
            )  # fmt: skip
            pending.append(await producer.send(topic, record, key=subject.encode()))
        await asyncio.gather(*pending)

    # Draining and reading back.

    async def drained(self, timeout: float) -> bool:
        """Until the reader group committed every raw record (True), or `timeout` seconds.

        Kafka errors while asking (the broker just came back) are retried.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if await self._committed_to_end():
                    return True
            except (KafkaError, OSError):
                pass
            await asyncio.sleep(1.0)
        return False

    async def _committed_to_end(self) -> bool:
        raw = [self.stack.topics["usage_raw"], self.stack.topics["device_raw"]]
        group = worker_groups(self.stack.app_id).reader
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap)
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        try:
            await consumer.start()
            await admin.start()
            parts = [TopicPartition(t, p) for t in raw for p in range(self.stack.partitions)]
            ends = await consumer.end_offsets(parts)
            committed = await admin.list_consumer_group_offsets(group)
            return all(tp in committed and committed[tp].offset >= end for tp, end in ends.items())
        finally:
            await consumer.stop()
            await admin.close()

    async def read(self, name: str) -> list[Written]:
        records = await self.stack.read(name, idle=3.0)
        return [Written(r.key, r.value, tuple(r.headers)) for r in records]

    async def check(self, scenario: str) -> Report:
        sinks = {sink: await self.read(sink) for sink in SINKS}
        audit = await self.read("audit")
        dlq = await self.read("dlq")
        keys = self.stack.keys

        def dedup_id(sink: str, event_id: str) -> str:
            return pseudonymize(keys[sink], "event:" + event_id)

        report = check(scenario, self.plan, self.produced, sinks, audit, dlq, dedup_id)
        report.faults = list(self.faults)
        internal = await self.internal_records()
        places = {
            **{f"topic:{name}": records for name, records in internal.items()},
            "worker logs": [self.stack.log_text()],
            "/metrics": self.exposed,
            "worker state on disk": self.state_files(),
        }
        pattern, ips = canary_pattern(self.plan.run), {s.ip for s in self.plan.subjects}
        for place, texts in places.items():
            found = sum(leaks_in(text.lower(), pattern, ips) for text in texts)
            if found:
                report.leaks += found
                report.leak_places[place] = report.leak_places.get(place, 0) + found
        report.joinable_values = joinable(sinks)
        report.crashes = len(self.crashes)
        report.notes = [*self.notes, *self.crashes]
        return report

    async def internal_records(self) -> dict[str, list[str]]:
        """The erasure topic, and every topic faust made for the app (the table's changelog is
        keyed by subject id, as the consent topic is: its keys are not scanned), as text."""
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await admin.start()
        try:
            names = [t for t in await admin.list_topics() if t.startswith(self.stack.app_id + "-")]
        finally:
            await admin.close()
        found: dict[str, list[str]] = {}
        for name in [*names, self.stack.topics["erasure"]]:
            consumer = AIOKafkaConsumer(
                name, bootstrap_servers=self.bootstrap, auto_offset_reset="earliest",
                enable_auto_commit=False,
            )  # fmt: skip
            await consumer.start()
            texts: list[str] = []
            try:
                quiet = time.monotonic()
                while time.monotonic() - quiet < 2.0:
                    batch = await consumer.getmany(timeout_ms=300)
                    for record in (r for rs in batch.values() for r in rs):
                        quiet = time.monotonic()
                        parts = [record.value or b"", *(v for _, v in record.headers)]
                        if not name.endswith("-changelog"):
                            parts.append(record.key or b"")
                        texts.append(b"\x00".join(parts).decode(errors="replace"))
            finally:
                await consumer.stop()
            found[name] = texts
        return found

    def state_files(self) -> list[str]:
        """Every file the workers left in their working directories, as text."""
        return [
            path.read_bytes().decode(errors="replace")
            for index in range(len(self.workers))
            for path in self.workdir(index).rglob("*")
            if path.is_file()
        ]

    async def close(self) -> None:
        self.stop_workers()
        if self._producer is not None:
            await self._producer.stop()
        await self.stack.close()


async def run_scenario(
    name: str, bootstrap: str, root: Path, plan: Plan, fault: Fault, *, rate: float,
    workers: int = 1, drain_timeout: float = 300.0, log_level: str = "info",
    strict: bool = False,
) -> Report:  # fmt: skip
    """Load `plan` at `rate` events/s with `fault` running beside the load; drain; check."""
    run = FaultRun(bootstrap, root, plan, rate=rate, log_level=log_level)
    started = time.monotonic()
    try:
        await run.setup()
        for index in range(workers):
            await run.start_worker(index)
        await asyncio.gather(run.produce(), fault(run))
        if not await run.drained(drain_timeout):
            run.notes.append(f"not drained within {drain_timeout:.0f}s")
        for index in range(len(run.workers)):
            run.check_alive(index)
        run.scrape_metrics()
        run.stop_workers()
        report = await run.check(name)
        report.strict = strict
    finally:
        await run.close()
    report.seconds = round(time.monotonic() - started, 1)
    return report

"""A real gateway worker (`gateway run` in a subprocess) on unique topics, for end-to-end tests.

Each stack copies the shipped config with every topic renamed uniquely, gives each sink a real
key through the environment (not demo keys), and offers: produce events, publish consent with
acks=all, wait until the worker has consumed N records (read from its /metrics), and read back
every output topic.
"""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import ConsumerRecord
from prometheus_client.parser import text_string_to_metric_families

from devtools.local_broker import free_port
from gateway.keys import env_name
from tests.integration.procs import Proc
from topologies.security import PLAINTEXT, ClientSecurity

REPO = Path(__file__).resolve().parents[2]
SINKS = ("analytics", "ads", "social")


@dataclass
class Stack:
    bootstrap: str
    root: Path
    suffix: str
    partitions: int = 3
    app_id: str = ""
    metrics_port: int = 0
    topics: dict[str, str] = field(default_factory=dict)
    keys: dict[str, bytes] = field(default_factory=dict)
    proc: Proc | None = None
    logs: list[Path] = field(default_factory=list)
    # A secure cluster: how the test's own clients connect (a super user's options), and the
    # worker's extra environment (its KAFKA_SECURITY_* and KAFKA_SASL_* variables).
    security: ClientSecurity = PLAINTEXT
    extra_env: dict[str, str] = field(default_factory=dict)
    _producer: AIOKafkaProducer | None = None

    def __post_init__(self) -> None:
        self.app_id = self.app_id or f"gw-{self.suffix}"
        self.metrics_port = self.metrics_port or free_port()  # a valid GATEWAY_METRICS_PORT
        base = {
            "usage_raw": "events.usage.raw", "device_raw": "events.device.raw",
            "consent": "consent.state", "dlq": "gateway.dlq", "audit": "gateway.audit",
            "erasure": "gateway.erasure",
        }  # fmt: skip
        self.topics = {name: f"{topic}.{self.suffix}" for name, topic in base.items()}
        for sink in SINKS:
            self.topics[sink] = f"sink.{sink}.{self.suffix}"
        self.keys = {sink: os.urandom(32) for sink in SINKS}
        self.write_config()

    @property
    def config_dir(self) -> Path:
        return self.root / "config"

    def write_config(self) -> None:
        shutil.copytree(REPO / "config" / "sinks", self.config_dir / "sinks", dirs_exist_ok=True)
        settings = yaml.safe_load((REPO / "config" / "gateway.yaml").read_text())
        settings["topics"] = {
            k: self.topics[k]
            for k in ("usage_raw", "device_raw", "consent", "dlq", "audit", "erasure")
        }
        (self.config_dir / "gateway.yaml").write_text(yaml.safe_dump(settings))
        for sink in SINKS:
            path = self.config_dir / "sinks" / f"{sink}.yaml"
            rule = yaml.safe_load(path.read_text())
            rule["topic"] = self.topics[sink]
            path.write_text(yaml.safe_dump(rule))

    def env(self) -> dict[str, str]:
        env = {
            "KAFKA_BOOTSTRAP": self.bootstrap,
            "GATEWAY_CONFIG_DIR": str(self.config_dir),
            "GATEWAY_APP_ID": self.app_id,
            "GATEWAY_METRICS_PORT": str(self.metrics_port),
            "GATEWAY_PARTITIONS": str(self.partitions),
            "PYTHONUNBUFFERED": "1",
            **self.extra_env,
        }
        for sink, key in self.keys.items():
            env[env_name(sink)] = f"test-{sink}:{base64.b64encode(key).decode()}"
        return env

    def argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "topologies.cli", *args]

    async def create_topics(self) -> None:
        """The topics `gateway run` would create, for loading data before the worker starts."""
        from gateway.config import load_config
        from topologies.worker import prepare_topics

        await prepare_topics(
            self.bootstrap, load_config(self.config_dir), self.partitions, security=self.security
        )

    async def start(self, *, wait: bool = True) -> Proc:
        self.metrics_port = free_port()
        log = self.root / f"worker-{len(self.logs)}.log"
        self.logs.append(log)
        # in its own root: faust keeps `<app id>-data/` under the working directory
        self.proc = Proc(self.argv("run"), log, self.env(), cwd=self.root)
        if wait:
            await self.proc.wait_for_log("Worker ready", timeout=120)
            await self.wait_metrics_up()
        return self.proc

    async def wait_metrics_up(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self.metrics()
                return
            except OSError:
                await asyncio.sleep(0.2)
        raise AssertionError("the worker's /metrics never answered")

    def stop(self) -> int:
        assert self.proc is not None
        return self.proc.stop()

    def log_text(self) -> str:
        return "".join(p.read_text(errors="replace") for p in self.logs if p.exists())

    # Producing.

    async def producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            self._producer = AIOKafkaProducer(
                bootstrap_servers=self.bootstrap, acks="all", linger_ms=2,
                **self.security.aiokafka(),
            )  # fmt: skip
            await self._producer.start()
        return self._producer

    async def close(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    async def send_raw(self, topic: str, key: bytes | None, value: bytes | None) -> None:
        producer = await self.producer()
        await producer.send(self.topics[topic], value, key=key)

    async def event(self, kind: str, body: dict[str, Any]) -> None:
        topic = "usage_raw" if kind == "usage" else "device_raw"
        await self.send_raw(topic, str(body["subject_id"]).encode(), orjson.dumps(body))

    async def consent(self, subject: str, record: dict[str, Any] | None) -> None:
        """Publish and wait for the broker's acknowledgement (acks=all)."""
        producer = await self.producer()
        value = None if record is None else orjson.dumps(record)
        await producer.send_and_wait(self.topics["consent"], value, key=subject.encode())

    async def flush(self) -> None:
        await (await self.producer()).flush()

    # Observing.

    def metrics(self) -> dict[str, float]:
        """Every sample of the worker's /metrics as `name{labels}` -> value."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            text = response.read().decode()
        samples: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
                samples[f"{sample.name}{{{labels}}}"] = sample.value
        return samples

    def metric_sum(self, prefix: str) -> float:
        return sum(v for k, v in self.metrics().items() if k.startswith(prefix))

    async def wait_metric(self, prefix: str, at_least: float, timeout: float = 30.0) -> float:
        deadline = time.monotonic() + timeout
        value = self.metric_sum(prefix)
        while value < at_least and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            value = self.metric_sum(prefix)
        return value

    async def wait_consumed(self, count: int, timeout: float = 60.0) -> None:
        """Until the worker has decided `count` raw records (valid or not)."""
        deadline = time.monotonic() + timeout
        seen = 0.0
        while time.monotonic() < deadline:
            seen = self.metric_sum("gateway_events_consumed_total{")
            if seen >= count:
                return
            await asyncio.sleep(0.2)
        raise AssertionError(
            f"the worker consumed {seen} of {count} records\n{self.log_text()[-3000:]}"
        )

    async def read(self, name: str, *, idle: float = 1.5) -> list[ConsumerRecord[bytes, bytes]]:
        """Every record of one of the stack's topics, read from the start until idle."""
        consumer = AIOKafkaConsumer(
            self.topics[name], bootstrap_servers=self.bootstrap, auto_offset_reset="earliest",
            enable_auto_commit=False, **self.security.aiokafka(),
        )  # fmt: skip
        await consumer.start()
        records: list[ConsumerRecord[bytes, bytes]] = []
        try:
            quiet_since = time.monotonic()
            while time.monotonic() - quiet_since < idle:
                batch = await consumer.getmany(timeout_ms=300)
                got = [m for msgs in batch.values() for m in msgs]
                if got:
                    records.extend(got)
                    quiet_since = time.monotonic()
        finally:
            await consumer.stop()
        return records


def values(records: list[ConsumerRecord[bytes, bytes]]) -> list[dict[str, Any]]:
    return [orjson.loads(r.value) for r in records if r.value is not None]


def header(record: ConsumerRecord[bytes, bytes], name: str) -> str | None:
    for key, value in record.headers:
        if key == name:
            return value.decode()
    return None

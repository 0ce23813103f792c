"""The harness itself: the project's broker answers aiokafka and runs a faust app."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from tests.conftest import TopicFactory
from tests.integration.procs import Proc, python_argv

APPS = Path(__file__).parent / "apps"


async def consume(bootstrap: str, topic: str, count: int, timeout: float = 30.0) -> list[bytes]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    values: list[bytes] = []
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(values) < count and loop.time() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            values.extend(m.value for msgs in batch.values() for m in msgs if m.value is not None)
    finally:
        await consumer.stop()
    return values


async def test_when_records_are_produced_with_acks_all_then_a_consumer_reads_them_back(
    kafka_bootstrap: str, make_topic: TopicFactory
) -> None:
    topic = await make_topic("harness.roundtrip", partitions=3)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for i in range(30):
            await producer.send(topic, f"v{i}".encode(), key=f"k{i}".encode())
        await producer.flush()
    finally:
        await producer.stop()
    values = await consume(kafka_bootstrap, topic, 30)
    assert sorted(values) == sorted(f"v{i}".encode() for i in range(30))


async def test_when_transactions_are_used_then_the_broker_commits_them(
    kafka_bootstrap: str, make_topic: TopicFactory, unique_name: object
) -> None:
    topic = await make_topic("harness.txn")
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka_bootstrap, transactional_id=f"txn-{topic}", enable_idempotence=True
    )
    await producer.start()
    try:
        async with producer.transaction():
            await producer.send(topic, b"committed")
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest",
        isolation_level="read_committed",
    )  # fmt: skip
    await consumer.start()
    try:
        batch = await consumer.getmany(timeout_ms=10000)
    finally:
        await consumer.stop()
    assert [m.value for msgs in batch.values() for m in msgs] == [b"committed"]


async def test_when_a_faust_app_runs_on_the_broker_then_its_agent_transforms_records(
    kafka_bootstrap: str, make_topic: TopicFactory, tmp_path: Path
) -> None:
    source = await make_topic("harness.faust.in", partitions=2)
    sink = await make_topic("harness.faust.out", partitions=2)
    worker = Proc(
        python_argv(str(APPS / "echo_app.py"), "worker", "-l", "info", "--without-web"),
        tmp_path / "worker.log",
        {"KAFKA_BOOTSTRAP": kafka_bootstrap, "ECHO_APP_ID": f"app-{source}",
         "ECHO_SOURCE": source, "ECHO_SINK": sink},
        cwd=tmp_path,  # faust's `<app id>-data/` goes there
    )  # fmt: skip
    try:
        await worker.wait_for_log("Worker ready", timeout=90)
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
        await producer.start()
        try:
            for i in range(10):
                await producer.send(source, json.dumps({"n": i}).encode(), key=str(i).encode())
            await producer.flush()
        finally:
            await producer.stop()
        values = await consume(kafka_bootstrap, sink, 10)
    finally:
        code = worker.stop()
    assert sorted(json.loads(v)["n"] for v in values) == [2 * i for i in range(10)]
    assert code == 0, worker.text()[-2000:]

"""`gateway loadgen`: synthetic usage, device and consent traffic at a given rate.

Sends are not awaited one by one (that would cap the rate), but none fails unseen: the first
failed send (a topic the principal may not write, ...) ends the load with that error, which
`gateway loadgen` reports in one line.
"""

from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaProducer

from devtools.synthetic import PURPOSES, Traffic, consent_record, subject_id
from topologies.consent_cli import rfc3339
from topologies.security import PLAINTEXT, ClientSecurity


@dataclass(frozen=True)
class LoadPlan:
    bootstrap: str
    usage_topic: str
    device_topic: str
    consent_topic: str
    rate: float
    subjects: int
    count: int | None
    duration: float | None
    seed: int
    consent_changes_per_second: float
    publish_consent: bool
    invalid_share: float = 0.0
    quiet: bool = False
    security: ClientSecurity = PLAINTEXT


def _producer(bootstrap: str, security: ClientSecurity) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=5, max_batch_size=256 * 1024,
        enable_idempotence=True, **security.aiokafka(),
    )  # fmt: skip


class Sender:
    """The load's producer: keeps the first failed send, which `check` raises."""

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self.producer = producer
        self.failure: BaseException | None = None

    async def send(self, topic: str, value: bytes, key: bytes) -> None:
        """Hand one record to the producer; its outcome is looked at when it is known."""
        sent = await self.producer.send(topic, value, key=key)
        sent.add_done_callback(self._done)

    def _done(self, sent: asyncio.Future[Any]) -> None:
        failure = None if sent.cancelled() else sent.exception()
        if failure is not None and self.failure is None:
            self.failure = failure

    def check(self) -> None:
        """Raise the first failed send's error, if any."""
        if self.failure is not None:
            raise self.failure

    async def flush(self) -> None:
        """Wait until every record is acknowledged or failed, then `check`."""
        await self.producer.flush()
        self.check()


async def publish_all_consent(producer: Sender, plan: LoadPlan, traffic: Traffic) -> int:
    sent = 0
    stamp = rfc3339(time.time())
    for index in range(plan.subjects):
        record = traffic.consent(index, stamp)
        if record is None:
            continue
        await producer.send(plan.consent_topic, record, key=subject_id(index).encode())
        sent += 1
    await producer.flush()
    return sent


async def run_load(plan: LoadPlan) -> dict[str, int]:
    """Send the plan's traffic; raises the first failed send's error (after stopping)."""
    traffic = Traffic(plan.subjects, seed=plan.seed)
    client = _producer(plan.bootstrap, plan.security)
    await client.start()
    producer = Sender(client)
    totals = {"usage": 0, "device": 0, "consent": 0}
    try:
        if plan.publish_consent:
            totals["consent"] = await publish_all_consent(producer, plan, traffic)
            _say(
                plan, f"published {totals['consent']} consent records for {plan.subjects} subjects"
            )
        topics = {"usage": plan.usage_topic, "device": plan.device_topic}
        started = time.monotonic()
        last_report = started
        change_credit = 0.0
        tick = 0.01
        sent = 0
        while True:
            elapsed = time.monotonic() - started
            if plan.duration is not None and elapsed >= plan.duration:
                break
            due = int(plan.rate * elapsed) + 1 if plan.rate > 0 else sent + 1000
            if plan.count is not None:
                due = min(due, plan.count)
            stamp = rfc3339(time.time())
            while sent < due:
                if plan.invalid_share and traffic.chance(plan.invalid_share):
                    kind, key, value = traffic.invalid(stamp)
                else:
                    kind, key, value = traffic.event(stamp)
                await producer.send(topics[kind], value, key=key)
                totals[kind] += 1
                sent += 1
            change_credit += plan.consent_changes_per_second * tick
            while change_credit >= 1.0:
                change_credit -= 1.0
                await _consent_change(producer, plan, traffic)
                totals["consent"] += 1
            if plan.count is not None and sent >= plan.count:
                break
            producer.check()
            now = time.monotonic()
            if now - last_report >= 1.0:
                last_report = now
                _say(
                    plan,
                    f"sent {sent} events ({totals['usage']} usage, {totals['device']} "
                    f"device), {totals['consent']} consent; {sent / max(elapsed, 1e-9):.0f}/s",
                )
            await asyncio.sleep(tick)
        await producer.flush()
    finally:
        await client.stop()
    _say(plan, f"done: {totals['usage']} usage, {totals['device']} device, "
               f"{totals['consent']} consent records")  # fmt: skip
    return totals


async def _consent_change(producer: Sender, plan: LoadPlan, traffic: Traffic) -> None:
    """A subject changes their mind: withdraw everything, or grant everything again."""
    index = traffic.random_subject()
    grant = traffic.chance(0.5)
    record = consent_record(
        subject_id(index), rfc3339(time.time()), dict.fromkeys(PURPOSES, grant),
        under_13=traffic.kind_of_subject(index).startswith("child"),
        parental_consent=traffic.kind_of_subject(index) == "child_with_parent",
    )  # fmt: skip
    await producer.send(plan.consent_topic, record, key=subject_id(index).encode())


def _say(plan: LoadPlan, line: str) -> None:
    if not plan.quiet:
        print(f"loadgen: {line}", file=sys.stderr, flush=True)

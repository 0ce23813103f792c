"""The workload: pre-generated event bytes, consent records, topics, and fast producing.

Events come from `devtools.synthetic.Traffic` (both raw topics, ~500-600 bytes, GPC, children,
mixed consent over N subjects), generated once per run as templates whose `occurred_at` and
`event_id` are placeholders, so a latency run can stamp each event with its send time and a
fresh id for the cost of two `bytes.replace`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from devtools.synthetic import PURPOSES, Traffic, consent_record
from gateway.strictjson import format_rfc3339_us
from topologies.admin import TopicSpec, ensure_topics

TS = b"@@TS@@"
EID = b"@@EID@@"
SID = b"@@SID@@"
# Output topics stamp records with the broker's append time, so latency is measured at the
# broker on both ends and does not depend on when the benchmark gets round to reading them.
LOG_APPEND = {"message.timestamp.type": "LogAppendTime"}


def rfc3339_ms(ms: int) -> str:
    """Epoch milliseconds as the core writes RFC 3339 (gateway.strictjson)."""
    return format_rfc3339_us(ms * 1000)


@dataclass(frozen=True, slots=True)
class Template:
    kind: str  # "usage" | "device"
    key: bytes
    value: bytes  # with TS and EID placeholders

    def fill(self, stamp: bytes, event_id: bytes) -> bytes:
        return self.value.replace(TS, stamp, 1).replace(EID, event_id, 1)


def make_templates(count: int, subjects: int, seed: int = 7) -> list[Template]:
    traffic = Traffic(subjects, seed=seed)
    out: list[Template] = []
    for _ in range(count):
        kind, key, value = traffic.event(TS.decode())
        event_id = orjson.loads(value)["event_id"].encode()
        out.append(Template(kind, key, value.replace(b'"' + event_id + b'"', b'"' + EID + b'"', 1)))
    return out


def consent_records(subjects: int, stamp: str, seed: int = 7) -> Iterator[tuple[bytes, bytes]]:
    """The mixed consent of `Traffic`: (key, value) for every subject that has a record."""
    traffic = Traffic(subjects, seed=seed)
    for index in range(subjects):
        value = traffic.consent(index, stamp)
        if value is not None:
            yield f"u-{index:08d}".encode(), value


def many_consent_records(subjects: int, stamp: str) -> Iterator[tuple[bytes, bytes]]:
    """A record for each of `subjects` subjects, fast: a few prebuilt variants, id substituted.

    Shares roughly as `Traffic`'s mix (withdrawn, partial, children with and without a parent's
    consent, full grants), with every subject present so the table holds `subjects` entries.
    """
    variants: list[bytes] = []
    for share in range(100):
        if share < 18:
            purposes: dict[str, bool | None] = dict.fromkeys(PURPOSES, False)
        elif share < 47:
            purposes = {p: (share >> i) & 1 == 1 for i, p in enumerate(PURPOSES)}
        else:
            purposes = dict.fromkeys(PURPOSES, True)
        child = 47 <= share < 54
        variants.append(
            consent_record(
                SID.decode(), stamp, purposes, under_13=child,
                parental_consent=child and share >= 52,
            )
        )  # fmt: skip
    for index in range(subjects):
        sid = b"m-%09d" % index
        yield sid, variants[(index * 7919) % 100].replace(SID, sid, 1)


def producer(bootstrap: str, *, linger_ms: int = 5) -> AIOKafkaProducer:
    """A producer tuned for loading: large batches, acks=all, no per-record waiting."""
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=linger_ms,
        max_batch_size=512 * 1024, max_request_size=4 * 1024 * 1024,
    )  # fmt: skip


async def produce_all(
    bootstrap: str, records: Iterable[tuple[str, bytes | None, bytes | None]]
) -> tuple[int, float]:
    """Send (topic, key, value) records as fast as possible; return (count, seconds)."""
    p = producer(bootstrap)
    await p.start()
    started = time.monotonic()
    count = 0
    try:
        for topic, key, value in records:
            await p.send(topic, value, key=key)
            count += 1
        await p.flush()
    finally:
        await p.stop()
    return count, time.monotonic() - started


async def create_topics(
    bootstrap: str, names: Iterable[str], partitions: int, *, compacted: bool = False,
    log_append: bool = False,
) -> None:  # fmt: skip
    specs = [
        TopicSpec(n, partitions, compacted=compacted, configs=LOG_APPEND if log_append else {})
        for n in names
    ]
    await ensure_topics(bootstrap, specs)


async def delete_topics_containing(bootstrap: str, marker: str) -> int:
    """Best effort: delete every topic whose name contains `marker` (this run's id)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30000)
    await admin.start()
    try:
        names = [t for t in await admin.list_topics() if marker in t]
        for start in range(0, len(names), 50):
            with contextlib.suppress(Exception):
                await admin.delete_topics(names[start : start + 50], timeout_ms=30000)
        return len(names)
    finally:
        await admin.close()


def probe_event(subject: str, seq: int, now_ms: int) -> bytes:
    """A usage event of a probe subject (consent propagation), occurred_at = send time."""
    return orjson.dumps(
        {
            "event_id": f"probe-{subject}-{seq}",
            "subject_id": subject,
            "occurred_at": rfc3339_ms(now_ms),
            "event_type": "page_view",
            "page": "https://www.example.com/quote?utm_source=news",
            "device_type": "desktop",
            "os": "Windows",
            "browser": "Chrome",
            "cookie_id": f"ck-{subject}",
            "ip": "192.0.2.7",
        }
    )


async def sleep_until(deadline: float) -> None:
    delay = deadline - time.monotonic()
    if delay > 0:
        await asyncio.sleep(delay)

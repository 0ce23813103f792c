"""Poison pills on a real broker: a running `gateway run` worker keeps going past each of them.

Raw records that cannot be decided sit in the middle of one partition between valid events (all
produced before the worker starts, so they arrive in one fetch); consent records that cannot be
parsed sit on the consent topic before a withdrawal. Each pill costs itself only: the DLQ, once,
with its reason; every valid event is decided; the barrier still passes the withdrawal.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest

from gateway.consent_state import PURPOSES
from gateway.keys import pseudonymize
from tests.integration.stack import SINKS, Stack, header, values

CANARY_IP = "192.0.2.77"
# Reasons that depend on the JSON layer: a pill it cannot carry is `too_deep` or
# `number_out_of_range` once it says so, `internal_error` (caught per record) until then.
DEEP_REASONS = {"too_deep", "internal_error"}
BIG_NUMBER_REASONS = {"number_out_of_range", "internal_error"}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def consent(subject: str, granted: bool, updated_at: str) -> dict[str, Any]:
    return {
        "subject_id": subject, "updated_at": updated_at,
        "purposes": dict.fromkeys(PURPOSES, granted),
        "age": {"under_13": False, "parental_consent": False}, "source": "test",
    }  # fmt: skip


def usage(subject: str, event_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "event_id": event_id, "subject_id": subject, "occurred_at": "2026-11-26T12:34:56Z",
        "event_type": "page_view", "page": "https://www.example.com/quote", "ip": CANARY_IP,
    } | extra  # fmt: skip


def nested(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


def event_pills(subject: str) -> dict[str, bytes]:
    """Raw values that cannot be decided, by name; the envelope of the last two is valid."""
    envelope = orjson.dumps(usage(subject, unique("ev-deep")))[:-1]
    return {
        "invalid_json": b'{"event_id": "e", "subject_id": "%s", "ip": "%s", x'
        % (subject.encode(), CANARY_IP.encode()),
        "not_object": b'["%s", "%s"]' % (subject.encode(), CANARY_IP.encode()),
        "deep": envelope + b',"properties":' + nested(300) + b"}",
        "big_number": orjson.dumps(usage(subject, unique("ev-big")))[:-1]
        + b',"properties":{"n":%d}}' % (2**70),
    }


@dataclass
class Planted:
    subject: str = ""
    valid: list[str] = field(default_factory=list)  # event ids, in produced order
    pills: dict[int, str] = field(default_factory=dict)  # offset -> pill name
    partition: int = -1


@pytest.fixture(scope="module")
async def planted(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[Stack, Planted]]:
    """A stack whose usage topic holds valid events and pills in one partition, then a worker."""
    stack = Stack(kafka_bootstrap, tmp_path_factory.mktemp("pills"), uuid.uuid4().hex[:8])
    await stack.create_topics()
    plan = Planted(subject=unique("subj-pills"))
    key = plan.subject.encode()
    await stack.consent(plan.subject, consent(plan.subject, True, "2026-11-26T10:00:00Z"))
    producer = await stack.producer()
    sends: list[tuple[str, Any]] = []  # (event id or pill name, future of its metadata)
    pills = event_pills(plan.subject)
    for index, (name, value) in enumerate([(None, None), *pills.items()]):
        for _ in range(2 if index == 0 else 1):  # two valid events first, then one between pills
            event_id = unique("ev-valid")
            body = orjson.dumps(usage(plan.subject, event_id))
            sends.append((event_id, await producer.send(stack.topics["usage_raw"], body, key=key)))
        if name is not None:
            sends.append(
                ("pill:" + name, await producer.send(stack.topics["usage_raw"], value, key=key))
            )
    await producer.flush()
    for what, future in sends:
        metadata = await future
        plan.partition = metadata.partition  # one key: one partition
        if what.startswith("pill:"):
            plan.pills[metadata.offset] = what.removeprefix("pill:")
        else:
            plan.valid.append(what)
    await stack.start()
    try:
        yield stack, plan
    finally:
        await stack.close()
        code = stack.stop()
        assert code == 0, stack.log_text()[-3000:]


def dlq_from(records: list[Any], topic: str) -> list[tuple[int, str | None]]:
    """(source offset, reason) of every DLQ record that came from `topic`."""
    found = []
    for record in records:
        source = header(record, "gateway-source") or ""
        if source.startswith(topic + "/"):
            found.append((int(source.rsplit("/", 1)[1]), header(record, "gateway-reason")))
    return found


async def test_when_pills_sit_between_valid_events_then_the_worker_decides_every_other_one(
    planted: tuple[Stack, Planted],
) -> None:
    stack, plan = planted
    total = len(plan.valid) + len(plan.pills)
    await stack.wait_consumed(total)
    assert stack.proc is not None and stack.proc.alive(), "the worker is still running"

    dlq = dlq_from(await stack.read("dlq"), stack.topics["usage_raw"])
    by_offset = Counter(offset for offset, _ in dlq)
    reasons = dict(dlq)
    for offset, name in plan.pills.items():
        if name == "big_number" and by_offset[offset] == 0:
            continue  # a JSON layer that reads it as a float decides it (checked below)
        assert by_offset[offset] == 1, f"{name} is in the DLQ exactly once"
        if name in ("invalid_json", "not_object"):
            assert reasons[offset] == name
        else:
            assert reasons[offset] in (DEEP_REASONS if name == "deep" else BIG_NUMBER_REASONS)
    assert sum(by_offset.values()) == len(dlq) and set(by_offset) <= set(plan.pills)

    audit = {(a.get("event_id"), a["sink"]) for a in values(await stack.read("audit"))}
    for sink in SINKS:
        ids = {pseudonymize(stack.keys[sink], "event:" + e): e for e in plan.valid}
        forwarded = {
            ids[d] for r in await stack.read(sink) if (d := header(r, "gateway-dedup-id")) in ids
        }
        for event_id in plan.valid:
            assert (event_id in forwarded) != ((event_id, sink) in audit), (
                f"a valid event is decided exactly once for {sink}"
            )
    assert stack.metric_sum("gateway_invalid_records_total{") >= len(by_offset)
    log = stack.log_text()
    assert "Traceback" not in log and plan.subject not in log and CANARY_IP not in log


async def test_when_consent_pills_precede_a_withdrawal_then_the_feed_still_applies_it(
    planted: tuple[Stack, Planted],
) -> None:
    stack, _ = planted
    withdrawn, other = unique("subj-withdrawn"), unique("subj-other")
    await stack.consent(withdrawn, consent(withdrawn, True, "2026-11-26T10:00:00Z"))
    producer = await stack.producer()
    topic = stack.topics["consent"]
    pills: dict[tuple[int, int], str] = {}  # (partition, offset) -> pill name
    for subject in (withdrawn, other):
        key = subject.encode()
        not_json = b'{"subject_id": "%s", "updated_at": "2026-11-26T11:00:00Z", ' % key
        deep = (
            b'{"subject_id": "%s", "updated_at": "2026-11-26T11:00:00Z", "purposes": ' % key
            + nested(300)
            + b"}"
        )
        for name, value in (("invalid_json", not_json), ("deep", deep)):
            metadata = await producer.send_and_wait(topic, value, key=key)
            pills[(metadata.partition, metadata.offset)] = name
    await stack.consent(withdrawn, consent(withdrawn, False, "2026-11-26T11:30:00Z"))
    after = [unique("ev-after-withdrawal") for _ in range(3)]
    before = stack.metric_sum("gateway_events_consumed_total{")
    for event_id in after:  # produced after the withdrawal was acknowledged (acks=all)
        await stack.event("usage", usage(withdrawn, event_id))
    await stack.flush()
    await stack.wait_consumed(int(before) + len(after))
    assert stack.proc is not None and stack.proc.alive(), "the worker is still running"

    audit = {(a.get("event_id"), a["sink"]) for a in values(await stack.read("audit"))}
    for sink in SINKS:
        ids = {pseudonymize(stack.keys[sink], "event:" + e): e for e in after}
        leaked = {
            ids[d] for r in await stack.read(sink) if (d := header(r, "gateway-dedup-id")) in ids
        }
        assert not leaked, f"an event after the withdrawal reached {sink}"
        assert {(e, sink) for e in after} <= audit, "every event after it is decided (dropped)"

    invalid = "gateway_consent_records_total{outcome=invalid}"
    assert await stack.wait_metric(invalid, len(pills)) >= len(pills), "the feed read every pill"
    from_consent: list[tuple[tuple[int, int], str | None]] = []
    for record in await stack.read("dlq"):
        source = header(record, "gateway-source") or ""
        if source.startswith(topic + "/"):
            _, partition, offset = source.rsplit("/", 2)
            from_consent.append(((int(partition), int(offset)), header(record, "gateway-reason")))
    assert Counter(where for where, _ in from_consent) == Counter(pills.keys()), "each pill once"
    for where, reason in from_consent:
        expected = {"invalid_json"} if pills[where] == "invalid_json" else DEEP_REASONS
        assert reason in expected, (pills[where], reason)
    log = stack.log_text()
    assert "Traceback" not in log and withdrawn not in log and other not in log

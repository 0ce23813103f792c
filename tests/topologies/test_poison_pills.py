"""Poison pills: one record that raises costs that record only, never its batch or the feed.

No broker: the real core with one chosen record made to raise, a writer that records instead of
sending, and (for the consent feed) a dict for the table.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry

from gateway.config import GatewayConfig, load_config
from gateway.consent import ConsentUpdate, Tombstone, parse_consent
from gateway.consent_state import PURPOSES
from gateway.decision import SinkDecision
from gateway.engine import Engine
from gateway.events import Event, EventKind, Invalid
from gateway.keys import Keyring, load_keyring, pseudonymize
from gateway.metrics import GatewayMetrics
from gateway.records import HEADER_DEDUP_ID, HEADER_REASON
from tests.topologies.test_enforce import DEVICE, USAGE, Raw, RecordingWriter, event, granted
from topologies import consent_feed
from topologies.barrier import ConsentBarrier
from topologies.consent_feed import ConsentFeed
from topologies.enforce import Enforcer
from topologies.worker import build_metrics

REPO = Path(__file__).resolve().parents[2]
PILL_ID = "e-pill"
SECRET = "canary-secret-4d2f"  # in every exception message: must never leave the process
DLQ, AUDIT, CONSENT = "gateway.dlq", "gateway.audit", "consent.state"


class PillEngine(Engine):
    """The real engine, except that deciding (or auditing) one chosen event raises."""

    fail_in = "decide"
    audits = 0

    def decide(self, event: Event, consent: int | None) -> tuple[SinkDecision, ...]:
        if self.fail_in == "decide" and event.event_id == PILL_ID:
            raise RuntimeError(f"{SECRET} {event.subject_id}")
        return super().decide(event, consent)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        real_audit_of = self.records.audit_of

        def audit_of(decision: SinkDecision, tail: bytes, *rest: Any) -> Any:
            if self.fail_in == "second_audit" and PILL_ID.encode() in tail:  # the pill's event id
                self.audits += 1
                if self.audits == 2:  # one output of the record built already: must not leak
                    raise KeyError(SECRET)
            return real_audit_of(decision, tail, *rest)

        self.records.audit_of = audit_of  # type: ignore[method-assign]


class LimitedWriter(RecordingWriter):
    """Refuses, like `BatchWriter.add`, a record larger than an empty batch can hold."""

    limit = 4000

    def add(self, topic: str, source_partition: int, key: bytes | None, value: bytes | None,
            headers: Any) -> None:  # fmt: skip
        if len(value or b"") > self.limit:
            raise ValueError(f"a record for {topic} is larger than the producer's batch size")
        super().add(topic, source_partition, key, value, headers)


@dataclass
class Setup:
    config: GatewayConfig
    keyring: Keyring
    registry: CollectorRegistry
    metrics: GatewayMetrics
    sinks: list[str]


@pytest.fixture
def setup() -> Setup:
    config = load_config(REPO / "config")
    sinks = [rule.name for rule in config.sinks]
    keyring = load_keyring({}, sinks, demo=True, random_bytes=os.urandom)
    registry = CollectorRegistry()
    return Setup(config, keyring, registry, build_metrics(config, registry), sinks)


def enforcer(
    s: Setup,
    engine: Engine,
    writer: RecordingWriter,
    consent: Callable[[str], int | None] | None = None,
) -> Enforcer:
    return Enforcer(
        engine, kinds={USAGE: EventKind.USAGE, DEVICE: EventKind.DEVICE},
        consent=consent or {"subj-a": granted("subj-a")}.get,
        writer=writer, metrics=s.metrics, clock=time.time,
    )  # fmt: skip


def samples(registry: CollectorRegistry, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {
        tuple(sorted(sample.labels.items())): sample.value
        for family in registry.collect()
        for sample in family.samples
        if sample.name == name
    }


def pill_outputs(s: Setup, writer: RecordingWriter) -> list[str]:
    """Topics holding an output of the pill: an audit record naming it, or its dedup id."""
    ids = {
        pseudonymize(s.keyring.current(sink).secret, "event:" + PILL_ID).encode()
        for sink in s.sinks
    }
    found = []
    for topic, _, _, value, headers in writer.sent:
        if topic == AUDIT and orjson.loads(value or b"{}").get("event_id") == PILL_ID:
            found.append(topic)
        if dict(headers).get(HEADER_DEDUP_ID) in ids:
            found.append(topic)
    return found


def assert_one_internal_error(s: Setup, writer: RecordingWriter, topic: str, error: str) -> None:
    dlq = [(value, dict(h)) for t, _, _, value, h in writer.sent if t == DLQ]
    pills = [(v, h) for v, h in dlq if h[HEADER_REASON] == b"internal_error"]
    assert len(pills) == 1, "the pill is in the DLQ exactly once"
    value, headers = pills[0]
    body = orjson.loads(value or b"{}")
    assert body["reason"] == "internal_error"
    assert body["detail"] == f"{error} raised while deciding the record"
    assert body["fields"] == {}, "no field of the pill is described"
    blob = (value or b"") + b"".join(headers.values())
    for secret in (SECRET, "subj-a", "subj-b", "192.0.2.77", "canary-device-7f3a9c11"):
        assert secret.encode() not in blob
    invalid = samples(s.registry, "gateway_invalid_records_total")
    assert invalid[(("reason", "internal_error"), ("topic", topic))] == 1
    drops = samples(s.registry, "gateway_decisions_total")
    for sink in s.sinks:
        assert drops[(("reason", "internal_error"), ("sink", sink), ("verdict", "drop"))] == 1


async def test_when_deciding_one_record_raises_then_only_that_record_goes_to_the_dlq(
    setup: Setup, caplog: pytest.LogCaptureFixture
) -> None:
    writer = RecordingWriter()
    engine = PillEngine(setup.config, setup.keyring)
    records = [
        Raw(USAGE, 0, 0, b"subj-a", event("subj-a", "e-1")),
        Raw(USAGE, 0, 1, b"subj-a", event("subj-a", PILL_ID)),
        Raw(USAGE, 0, 2, b"subj-b", event("subj-b", "e-2")),
        Raw(DEVICE, 1, 0, b"subj-a", event("subj-a", "e-3", event_type="device_seen")),
        Raw(USAGE, 0, 3, b"subj-a", b'{"event_id": "e-4"'),  # not JSON
    ]
    with caplog.at_level(logging.WARNING):
        result = await enforcer(setup, engine, writer).process(records)

    assert result.consumed == 5 and result.invalid == 2
    assert result.forwarded + result.dropped == 3 * len(setup.sinks), "every other record decided"
    assert pill_outputs(setup, writer) == []
    assert_one_internal_error(setup, writer, USAGE, "RuntimeError")
    decided: Counter[str] = Counter()
    for labels, n in samples(setup.registry, "gateway_decisions_total").items():
        decided[dict(labels)["sink"]] += int(n)
    assert decided == dict.fromkeys(setup.sinks, len(records)), "every record once per sink"
    assert samples(setup.registry, "gateway_dlq_writes_total")[()] == 2
    errors = [r for r in caplog.records if "internal_error" in r.getMessage()]
    assert len(errors) == 1
    message = errors[0].getMessage()
    assert f"topic={USAGE} partition=0 offset=1" in message and "RuntimeError" in message
    assert errors[0].exc_info is None, "no traceback: it could quote the record"
    assert SECRET not in caplog.text and "subj-a" not in caplog.text


async def test_when_a_record_fails_after_some_outputs_are_built_then_none_of_them_is_written(
    setup: Setup,
) -> None:
    writer = RecordingWriter()
    engine = PillEngine(setup.config, setup.keyring)
    engine.fail_in = "second_audit"
    records = [
        Raw(USAGE, 0, 0, b"subj-b", event("subj-b", PILL_ID)),  # no consent: an audit per sink
        Raw(USAGE, 0, 1, b"subj-b", event("subj-b", "e-2")),
    ]
    result = await enforcer(setup, engine, writer).process(records)

    assert result.invalid == 1 and result.dropped == len(setup.sinks)
    assert pill_outputs(setup, writer) == [], "all of a record's outputs, or none"
    assert_one_internal_error(setup, writer, USAGE, "KeyError")


async def test_when_the_consent_lookup_raises_for_one_subject_then_the_others_are_decided(
    setup: Setup,
) -> None:
    writer = RecordingWriter()
    table = {"subj-a": granted("subj-a")}

    def consent(subject: str) -> int | None:
        if subject == "subj-b":
            return int(b"not a packed state")  # a corrupt table value
        return table.get(subject)

    engine = Engine(setup.config, setup.keyring)
    records = [
        Raw(USAGE, 0, 0, b"subj-b", event("subj-b", PILL_ID)),
        Raw(USAGE, 0, 1, b"subj-a", event("subj-a", "e-1")),
    ]
    result = await enforcer(setup, engine, writer, consent).process(records)

    assert result.invalid == 1 and result.forwarded + result.dropped == len(setup.sinks)
    assert result.forwarded >= 1
    assert_one_internal_error(setup, writer, USAGE, "ValueError")


async def test_when_an_output_is_too_large_for_a_batch_then_only_that_record_goes_to_the_dlq(
    setup: Setup,
) -> None:
    writer = LimitedWriter()
    engine = Engine(setup.config, setup.keyring)
    records = [
        Raw(USAGE, 0, 0, b"subj-a", event("subj-a", PILL_ID, feature="f" * 8000)),
        Raw(USAGE, 0, 1, b"subj-a", event("subj-a", "e-1")),
    ]
    result = await enforcer(setup, engine, writer).process(records)

    assert result.invalid == 1 and result.forwarded + result.dropped == len(setup.sinks)
    assert pill_outputs(setup, writer) == [], "the largest output goes first: none is written"
    assert_one_internal_error(setup, writer, USAGE, "ValueError")


# The consent feed.


@dataclass(frozen=True)
class Message:
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: int = 1795694400000  # 2026-11-26T12:00:00Z, ms


class Table:
    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}


def consent_record(subject: str, at: str, granted: bool) -> bytes:
    purposes = PURPOSES
    return orjson.dumps({
        "subject_id": subject, "updated_at": at, "purposes": dict.fromkeys(purposes, granted),
    })  # fmt: skip


def feed_for(
    s: Setup, table: Table, writer: RecordingWriter, barrier: ConsentBarrier
) -> ConsentFeed:
    async def make_writer() -> Any:
        return writer

    return ConsentFeed(
        bootstrap="127.0.0.1:9", topic=CONSENT, group_id="test", table=table, barrier=barrier,
        engine=Engine(s.config, s.keyring), metrics=s.metrics, writer=make_writer,
        changelog_topic="consent-changelog",
    )  # fmt: skip


async def no_ends(partitions: Any) -> dict[int, int]:
    return {}


async def test_when_a_consent_record_raises_then_the_feed_applies_the_rest_and_moves_past_it(
    setup: Setup, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    real = parse_consent

    def parse(
        value: bytes | None, key: bytes | None, **kw: Any
    ) -> ConsentUpdate | Tombstone | Invalid:
        if key == b"subj-pill":
            raise RecursionError(SECRET)
        return real(value, key, **kw)

    monkeypatch.setattr(consent_feed, "parse_consent", parse)
    table, writer, barrier = Table(), RecordingWriter(), ConsentBarrier(no_ends)
    table.data[b"subj-corrupt"] = b"garbage"  # applying to a corrupt table value raises too
    feed = feed_for(setup, table, writer, barrier)
    batch = [
        Message(0, b"subj-a", consent_record("subj-a", "2026-11-26T11:00:00Z", True)),
        Message(1, b"subj-pill", consent_record("subj-pill", "2026-11-26T11:00:00Z", True)),
        Message(2, b"subj-corrupt", consent_record("subj-corrupt", "2026-11-26T11:00:00Z", True)),
        Message(3, b"subj-b", consent_record("subj-b", "2026-11-26T11:00:00Z", True)),
        Message(4, b"subj-a", consent_record("subj-a", "2026-11-26T11:30:00Z", False)),
    ]
    with caplog.at_level(logging.WARNING):
        await feed._apply_batch({consent_feed.TopicPartition(CONSENT, 2): batch})
    await asyncio.gather(*feed._unacked)

    assert barrier.applied_next[2] == 5, "the barrier moves past the pills"
    assert set(table.data) == {b"subj-a", b"subj-b", b"subj-corrupt"}
    assert table.data[b"subj-corrupt"] == b"garbage", "a record that raised changed nothing"
    withdrawn = int(table.data[b"subj-a"])
    assert withdrawn & 3 == 2, "the later withdrawal was applied"
    changelog = [key for topic, _, key, _, _ in writer.sent if topic == "consent-changelog"]
    assert changelog == [b"subj-a", b"subj-b", b"subj-a"]
    dlq = [(v, dict(h)) for t, _, _, v, h in writer.sent if t == DLQ]
    assert [h[HEADER_REASON] for _, h in dlq] == [b"internal_error", b"internal_error"]
    details = [orjson.loads(v or b"{}")["detail"] for v, _ in dlq]
    assert details == [
        "RecursionError raised while applying the consent record",
        "ValueError raised while applying the consent record",
    ]
    blob = b"".join((v or b"") + b"".join(h.values()) for v, h in dlq)
    assert SECRET.encode() not in blob and b"subj-" not in blob
    outcomes = samples(setup.registry, "gateway_consent_records_total")
    assert outcomes[(("outcome", "invalid"),)] == 2
    assert outcomes[(("outcome", "applied"),)] == 3
    assert samples(setup.registry, "gateway_dlq_writes_total")[()] == 2
    assert "internal_error" in caplog.text and "RecursionError" in caplog.text
    assert SECRET not in caplog.text and "subj-" not in caplog.text


async def test_when_a_consent_record_is_future_dated_then_it_is_counted_and_a_withdrawal_wins(
    setup: Setup,
) -> None:
    table, writer, barrier = Table(), RecordingWriter(), ConsentBarrier(no_ends)
    feed = feed_for(setup, table, writer, barrier)
    tp = consent_feed.TopicPartition(CONSENT, 0)
    grant = Message(0, b"subj-a", consent_record("subj-a", "2036-11-26T12:00:00Z", True))
    withdrawal = Message(
        1, b"subj-a", consent_record("subj-a", "2026-11-27T09:00:00Z", False), 1795770000005
    )
    await feed._apply_batch({tp: [grant]})
    await feed._apply_batch({tp: [withdrawal]})
    await feed._apply_batch({tp: [grant, withdrawal]})  # a replay: both stale

    assert int(table.data[b"subj-a"]) & 3 == 2, "the withdrawal applied, not blocked"
    assert samples(setup.registry, "gateway_consent_future_dated_total")[()] == 2
    outcomes = samples(setup.registry, "gateway_consent_records_total")
    assert outcomes[(("outcome", "applied"),)] == 2
    assert outcomes[(("outcome", "stale"),)] == 2

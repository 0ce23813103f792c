"""The enforcer's accounting, with the real core and a writer that records instead of sending."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry

from gateway.config import load_config
from gateway.consent import apply_consent, parse_consent
from gateway.consent_state import PURPOSES
from gateway.engine import Engine
from gateway.events import EventKind
from gateway.keys import load_keyring
from gateway.records import HEADER_DEDUP_ID
from topologies.enforce import Enforcer
from topologies.worker import build_metrics

REPO = Path(__file__).resolve().parents[2]
USAGE, DEVICE = "events.usage.raw", "events.device.raw"
CANARY_IP, CANARY_DEVICE = "192.0.2.77", "canary-device-7f3a9c11"


@dataclass(frozen=True)
class Raw:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


class RecordingWriter:
    def __init__(self) -> None:
        self.sent: list[tuple[str, int, bytes | None, bytes | None, list[tuple[str, bytes]]]] = []
        self._open: list[Any] = []

    def add(self, topic: str, source_partition: int, key: bytes | None, value: bytes | None,
            headers: Any) -> None:  # fmt: skip
        self._open.append((topic, source_partition, key, value, list(headers)))

    async def send(self) -> asyncio.Future[Any]:
        self.sent.extend(self._open)
        self._open = []
        done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


def event(subject: str, event_id: str, **extra: Any) -> bytes:
    body = {
        "event_id": event_id, "subject_id": subject, "occurred_at": "2026-11-26T12:00:00Z",
        "event_type": "page_view", "ip": CANARY_IP, "device_id": CANARY_DEVICE,
        "page": "https://www.example.com/?email=someone@example.com",
    } | extra  # fmt: skip
    return orjson.dumps(body)


def granted(subject: str) -> int:
    record = orjson.dumps({
        "subject_id": subject, "updated_at": "2026-11-26T10:00:00Z",
        "purposes": dict.fromkeys(
            PURPOSES, True
        ),
        "age": {"under_13": False, "parental_consent": False},
    })  # fmt: skip
    update = parse_consent(record, subject.encode())
    state, _ = apply_consent(None, update)  # type: ignore[arg-type]
    assert state is not None
    return state


async def test_when_valid_and_invalid_records_mix_then_each_counts_once_per_sink() -> None:
    config = load_config(REPO / "config")
    sinks = [rule.name for rule in config.sinks]
    keyring = load_keyring({}, sinks, demo=True, random_bytes=os.urandom)
    registry = CollectorRegistry()
    writer = RecordingWriter()
    consent = {"subj-a": granted("subj-a")}
    enforcer = Enforcer(
        Engine(config, keyring), kinds={USAGE: EventKind.USAGE, DEVICE: EventKind.DEVICE},
        consent=consent.get, writer=writer, metrics=build_metrics(config, registry),
        clock=time.time,
    )  # fmt: skip
    records = [
        Raw(USAGE, 0, 0, b"subj-a", event("subj-a", "e-1")),
        Raw(USAGE, 0, 1, b"subj-b", event("subj-b", "e-2")),  # no consent: dropped everywhere
        Raw(DEVICE, 1, 0, b"subj-a", event("subj-a", "e-3", event_type="device_seen")),
        Raw(USAGE, 0, 2, b"subj-a", b'{"event_id": "e-4", "ip": "192.0.2.77"'),  # not JSON
    ]
    result = await enforcer.process(records)

    assert result.consumed == 4 and result.invalid == 1
    assert result.forwarded + result.dropped == 3 * len(sinks)
    decided: Counter[str] = Counter()
    for family in registry.collect():
        for sample in family.samples:
            if sample.name == "gateway_decisions_total":
                decided[sample.labels["sink"]] += int(sample.value)
    assert decided == dict.fromkeys(sinks, len(records)), "every record once per sink"
    topics = Counter(topic for topic, *_ in writer.sent)
    assert topics["gateway.dlq"] == 1
    assert topics["gateway.audit"] == result.dropped
    assert sum(topics[rule.topic] for rule in config.sinks) == result.forwarded
    dedup = [dict(h)[HEADER_DEDUP_ID] for t, _, _, _, h in writer.sent if t.startswith("sink.")]
    assert len(dedup) == len(set(dedup)), "a dedup id differs per sink and per event"
    for topic, _, key, value, headers in writer.sent:
        blob = (key or b"") + (value or b"") + b"".join(v for _, v in headers)
        for canary in (CANARY_IP, CANARY_DEVICE, "subj-a", "subj-b", "someone@example.com"):
            assert canary.encode() not in blob, (topic, canary)


async def test_when_identifiers_hide_in_free_text_then_no_output_holds_them_and_scrubs_count() -> (
    None
):
    config = load_config(REPO / "config")
    sinks = [rule.name for rule in config.sinks]
    keyring = load_keyring({}, sinks, demo=True, random_bytes=os.urandom)
    registry = CollectorRegistry()
    writer = RecordingWriter()
    subject = "subj-canary-9f8e7d"
    consent = {subject: granted(subject)}
    enforcer = Enforcer(
        Engine(config, keyring), kinds={USAGE: EventKind.USAGE, DEVICE: EventKind.DEVICE},
        consent=consent.get, writer=writer, metrics=build_metrics(config, registry),
        clock=time.time,
    )  # fmt: skip
    planted = event(
        subject, f"{subject}-e1",
        page=f"https://www.example.com/u/{subject}/{CANARY_DEVICE}?utm_campaign={CANARY_IP}",
        referrer=f"https://www.example.com/ref/{CANARY_IP}#{subject}",
        properties={"experiment": f"for {subject}", "variant": ["x", CANARY_DEVICE]},
    )  # fmt: skip
    device = event(subject, "e2", event_type="device_seen", app_version=CANARY_DEVICE)
    await enforcer.process([Raw(USAGE, 0, 0, subject.encode(), planted),
                            Raw(DEVICE, 0, 1, subject.encode(), device)])  # fmt: skip

    assert any(t == "sink.analytics" for t, *_ in writer.sent)
    for topic, _, key, value, headers in writer.sent:
        blob = (key or b"") + (value or b"") + b"".join(v for _, v in headers)
        for canary in (CANARY_IP, CANARY_DEVICE, subject):
            assert canary.encode() not in blob, (topic, canary)
    scrubbed: Counter[tuple[str, str]] = Counter()
    for family in registry.collect():
        for sample in family.samples:
            if sample.name == "gateway_identifier_scrubs_total":
                scrubbed[(sample.labels["sink"], sample.labels["identifier"])] += int(sample.value)
    # analytics keeps event_id, page (with utm_campaign), referrer and both properties
    assert scrubbed[("analytics", "subject_id")] == 4
    assert scrubbed[("analytics", "device_id")] == 3
    assert scrubbed[("analytics", "ip")] == 2


async def test_when_audit_forwards_is_set_then_forwards_are_audited_too() -> None:
    config = load_config(REPO / "config")
    settings = config.settings.model_copy(update={"audit_forwards": True})
    config = dataclasses.replace(config, settings=settings)
    sinks = [rule.name for rule in config.sinks]
    keyring = load_keyring({}, sinks, demo=True, random_bytes=os.urandom)
    writer = RecordingWriter()
    consent = {"subj-a": granted("subj-a")}
    enforcer = Enforcer(
        Engine(config, keyring), kinds={USAGE: EventKind.USAGE, DEVICE: EventKind.DEVICE},
        consent=consent.get, writer=writer, metrics=None, clock=time.time,
    )  # fmt: skip
    result = await enforcer.process([Raw(USAGE, 0, 0, b"subj-a", event("subj-a", "e-1"))])

    assert result.forwarded == len(sinks)
    audits = [orjson.loads(v or b"") for t, _, _, v, _ in writer.sent if t == "gateway.audit"]
    assert sorted((a["sink"], a["verdict"], a["reason"]) for a in audits) == [
        (sink, "forward", "consented") for sink in sorted(sinks)
    ]


def _sticky_enforcer(
    table: dict[tuple[int, str], int], *, many: bool, fail_many: str = ""
) -> tuple[Enforcer, RecordingWriter, list[tuple[list[str], int]], list[tuple[str, int]]]:
    """An enforcer under `gpc: sticky` over `table`, reading per record or a batch ahead."""
    config = load_config(REPO / "config")
    settings = config.settings.model_copy(update={"gpc": "sticky"})
    config = dataclasses.replace(config, settings=settings)
    keyring = load_keyring({}, [r.name for r in config.sinks], demo=True,
                           random_bytes=lambda n: b"k" * n)  # fmt: skip
    writer = RecordingWriter()
    many_calls: list[tuple[list[str], int]] = []
    single_calls: list[tuple[str, int]] = []

    def consent_in(subject: str, partition: int) -> int | None:
        single_calls.append((subject, partition))
        return table.get((partition, subject))

    def consent_many(subjects: list[str], partition: int) -> list[int | None]:
        many_calls.append((list(subjects), partition))
        if fail_many == "raise":
            raise OSError("store unavailable")
        answer = [table.get((partition, subject)) for subject in subjects]
        return [*answer, None] if fail_many == "too many" else answer

    def keep_gpc(subject: str, partition: int, state: int) -> tuple[str, bytes, bytes, list[Any]]:
        table[(partition, subject)] = state
        return ("consent-changelog", subject.encode(), b"%d" % state, [])

    enforcer = Enforcer(
        Engine(config, keyring), kinds={USAGE: EventKind.USAGE, DEVICE: EventKind.DEVICE},
        consent=lambda subject: None, consent_in=consent_in, writer=writer, metrics=None,
        clock=lambda: 1.0, keep_gpc=keep_gpc,  # type: ignore[arg-type]
        consent_many=consent_many if many else None,
    )  # fmt: skip
    return enforcer, writer, many_calls, single_calls


async def test_when_consent_is_read_a_batch_ahead_then_every_output_is_the_same() -> None:
    # A persistent store reads a batch's subjects in one multi-get per partition (app.py);
    # the outputs must be those of one lookup per record, a sticky GPC signal included: the
    # subject's later records in the same batch see it kept.
    records = [
        Raw(USAGE, 0, 0, b"subj-a", event("subj-a", "e-1")),
        Raw(USAGE, 0, 1, b"subj-a", event("subj-a", "e-2", gpc=True)),  # kept from here on
        Raw(USAGE, 0, 2, b"subj-a", event("subj-a", "e-3")),
        Raw(USAGE, 1, 0, b"subj-b", event("subj-b", "e-4")),
        Raw(USAGE, 1, 1, b"subj-c", event("subj-c", "e-5")),  # unknown subject
        Raw(USAGE, 1, 2, b"\xff\xfe", event("subj-d", "e-6")),  # a key that is not UTF-8
        Raw(USAGE, 0, 3, b"subj-a", b'{"event_id": "e-7"'),  # not JSON
    ]
    outputs = []
    for many in (False, True):
        table = {(0, "subj-a"): granted("subj-a"), (1, "subj-b"): granted("subj-b")}
        enforcer, writer, many_calls, single_calls = _sticky_enforcer(table, many=many)
        result = await enforcer.process(records)
        outputs.append((result, writer.sent, table))
        if many:
            assert sorted(many_calls, key=lambda c: c[1]) == [
                (["subj-a"], 0), (["subj-b", "subj-c"], 1)
            ]  # fmt: skip
            assert single_calls == [], "every valid record's subject was read ahead"
        else:
            assert len(single_calls) == 5
    (per_record, per_record_sent, table_1), (ahead, ahead_sent, table_2) = outputs
    assert ahead == per_record and table_1 == table_2
    assert [o[:4] for o in ahead_sent] == [o[:4] for o in per_record_sent]
    kept = [o for o in ahead_sent if o[0] == "consent-changelog"]
    assert len(kept) == 1, "the GPC signal is kept once, by e-2; e-3 sees it kept already"


@pytest.mark.parametrize("failure", ["raise", "too many"])
async def test_when_the_read_ahead_fails_then_each_record_is_looked_up_alone(failure: str) -> None:
    table = {(0, "subj-a"): granted("subj-a")}
    enforcer, _, many_calls, single_calls = _sticky_enforcer(table, many=True, fail_many=failure)
    result = await enforcer.process([Raw(USAGE, 0, 0, b"subj-a", event("subj-a", "e-1"))])
    assert many_calls == [(["subj-a"], 0)] and single_calls == [("subj-a", 0)]
    assert result.invalid == 0 and result.forwarded > 0

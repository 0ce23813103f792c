"""Erasure notices on a real broker: tombstones, a child found late, sticky GPC, kill -9."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import yaml
from aiokafka.structs import ConsumerRecord

from gateway.keys import pseudonymize
from gateway.strictjson import parse_rfc3339_us
from tests.integration.stack import Stack, header
from tests.integration.test_gateway import consent, device, everything, unique, usage
from topologies.admin import TopicSpec, ensure_topics

NOTIFIED = ("ads", "analytics", "social")  # their rules carry a pseudonym of the subject
LATER = "2026-11-26T13:00:00Z"
# A sink that gets pseudonyms of device ids but never one of the subject: no notice is due.
COUNTS_RULE: dict[str, Any] = {
    "audience": "internal",
    "purposes": ["analytics"],
    "kinds": ["usage", "device"],
    "fields": {"event_type": "keep", "device_id": "pseudonym"},
}
# Compaction as soon as the broker's cleaner looks (every 15 s by default).
FAST_COMPACTION = {
    "segment.ms": "200",
    "min.cleanable.dirty.ratio": "0.01",
    "min.compaction.lag.ms": "0",
    "delete.retention.ms": "0",
}


@dataclass
class ErasureStack(Stack):
    """A stack with a fourth sink, `counts`, and extra worker environment."""

    extra_env: dict[str, str] = field(default_factory=dict)
    gpc: str = "per_event"

    def write_config(self) -> None:
        super().write_config()
        self.topics["counts"] = f"sink.counts.{self.suffix}"
        rule = {**COUNTS_RULE, "topic": self.topics["counts"]}
        (self.config_dir / "sinks" / "counts.yaml").write_text(yaml.safe_dump(rule))
        self.keys["counts"] = os.urandom(32)
        path = self.config_dir / "gateway.yaml"
        settings = yaml.safe_load(path.read_text())
        settings["gpc"] = self.gpc
        path.write_text(yaml.safe_dump(settings))

    def env(self) -> dict[str, str]:
        return {**super().env(), **self.extra_env}

    def pseudonym(self, sink: str, subject: str) -> str:
        return pseudonymize(self.keys[sink], subject)


def new_stack(bootstrap: str, root: Path, **options: Any) -> ErasureStack:
    return ErasureStack(bootstrap, root, uuid.uuid4().hex[:8], **options)


async def send(stack: Stack, events: list[tuple[str, dict[str, Any]]]) -> None:
    before = stack.metric_sum("gateway_events_consumed_total{")
    for kind, body in events:
        await stack.event(kind, body)
    await stack.flush()
    await stack.wait_consumed(int(before) + len(events))


async def notices_for(stack: ErasureStack, subject: str) -> list[ConsumerRecord[bytes, bytes]]:
    """The erasure topic's notices that name `subject` by one of its sinks' pseudonyms."""
    names = {stack.pseudonym(sink, subject) for sink in stack.keys}
    found = []
    for record in await stack.read("erasure"):
        notice = orjson.loads(record.value)
        if {p["pseudonym"] for p in notice["pseudonyms"]} & names:
            found.append(record)
    return found


def assert_one_notice_per_sink(
    stack: ErasureStack, records: list[ConsumerRecord[bytes, bytes]], subject: str, reason: str
) -> None:
    notices = [orjson.loads(r.value) for r in records]
    assert sorted(n["sink"] for n in notices) == sorted(NOTIFIED)
    for notice, record in zip(notices, records, strict=True):
        sink = notice["sink"]
        assert notice["sink_topic"] == stack.topics[sink]
        assert notice["reason"] == reason
        assert notice["pseudonyms"] == [
            {"key_id": f"test-{sink}", "pseudonym": stack.pseudonym(sink, subject)}
        ]
        assert header(record, "gateway-reason") == reason
        assert header(record, "gateway-sink") == sink
        assert header(record, "gateway-dedup-id")
        assert subject.encode() not in record.value


async def sink_tail(
    stack: ErasureStack, sink: str, subject: str
) -> tuple[list[ConsumerRecord[bytes, bytes]], list[ConsumerRecord[bytes, bytes]]]:
    """(records keyed by the subject's pseudonym before its tombstone, every record after it)."""
    pseudonym = stack.pseudonym(sink, subject).encode()
    records = await stack.read(sink)
    marks = [i for i, r in enumerate(records) if r.key == pseudonym and r.value is None]
    assert len(marks) == 1, (sink, len(marks))
    tombstone = records[marks[0]]
    assert header(tombstone, "gateway-key-id") == f"test-{sink}"
    before = [r for r in records[: marks[0]] if r.key == pseudonym]
    after = [r for r in records[marks[0] + 1 :] if r.partition == tombstone.partition]
    return before, after


async def test_when_a_subject_is_tombstoned_mid_stream_then_each_sink_that_can_hold_its_pseudonym_is_notified(  # noqa: E501
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    stack = new_stack(kafka_bootstrap, tmp_path)
    erased, kept = unique("subj-erased"), unique("subj-kept")
    try:
        await ensure_topics(
            kafka_bootstrap,
            [TopicSpec(stack.topics["analytics"], 3, compacted=True, configs=FAST_COMPACTION)],
        )
        await stack.start()
        for subject in (erased, kept):
            await stack.consent(subject, consent(subject, everything(True)))
        await send(
            stack,
            [("usage", usage(s, unique("ev"))) for s in (erased, kept) for _ in range(4)]
            + [("device", device(erased, unique("ev")))],
        )
        await stack.consent(erased, None)
        assert await stack.wait_metric("gateway_erasure_notices_total{", 3) == 3
        after_ids = [unique("ev-after") for _ in range(3)]
        await send(stack, [("usage", usage(erased, e)) for e in after_ids])
        await send(stack, [("usage", usage(kept, unique("ev"))) for _ in range(2)])

        notices = await notices_for(stack, erased)
        assert_one_notice_per_sink(stack, notices, erased, "subject_erased")
        assert await notices_for(stack, kept) == []
        everyone = [orjson.loads(r.value)["sink"] for r in await stack.read("erasure")]
        assert "counts" not in everyone
        assert [r for r in await stack.read("counts") if r.value is None] == []
        for sink in ("ads", "social"):  # analytics is compacted: checked below
            before, after = await sink_tail(stack, sink, erased)
            assert before, f"{sink} had records of the subject before the tombstone"
            pseudonym = stack.pseudonym(sink, erased).encode()
            assert [r for r in after if r.key == pseudonym or pseudonym in (r.value or b"")] == []
        audits = [orjson.loads(r.value) for r in await stack.read("audit")]
        ids = {header(r, "gateway-dedup-id") for r in notices}
        erasure_audits = [a for a in audits if a.get("kind") == "erasure" and a["notice_id"] in ids]
        assert sorted(a["sink"] for a in erasure_audits) == sorted(NOTIFIED)
        metrics = stack.metrics()
        for sink in NOTIFIED:
            assert (
                metrics[f"gateway_erasure_notices_total{{reason=subject_erased,sink={sink}}}"] == 1
            )
        assert metrics["gateway_erasure_notices_total{reason=subject_erased,sink=counts}"] == 0
        assert metrics["gateway_erasure_notice_seconds_count{reason=subject_erased}"] == 1

        await _compacted(stack, "analytics", stack.pseudonym("analytics", erased).encode())
    finally:
        await stack.close()
        if stack.proc is not None:
            assert stack.stop() == 0, stack.log_text()[-3000:]


async def _compacted(stack: ErasureStack, sink: str, pseudonym: bytes) -> None:
    """Until the compacted sink topic holds no record keyed by `pseudonym` (the tombstone too).

    Filler records keep rolling segments, so the tombstone leaves the active one.
    """
    producer = await stack.producer()
    deadline = time.monotonic() + 120
    while True:
        for partition in range(stack.partitions):
            await producer.send(stack.topics[sink], b"{}", key=b"filler", partition=partition)
        await stack.flush()
        held = [r for r in await stack.read(sink, idle=0.8) if r.key == pseudonym]
        if not held:
            return
        assert time.monotonic() < deadline, f"{len(held)} records of the subject still held"
        await asyncio.sleep(1.0)


async def test_when_a_subject_turns_out_to_be_a_child_then_notices_go_out_and_no_identifier_follows(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    stack = new_stack(kafka_bootstrap, tmp_path)
    child = unique("subj-child")
    try:
        await stack.start()
        await stack.consent(child, consent(child, everything(True)))
        await send(stack, [("usage", usage(child, unique("ev"))) for _ in range(3)])
        await stack.consent(
            child, consent(child, everything(True), updated_at=LATER, under_13=True)
        )
        assert await stack.wait_metric("gateway_erasure_notices_total{", 3) == 3
        later = [unique("ev-later") for _ in range(3)]
        await send(
            stack,
            [("usage", usage(child, e)) for e in later] + [("device", device(child, unique("e")))],
        )
        notices = await notices_for(stack, child)
        assert_one_notice_per_sink(stack, notices, child, "child_discovered")
        version = parse_rfc3339_us(LATER)
        assert {orjson.loads(r.value)["consent_version"] for r in notices} == {version}
        for sink in NOTIFIED:
            before, after = await sink_tail(stack, sink, child)
            assert before, sink
            for record in after:
                assert record.key is None or record.key == b"filler", sink
                value = orjson.loads(record.value or b"{}")
                assert not {"subject_id", "device_id", "cookie_id", "ip", "properties"} & set(
                    value
                ), sink
        barred = "gateway_decisions_total{reason=child_barred_sink,sink=ads,verdict=drop}"
        assert stack.metrics()[barred] >= 3
        report = await subject_report(stack, child)
        assert report["subject_id"] == child
        assert report["consent"]["known"] is True
        assert report["consent"]["version"] == version
        sinks = report["sinks"]
        assert {name: s["reason"] for name, s in sinks.items()} == {
            "ads": "child_barred_sink",
            "analytics": "consented_child_no_identifiers",
            "counts": "child_no_parental_consent",
            "social": "child_barred_sink",
        }
        for sink in NOTIFIED:
            pseudonym = stack.pseudonym(sink, child)
            assert sinks[sink]["pseudonyms"] == [
                {"key_id": f"test-{sink}", "pseudonym": pseudonym, "current": True}
            ]
            assert [n["reason"] for n in sinks[sink]["erasure_notices"]] == ["child_discovered"]
        assert sinks["counts"]["pseudonyms"] == [] and sinks["counts"]["erasure_notices"] == []
    finally:
        await stack.close()
        if stack.proc is not None:
            assert stack.stop() == 0, stack.log_text()[-3000:]


async def subject_report(stack: ErasureStack, subject: str) -> dict[str, Any]:
    """`gateway subject-report` as a privacy team runs it; the raw id only as the echo."""
    result = await asyncio.to_thread(
        subprocess.run,
        stack.argv("subject-report", "--subject", subject),
        env={**os.environ, **stack.env()}, capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.count(subject) == 1, "the raw id appears only as the echo"
    report: dict[str, Any] = orjson.loads(result.stdout)
    return report


def _audited(audits: list[dict[str, Any]], event_id: str, sink: str) -> str | None:
    for audit in audits:
        if audit.get("event_id") == event_id and audit["sink"] == sink:
            return str(audit["reason"])
    return None


async def test_when_gpc_is_sticky_then_a_signal_holds_across_a_worker_restart_until_a_grant(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    stack = new_stack(kafka_bootstrap, tmp_path, gpc="sticky")
    subject = unique("subj-gpc")
    signalled, unsignalled, after_grant = unique("ev-gpc"), unique("ev-plain"), unique("ev-ok")
    try:
        await stack.start()
        await stack.consent(subject, consent(subject, everything(True)))
        await send(stack, [("usage", usage(subject, signalled, gpc=True))])
        assert stack.stop() == 0, stack.log_text()[-3000:]

        await stack.start()
        await send(stack, [("usage", usage(subject, unsignalled))])
        grant = consent(subject, {"advertising": True}, updated_at=LATER)
        await stack.consent(subject, grant | {"purposes": everything(True)})
        await send(stack, [("usage", usage(subject, after_grant))])
        audits = [orjson.loads(r.value) for r in await stack.read("audit")]
        assert _audited(audits, signalled, "ads") == "gpc"
        assert _audited(audits, unsignalled, "ads") == "gpc", "the signal did not survive"
        assert _audited(audits, unsignalled, "social") == "gpc"
        assert _audited(audits, after_grant, "ads") is None
        dedup = pseudonymize(stack.keys["ads"], "event:" + after_grant)
        assert dedup in {header(r, "gateway-dedup-id") for r in await stack.read("ads")}
    finally:
        await stack.close()
        if stack.proc is not None:
            assert stack.stop() == 0, stack.log_text()[-3000:]


async def test_when_the_worker_is_killed_after_publishing_notices_then_they_are_redelivered_with_the_same_ids(  # noqa: E501
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    stack = new_stack(kafka_bootstrap, tmp_path, extra_env={"GATEWAY_COMMIT_INTERVAL": "60"})
    erased = unique("subj-killed")
    try:
        await stack.start()
        await stack.consent(erased, consent(erased, everything(True)))
        await send(stack, [("usage", usage(erased, unique("ev")))])
        await stack.consent(erased, None)
        assert await stack.wait_metric("gateway_erasure_notices_total{", 3) == 3  # acknowledged
        assert stack.proc is not None
        stack.proc.popen.send_signal(signal.SIGKILL)  # before the 60 s commit interval
        stack.stop()

        stack.extra_env = {}
        await stack.start()
        assert await stack.wait_metric("gateway_erasure_notices_total{", 3) == 3
        notices = await notices_for(stack, erased)
        assert len(notices) == 6
        ids = [header(r, "gateway-dedup-id") for r in notices]
        assert len(set(ids)) == 3 and all(ids.count(i) == 2 for i in ids)
        for sink in NOTIFIED:
            pseudonym = stack.pseudonym(sink, erased).encode()
            marks = [r for r in await stack.read(sink) if r.key == pseudonym and r.value is None]
            assert len(marks) == 2, sink
            assert len({header(r, "gateway-dedup-id") for r in marks}) == 1, sink
    finally:
        await stack.close()
        if stack.proc is not None:
            stack.stop()

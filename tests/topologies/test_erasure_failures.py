"""Erasure notices that fail never cancel the erasure: the record applies, the failure is counted.

No broker: the real consent feed with a writer that records instead of sending (and refuses the
erasure topic where a test says so, as `BatchWriter` does for a topic it holds no partition
count for), and a dict for the table.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson
import pytest

from gateway.consent_state import PURPOSES
from gateway.records import OutputRecords
from tests.topologies.test_enforce import RecordingWriter
from tests.topologies.test_poison_pills import (
    CONSENT,
    DLQ,
    Message,
    Setup,
    Table,
    consent_record,
    feed_for,
    no_ends,
    samples,
    setup,
)
from topologies import consent_feed
from topologies.barrier import ConsentBarrier

__all__ = ["setup"]  # the fixture, imported for its name

ERASURE = "gateway.erasure"
CHANGELOG = "consent-changelog"


class NoErasureTopicWriter(RecordingWriter):
    """Refuses the erasure topic like a `BatchWriter` without its partition count (KeyError)."""

    def add(self, topic: str, source_partition: int, key: bytes | None, value: bytes | None,
            headers: Any) -> None:  # fmt: skip
        if topic == ERASURE:
            raise KeyError(topic)
        super().add(topic, source_partition, key, value, headers)


class RefusedWriter(RecordingWriter):
    """Every send fails once handed over, as a batch the broker refuses."""

    async def send(self) -> asyncio.Future[Any]:
        self._open = []
        failed: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        failed.set_exception(RuntimeError("refused"))
        return failed


def failures(s: Setup) -> dict[tuple[str, str], float]:
    found = samples(s.registry, "gateway_erasure_notice_failures_total")
    return {(dict(k)["reason"], dict(k)["stage"]): v for k, v in found.items()}


def child_record(subject: str, at: str) -> bytes:
    return orjson.dumps({
        "subject_id": subject, "updated_at": at, "purposes": dict.fromkeys(PURPOSES, True),
        "age": {"under_13": True, "parental_consent": False},
    })  # fmt: skip


async def test_when_notices_cannot_be_written_then_the_tombstone_still_erases_the_subject(
    setup: Setup, caplog: pytest.LogCaptureFixture
) -> None:
    table, writer, barrier = Table(), NoErasureTopicWriter(), ConsentBarrier(no_ends)
    feed = feed_for(setup, table, writer, barrier)
    tp = consent_feed.TopicPartition(CONSENT, 1)
    await feed._apply_batch(
        {tp: [Message(0, b"subj-a", consent_record("subj-a", "2026-11-26T11:00:00Z", True))]}
    )
    assert b"subj-a" in table.data
    with caplog.at_level(logging.INFO):
        await feed._apply_batch({tp: [Message(1, b"subj-a", None)]})
    await asyncio.gather(*feed._unacked)

    assert b"subj-a" not in table.data, "fail closed: the subject's consent is gone (deny)"
    changelog = [(k, v) for t, _, k, v, _ in writer.sent if t == CHANGELOG]
    assert changelog[-1] == (b"subj-a", None), "the erasure survives a restart"
    assert [t for t, *_ in writer.sent if t == DLQ] == [], "an applied record is no dead letter"
    assert barrier.applied_next[1] == 2 and feed._pending[tp] == 2
    outcomes = samples(setup.registry, "gateway_consent_records_total")
    assert outcomes[(("outcome", "tombstone"),)] == 1
    assert outcomes[(("outcome", "invalid"),)] == 0
    assert failures(setup)[("subject_erased", "build")] == 1
    notices = samples(setup.registry, "gateway_erasure_notices_total")
    assert sum(notices.values()) == 0, "no notice counted as sent"
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [
        f"erasure notices not sent: topic={CONSENT} partition=1 offset=1"
        " reason=subject_erased error=KeyError"
    ]
    assert "subj-a" not in caplog.text


async def test_when_a_childs_notices_cannot_be_built_then_the_child_state_still_applies(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any) -> Any:
        raise KeyError("no-such-sink")

    monkeypatch.setattr(OutputRecords, "erasure", broken)
    table, writer, barrier = Table(), RecordingWriter(), ConsentBarrier(no_ends)
    feed = feed_for(setup, table, writer, barrier)
    tp = consent_feed.TopicPartition(CONSENT, 0)
    await feed._apply_batch(
        {tp: [Message(0, b"subj-c", child_record("subj-c", "2026-11-26T11:00:00Z"))]}
    )
    await asyncio.gather(*feed._unacked)

    assert b"subj-c" in table.data, "the child's state is held: its events are denied"
    assert [t for t, *_ in writer.sent] == [CHANGELOG]
    assert failures(setup)[("child_discovered", "build")] == 1
    outcomes = samples(setup.registry, "gateway_consent_records_total")
    assert outcomes[(("outcome", "applied"),)] == 1


async def test_when_the_batch_with_notices_is_refused_then_they_count_as_failed_at_ack(
    setup: Setup,
) -> None:
    table, writer, barrier = Table(), RefusedWriter(), ConsentBarrier(no_ends)
    feed = feed_for(setup, table, writer, barrier)
    tp = consent_feed.TopicPartition(CONSENT, 0)
    await feed._apply_batch({tp: [Message(0, b"subj-a", None), Message(1, b"subj-b", None)]})
    results = await asyncio.gather(*feed._unacked, return_exceptions=True)
    await asyncio.sleep(0)  # done callbacks run on the next loop turn

    assert [type(r) for r in results] == [RuntimeError]
    assert failures(setup)[("subject_erased", "ack")] == 2
    assert failures(setup)[("subject_erased", "build")] == 0


async def test_when_a_tombstone_has_an_empty_key_then_it_goes_to_the_dlq_and_notifies_no_sink(
    setup: Setup,
) -> None:
    table, writer, barrier = Table(), RecordingWriter(), ConsentBarrier(no_ends)
    feed = feed_for(setup, table, writer, barrier)
    await feed._apply_batch({consent_feed.TopicPartition(CONSENT, 0): [Message(0, b"", None)]})
    await asyncio.gather(*feed._unacked)

    assert [t for t, *_ in writer.sent] == [DLQ], "no notice for a subject named ''"
    dead = orjson.loads(writer.sent[0][3] or b"{}")
    assert (dead["reason"], dead["detail"]) == ("missing_key", "record key is empty: no subject id")
    outcomes = samples(setup.registry, "gateway_consent_records_total")
    assert outcomes[(("outcome", "invalid"),)] == 1
    assert outcomes[(("outcome", "tombstone"),)] == 0

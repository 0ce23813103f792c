"""The fast path's wiring without a broker: fake aiokafka clients, the rest real (`harness`).

The reader, the consent feed, the barrier, the enforcer and the rebalance hooks run as
`topologies.app` wires them; only the consumer and producer clients are fakes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import (
    KafkaConnectionError,
    KafkaError,
    OutOfOrderSequenceNumber,
    TopicAuthorizationFailedError,
)

from tests.topologies.harness import FakeBroker, Gateway, eventually
from tests.topologies.test_enforce import event
from tests.topologies.test_poison_pills import consent_record
from topologies.raw_reader import _InFlight

USAGE, CONSENT = "events.usage.raw", "consent.state"


@pytest.fixture
async def gateway() -> AsyncIterator[Gateway]:
    gateway = Gateway(FakeBroker())
    yield gateway
    await gateway.stop()


def grant(broker: FakeBroker, subject: str, partition: int) -> None:
    value = consent_record(subject, "2026-11-26T11:00:00Z", True)
    broker.produce(CONSENT, partition, subject.encode(), value)


def outputs(gateway: Gateway, event_id: str) -> list[str]:
    """Sink topics holding an output of `event_id` (the canary-free sink bodies keep it)."""
    return [
        topic
        for topic in sorted(gateway.sink_topics)
        for record in gateway.broker.records(topic)
        if event_id.encode() in (record.value or b"")
    ]


async def test_when_a_batch_runs_end_to_end_then_offsets_are_committed_only_after_the_acks(
    gateway: Gateway,
) -> None:
    broker = gateway.broker
    grant(broker, "subj-a", 0)
    broker.produce(USAGE, 0, b"subj-a", event("subj-a", "e-1"))
    gateway.producer.hold()
    await gateway.start()

    await eventually(lambda: gateway.producer.pending > 0, what="the batch handed to the producer")
    await asyncio.sleep(0.05)
    assert gateway.committed("raw", USAGE, 0) is None, "committed before the acknowledgements"
    gateway.producer.release()

    await eventually(lambda: gateway.committed("raw", USAGE, 0) == 1, what="the commit")
    assert outputs(gateway, "e-1"), "a granted subject's event reaches a sink"
    assert [r.key for r in broker.records(gateway.table.changelog_topic)] == [b"subj-a"]
    await eventually(lambda: gateway.committed("consent-feed", CONSENT, 0) == 1, what="feed")
    assert gateway.failures == []


async def test_when_partitions_move_then_revoke_commits_in_flight_and_resume_takes_the_new_ones(
    gateway: Gateway,
) -> None:
    broker = gateway.broker
    await gateway.start([0, 1])
    gateway.producer.hold()
    broker.produce(USAGE, 0, b"subj-a", event("subj-a", "e-1"))
    broker.produce(USAGE, 1, b"subj-b", event("subj-b", "e-2"))
    await eventually(lambda: gateway.producer.pending > 0, what="a batch in flight")

    revoking = asyncio.ensure_future(gateway.hooks.revoked())
    await asyncio.sleep(0.05)
    assert not revoking.done(), "the revocation waits for the batch's acknowledgements"
    gateway.producer.release()
    await asyncio.wait_for(revoking, 2)
    assert gateway.committed("raw", USAGE, 0) == 1 and gateway.committed("raw", USAGE, 1) == 1

    await gateway.hooks.assigned(gateway.assignment([1]))
    await gateway.hooks.complete()
    assert {(tp.topic, tp.partition) for tp in gateway.reader._follower.assignment()} == {
        (topic, 1) for topic in gateway.raw_topics
    }
    assert {tp.partition for tp in gateway.feed._follower.assignment()} == {1}
    assert {tp.topic for tp in gateway.paused} == gateway.raw_topics, "faust fetches none of them"
    broker.produce(USAGE, 1, b"subj-b", event("subj-b", "e-3"))
    broker.produce(USAGE, 0, b"subj-a", event("subj-a", "e-4"))  # no longer this worker's
    await eventually(lambda: gateway.committed("raw", USAGE, 1) == 2, what="the new partition")
    await asyncio.sleep(0.05)
    assert gateway.committed("raw", USAGE, 0) == 1
    assert gateway.failures == []


async def test_when_a_revocation_comes_while_a_batch_waits_at_the_barrier_then_it_is_redone(
    gateway: Gateway,
) -> None:
    broker = gateway.broker
    await gateway.start([0])
    broker.held.add(CONSENT)  # the feed is behind: the consent record is not served yet
    grant(broker, "subj-a", 0)
    broker.produce(USAGE, 0, b"subj-a", event("subj-a", "e-1"))
    await eventually(lambda: gateway.barrier.last_end.get(0) == 1, what="the batch at the barrier")

    await asyncio.wait_for(gateway.hooks.revoked(), 2)  # the feed is paused: waiting is futile
    assert gateway.committed("raw", USAGE, 0) is None, "the waiting batch is not committed"
    assert outputs(gateway, "e-1") == [], "nor decided"

    broker.held.clear()
    await gateway.hooks.assigned(gateway.assignment([0]))
    await gateway.hooks.complete()
    await eventually(lambda: gateway.committed("raw", USAGE, 0) == 1, what="the batch redone")
    assert outputs(gateway, "e-1"), "decided once the consent was applied"
    assert gateway.failures == []


async def test_when_the_producer_fails_then_nothing_is_committed_and_the_failure_is_reported(
    gateway: Gateway,
) -> None:
    broker = gateway.broker
    await gateway.start([0])
    gateway.producer.fail_next(TopicAuthorizationFailedError())
    broker.produce(USAGE, 0, b"subj-a", event("subj-a", "e-1"))

    await eventually(lambda: gateway.failures != [], what="the failure callback")
    assert [type(exc) for exc in gateway.failures] == [TopicAuthorizationFailedError]
    assert gateway.committed("raw", USAGE, 0) is None
    assert outputs(gateway, "e-1") == []


@pytest.mark.parametrize(
    "error", [KafkaConnectionError(), KafkaError("coordination died"), OutOfOrderSequenceNumber()]
)
async def test_when_kafka_is_away_then_the_batch_is_decided_again_once_it_answers(
    gateway: Gateway, error: KafkaError
) -> None:
    broker = gateway.broker
    await gateway.start([0])
    grant(broker, "subj-a", 0)
    await eventually(lambda: gateway.committed("consent-feed", CONSENT, 0) == 1, what="grant")
    gateway.producer.fail_next(error)  # the raw batch's outputs are refused
    broker.produce(USAGE, 0, b"subj-a", event("subj-a", "e-1"))

    await eventually(lambda: gateway.committed("raw", USAGE, 0) == 1, what="the redone batch")
    assert gateway.failures == [], "an outage is ridden out, not a failure"
    renewed = int(isinstance(error, OutOfOrderSequenceNumber))  # a new producer for a broken one
    await eventually(lambda: gateway.output.generation == renewed, what="the producer renewed")
    # At least once: batches of the refused send that did land are written again, same dedup id.
    landed = [r for r in gateway.broker.records("sink.analytics") if b"e-1" in (r.value or b"")]
    assert landed and len({dict(r.headers)["gateway-dedup-id"] for r in landed}) == 1


async def test_when_the_consent_feed_catches_up_then_the_barrier_releases_the_batch(
    gateway: Gateway,
) -> None:
    broker = gateway.broker
    await gateway.start([0])
    broker.held.add(CONSENT)
    grant(broker, "subj-a", 0)
    broker.produce(USAGE, 0, b"subj-a", event("subj-a", "e-1"))
    await eventually(lambda: gateway.barrier.last_end.get(0) == 1, what="the batch at the barrier")
    await asyncio.sleep(0.3)  # past the barrier's timeout: it keeps waiting (fail closed)
    assert outputs(gateway, "e-1") == [] and gateway.committed("raw", USAGE, 0) is None

    broker.held.clear()
    await eventually(lambda: gateway.committed("raw", USAGE, 0) == 1, what="the release")
    assert outputs(gateway, "e-1"), "decided with the grant the barrier waited for"
    assert gateway.barrier.applied_next[0] == 1


async def test_when_an_outage_abandons_an_earlier_batch_then_no_later_one_is_committed_past_it(
    gateway: Gateway,
) -> None:
    broker, reader, tp = gateway.broker, gateway.reader, TopicPartition(USAGE, 0)
    await gateway.start([0])
    grant(broker, "subj-a", 0)
    await eventually(lambda: gateway.committed("consent-feed", CONSENT, 0) == 1, what="grant")
    async with reader._lock:  # as in run(): the ride-out holds the lock
        for n in range(10):
            broker.produce(USAGE, 0, b"subj-a", event("subj-a", f"e-{n}"))
        loop = asyncio.get_running_loop()
        first, second = loop.create_future(), loop.create_future()
        second.set_result(None)  # a later batch landed on another output partition
        reader._inflight.extend(
            [_InFlight(first, {tp: 5}, 0, 0, 5), _InFlight(second, {tp: 10}, 0, 0, 5)]
        )
        await reader._ride_out(KafkaConnectionError())
        assert (gateway.committed("raw", USAGE, 0) or 0) <= 5, "never past the abandoned batch"
    await eventually(lambda: gateway.committed("raw", USAGE, 0) == 10, what="redone")
    for n in range(5):
        assert outputs(gateway, f"e-{n}"), f"e-{n} decided again after the outage"


async def test_when_an_outage_loses_a_withdrawals_changelog_write_then_it_is_written_again(
    gateway: Gateway,
) -> None:
    broker = gateway.broker
    await gateway.start([0])
    grant(broker, "subj-a", 0)
    await eventually(lambda: gateway.committed("consent-feed", CONSENT, 0) == 1, what="grant")
    changelog = gateway.table.changelog_topic
    gateway.producer.fail_next(KafkaConnectionError())  # the outage hits the changelog write
    broker.produce(CONSENT, 0, b"subj-a", consent_record("subj-a", "2026-11-26T11:30:00Z", False))
    await eventually(lambda: gateway.committed("consent-feed", CONSENT, 0) == 2, what="committed")
    log = [r.value for r in broker.records(changelog) if r.key == b"subj-a"]
    assert log[-1] == gateway.table.data[b"subj-a"], "a restart restores the withdrawal"

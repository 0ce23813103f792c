"""Riding out a Kafka outage: transient errors, the degraded reports, and quiet aiokafka logs."""

from __future__ import annotations

import asyncio
import logging
from itertools import islice

import pytest
from aiokafka.errors import (
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
    LeaderNotAvailableError,
    NodeNotReadyError,
    NotLeaderForPartitionError,
    RecordTooLargeError,
    TopicAuthorizationFailedError,
)

from topologies.outage import (
    ClientCancelledError,
    Outage,
    QuietRepeats,
    backoff_delays,
    quiet_aiokafka_repeats,
    settled,
    transient,
)


@pytest.mark.parametrize(
    "error",
    [KafkaConnectionError(), NodeNotReadyError(), LeaderNotAvailableError(),
     NotLeaderForPartitionError(), KafkaTimeoutError(), TimeoutError()],
)  # fmt: skip
def test_errors_an_outage_causes_are_transient(error: BaseException) -> None:
    assert transient(error)


def test_the_bare_kafka_error_of_a_dead_consumer_coordinator_is_transient() -> None:
    assert transient(KafkaError("Unexpected error during coordination"))


@pytest.mark.parametrize(
    "error", [TopicAuthorizationFailedError(), RecordTooLargeError(), ValueError(), KeyError()]
)
def test_refusals_and_our_own_bugs_are_not_transient(error: BaseException) -> None:
    assert not transient(error)


def test_backoff_doubles_up_to_its_ceiling() -> None:
    assert list(islice(backoff_delays(0.5, 4.0), 6)) == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]


def test_an_outage_is_reported_once_then_every_30_s_then_ended_with_its_length(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [100.0]
    calls: list[tuple[str, ...]] = []
    outage = Outage(
        "raw_reader", began=lambda c: calls.append(("began", c)),
        ended=lambda c, s: calls.append(("ended", c, f"{s:.0f}")), clock=lambda: now[0],
    )  # fmt: skip
    outage.end()  # not degraded: nothing
    with caplog.at_level(logging.WARNING, logger="gateway.outage"):
        outage.begin(KafkaConnectionError("Connection at 10.0.0.7:9092 closed"))
        now[0] += 10
        outage.begin(NodeNotReadyError())
        now[0] += 25
        outage.begin(NodeNotReadyError())
        assert outage.degraded
        outage.end()
    assert calls == [("began", "raw_reader"), ("ended", "raw_reader", "35")]
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 3, lines
    assert "degraded" in lines[0] and "KafkaConnectionError" in lines[0]
    assert "10.0.0.7" not in "".join(lines), "the error's text (addresses) is not logged"
    assert "still degraded" in lines[1] and "35 s" in lines[1]
    assert "reachable again" in lines[2] and "35.0 s" in lines[2]
    assert not outage.degraded


def record(
    message: str, level: int = logging.ERROR, name: str = "aiokafka.conn"
) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, message, None, None)


def test_quiet_repeats_keeps_one_record_per_shape_per_interval_and_says_how_many_it_held() -> None:
    now = [0.0]
    quiet = QuietRepeats(10.0, clock=lambda: now[0])
    first = record("Unable connect to node with id 1: [Errno 111]")
    assert quiet.filter(first)
    held = [
        quiet.filter(record(f"Unable connect to node with id {n}: [Errno 111]")) for n in range(5)
    ]
    assert held == [False] * 5
    assert quiet.filter(record("Another message")), "another shape goes through"
    assert quiet.filter(record("Unable connect to node with id 1: [Errno 111]", logging.INFO))
    now[0] = 10.5
    again = record("Unable connect to node with id 1: [Errno 111]")
    assert quiet.filter(again)
    assert again.getMessage().endswith("(5 similar records held back)")


async def test_settled_turns_a_clients_own_cancellation_and_a_timeout_into_transient_errors() -> (
    None
):
    loop = asyncio.get_running_loop()
    done: asyncio.Future[int] = loop.create_future()
    done.set_result(7)
    assert await settled(done) == 7
    cancelled: asyncio.Future[int] = loop.create_future()
    cancelled.cancel()  # the client cancelled its own request
    with pytest.raises(ClientCancelledError) as raised:
        await settled(cancelled)
    assert transient(raised.value)
    with pytest.raises(TimeoutError) as late:
        await settled(loop.create_future(), timeout=0.01)
    assert transient(late.value)


async def test_cancelling_the_caller_of_settled_still_cancels_it_and_the_future() -> None:
    pending: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    waiting = asyncio.ensure_future(settled(pending))
    await asyncio.sleep(0)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    await asyncio.sleep(0)
    assert pending.cancelled()


def test_aiokafka_never_logs_below_info_in_the_worker_its_debug_lines_quote_records() -> None:
    logger = logging.getLogger("aiokafka")
    level = logger.level
    try:
        logging.getLogger().setLevel(logging.DEBUG)
        quiet_aiokafka_repeats()
        assert not logging.getLogger("aiokafka.conn").isEnabledFor(logging.DEBUG)
        assert logging.getLogger("aiokafka.conn").isEnabledFor(logging.INFO)
    finally:
        logger.setLevel(level)

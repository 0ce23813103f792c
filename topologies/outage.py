"""Riding out a Kafka outage: which errors are transient, backoff, degraded state, quiet logs.

A worker must not exit because the cluster is away for a while (a broker restart, a network
partition): the raw reader and the consent feed catch a *transient* error (`transient`), stop
fetching, report the worker degraded (`Outage`: a log line when it begins, every 30 s while it
lasts and when it ends; `gateway_kafka_degraded{client}` on /metrics), retry with exponential
backoff (`backoff_delays`), and, once the cluster answers, go on from their committed offsets.
Nothing uncommitted is lost: what was decided but not acknowledged is decided again (at least
once; sink records carry `gateway-dedup-id`).

While the cluster is away aiokafka logs every failed connection and metadata request, several
times a second per client (a million lines in two minutes were measured): `QuietRepeats`
keeps one record per message shape and logger every `interval` seconds and says how many it
held back.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import re
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Protocol, TypeVar

from aiokafka.errors import KafkaError

from topologies.follower import FollowingConsumer

log = logging.getLogger("gateway.outage")
T = TypeVar("T")

STILL_DEGRADED_EVERY = 30.0  # seconds between "still degraded" lines


# An idempotent producer's sequence state out of step with the broker's (after a broker restart,
# aiokafka's producer keeps failing with these until it is replaced: aio-libs/aiokafka#1017).
_PRODUCER_STATE_ERRORS = frozenset(
    {"OutOfOrderSequenceNumber", "UnknownProducerId", "InvalidProducerEpoch"}
)


def needs_new_producer(exc: BaseException) -> bool:
    """True when the output producer's idempotence state is broken: only a new one recovers."""
    return type(exc).__name__ in _PRODUCER_STATE_ERRORS


class Renewable(Protocol):
    """The output producer as the reader and the feed see it: replaceable after an outage."""

    @property
    def generation(self) -> int:
        """How many times it was replaced; a replacement is asked for with the one seen."""
        ...

    async def renew(self, seen: int) -> None:
        """Replace the producer unless it was replaced since generation `seen`."""
        ...


def transient(exc: BaseException) -> bool:
    """True for an error that an outage causes and a retry can cure.

    aiokafka's retriable errors (no connection, node not ready, no leader, request timed out,
    coordinator unavailable), its timeouts, and the bare `KafkaError` its consumer raises for
    ever once its coordination task died in an outage (the reader and the feed then make a new
    consumer); not authorization, not a refused record, not a bug of ours.
    """
    if type(exc) is KafkaError or needs_new_producer(exc):
        return True  # a dead coordination task, a broken producer: new clients recover
    if isinstance(exc, KafkaError):
        return bool(getattr(exc, "retriable", False)) or type(exc).__name__ in {
            "KafkaTimeoutError", "KafkaConnectionError", "NodeNotReadyError",
            "CommitFailedError", "RequestTimedOutError",
        }  # fmt: skip
    return isinstance(exc, (asyncio.TimeoutError, ConnectionError))


class ClientCancelledError(KafkaError):  # type: ignore[misc]  # aiokafka is untyped
    """A Kafka client cancelled its own request (aiokafka does while it closes or reconnects).

    Raised instead of letting that `CancelledError` cancel the caller's task; retriable.
    """

    retriable = True


async def settled(future: Awaitable[T], timeout: float | None = None) -> T:
    """`await future`, except that the future's own cancellation or a timeout is an error.

    A Kafka client's future cancelled by the client (not by our caller) raises
    `ClientCancelledError`, and `timeout` seconds without an answer raise `TimeoutError`, both
    transient; cancelling the caller still cancels it (and the future).
    """
    task = asyncio.ensure_future(future)
    try:
        done, _ = await asyncio.wait({task}, timeout=timeout)
    except asyncio.CancelledError:
        task.cancel()
        raise
    if not done:
        task.cancel()
        raise TimeoutError(f"no answer from Kafka within {timeout} s")
    if task.cancelled():
        raise ClientCancelledError("the Kafka client cancelled the request")
    return task.result()


def backoff_delays(first: float = 0.5, most: float = 10.0) -> Iterator[float]:
    """Seconds to wait between retries: `first`, doubling, at most `most`, for ever."""
    delay = first
    while True:
        yield delay
        delay = min(delay * 2, most)


class Outage:
    """One client's degraded state: the log lines and the metric calls, begun once, ended once.

    `client` names it in logs and in the metric's label; `began(client)` and
    `ended(client, seconds)` are the metric hooks (`GatewayMetrics.kafka_outage_began/ended`);
    `clock` is monotonic seconds.
    """

    def __init__(
        self,
        client: str,
        *,
        began: Callable[[str], None],
        ended: Callable[[str, float], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self._began, self._ended, self._clock = began, ended, clock
        self._since: float | None = None
        self._said = 0.0

    @property
    def degraded(self) -> bool:
        """True between `begin` and `end`."""
        return self._since is not None

    def begin(self, exc: BaseException) -> None:
        """Report the outage (once, however many errors follow); the error's type only."""
        now = self._clock()
        if self._since is None:
            self._since = self._said = now
            self._began(self.client)
            log.warning(
                "Kafka unreachable from the %s (%s): degraded; fetching paused, retrying with"
                " backoff; nothing is committed until the cluster answers",
                self.client.replace("_", " "), type(exc).__name__,
            )  # fmt: skip
        elif now - self._said >= STILL_DEGRADED_EVERY:
            self._said = now
            log.warning(
                "still degraded: the %s has not reached Kafka for %.0f s (%s)",
                self.client.replace("_", " "), now - self._since, type(exc).__name__,
            )  # fmt: skip

    def end(self) -> None:
        """The cluster answered again: report how long it was away (no-op if not degraded)."""
        if self._since is None:
            return
        seconds = self._clock() - self._since
        self._since = None
        self._ended(self.client, seconds)
        log.warning(
            "Kafka reachable again from the %s after %.1f s; going on from the committed offsets",
            self.client.replace("_", " "), seconds,
        )  # fmt: skip


async def reconnect(
    outage: Outage,
    exc: BaseException,
    follower: FollowingConsumer,
    *,
    producer: Renewable | None,
    sent_on: int,
    going: Callable[[], bool],
    then: Callable[[], Awaitable[None]],
) -> bool:
    """Retry, with backoff, until the cluster answers again; the reader's and the feed's loop.

    Each attempt makes a new consumer (an outage can leave aiokafka's own broken for good) on the
    partitions `follower` holds now, replaces `producer` if `exc` or a later error says its
    idempotence state broke (asking with `sent_on`, the generation the failed sends went
    through), then runs `then` (the caller's own catching up). Returns True once an attempt
    succeeds (the outage is ended), False when `going()` turns false first (a rebalance or a
    stop: the caller's `resume` ends it). Raises the first error that is not transient.
    """
    assignment = follower.assignment()
    renew = needs_new_producer(exc)
    delays = backoff_delays()
    while going():
        await asyncio.sleep(next(delays))
        try:
            await settled(follower.renew(), timeout=30)
            await settled(follower.take(assignment), timeout=30)
            if renew and producer is not None:
                await settled(producer.renew(sent_on), timeout=30)
            await then()
        except Exception as again:
            if not transient(again):
                raise
            renew = renew or needs_new_producer(again)
            outage.begin(again)
            continue
        outage.end()
        return True
    return False


# The aiokafka modules that log while the cluster is away.
_NOISY_MODULES = (
    "aiokafka.client", "aiokafka.conn", "aiokafka.consumer.fetcher",
    "aiokafka.consumer.group_coordinator", "aiokafka.producer.sender",
)  # fmt: skip
# Digits, addresses and ids vary between otherwise equal messages.
_VARYING = re.compile(r"\d+")


class QuietRepeats(logging.Filter):
    """Lets one record per (logger, message shape) through every `interval` seconds.

    The shape is the message with its numbers blanked. The next record let through after a
    quiet spell says how many were held back. `clock` is monotonic seconds.
    """

    def __init__(self, interval: float = 10.0, clock: Callable[[], float] = time.monotonic):
        super().__init__()
        self.interval = interval
        self._clock = clock
        self._seen: dict[tuple[str, str], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        """True to emit `record` (possibly annotated with the count held back), False to drop."""
        if record.levelno < logging.WARNING:
            return True
        shape = (record.name, _VARYING.sub("#", str(record.msg)))
        now = self._clock()
        last = self._seen.get(shape)
        if last is not None and now - last[0] < self.interval:
            self._seen[shape] = (last[0], last[1] + 1)
            return False
        if len(self._seen) > 1000:
            self._seen.clear()
        self._seen[shape] = (now, 0)
        if last is not None and last[1]:
            record.msg = f"{record.msg} ({last[1]} similar records held back)"
        return True


def quiet_aiokafka_repeats(interval: float = 10.0) -> QuietRepeats:
    """Install one `QuietRepeats` on every aiokafka logger (they log under their module names).

    aiokafka's own log is also kept at INFO or above whatever the worker's level: its DEBUG
    lines quote whole requests and responses, record keys and values included (raw subject ids
    and identifiers, found by the fault suite's canary scan at `GATEWAY_LOG_LEVEL=debug`).
    """
    logging.getLogger("aiokafka").setLevel(logging.INFO)
    quiet = QuietRepeats(interval)
    for module in _NOISY_MODULES:  # imported so that their loggers exist
        importlib.import_module(module)

    names = [n for n in logging.root.manager.loggerDict if n.split(".")[0] == "aiokafka"]
    for name in ["aiokafka", *names]:
        logging.getLogger(name).addFilter(quiet)
    return quiet

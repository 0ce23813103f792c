"""An aiokafka consumer that follows faust's assignment instead of joining a group itself.

The consent feed and the raw reader each own one. It is made on the running loop (aiokafka
requires it), takes by hand the partitions faust assigned to this worker, resumes each from the
offset committed in its own group (or the beginning), and commits without group membership.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

ConsumerFactory = Callable[..., AIOKafkaConsumer]  # called with aiokafka's keyword settings


class FollowingConsumer:
    """Owns one aiokafka consumer, made on `start` by `factory(**settings)`.

    `name` says which one in errors; `settings` are aiokafka's (auto commit off,
    `auto_offset_reset="earliest"` and `isolation_level="read_committed"` unless given).
    `client` raises `RuntimeError` before `start`.
    """

    def __init__(
        self, name: str, factory: ConsumerFactory = AIOKafkaConsumer, **settings: Any
    ) -> None:
        self._name = name
        self._factory = factory
        self._settings = {
            "enable_auto_commit": False, "auto_offset_reset": "earliest",
            # records of aborted transactions are not events or consent; end offsets then stop
            # at the last stable offset, so the barrier never waits for an open transaction's
            "isolation_level": "read_committed", **settings,
        }  # fmt: skip
        self._client: AIOKafkaConsumer | None = None
        self._starting = asyncio.Lock()  # bound to a loop on first use (Python >= 3.10)

    @property
    def client(self) -> AIOKafkaConsumer:
        """The started aiokafka consumer; raises `RuntimeError` before `start`."""
        if self._client is None:
            raise RuntimeError(f"the {self._name} is not started")
        return self._client

    async def start(self) -> None:
        """Idempotent: faust may report recovery complete before it starts extra services.

        Overlapping calls wait for the first: `client` is set only once the consumer started,
        so no caller ever gets an unstarted one (aiokafka raises on `committed` then).
        """
        async with self._starting:
            if self._client is None:
                client = self._factory(**self._settings)
                await client.start()
                self._client = client

    async def take(self, tps: Iterable[TopicPartition]) -> dict[TopicPartition, int | None]:
        """Assign exactly `tps`, each at its committed offset; return those offsets."""
        consumer = self.client
        wanted = sorted(set(tps))
        consumer.assign(wanted)
        committed: dict[TopicPartition, int | None] = {}
        for tp in wanted:
            committed[tp] = await consumer.committed(tp)
            offset = committed[tp]
            if offset is None:
                await consumer.seek_to_beginning(tp)
            else:
                consumer.seek(tp, offset)
        return committed

    async def renew(self) -> None:
        """Replace the consumer by a new one, unassigned (`take` assigns it again).

        After a Kafka outage aiokafka's consumer can be left with a dead coordination task
        that fails every later call; a new consumer starts clean. Stopping the old one is
        given 10 s, and its errors are ignored.
        """
        old, self._client = self._client, None
        if old is not None:  # its stop may cancel its own tasks: never ours
            stopping = asyncio.ensure_future(old.stop())
            await asyncio.wait({stopping}, timeout=10)
            if stopping.done() and not stopping.cancelled():
                stopping.exception()  # retrieved: ignored, the shutdown goes on
            else:
                stopping.cancel()
        await self.start()

    def assignment(self) -> set[TopicPartition]:
        """The topic-partitions assigned now; none before `start`."""
        return set(self.client.assignment()) if self._client is not None else set()

    async def stop(self) -> None:
        """Stop the consumer if it was started; its errors are ignored (a shutdown goes on)."""
        if self._client is not None:
            with contextlib.suppress(Exception):
                await self._client.stop()

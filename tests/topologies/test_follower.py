"""FollowingConsumer.start: overlapping calls never hand out an unstarted consumer."""

from __future__ import annotations

import asyncio
from typing import Any

from topologies.follower import FollowingConsumer


class _SlowConsumer:
    """An aiokafka stand-in whose start takes until `release` is set."""

    made = 0

    def __init__(self, release: asyncio.Event, **settings: Any) -> None:
        self.release = release
        self.started = False
        _SlowConsumer.made += 1

    async def start(self) -> None:
        await self.release.wait()
        self.started = True


async def test_when_start_overlaps_then_the_second_caller_waits_for_a_started_consumer() -> None:
    release = asyncio.Event()
    _SlowConsumer.made = 0
    follower = FollowingConsumer("raw reader", lambda **kw: _SlowConsumer(release, **kw))
    first = asyncio.ensure_future(follower.start())
    second = asyncio.ensure_future(follower.start())
    await asyncio.sleep(0.01)
    assert not second.done()  # before the fix it returned at once, the consumer unstarted
    release.set()
    await asyncio.gather(first, second)
    assert follower.client.started  # type: ignore[attr-defined]
    assert _SlowConsumer.made == 1

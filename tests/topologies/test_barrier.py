"""The revocation barrier's bookkeeping, without a broker (end offsets are given)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import pytest

from topologies.barrier import ConsentBarrier


def barrier_with(ends: dict[int, int]) -> ConsentBarrier:
    async def end_offsets(partitions: Iterable[int]) -> dict[int, int]:
        return {p: ends[p] for p in partitions}

    return ConsentBarrier(end_offsets)


async def test_when_a_partition_was_never_seeded_then_the_barrier_waits_for_it() -> None:
    barrier = barrier_with({0: 0})
    waiter = asyncio.ensure_future(barrier.wait([0], timeout=5))
    await asyncio.sleep(0.05)
    assert not waiter.done(), "an unassigned consent partition must not count as caught up"
    barrier.seed(0, None)
    assert await asyncio.wait_for(waiter, 2) >= 0.0


async def test_when_the_feed_is_behind_then_the_batch_waits_until_the_last_record_is_applied() -> (
    None
):
    barrier = barrier_with({0: 10, 1: 3})
    barrier.seed(0, 4)
    barrier.seed(1, 3)
    waiter = asyncio.ensure_future(barrier.wait([0, 1], timeout=5))
    for offset in range(4, 9):
        barrier.applied(0, offset)
        await asyncio.sleep(0.01)
        assert not waiter.done(), f"released before offset 9 was applied (at {offset})"
    barrier.applied(0, 9)
    await asyncio.wait_for(waiter, 2)
    assert barrier.lag() == {0: 0, 1: 0}


async def test_when_the_committed_offset_covers_the_end_then_nothing_waits() -> None:
    barrier = barrier_with({2: 7})
    barrier.seed(2, 7)
    assert await barrier.wait([2]) < 0.1


async def test_when_the_feed_stays_behind_past_the_timeout_then_the_barrier_keeps_waiting(
    caplog: pytest.LogCaptureFixture,
) -> None:
    barrier = barrier_with({0: 5})
    barrier.seed(0, 0)
    waiter = asyncio.ensure_future(barrier.wait([0], timeout=0.1))
    await asyncio.sleep(0.35)
    assert not waiter.done(), "fail closed: never decide before the consent is applied"
    assert "still behind" in caplog.text
    barrier.applied(0, 4)
    await asyncio.wait_for(waiter, 2)


async def test_when_a_partition_is_forgotten_then_it_must_be_seeded_again() -> None:
    barrier = barrier_with({0: 1})
    barrier.seed(0, 1)
    barrier.forget(0)
    waiter = asyncio.ensure_future(barrier.wait([0], timeout=5))
    await asyncio.sleep(0.05)
    assert not waiter.done()
    barrier.seed(0, 1)
    await asyncio.wait_for(waiter, 2)

"""The revocation barrier: no event is decided before its consent partition has caught up.

The contract: if a consent record was acknowledged (acks=all) before an event was produced, the
event is decided with that record (or a newer one) applied. The enforcer asks the broker for the
end offset of the consent partitions *after* it fetched a batch of events (one ListOffsets request
per batch), then waits here until the consent agent has applied every record below those offsets.

`applied_next[p]` is the next consent offset to apply on partition p: every record below it has
been applied to the table. It is seeded from the committed offset when a partition is assigned
(the table was restored from its changelog up to there) and advanced by the consent agent.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping

log = logging.getLogger("gateway.barrier")


class ConsentBarrier:
    """Owns, per consent partition, the next offset to apply and the last end offset asked.

    `end_offsets(partitions)` asks the broker for the end offset of each consent partition
    (partition number -> offset); `wait` calls it once. `applied_next` and `last_end` map
    partition numbers to offsets (`lag` reports their difference). `wait` returns only once the
    consent partitions have caught up: past its timeout (seconds) it logs and keeps waiting, so
    it raises only what `end_offsets` raises, or `CancelledError` when cancelled.
    """

    def __init__(
        self,
        end_offsets: Callable[[Iterable[int]], Awaitable[Mapping[int, int]]],
    ) -> None:
        self._end_offsets = end_offsets
        self.applied_next: dict[int, int] = {}
        self.last_end: dict[int, int] = {}
        self._advanced = asyncio.Event()

    def seed(self, partition: int, committed: int | None) -> None:
        """A consent partition was assigned; records below `committed` are in the table."""
        start = committed if committed is not None and committed >= 0 else 0
        self.applied_next[partition] = max(self.applied_next.get(partition, 0), start)
        self._advanced.set()

    def forget(self, partition: int) -> None:
        """A consent partition moved away: drop its offsets (`seed` starts it again)."""
        self.applied_next.pop(partition, None)
        self.last_end.pop(partition, None)

    def applied(self, partition: int, offset: int) -> None:
        """The consent agent applied (or rejected as invalid/stale) the record at `offset`."""
        if offset + 1 > self.applied_next.get(partition, 0):
            self.applied_next[partition] = offset + 1
            self._advanced.set()

    def lag(self) -> dict[int, int]:
        """Consent records known to exist but not yet applied, per partition."""
        return {p: max(0, end - self.applied_next.get(p, 0)) for p, end in self.last_end.items()}

    async def wait(self, partitions: Iterable[int], *, timeout: float = 30.0) -> float:
        """Block until every named consent partition is applied up to its current end offset.

        Returns the seconds waited after the end offsets were known.
        """
        wanted = sorted(set(partitions))
        if not wanted:
            return 0.0
        ends = await self._end_offsets(wanted)
        self.last_end.update(ends)
        loop = asyncio.get_running_loop()
        started = loop.time()
        deadline = started + timeout
        while True:
            behind = [p for p in wanted if self.applied_next.get(p, -1) < ends.get(p, 0)]
            if not behind:
                return loop.time() - started
            remaining = deadline - loop.time()
            if remaining <= 0:
                # Deciding now would break the barrier; dropping would lose events. Keep waiting
                # (fail closed) and say so; the consent-lag metric and alert show it too.
                log.warning(
                    "revocation barrier: consent partitions %s still behind after %.0fs; waiting",
                    behind,
                    loop.time() - started,
                )
                deadline = loop.time() + timeout
                remaining = timeout
            self._advanced.clear()
            try:
                await asyncio.wait_for(self._advanced.wait(), min(remaining, 0.5))
            except TimeoutError:
                continue

"""The one home of every faust (and mode) internal the gateway relies on.

Faust runs group membership, the co-partitioned assignment, the consent table and its recovery,
and the worker's life cycle. Where the gateway reaches past faust's public API, it does so here
and nowhere else, and `tests/topologies/test_faust_adapter.py` checks each reach against the
installed faust without a broker, so an upgrade that changes one fails there, by name:

1. `install_never_fetching_consumer`: faust's aiokafka `Consumer`, subclassed to override its
   private `_set_active_tps` (and `resume_partitions`, which faust's recovery calls for every
   assigned partition) so the raw topics stay assigned but are never fetched; installed by
   replacing the `Consumer` class attribute of the app's transport before the app starts.
2. `ConsentTableView.data`: the memory store's inner dict. Reads on the hot path skip the store's
   `UserDict` layer; the consent feed writes into it too, bypassing `Table.__setitem__`, which
   would send the changelog record itself, but only from inside a faust stream's event.
3. `ConsentTableView.remember_partition`: the memory store's private `_key_partition` map, from
   which it drops the keys of partitions that moved away once recovery completes.
4. `ConsentTableView.changelog_topic`: the feed writes the changelog by hand, key and value as
   raw bytes on the record's own partition: the format faust's recovery reads back into the
   store for a table declared `key_type=bytes, value_type=bytes` (`apply_changelog_batch`).
5. `connect_rebalance_hooks`: what faust sends with its rebalance signals (the whole assignment,
   positionally, for `on_partitions_assigned`) and when (`on_rebalance_complete` once the table
   is restored, before faust resumes its own partitions).
6. `pause_fetching`: the pause of faust's own consumer, public but only meaningful with 1.

Written and tested against faust-streaming 0.15.x (0.15.3) with mode-streaming 0.7.x (0.7.1).
"""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping
from typing import Any, Protocol

import faust
from faust.transport.drivers.aiokafka import Consumer as FaustAiokafkaConsumer
from faust.types import TP

TESTED_FAUST = ">=0.15.0,<0.16"  # the range the adapter tests were written against


class RawTopicsPausedConsumer(FaustAiokafkaConsumer):
    """Faust's consumer, minus fetching the `never_fetch` topics: assigned, never active.

    Faust decides what its fetcher asks for from its set of active partitions, which it rebuilds
    with `_set_active_tps` on every assignment and extends with `resume_partitions` after
    recovery; both leave these topics out.
    """

    never_fetch: frozenset[str] = frozenset()

    def _set_active_tps(self, tps: set[TP]) -> set[TP]:
        active: set[TP] = super()._set_active_tps(
            {tp for tp in tps if tp.topic not in self.never_fetch}
        )
        return active

    def resume_partitions(self, tps: Iterable[TP]) -> None:
        """Resume fetching `tps`, except those of the `never_fetch` topics."""
        super().resume_partitions({tp for tp in tps if tp.topic not in self.never_fetch})


def never_fetching_consumer(topics: Iterable[str]) -> type[RawTopicsPausedConsumer]:
    """A consumer class that never fetches `topics`, one per app (the set is a class attribute)."""
    never_fetch = frozenset(topics)
    return type("GatewayConsumer", (RawTopicsPausedConsumer,), {"never_fetch": never_fetch})


def install_never_fetching_consumer(app: faust.App, topics: Iterable[str]) -> None:
    """Make `app`'s consumer (created when the app starts) one that never fetches `topics`."""
    setattr(app.transport, "Consumer", never_fetching_consumer(topics))  # noqa: B010 - a ClassVar


def pause_fetching(app: faust.App, tps: Iterable[TP]) -> None:
    """Faust's own consumer stops fetching `tps` (no prefetching of what the reader owns)."""
    app.consumer.pause_partitions(set(tps))


class ConsentTableView:
    """The consent table's memory store as the gateway uses it: a dict, a partition per key.

    `table` is a faust Table made with `store="memory://"`, `key_type=bytes, value_type=bytes`.
    Raises `TypeError` at construction if the store is not faust's memory store as known here,
    so a changed store fails at start, not at the first rebalance.
    """

    def __init__(self, table: Any) -> None:
        store = table.data
        inner = getattr(store, "data", None)
        key_partition = getattr(store, "_key_partition", None)
        if not isinstance(inner, dict) or not isinstance(key_partition, dict):
            raise TypeError(
                "the consent table's store is not faust's memory store with a plain `data` dict"
                " and a `_key_partition` dict; check topologies/faust_adapter.py against faust"
            )
        self._data: dict[bytes, bytes] = inner
        self._key_partition: dict[bytes, int] = key_partition
        self.changelog_topic: str = table.changelog_topic.get_topic_name()

    @property
    def data(self) -> MutableMapping[bytes, bytes]:
        """The store's own dict: UTF-8 subject id -> packed consent int as ASCII."""
        return self._data

    def remember_partition(self, key: bytes, partition: int) -> None:
        """Record `key`'s partition, so the store drops it when that partition moves away."""
        self._key_partition[key] = partition


class RebalanceHooks(Protocol):
    """What the gateway does at each step of a faust rebalance."""

    async def revoked(self) -> None:
        """Partitions are about to move away (faust may skip this step)."""
        ...

    async def assigned(self, assigned: set[TP]) -> None:
        """`assigned` is the whole new assignment, every topic's, not only what was added."""
        ...

    async def complete(self) -> None:
        """The table is restored; faust resumes its own partitions right after this returns."""
        ...


def connect_rebalance_hooks(app: faust.App, hooks: RebalanceHooks) -> None:
    """Connect `hooks` to faust's rebalance signals, in faust's order.

    `on_partitions_revoked` (before the partitions move), `on_partitions_assigned` (the whole
    new assignment, after the table manager took it), `on_rebalance_complete` (the table is
    restored; faust resumes its own partitions right after the receivers returned).
    """

    async def on_revoked(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        await hooks.revoked()

    async def on_assigned(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        assigned = args[0] if args else kwargs["assigned"]
        await hooks.assigned(set(assigned))

    async def on_complete(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        await hooks.complete()

    # Strong references: the receivers are closures that nothing else keeps alive.
    app.on_partitions_revoked.connect(on_revoked, weak=False)
    app.on_partitions_assigned.connect(on_assigned, weak=False)
    app.on_rebalance_complete.connect(on_complete, weak=False)

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
4. `changelog_topic` (both views): the feed writes the changelog by hand, key and value as
   raw bytes on the record's own partition: the format faust's recovery reads back into the
   store for a table declared `key_type=bytes, value_type=bytes` (`apply_changelog_batch`).
5. `connect_rebalance_hooks`: what faust sends with its rebalance signals (the whole assignment,
   positionally, for `on_partitions_assigned`) and when (`on_rebalance_complete` once the table
   is restored, before faust resumes its own partitions).
6. `pause_fetching`: the pause of faust's own consumer, public but only meaningful with 1.
7. `RocksDBConsentTableView` (`GATEWAY_CONSENT_STORE=rocksdb`): faust's RocksDB store with the
   rocksdict driver (`options={"driver": "rocksdict"}`), one DB per partition. It reaches the
   store's private `_dbs` (partition -> open `Rdict`, filled by faust on assignment, emptied on
   revocation) and `_db_for_partition` (opens one), so the hot path reads the record's own
   partition's DB, never a scan over all of them; it replaces the store's `rocksdb_options`
   before any DB opens (`ConsentRocksDBOptions`: one block cache shared by the partitions,
   small memtables, a full bloom filter, compaction of files full of deletions, and its own
   `open`, as faust's loses the cache when it reopens an existing DB), and calls
   `set_persisted_offset` (what faust's own changelog sends call once acknowledged) for the
   feed's hand-written changelog, so a warm restart reads only the changelog's tail.

Written and tested against faust-streaming 0.15.x (0.15.3) with mode-streaming 0.7.x (0.7.1).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import faust
import rocksdict
from faust.stores.rocksdb import RocksDBOptions
from faust.stores.rocksdb import Store as RocksDBStore
from faust.transport.drivers.aiokafka import Consumer as FaustAiokafkaConsumer
from faust.types import TP

from gateway.consent_state import ConsentState

TESTED_FAUST = ">=0.15.0,<0.16"  # the range the adapter tests were written against
# The key under which faust's RocksDB store keeps a partition DB's persisted changelog offset.
OFFSET_KEY: bytes = RocksDBStore.offset_key


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


StoreKind = Literal["memory", "rocksdb"]
ConsentOf = Callable[[str], int | None]  # subject id -> packed consent, None: unknown
ConsentIn = Callable[[str, int], int | None]  # (subject id, partition) -> the same


class PartitionStore(Protocol):
    """One partition's part of the consent table: UTF-8 subject id -> packed consent as ASCII."""

    def get(self, key: bytes) -> bytes | None:
        """The value held for `key`, None: none."""
        ...

    def __setitem__(self, key: bytes, value: bytes) -> None: ...

    def __delitem__(self, key: bytes) -> None: ...


@dataclass(frozen=True)
class ConsentLookup:
    """The consent table's reads, as the enforcer and the benchmarks make them.

    `in_partition(subject, partition)`: the packed consent int of `subject` in the table's
    `partition` (the raw record's: the topics are co-partitioned), None when unknown; the hot
    path. `any_partition(subject)`: the same without a partition (every partition held is
    asked; not for the hot path). `many_in_partition(subjects, partition)`: one value per
    subject, in order, in one call to the store (RocksDB's multi-get).
    """

    in_partition: ConsentIn
    any_partition: ConsentOf
    many_in_partition: Callable[[list[str], int], list[int | None]]


class ConsentTable(Protocol):
    """The consent table as the gateway reads and writes it, whichever store holds it.

    Keys are UTF-8 subject ids, values packed consent ints as ASCII (`b"%d" % state`). The
    raw topics are co-partitioned with the table, so a record's partition names the part of
    the table that holds its subject.
    """

    changelog_topic: str
    persistent: bool  # True: the state outlives the process (warm restarts read the tail only)

    def in_partition(self, partition: int) -> PartitionStore:
        """The part of the table holding `partition`'s subjects, read and written in place."""
        ...

    def remember_partition(self, key: bytes, partition: int) -> None:
        """Record `key`'s partition, for a store that drops a partition's keys when it moves."""
        ...

    def persist_changelog_offsets(self, offsets: Mapping[int, int]) -> None:
        """The store holds every changelog record up to these offsets (partition -> offset)."""
        ...

    def lookup(self) -> ConsentLookup:
        """The hot path's reads: a subject's packed consent int, or None when unknown."""
        ...

    def size(self) -> int:
        """Subjects held (an estimate for RocksDB: its `estimate-num-keys`)."""
        ...

    def newest_ordered_at_us(self) -> int | None:
        """The newest ordering time held (epoch µs), None: empty, or too costly to scan."""
        ...


@dataclass(frozen=True)
class ConsentStoreConfig:
    """Which store holds the consent table, and where (`GATEWAY_CONSENT_STORE*`).

    `kind`: `memory` (faust's memory store, restored from the changelog at every start) or
    `rocksdb` (faust's RocksDB store, rocksdict driver, kept under `directory` across restarts).
    `cache_bytes`: the block cache the RocksDB partitions share, in bytes.
    """

    kind: StoreKind = "memory"
    directory: Path = Path("consent-store")
    cache_bytes: int = 256 * 1024 * 1024


def consent_store_arguments(store: ConsentStoreConfig, app_id: str) -> dict[str, Any]:
    """The faust `App` keywords for the consent table's store (the data directory).

    RocksDB keeps its DBs under `<directory>/<app id>/v1/tables/consent-<partition>.db`: one
    subdirectory per app id, so two gateways of different ids never share a DB. A missing
    `directory` is created owner-only (0700): the DBs hold subject ids. Raises `OSError` when
    it cannot be created.
    """
    if store.kind == "memory":
        return {"store": "memory://"}
    store.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    return {"store": "rocksdb://", "datadir": store.directory / app_id}


def consent_table_arguments(store: ConsentStoreConfig) -> dict[str, Any]:
    """The `app.Table` keywords for the consent table's store (RocksDB: the rocksdict driver)."""
    if store.kind == "memory":
        return {}
    return {"options": {"driver": "rocksdict"}}


class ConsentTableView:
    """The consent table's memory store as the gateway uses it: a dict, a partition per key.

    `table` is a faust Table made with `store="memory://"`, `key_type=bytes, value_type=bytes`.
    Raises `TypeError` at construction if the store is not faust's memory store as known here,
    so a changed store fails at start, not at the first rebalance.
    """

    persistent = False  # restored from the changelog at every start

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

    def in_partition(self, partition: int) -> PartitionStore:
        """The store's dict: one dict holds every partition (`remember_partition` tells which)."""
        return self._data

    def remember_partition(self, key: bytes, partition: int) -> None:
        """Record `key`'s partition, so the store drops it when that partition moves away."""
        self._key_partition[key] = partition

    def persist_changelog_offsets(self, offsets: Mapping[int, int]) -> None:
        """Nothing to keep: the memory store is restored from the whole changelog."""

    def lookup(self) -> ConsentLookup:
        """Reads of the dict; the partition is not needed (one dict holds them all)."""
        get = self._data.get

        def in_partition(subject: str, partition: int) -> int | None:
            packed = get(subject.encode())
            return None if packed is None else int(packed)

        def any_partition(subject: str) -> int | None:
            packed = get(subject.encode())
            return None if packed is None else int(packed)

        def many_in_partition(subjects: list[str], partition: int) -> list[int | None]:
            packed = [get(subject.encode()) for subject in subjects]
            return [None if value is None else int(value) for value in packed]

        return ConsentLookup(in_partition, any_partition, many_in_partition)

    def size(self) -> int:
        """Subjects held."""
        return len(self._data)

    def newest_ordered_at_us(self) -> int | None:
        """The newest ordering time held (epoch µs, a scan of the dict), None: empty."""
        if not self._data:
            return None
        return max(ConsentState.ordered_at_us(int(v)) for v in self._data.values())


class ConsentRocksDBOptions(RocksDBOptions):
    """Faust's RocksDB options for the consent table, bounded for 10 million subjects.

    Faust gives every partition's DB its own 2 GiB block cache and three 64 MiB memtables;
    here the partitions share one block cache of `cache_bytes` (bytes), each DB has at most
    two 16 MiB memtables, a full bloom filter of 10 bits per key (unknown subjects rarely
    reach a data block), and files with many deletions are compacted early, so an erased
    subject's bytes leave the files soon (docs/consent-store.md).
    """

    def __init__(self, cache_bytes: int) -> None:
        super().__init__(
            write_buffer_size=16 * 1024 * 1024, max_write_buffer_number=2,
            block_cache_size=cache_bytes, bloom_filter_size=10, use_rocksdict=True,
        )  # fmt: skip
        self._cache = rocksdict.Cache(cache_bytes)

    def open(self, path: Path, *, read_only: bool = False) -> Any:
        """Open (or create) the DB at `path` with these options, also when it already exists.

        Faust's `open` names no column family: rocksdict then reopens an existing DB with the
        options saved in its OPTIONS file, which cannot hold a cache object, so every reopened
        partition fell back to an 8 MiB block cache of its own (measured: `block-cache-capacity`).
        Naming the default column family's options keeps the shared cache. `read_only` is
        ignored, as faust ignores it with rocksdict.
        """
        options = self.as_options()
        db = rocksdict.Rdict(
            str(path), options=options, column_families={"default": options},
            access_type=rocksdict.AccessType.read_write(),
        )  # fmt: skip
        db.set_read_options(rocksdict.ReadOptions())
        return db

    def as_options(self) -> Any:
        """Faust's rocksdict `Options` with the shared cache and the filter above."""
        options = super().as_options()
        table = rocksdict.BlockBasedOptions()
        table.set_bloom_filter(self.bloom_filter_size, False)  # a full filter, not per block
        table.set_block_cache(self._cache)
        options.set_block_based_table_factory(table)
        # An SST file with 32 deletions in any 1,024 entries is compacted (erasures leave it).
        options.add_compact_on_deletion_collector_factory(1024, 32, 0.0)
        return options


class RocksDBConsentTableView:
    """The consent table in faust's RocksDB store (rocksdict): one DB per partition, on disk.

    `table` is a faust Table made with `store="rocksdb://"`, `options={"driver": "rocksdict"}`,
    `key_type=bytes, value_type=bytes`; `cache_bytes` bounds the shared block cache (bytes).
    The view installs `ConsentRocksDBOptions` before any DB is opened. Raises `TypeError` at
    construction if the store is not faust's RocksDB store with the rocksdict driver as known
    here (its `_dbs` dict, `_db_for_partition`, `set_persisted_offset`).
    """

    persistent = True  # kept across restarts; recovery reads the changelog past the offsets

    def __init__(self, table: Any, *, cache_bytes: int) -> None:
        store = table.data
        dbs = getattr(store, "_dbs", None)
        if (
            not isinstance(store, RocksDBStore)
            or not isinstance(dbs, dict)
            or not getattr(store, "use_rocksdict", False)
            or not callable(getattr(store, "_db_for_partition", None))
        ):
            raise TypeError(
                "the consent table's store is not faust's RocksDB store with the rocksdict"
                " driver and a `_dbs` dict; check topologies/faust_adapter.py against faust"
            )
        if dbs:
            raise TypeError("the consent table's RocksDB partitions were opened too early")
        store.rocksdb_options = ConsentRocksDBOptions(cache_bytes)
        self._store = store
        self._dbs: dict[int, Any] = dbs
        self._open: Callable[[int], Any] = store._db_for_partition
        self.changelog_topic: str = table.changelog_topic.get_topic_name()

    def partition_path(self, partition: int) -> Path:
        """Where `partition`'s DB lives (a directory)."""
        path: Path = self._store.partition_path(partition)
        return path

    def in_partition(self, partition: int) -> PartitionStore:
        """`partition`'s open DB (opened if faust has not yet), written in place."""
        db: PartitionStore | None = self._dbs.get(partition)
        return db if db is not None else self._open(partition)

    def remember_partition(self, key: bytes, partition: int) -> None:
        """Nothing to remember: a key lives in its partition's DB."""

    def persist_changelog_offsets(self, offsets: Mapping[int, int]) -> None:
        """Record, in each partition's DB, the changelog offset it holds everything up to.

        Faust's recovery then starts reading each changelog partition after that offset: a
        warm restart reads only the tail written since.
        """
        for partition, offset in offsets.items():
            self._store.set_persisted_offset(TP(self.changelog_topic, partition), offset)

    def lookup(self) -> ConsentLookup:
        """Reads of the partition's own DB: a dict lookup and one `Rdict.get`, no scan."""
        dbs, open_db = self._dbs, self._open

        def in_partition(subject: str, partition: int) -> int | None:
            try:
                packed = dbs[partition].get(subject.encode())
            except KeyError:  # not opened yet (faust opens them on assignment)
                packed = open_db(partition).get(subject.encode())
            return None if packed is None else int(packed)

        def any_partition(subject: str) -> int | None:
            key = subject.encode()
            for db in list(dbs.values()):
                packed = db.get(key)
                if packed is not None:
                    return int(packed)
            return None

        def many_in_partition(subjects: list[str], partition: int) -> list[int | None]:
            db = dbs.get(partition)
            db = db if db is not None else open_db(partition)
            packed = db.get([subject.encode() for subject in subjects])
            return [None if value is None else int(value) for value in packed]

        return ConsentLookup(in_partition, any_partition, many_in_partition)

    def size(self) -> int:
        """Subjects held in the open partitions: RocksDB's estimate (`estimate-num-keys`).

        Counting exactly would read every key: minutes at 10 million subjects.
        """
        return sum(
            int(db.property_int_value("rocksdb.estimate-num-keys") or 0)
            for db in list(self._dbs.values())
        )

    def newest_ordered_at_us(self) -> int | None:
        """None: finding it would read every value (the freshness metric waits for a record)."""
        return None


def consent_table_view(
    table: Any, store: ConsentStoreConfig
) -> ConsentTableView | RocksDBConsentTableView:
    """The view of `table` for the store `store` names (each view checks the store it gets)."""
    if store.kind == "rocksdb":
        return RocksDBConsentTableView(table, cache_bytes=store.cache_bytes)
    return ConsentTableView(table)


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

"""The persistent consent store (`GATEWAY_CONSENT_STORE=rocksdb`) on a real broker.

A worker decides with consent it holds in RocksDB, stops, and restarts on the same local state:
the restarted worker does not read the consent topic again, and every decision after the
restart, a withdrawal and an erasure made before it included, is the right one. The state dir
is then opened directly: the erased subject's key is gone from it, and faust's changelog
offsets were persisted (so recovery reads only the changelog's tail).
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import rocksdict

from tests.integration.stack import Stack, header
from tests.integration.test_gateway import consent, everything, unique, usage
from topologies.faust_adapter import OFFSET_KEY

PARTITIONS = 3


def rocksdb_stack(bootstrap: str, root: Path) -> Stack:
    state = root / "consent-state"
    env = {"GATEWAY_CONSENT_STORE": "rocksdb", "GATEWAY_CONSENT_STORE_DIR": str(state)}
    return Stack(bootstrap, root, uuid.uuid4().hex[:8], partitions=PARTITIONS, extra_env=env)


def partition_dbs(stack: Stack) -> list[Path]:
    tables = Path(stack.extra_env["GATEWAY_CONSENT_STORE_DIR"]) / stack.app_id / "v1" / "tables"
    return sorted(tables.glob("consent-*.db"))


def stored(stack: Stack) -> tuple[dict[bytes, bytes], dict[str, int]]:
    """Every key in the stopped worker's DBs, and each DB's persisted changelog offset."""
    keys: dict[bytes, bytes] = {}
    offsets: dict[str, int] = {}
    for path in partition_dbs(stack):
        options = rocksdict.Options(raw_mode=True)
        db = rocksdict.Rdict(
            str(path), options=options, access_type=rocksdict.AccessType.read_only()
        )
        try:
            for key, value in db.items():
                if key == OFFSET_KEY:
                    offsets[path.name] = int(value)
                else:
                    keys[key] = value
        finally:
            db.close()
    return keys, offsets


async def forwarded_to_analytics(stack: Stack, event_ids: list[str]) -> set[str]:
    from gateway.keys import pseudonymize

    dedup = {pseudonymize(stack.keys["analytics"], "event:" + e): e for e in event_ids}
    return {
        dedup[d] for record in await stack.read("analytics")
        if (d := header(record, "gateway-dedup-id")) in dedup
    }  # fmt: skip


async def test_when_a_rocksdb_worker_restarts_warm_then_it_enforces_the_consent_it_kept(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    stack = rocksdb_stack(kafka_bootstrap, tmp_path)
    granted, withdrawn, erased = unique("subj-g"), unique("subj-w"), unique("subj-e")
    try:
        await stack.start()
        for subject in (granted, withdrawn, erased):
            await stack.consent(subject, consent(subject, everything(True)))
        before = unique("ev-before")
        await stack.event("usage", usage(withdrawn, before))
        await stack.flush()
        await stack.wait_consumed(1)
        later = "2026-11-27T12:00:00Z"  # a withdrawal newer than the grant, then an erasure
        await stack.consent(withdrawn, consent(withdrawn, everything(False), updated_at=later))
        await stack.consent(erased, None)
        applied = "gateway_consent_records_total{outcome=applied}"
        assert await stack.wait_metric(applied, 4) == 4
        assert await stack.wait_metric("gateway_consent_records_total{outcome=tombstone}", 1) == 1
        await asyncio.sleep(2.5)  # past a commit interval: offsets committed and persisted
        assert stack.stop() == 0

        keys, offsets = stored(stack)
        assert len(partition_dbs(stack)) == PARTITIONS
        assert granted.encode() in keys and withdrawn.encode() in keys
        assert int(keys[withdrawn.encode()]) & 3 == 2, "the withdrawal is what the store holds"
        assert erased.encode() not in keys, "an erased subject's key is deleted from RocksDB"
        assert offsets and all(offset >= 0 for offset in offsets.values()), (
            "the changelog offsets the store holds are persisted"
        )

        await stack.start()
        assert stack.metric_sum(applied) == 0, "the warm worker does not read the consent again"
        after = {s: unique("ev-after") for s in (granted, withdrawn, erased)}
        for subject, event_id in after.items():
            await stack.event("usage", usage(subject, event_id))
        await stack.flush()
        await stack.wait_consumed(3)
        forwarded = await forwarded_to_analytics(stack, [before, *after.values()])
        assert forwarded == {before, after[granted]}, (
            "after the restart: the grant forwards, the withdrawal and the erasure drop"
        )
        assert stack.stop() == 0
        assert erased.encode() not in stored(stack)[0]
    finally:
        await stack.close()
        if stack.proc is not None and stack.proc.alive():
            stack.stop()

"""Every output kind carries the headers the README lists, and a reload reaches every writer.

One home for output records (gateway.records): sink, audit, event DLQ and consent DLQ records
are built from the engine's `OutputRecords`, so a config reload (a new engine handed to the
enforcer and the consent feed, as `topologies.app` wires it) changes the config version of every
kind at once. Before the records had one home, the consent feed's DLQ records kept the old
version and lacked `gateway-config-version`.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import orjson
import yaml
from prometheus_client import CollectorRegistry

from gateway.config import load_config
from gateway.engine import Engine
from gateway.keys import load_keyring
from gateway.records import (
    HEADER_CONFIG,
    HEADER_CONSENT,
    HEADER_DEDUP_ID,
    HEADER_KEY_ID,
    HEADER_REASON,
    HEADER_SINK,
    HEADER_SOURCE,
)
from tests.topologies.test_enforce import DEVICE, USAGE, Raw, RecordingWriter, event
from tests.topologies.test_poison_pills import (
    CONSENT,
    DLQ,
    Message,
    Setup,
    Table,
    enforcer,
    feed_for,
    no_ends,
)
from topologies import consent_feed
from topologies.barrier import ConsentBarrier
from topologies.reload import ConfigReloader
from topologies.worker import build_metrics

REPO = Path(__file__).resolve().parents[2]
# README, "What the outputs carry": the headers of each kind of output.
SINK_HEADERS = {HEADER_CONFIG, HEADER_CONSENT, HEADER_DEDUP_ID, HEADER_KEY_ID}
AUDIT_HEADERS = {HEADER_CONFIG, HEADER_CONSENT, HEADER_SINK, HEADER_REASON}
DLQ_HEADERS = {HEADER_CONFIG, HEADER_REASON, HEADER_SOURCE}


Sent = list[tuple[str, int, bytes | None, bytes | None, list[tuple[str, bytes]]]]


def kinds(setup: Setup, sent: Sent) -> dict[str, list[dict[str, bytes]]]:
    sink_topics = {rule.topic for rule in setup.config.sinks}
    found: dict[str, list[dict[str, bytes]]] = {}
    for topic, _, _, value, headers in sent:
        if topic in sink_topics:
            kind = "sink"
        elif topic == "gateway.audit":
            kind = "audit"
        elif topic == DLQ:
            source = orjson.loads(value or b"{}")["source"]["topic"]
            kind = "consent_dlq" if source == CONSENT else "event_dlq"
        else:
            continue
        found.setdefault(kind, []).append(dict(headers))
    return found


async def test_when_the_config_is_reloaded_then_every_output_kind_carries_the_new_version(
    tmp_path: Path,
) -> None:
    shutil.copytree(REPO / "config", tmp_path / "config")
    config = load_config(tmp_path / "config")
    sinks = [rule.name for rule in config.sinks]
    keyring = load_keyring({}, sinks, demo=True, random_bytes=os.urandom)
    registry = CollectorRegistry()
    setup = Setup(config, keyring, registry, build_metrics(config, registry), sinks)
    engine = Engine(config, keyring)
    writer = RecordingWriter()
    table, barrier = Table(), ConsentBarrier(no_ends)
    feed = feed_for(setup, table, writer, barrier)
    feed.swap(engine)
    run = enforcer(setup, engine, writer)  # subj-a granted everything

    async def one_round(offset: int) -> dict[str, list[dict[str, bytes]]]:
        writer.sent.clear()
        await run.process(
            [
                Raw(USAGE, 0, offset, b"subj-a", event("subj-a", f"e-{offset}")),
                Raw(USAGE, 0, offset + 2, b"subj-b", event("subj-b", f"e-{offset}-b")),  # drops
                Raw(DEVICE, 0, offset + 1, b"subj-a", b"[1]"),
            ]
        )
        await feed._apply_batch(
            {consent_feed.TopicPartition(CONSENT, 0): [Message(offset, b"subj-x", b"{")]}
        )
        await asyncio.gather(*feed._unacked)
        return kinds(setup, writer.sent)

    before = await one_round(0)
    assert set(before) == {"sink", "audit", "event_dlq", "consent_dlq"}

    rule = tmp_path / "config" / "sinks" / "social.yaml"
    edited = yaml.safe_load(rule.read_text()) | {"event_types": ["page_view"]}
    rule.write_text(yaml.safe_dump(edited))

    def swap(new_engine: Engine) -> None:  # as topologies.app wires the reload
        run.swap(new_engine)
        feed.swap(new_engine)

    reloader = ConfigReloader(tmp_path / "config", config, setup.keyring, setup.metrics, swap)
    assert reloader.reload()
    new_version = reloader.version.encode()
    assert new_version != config.version.encode()
    after = await one_round(10)

    for found, version in ((before, config.version.encode()), (after, new_version)):
        assert set(found) == {"sink", "audit", "event_dlq", "consent_dlq"}
        expected = {
            "sink": SINK_HEADERS,
            "audit": AUDIT_HEADERS,
            "event_dlq": DLQ_HEADERS,
            "consent_dlq": DLQ_HEADERS,
        }
        for kind, headers_list in found.items():
            for headers in headers_list:
                assert set(headers) == expected[kind], kind
                assert headers[HEADER_CONFIG] == version, kind

"""The worker's life cycle on a real broker: restart, crash, SIGTERM, and refusing to start."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import uuid
from pathlib import Path

import orjson
import pytest
import yaml

from devtools.local_broker import free_port
from gateway.keys import pseudonymize
from tests.integration.procs import Proc
from tests.integration.stack import SINKS, Stack, header
from tests.integration.test_gateway import consent, everything, unique, usage
from topologies.admin import TopicSpec, ensure_topics


def new_stack(bootstrap: str, root: Path) -> Stack:
    return Stack(bootstrap, root, uuid.uuid4().hex[:8])


async def accounted(stack: Stack, event_ids: list[str]) -> dict[str, set[str]]:
    """Per sink, the event ids that were forwarded there or dropped from it (audit)."""
    seen: dict[str, set[str]] = {sink: set() for sink in SINKS}
    wanted = set(event_ids)
    for sink in SINKS:
        dedup = {pseudonymize(stack.keys[sink], "event:" + e): e for e in event_ids}
        for record in await stack.read(sink):
            if (d := header(record, "gateway-dedup-id")) in dedup:
                seen[sink].add(dedup[d])
    for record in await stack.read("audit"):
        entry = orjson.loads(record.value)
        if entry.get("event_id") in wanted:
            seen[entry["sink"]].add(entry["event_id"])
    return seen


async def test_when_the_worker_restarts_then_the_consent_table_is_restored_from_its_changelog(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    stack = new_stack(kafka_bootstrap, tmp_path)
    granted, withdrawn = unique("subj-granted"), unique("subj-withdrawn")
    try:
        await stack.start()
        await stack.consent(granted, consent(granted, everything(True)))
        await stack.consent(withdrawn, consent(withdrawn, everything(False)))
        assert await stack.wait_metric("gateway_consent_records_total{outcome=applied}", 2) == 2
        await asyncio.sleep(2.5)  # past a commit interval of the consent feed
        assert stack.stop() == 0

        await stack.start()
        assert stack.metric_sum("gateway_consent_records_total{outcome=applied}") == 0, (
            "the restarted worker must not need the consent topic again"
        )
        first, second = unique("ev-first"), unique("ev-second")
        await stack.event("usage", usage(granted, first))
        await stack.event("usage", usage(withdrawn, second))
        await stack.flush()
        await stack.wait_consumed(2)
        assert await stack.wait_metric("gateway_consent_subjects", 2) >= 2
        newest = stack.metric_sum("gateway_consent_newest_applied_timestamp_seconds")
        assert newest > 1.7e9, "consent freshness is restored with the table"
        seen = await accounted(stack, [first, second])
        analytics = {
            e for r in await stack.read("analytics")
            for e in [header(r, "gateway-dedup-id")]
            if e == pseudonymize(stack.keys["analytics"], "event:" + first)
        }  # fmt: skip
        assert analytics, "the first event after the restart is decided with the restored grant"
        assert second in seen["analytics"]
    finally:
        await stack.close()
        if stack.proc is not None:
            stack.stop()


@pytest.mark.parametrize("stop_signal", [signal.SIGKILL, signal.SIGTERM], ids=["kill", "term"])
async def test_when_the_worker_is_stopped_mid_stream_then_a_restart_loses_nothing(
    kafka_bootstrap: str, tmp_path: Path, stop_signal: signal.Signals
) -> None:
    """SIGKILL: uncommitted batches are redone. SIGTERM: in-flight work finishes, exit code 0."""
    stack = new_stack(kafka_bootstrap, tmp_path)
    subjects = [unique(f"subj-stop-{i}") for i in range(50)]
    event_ids = [unique("ev-stop") for _ in range(20_000)]
    try:
        await stack.create_topics()
        for subject in subjects:  # all loaded before the worker starts: it stops mid-backlog
            await stack.consent(subject, consent(subject, everything(True)))
        for i, event_id in enumerate(event_ids):
            await stack.event("usage", usage(subjects[i % len(subjects)], event_id))
        await stack.flush()
        await stack.start(wait=False)
        while not await _consumed_at_least(stack, 300):
            await asyncio.sleep(0.02)
        at_signal = stack.metric_sum("gateway_events_consumed_total{")
        assert stack.proc is not None
        stack.proc.popen.send_signal(stop_signal)
        assert at_signal < len(event_ids), "the signal must arrive while work is in flight"
        code = stack.stop()
        if stop_signal == signal.SIGTERM:
            assert code == 0, stack.log_text()[-2000:]
        await stack.start()
        seen = await _settle(stack, event_ids)
        for sink in SINKS:
            assert seen[sink] == set(event_ids), sink
    finally:
        await stack.close()
        if stack.proc is not None:
            stack.stop()


async def _consumed_at_least(stack: Stack, count: int) -> bool:
    try:
        return stack.metric_sum("gateway_events_consumed_total{") >= count
    except OSError:  # the worker is still starting
        assert stack.proc is not None and stack.proc.popen.poll() is None, stack.log_text()[-2000:]
        return False


async def _settle(stack: Stack, event_ids: list[str]) -> dict[str, set[str]]:
    deadline = asyncio.get_running_loop().time() + 120
    seen = await accounted(stack, event_ids)
    while any(len(ids) < len(event_ids) for ids in seen.values()):
        assert asyncio.get_running_loop().time() < deadline, {k: len(v) for k, v in seen.items()}
        await asyncio.sleep(1.0)
        seen = await accounted(stack, event_ids)
    return seen


def run_gateway(stack: Stack, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        stack.argv("run"), env={**os.environ, **env}, capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip


async def test_when_raw_and_consent_topics_differ_in_partitions_then_the_worker_refuses_to_start(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    stack = new_stack(kafka_bootstrap, tmp_path)
    await ensure_topics(kafka_bootstrap, [
        TopicSpec(stack.topics["usage_raw"], 3), TopicSpec(stack.topics["device_raw"], 3),
        TopicSpec(stack.topics["consent"], 2, compacted=True),
    ])  # fmt: skip
    result = run_gateway(stack, stack.env())
    assert result.returncode == 2
    assert "co-partitioned" in result.stderr
    assert f"{stack.topics['consent']} has 2" in result.stderr


def test_when_keys_are_missing_then_the_worker_refuses_to_start_and_lists_every_sink(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    stack = new_stack(kafka_bootstrap, tmp_path)
    env = {k: v for k, v in stack.env().items() if not k.startswith("GATEWAY_KEY_")}
    result = run_gateway(stack, env)
    assert result.returncode == 2
    for sink in SINKS:
        assert f"GATEWAY_KEY_{sink.upper()}" in result.stderr
    assert "--demo" in result.stderr


def test_when_the_config_is_invalid_then_the_worker_refuses_to_start_listing_every_problem(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    stack = new_stack(kafka_bootstrap, tmp_path)
    ads = stack.config_dir / "sinks" / "ads.yaml"
    rule = yaml.safe_load(ads.read_text())
    rule["fields"]["ip"] = "shred"
    rule["colour"] = "blue"
    ads.write_text(yaml.safe_dump(rule))
    result = run_gateway(stack, stack.env())
    assert result.returncode == 2
    problems = [line for line in result.stderr.splitlines() if line.startswith(str(ads))]
    assert len(problems) >= 2, result.stderr
    assert any("shred" in line or "operator" in line for line in problems)
    assert any("colour" in line for line in problems)


async def test_when_the_config_changes_and_sighup_arrives_then_new_rules_apply_without_a_restart(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    stack = new_stack(kafka_bootstrap, tmp_path)
    subject = unique("subj-reload")
    try:
        await stack.start()
        await stack.consent(subject, consent(subject, everything(True)))
        first = unique("ev-before-reload")
        await stack.event("usage", usage(subject, first))
        await stack.flush()
        await stack.wait_consumed(1)
        social = stack.config_dir / "sinks" / "social.yaml"
        rule = yaml.safe_load(social.read_text())
        rule["event_types"] = ["feature_use"]  # page views no longer go to the social partner
        social.write_text(yaml.safe_dump(rule))
        assert stack.proc is not None
        stack.proc.popen.send_signal(signal.SIGHUP)
        assert await stack.wait_metric("gateway_config_reloads_total{result=success}", 1) == 1
        second = unique("ev-after-reload")
        await stack.event("usage", usage(subject, second))
        await stack.flush()
        await stack.wait_consumed(2)
        seen = await accounted(stack, [first, second])
        forwarded = {
            e for r in await stack.read("social")
            for e in (first, second)
            if header(r, "gateway-dedup-id") == pseudonymize(stack.keys["social"], "event:" + e)
        }  # fmt: skip
        assert forwarded == {first}
        assert second in seen["social"]  # dropped, with its reason in the audit topic
        assert stack.proc.popen.poll() is None, "a reload is not a restart"
    finally:
        await stack.close()
        if stack.proc is not None:
            stack.stop()


async def test_when_two_workers_share_the_partitions_then_each_subject_is_decided_with_its_consent(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """Faust's co-partitioned assignment: a worker holds the consent of the events it decides."""
    stack = new_stack(kafka_bootstrap, tmp_path)
    stack.partitions = 6
    second: Proc | None = None
    granted = [unique(f"subj-two-yes-{i}") for i in range(40)]
    denied = [unique(f"subj-two-no-{i}") for i in range(40)]
    try:
        await stack.start()
        env = stack.env() | {"GATEWAY_METRICS_PORT": str(free_port())}
        second = Proc(stack.argv("run"), tmp_path / "worker-second.log", env, cwd=tmp_path)
        await second.wait_for_log("Worker ready", timeout=120)
        await asyncio.sleep(3)  # the first worker's rebalance settles too
        for subject in granted:
            await stack.consent(subject, consent(subject, everything(True)))
        for subject in denied:
            await stack.consent(subject, consent(subject, everything(False)))
        events = {unique("ev-two"): s for s in granted + denied for _ in range(3)}
        for event_id, subject in events.items():
            await stack.event("usage", usage(subject, event_id))
        await stack.flush()
        seen = await _settle(stack, list(events))
        forwarded = {
            events[e] for r in await stack.read("analytics") for e in events
            if header(r, "gateway-dedup-id") == pseudonymize(stack.keys["analytics"], "event:" + e)
        }  # fmt: skip
        assert forwarded == set(granted)
        for sink in SINKS:
            assert seen[sink] == set(events), sink
        first_share = stack.metric_sum("gateway_events_consumed_total{")
        assert 0 < first_share < len(events), "both workers decided a share of the events"
    finally:
        await stack.close()
        if second is not None:
            assert second.stop() == 0, second.text()[-2000:]
        if stack.proc is not None:
            stack.stop()

"""GatewayMetrics: names, labels, bounded label values, exposition and the live-view snapshot."""

from __future__ import annotations

import subprocess
import sys

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from gateway.metrics import (
    LATENCY_BUCKETS,
    BuildInfo,
    GatewayMetrics,
    UnknownLabelValueError,
)
from gateway.reasons import DROP_REASONS, FORWARD_REASONS, INVALID_REASONS, Reason

SINKS = ("analytics", "ads", "social")
TOPICS = ("events.usage.raw", "events.device.raw")

EXPECTED_FAMILIES = {
    # family name as the parser reports it: type, label names
    "gateway_events_consumed": ("counter", {"topic"}),
    "gateway_decisions": ("counter", {"sink", "verdict", "reason"}),
    "gateway_invalid_records": ("counter", {"topic", "reason"}),
    "gateway_dlq_writes": ("counter", set()),
    "gateway_audit_writes": ("counter", set()),
    "gateway_sink_writes": ("counter", {"sink"}),
    "gateway_identifier_scrubs": ("counter", {"sink", "identifier"}),
    "gateway_end_to_end_latency_seconds": ("histogram", {"sink"}),
    "gateway_processing_seconds": ("histogram", set()),
    "gateway_batch_size": ("histogram", set()),
    "gateway_barrier_wait_seconds": ("histogram", set()),
    "gateway_consent_records": ("counter", {"outcome"}),
    "gateway_consent_future_dated": ("counter", set()),
    "gateway_consent_subjects": ("gauge", set()),
    "gateway_consent_newest_applied_timestamp_seconds": ("gauge", set()),
    "gateway_consent_last_applied_time_seconds": ("gauge", set()),
    "gateway_consent_lag_records": ("gauge", {"partition"}),
    "gateway_consumer_lag_records": ("gauge", {"topic", "partition"}),
    "gateway_last_event_processed_time_seconds": ("gauge", set()),
    "gateway_erasure_notices": ("counter", {"sink", "reason"}),
    "gateway_erasure_notice_seconds": ("histogram", {"reason"}),
    "gateway_erasure_notice_failures": ("counter", {"reason", "stage"}),
    "gateway_kafka_degraded": ("gauge", {"client"}),
    "gateway_kafka_outages": ("counter", {"client"}),
    "gateway_kafka_outage_seconds": ("counter", {"client"}),
    "gateway_config_info": ("gauge", {"version"}),
    "gateway_config_reloads": ("counter", {"result"}),
    "gateway_build_info": (
        "gauge",
        {"version", "python_version", "faust_version", "aiokafka_version"},
    ),
}


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def metrics(registry: CollectorRegistry) -> GatewayMetrics:
    return GatewayMetrics(
        registry,
        sinks=SINKS,
        topics=TOPICS,
        build_info=BuildInfo("0.1.0", "3.11.9", "0.11.3", "0.14.0"),
    )


def exposed(registry: CollectorRegistry) -> dict[str, dict[frozenset[tuple[str, str]], float]]:
    """Parse the text exposition back: {sample name: {labels: value}}."""
    text = generate_latest(registry).decode()
    samples: dict[str, dict[frozenset[tuple[str, str]], float]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples.setdefault(s.name, {})[frozenset(s.labels.items())] = s.value
    return samples


def labels(**kw: str) -> frozenset[tuple[str, str]]:
    return frozenset(kw.items())


def test_when_built_then_every_family_has_the_contracted_name_type_and_labels(
    metrics: GatewayMetrics, registry: CollectorRegistry
) -> None:
    metrics.set_consumer_lag("events.usage.raw", 0, 5)
    metrics.set_consent_lag(0, 1)
    metrics.config_loaded("v1")
    text = generate_latest(registry).decode()
    families = {
        f.name: f for f in text_string_to_metric_families(text) if f.name.startswith("gateway_")
    }
    created = {n for n in families if n.endswith("_created")}
    assert {n: families[n].type for n in set(families) - created} == {
        n: t for n, (t, _) in EXPECTED_FAMILIES.items()
    }
    for name, (_, label_names) in EXPECTED_FAMILIES.items():
        for sample in families[name].samples:
            assert set(sample.labels) - {"le"} == label_names, sample.name


def test_when_built_then_known_label_combinations_exist_at_zero(
    metrics: GatewayMetrics, registry: CollectorRegistry
) -> None:
    samples = exposed(registry)
    decisions = samples["gateway_decisions_total"]
    for sink in SINKS:
        assert decisions[labels(sink=sink, verdict="forward", reason="consented")] == 0
        for reason in DROP_REASONS | INVALID_REASONS:
            assert decisions[labels(sink=sink, verdict="drop", reason=reason)] == 0
        assert samples["gateway_sink_writes_total"][labels(sink=sink)] == 0
        assert samples["gateway_end_to_end_latency_seconds_count"][labels(sink=sink)] == 0
    for topic in TOPICS:
        assert samples["gateway_events_consumed_total"][labels(topic=topic)] == 0
        for reason in INVALID_REASONS:
            assert samples["gateway_invalid_records_total"][labels(topic=topic, reason=reason)] == 0
    assert set(samples["gateway_consent_records_total"]) == {
        labels(outcome=o) for o in ("applied", "stale", "tombstone", "invalid")
    }
    assert set(samples["gateway_config_reloads_total"]) == {
        labels(result="success"),
        labels(result="failure"),
    }


def test_when_built_then_forward_reasons_are_not_paired_with_drop(
    registry: CollectorRegistry, metrics: GatewayMetrics
) -> None:
    decisions = exposed(registry)["gateway_decisions_total"]
    for reason in FORWARD_REASONS:
        assert labels(sink="ads", verdict="drop", reason=reason) not in decisions
    with pytest.raises(UnknownLabelValueError):
        metrics.decision("ads", "drop", Reason.CONSENTED)


def test_when_events_are_counted_then_the_exposition_shows_them(
    metrics: GatewayMetrics, registry: CollectorRegistry
) -> None:
    metrics.event_consumed("events.usage.raw", 7)
    metrics.event_consumed("events.device.raw")
    metrics.decision("ads", "drop", Reason.GPC, 2)
    metrics.decision("analytics", "forward", "consented")
    metrics.invalid_record("events.usage.raw", Reason.INVALID_JSON)
    metrics.dlq_write()
    metrics.audit_write(3)
    metrics.sink_write("analytics", 4)
    samples = exposed(registry)
    assert samples["gateway_events_consumed_total"][labels(topic="events.usage.raw")] == 7
    assert samples["gateway_events_consumed_total"][labels(topic="events.device.raw")] == 1
    assert samples["gateway_decisions_total"][labels(sink="ads", verdict="drop", reason="gpc")] == 2
    assert (
        samples["gateway_decisions_total"][
            labels(sink="analytics", verdict="forward", reason="consented")
        ]
        == 1
    )
    assert (
        samples["gateway_invalid_records_total"][
            labels(topic="events.usage.raw", reason="invalid_json")
        ]
        == 1
    )
    assert samples["gateway_dlq_writes_total"][labels()] == 1
    assert samples["gateway_audit_writes_total"][labels()] == 3
    assert samples["gateway_sink_writes_total"][labels(sink="analytics")] == 4


@pytest.mark.parametrize(
    ("call", "label"),
    [
        (lambda m: m.decision("u-123", "drop", "gpc"), "sink"),
        (lambda m: m.decision("ads", "drop", "alice@example.com"), "reason"),
        (lambda m: m.decision("ads", "maybe", "gpc"), "verdict"),
        (lambda m: m.event_consumed("events.unknown.raw"), "topic"),
        (lambda m: m.invalid_record("events.usage.raw", "gpc"), "reason"),
        (lambda m: m.sink_write("partner-x"), "sink"),
        (lambda m: m.observe_latency("partner-x", 0.1), "sink"),
        (lambda m: m.set_consumer_lag("consent.state", 0, 1), "topic"),
        (lambda m: m.set_consumer_lag("events.usage.raw", 1024, 1), "partition"),
        (lambda m: m.set_consent_lag(-1, 1), "partition"),
        (lambda m: m.config_reload("maybe"), "result"),
    ],
)
def test_when_a_label_value_was_not_declared_then_it_is_refused_and_no_series_appears(
    metrics: GatewayMetrics, registry: CollectorRegistry, call: object, label: str
) -> None:
    before = exposed(registry)
    with pytest.raises(UnknownLabelValueError, match=f"label '{label}'") as caught:
        call(metrics)  # type: ignore[operator]
    assert exposed(registry).keys() == before.keys()
    for name, series in exposed(registry).items():
        if not name.endswith("_created"):
            assert series.keys() == before[name].keys(), name
    for secret in ("u-123", "alice@example.com", "partner-x"):
        assert secret not in str(caught.value)


def test_when_declared_values_have_an_unsafe_shape_then_construction_fails(
    registry: CollectorRegistry,
) -> None:
    with pytest.raises(ValueError, match="sinks"):
        GatewayMetrics(registry, sinks=["Ads Partner"], topics=TOPICS)
    with pytest.raises(ValueError, match="topics"):
        GatewayMetrics(CollectorRegistry(), sinks=SINKS, topics=["events/raw"])


def test_when_latency_is_observed_then_buckets_span_1ms_to_60s_and_negative_counts_as_zero(
    metrics: GatewayMetrics, registry: CollectorRegistry
) -> None:
    assert LATENCY_BUCKETS[0] == 0.001
    assert LATENCY_BUCKETS[-1] == 60.0
    metrics.observe_latency("ads", 0.2)
    metrics.observe_latency("ads", -5.0)
    samples = exposed(registry)
    buckets = samples["gateway_end_to_end_latency_seconds_bucket"]
    assert buckets[labels(sink="ads", le="0.001")] == 1
    assert buckets[labels(sink="ads", le="0.25")] == 2
    assert buckets[labels(sink="ads", le="+Inf")] == 2
    assert samples["gateway_end_to_end_latency_seconds_sum"][labels(sink="ads")] == 0.2


def test_when_a_batch_is_processed_then_size_time_and_last_processed_are_recorded(
    metrics: GatewayMetrics, registry: CollectorRegistry
) -> None:
    metrics.batch_processed(size=50, seconds=0.02, now=1_700_000_000.0)
    metrics.batch_processed(size=0, seconds=0.001, now=1_700_000_999.0)
    metrics.barrier_waited(0.3)
    samples = exposed(registry)
    assert samples["gateway_batch_size_count"][labels()] == 2
    assert samples["gateway_batch_size_sum"][labels()] == 50
    assert samples["gateway_processing_seconds_count"][labels()] == 2
    assert samples["gateway_last_event_processed_time_seconds"][labels()] == 1_700_000_000.0
    assert samples["gateway_barrier_wait_seconds_bucket"][labels(le="0.25")] == 0
    assert samples["gateway_barrier_wait_seconds_bucket"][labels(le="0.5")] == 1


def test_when_consent_records_arrive_then_outcomes_and_freshness_gauges_follow(
    metrics: GatewayMetrics, registry: CollectorRegistry
) -> None:
    metrics.consent_applied(updated_at=1_700_000_100.0, now=1_700_000_200.0)
    metrics.consent_applied(updated_at=1_700_000_050.0, now=1_700_000_300.0)  # older, other key
    metrics.consent_stale(2)
    metrics.consent_tombstone(now=1_700_000_400.0)
    metrics.consent_invalid()
    metrics.set_consent_subjects(42)
    samples = exposed(registry)
    outcomes = samples["gateway_consent_records_total"]
    assert outcomes[labels(outcome="applied")] == 2
    assert outcomes[labels(outcome="stale")] == 2
    assert outcomes[labels(outcome="tombstone")] == 1
    assert outcomes[labels(outcome="invalid")] == 1
    newest = samples["gateway_consent_newest_applied_timestamp_seconds"][labels()]
    assert newest == 1_700_000_100.0
    assert samples["gateway_consent_last_applied_time_seconds"][labels()] == 1_700_000_400.0
    assert samples["gateway_consent_subjects"][labels()] == 42


def test_when_a_partition_is_revoked_then_its_lag_series_disappears(
    metrics: GatewayMetrics, registry: CollectorRegistry
) -> None:
    metrics.set_consumer_lag("events.usage.raw", 3, 12)
    metrics.set_consumer_lag("events.usage.raw", 4, 1)
    metrics.set_consent_lag(3, 7)
    metrics.forget_consumer_partition("events.usage.raw", 3)
    metrics.forget_consumer_partition("events.usage.raw", 3)  # twice: no error
    metrics.forget_consent_partition(3)
    metrics.forget_consent_partition(5)  # never set: no error
    samples = exposed(registry)
    assert samples["gateway_consumer_lag_records"] == {
        labels(topic="events.usage.raw", partition="4"): 1
    }
    assert "gateway_consent_lag_records" not in samples


def test_when_the_config_is_reloaded_then_only_the_live_version_has_an_info_series(
    metrics: GatewayMetrics, registry: CollectorRegistry
) -> None:
    metrics.config_loaded("sha256-aaaa")
    metrics.config_reload("success")
    metrics.config_loaded("sha256-bbbb")
    metrics.config_reload("failure")
    samples = exposed(registry)
    assert samples["gateway_config_info"] == {labels(version="sha256-bbbb"): 1}
    assert samples["gateway_config_reloads_total"][labels(result="success")] == 1
    assert samples["gateway_config_reloads_total"][labels(result="failure")] == 1
    with pytest.raises(ValueError, match="config version"):
        metrics.config_loaded("has spaces and {braces}")


def test_when_build_info_is_set_then_one_series_carries_the_passed_versions(
    metrics: GatewayMetrics, registry: CollectorRegistry
) -> None:
    metrics.set_build_info(BuildInfo("0.2.0", "3.11.10", "0.11.3", "0.14.0"))
    assert exposed(registry)["gateway_build_info"] == {
        labels(
            version="0.2.0",
            python_version="3.11.10",
            faust_version="0.11.3",
            aiokafka_version="0.14.0",
        ): 1
    }


def test_when_snapshot_is_taken_then_it_agrees_with_the_exposition(
    metrics: GatewayMetrics, registry: CollectorRegistry
) -> None:
    metrics.event_consumed("events.usage.raw", 5)
    metrics.decision("social", "drop", "child_barred_sink", 3)
    metrics.observe_latency("social", 0.5)
    metrics.set_consumer_lag("events.device.raw", 1, 9)
    snap = metrics.snapshot()
    assert snap["gateway_events_consumed_total"][("events.usage.raw",)] == 5
    assert snap["gateway_decisions_total"][("social", "drop", "child_barred_sink")] == 3
    assert snap["gateway_end_to_end_latency_seconds_count"][("social",)] == 1
    assert snap["gateway_consumer_lag_records"][("events.device.raw", "1")] == 9
    assert not any(name.endswith(("_created", "_bucket")) for name in snap)
    text = exposed(registry)
    for name, series in snap.items():
        assert sum(series.values()) == pytest.approx(sum(text[name].values())), name


def test_when_two_instances_use_separate_registries_then_they_do_not_collide() -> None:
    first = GatewayMetrics(CollectorRegistry(), sinks=SINKS, topics=TOPICS)
    second = GatewayMetrics(CollectorRegistry(), sinks=SINKS, topics=TOPICS)
    first.dlq_write()
    assert second.snapshot()["gateway_dlq_writes_total"][()] == 0


def test_when_the_module_is_imported_then_no_kafka_or_http_server_code_is_loaded() -> None:
    code = (
        "import sys, gateway.metrics\n"
        "bad = [m for m in ('faust', 'aiokafka', 'topologies') if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == ""


def test_when_an_identifier_is_scrubbed_then_it_counts_per_sink_and_kind(
    metrics: GatewayMetrics, registry: CollectorRegistry
) -> None:
    metrics.identifier_scrubbed("analytics", "subject_id", 2)
    metrics.identifier_scrubbed("analytics", "email")
    samples = metrics.snapshot()["gateway_identifier_scrubs_total"]
    assert samples[("analytics", "subject_id")] == 2
    assert samples[("analytics", "email")] == 1
    assert samples[("analytics", "ip")] == 0  # pre-initialised
    with pytest.raises(UnknownLabelValueError):
        metrics.identifier_scrubbed("analytics", "user-7f3a9c11")


def test_when_consent_is_future_dated_then_it_is_counted(metrics: GatewayMetrics) -> None:
    metrics.consent_future_dated(3)
    assert metrics.snapshot()["gateway_consent_future_dated_total"][()] == 3


def test_when_erasure_notices_are_acknowledged_then_they_count_per_sink_and_reason(
    metrics: GatewayMetrics, registry: CollectorRegistry
) -> None:
    metrics.erasure_notices_acknowledged("ads", "subject_erased", 2)
    metrics.erasure_acknowledged_after("child_discovered", -1.0)  # skewed clock: 0
    metrics.erasure_acknowledged_after("subject_erased", 0.3)
    samples = exposed(registry)
    counts = samples["gateway_erasure_notices_total"]
    assert counts[labels(sink="ads", reason="subject_erased")] == 2
    assert counts[labels(sink="social", reason="child_discovered")] == 0
    seconds = samples["gateway_erasure_notice_seconds_sum"]
    assert seconds[labels(reason="child_discovered")] == 0
    assert seconds[labels(reason="subject_erased")] == pytest.approx(0.3)
    with pytest.raises(UnknownLabelValueError):
        metrics.erasure_notices_acknowledged("ads", "deleted")
    with pytest.raises(UnknownLabelValueError):
        metrics.erasure_acknowledged_after("deleted", 1.0)


def test_when_erasure_notices_fail_then_each_record_counts_per_reason_and_stage(
    metrics: GatewayMetrics, registry: CollectorRegistry
) -> None:
    metrics.erasure_notices_failed("subject_erased", "build")
    metrics.erasure_notices_failed("child_discovered", "ack")
    failures = exposed(registry)["gateway_erasure_notice_failures_total"]
    assert failures[labels(reason="subject_erased", stage="build")] == 1
    assert failures[labels(reason="child_discovered", stage="ack")] == 1
    assert failures[labels(reason="child_discovered", stage="build")] == 0  # preinitialised
    with pytest.raises(UnknownLabelValueError):
        metrics.erasure_notices_failed("subject_erased", "later")
    with pytest.raises(UnknownLabelValueError):
        metrics.erasure_notices_failed("deleted", "build")


def test_when_a_kafka_outage_is_ridden_out_then_degraded_goes_up_and_down_and_it_counts() -> None:
    registry = CollectorRegistry()
    metrics = GatewayMetrics(registry, sinks=["ads"], topics=["t"])
    metrics.kafka_outage_began("raw_reader")
    assert registry.get_sample_value("gateway_kafka_degraded", {"client": "raw_reader"}) == 1
    assert registry.get_sample_value("gateway_kafka_degraded", {"client": "consent_feed"}) == 0
    metrics.kafka_outage_ended("raw_reader", 61.5)
    assert registry.get_sample_value("gateway_kafka_degraded", {"client": "raw_reader"}) == 0
    labels = {"client": "raw_reader"}
    assert registry.get_sample_value("gateway_kafka_outages_total", labels) == 1
    assert registry.get_sample_value("gateway_kafka_outage_seconds_total", labels) == 61.5
    with pytest.raises(UnknownLabelValueError):
        metrics.kafka_outage_began("faust")


def _latency_lines(registry: CollectorRegistry) -> list[str]:
    text = generate_latest(registry).decode()
    return [
        line
        for line in text.splitlines()
        if line.startswith("gateway_end_to_end_latency_seconds") and "_created" not in line
    ]


@pytest.mark.parametrize("internals", [True, False])
def test_when_latencies_are_observed_per_batch_then_the_series_equal_one_observe_each(
    internals: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gateway.metrics as metrics_module

    monkeypatch.setattr(metrics_module, "_HISTOGRAM_INTERNALS", internals)
    now_us = 1_764_160_000_123_456.0
    # on and beside every bound, in the future (clock skew: 0 s), and sums that round
    occurred = [int(now_us - b * 1e6) + d for b in LATENCY_BUCKETS for d in (-1, 0, 1)]
    occurred += [int(now_us) + 5_000_000, int(now_us - 0.1e6), int(now_us - 0.2e6), 7, 3]
    plain, batched = CollectorRegistry(), CollectorRegistry()
    one = GatewayMetrics(plain, sinks=SINKS, topics=TOPICS)
    many = GatewayMetrics(batched, sinks=SINKS, topics=TOPICS)
    for _ in range(3):  # the sum goes on from its value, in the same order
        for at_us in occurred:
            one.latency.labels("ads").observe(max(0.0, (now_us - at_us) / 1_000_000))
        many.observe_latencies("ads", now_us, occurred)
    assert _latency_lines(batched) == _latency_lines(plain)
    with pytest.raises(UnknownLabelValueError):
        many.observe_latencies("partner-x", now_us, occurred)

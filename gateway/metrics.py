"""Metric definitions of the gateway: one `GatewayMetrics` per worker, on a registry passed in.

This module owns the names, types, labels and buckets of every `gateway_*` series. It starts no
HTTP server and reads no clock: the worker in `topologies/` serves the registry and passes time
values in. Label values are bounded: sinks, topics and reason codes are declared at construction
and anything else is refused with `UnknownLabelValueError` rather than becoming a new series, so a
subject id or a field value can never turn into a label. The error message never echoes the
refused value, because a misrouted value may be personal data.

The terminal live view reads `snapshot()`, which is computed from the same collectors that
`/metrics` exposes, so the two cannot disagree.
"""

from __future__ import annotations

import re
from bisect import bisect_left as _bisect_left
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Final, Literal

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from gateway.consent import ConsentOutcome
from gateway.decision import Verdict
from gateway.erasure import ERASURE_REASONS
from gateway.errors import GatewayError
from gateway.guard import EMAIL, GUARDED_IDENTIFIERS, UNDECODABLE
from gateway.reasons import DROP_REASONS, FORWARD_REASONS, INVALID_REASONS

__all__ = [
    "BARRIER_WAIT_BUCKETS",
    "BATCH_SIZE_BUCKETS",
    "CONSENT_OUTCOMES",
    "DEFAULT_DROP_REASONS",
    "DEFAULT_FORWARD_REASONS",
    "DEFAULT_INVALID_REASONS",
    "ERASURE_BUCKETS",
    "ERASURE_FAILURE_STAGES",
    "ERASURE_REASONS",
    "KAFKA_CLIENTS",
    "LATENCY_BUCKETS",
    "PROCESSING_BUCKETS",
    "RELOAD_RESULTS",
    "SCRUBBED_IDENTIFIERS",
    "VERDICTS",
    "BuildInfo",
    "ConsentOutcome",
    "GatewayMetrics",
    "ReloadResult",
    "Snapshot",
    "UnknownLabelValueError",
    "Verdict",
]

ReloadResult = Literal["success", "failure"]
# {sample name: {label values in label-name order: value}}
Snapshot = dict[str, dict[tuple[str, ...], float]]

# Label values defined once, by the core: decisions' verdicts, consent records' outcomes.
VERDICTS: Final = tuple(verdict.value for verdict in Verdict)
CONSENT_OUTCOMES: Final = tuple(outcome.value for outcome in ConsentOutcome)
RELOAD_RESULTS: Final = ("success", "failure")
# Where a consent record's erasure notices failed: `build` (building them or adding them to the
# batch raised: never sent, while the record itself is applied and committed) or `ack` (their
# batch was refused: not committed, so sent again when the record is read again).
ERASURE_FAILURE_STAGES: Final = ("build", "ack")
# The worker's parts that ride out a Kafka outage (topologies.outage).
KAFKA_CLIENTS: Final = ("raw_reader", "consent_feed")
# What the value guard (gateway.guard) finds and replaces in an output record.
SCRUBBED_IDENTIFIERS: Final = (*GUARDED_IDENTIFIERS, EMAIL, UNDECODABLE)
# Reason codes come from the core; invalid records also count as a drop for every sink.
DEFAULT_FORWARD_REASONS: Final = tuple(sorted(str(r) for r in FORWARD_REASONS))
DEFAULT_INVALID_REASONS: Final = tuple(sorted(str(r) for r in INVALID_REASONS))
DEFAULT_DROP_REASONS: Final = tuple(sorted(str(r) for r in DROP_REASONS | INVALID_REASONS))

# Event time to sink acknowledgement: 1 ms .. 60 s.
LATENCY_BUCKETS: Final = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)  # fmt: skip
PROCESSING_BUCKETS: Final = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
)  # fmt: skip
BATCH_SIZE_BUCKETS: Final = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)
# Most batches do not wait at all; the first bucket separates "no wait" from "waited".
BARRIER_WAIT_BUCKETS: Final = (
    0.0001, 0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)  # fmt: skip

# A consent record's Kafka timestamp to its erasure notices' acknowledgement: 10 ms .. 15 min.
ERASURE_BUCKETS: Final = (
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0,
)  # fmt: skip

_NAME_SHAPE: Final = re.compile(r"[a-z][a-z0-9_]{0,63}")  # sinks, reason codes
_TOPIC_SHAPE: Final = re.compile(r"[A-Za-z0-9._-]{1,249}")  # Kafka's topic alphabet
_VERSION_SHAPE: Final = re.compile(r"[A-Za-z0-9._:+-]{1,64}")


def _histogram_internals() -> bool:
    """Whether a labelled Histogram child has the parts `observe_latencies` adds to directly."""
    child = Histogram("probe", "probe", ("l",), registry=None, buckets=(1.0,)).labels("x")
    parts = (getattr(child, name, None) for name in ("_upper_bounds", "_buckets", "_sum"))
    bounds, buckets, total = parts
    return (
        isinstance(bounds, list)
        and isinstance(buckets, list)
        and len(bounds) == len(buckets)
        and all(hasattr(v, "inc") for v in buckets)
        and hasattr(total, "get")
        and hasattr(total, "set")
    )


_HISTOGRAM_INTERNALS: Final = _histogram_internals()


class UnknownLabelValueError(GatewayError, ValueError):
    """A label value that was not declared when the metrics were built."""


@dataclass(frozen=True)
class BuildInfo:
    """Versions reported by `gateway_build_info`; the worker reads them and passes them in."""

    version: str
    python_version: str
    faust_version: str
    aiokafka_version: str


def _declare(what: str, values: Iterable[str], shape: re.Pattern[str]) -> frozenset[str]:
    declared = frozenset(str(v) for v in values)  # StrEnum members become plain values
    bad = sorted(v for v in declared if not shape.fullmatch(v))
    if bad:
        raise ValueError(f"{what}: {bad!r} must match {shape.pattern}")
    return declared


def _check(label: str, value: str, declared: Iterable[str]) -> str:
    if value not in declared:
        raise UnknownLabelValueError(
            f"label {label!r}: value not declared at construction (declared: "
            f"{', '.join(sorted(declared))}); the value is not shown as it may be personal data"
        )
    return value


class GatewayMetrics:
    """Every `gateway_*` metric, registered on `registry`, with small typed update methods.

    `sinks`, `topics` and the reason codes declare every label value the methods accept;
    partitions run from 0 to `max_partitions` - 1. An update with any other label value raises
    `UnknownLabelValueError`; a declared value of the wrong shape raises `ValueError` here.
    Times are seconds: durations as measured, wall times since the epoch.
    """

    def __init__(
        self,
        registry: CollectorRegistry,
        *,
        sinks: Iterable[str],
        topics: Iterable[str],
        forward_reasons: Iterable[str] = DEFAULT_FORWARD_REASONS,
        drop_reasons: Iterable[str] = DEFAULT_DROP_REASONS,
        invalid_reasons: Iterable[str] = DEFAULT_INVALID_REASONS,
        max_partitions: int = 1024,
        build_info: BuildInfo | None = None,
    ) -> None:
        self.sinks = _declare("sinks", sinks, _NAME_SHAPE)
        self.topics = _declare("topics", topics, _TOPIC_SHAPE)
        self.reasons: dict[str, frozenset[str]] = {
            "forward": _declare("forward_reasons", forward_reasons, _NAME_SHAPE),
            "drop": _declare("drop_reasons", drop_reasons, _NAME_SHAPE),
        }
        self.invalid_reasons = _declare("invalid_reasons", invalid_reasons, _NAME_SHAPE)
        if max_partitions < 1:
            raise ValueError(f"max_partitions: must be at least 1; got {max_partitions}")
        self.max_partitions = max_partitions
        self._config_version: str | None = None
        self._newest_consent_updated_at = 0.0
        self._label_names: list[tuple[Counter | Gauge | Histogram, tuple[str, ...]]] = []

        def counter(name: str, doc: str, labels: tuple[str, ...] = ()) -> Counter:
            metric = Counter(name, doc, labels, registry=registry)
            self._label_names.append((metric, labels))
            return metric

        def gauge(name: str, doc: str, labels: tuple[str, ...] = ()) -> Gauge:
            metric = Gauge(name, doc, labels, registry=registry)
            self._label_names.append((metric, labels))
            return metric

        def histogram(
            name: str, doc: str, buckets: tuple[float, ...], labels: tuple[str, ...] = ()
        ) -> Histogram:
            metric = Histogram(name, doc, labels, registry=registry, buckets=buckets)
            self._label_names.append((metric, labels))
            return metric

        self.events_consumed = counter(
            "gateway_events_consumed_total", "Raw event records consumed.", ("topic",)
        )
        self.decisions = counter(
            "gateway_decisions_total",
            "Decisions per event and sink: forward or drop, with one reason code.",
            ("sink", "verdict", "reason"),
        )
        self.invalid_records = counter(
            "gateway_invalid_records_total", "Invalid input records.", ("topic", "reason")
        )
        self.dlq_writes = counter("gateway_dlq_writes_total", "Records written to the DLQ topic.")
        self.audit_writes = counter(
            "gateway_audit_writes_total", "Decision records written to the audit topic."
        )
        self.identifier_scrubs = counter(
            "gateway_identifier_scrubs_total",
            "Raw identifier values (or email addresses) found in an output and replaced, per sink"
            " and kind of identifier.",
            ("sink", "identifier"),
        )
        self.sink_writes = counter(
            "gateway_sink_writes_total", "Records acknowledged by a sink topic.", ("sink",)
        )
        self.latency = histogram(
            "gateway_end_to_end_latency_seconds",
            "Time from an event's occurred_at to the sink's acknowledgement.",
            LATENCY_BUCKETS,
            ("sink",),
        )
        self.processing = histogram(
            "gateway_processing_seconds", "Processing time per event batch.", PROCESSING_BUCKETS
        )
        self.batch_size = histogram(
            "gateway_batch_size", "Events per processed batch.", BATCH_SIZE_BUCKETS
        )
        self.barrier_wait = histogram(
            "gateway_barrier_wait_seconds",
            "Time a batch waited for the consent table to catch up (revocation barrier).",
            BARRIER_WAIT_BUCKETS,
        )
        self.consent_records = counter(
            "gateway_consent_records_total", "Consent records read, by outcome.", ("outcome",)
        )
        self.future_dated_consent = counter(
            "gateway_consent_future_dated_total",
            "Consent records dated beyond the clock tolerance after their Kafka timestamp, ordered"
            " at that timestamp instead.",
        )
        self.consent_subjects = gauge(
            "gateway_consent_subjects", "Subjects in the consent table of this worker."
        )
        self.consent_newest_applied = gauge(
            "gateway_consent_newest_applied_timestamp_seconds",
            "updated_at of the newest consent record applied (Unix seconds).",
        )
        self.consent_last_applied = gauge(
            "gateway_consent_last_applied_time_seconds",
            "Wall time at which this worker last applied a consent record (Unix seconds).",
        )
        self.consent_lag = gauge(
            "gateway_consent_lag_records",
            "Consent topic end offset minus consumed position.",
            ("partition",),
        )
        self.consumer_lag = gauge(
            "gateway_consumer_lag_records",
            "Raw event topic end offset minus consumed position.",
            ("topic", "partition"),
        )
        self.last_event_processed = gauge(
            "gateway_last_event_processed_time_seconds",
            "Wall time at which this worker last finished a non-empty batch (Unix seconds).",
        )
        self.erasure_notices = counter(
            "gateway_erasure_notices_total",
            "Erasure notices acknowledged (gateway.erasure), per sink and reason: one per sink and"
            " erased or child subject, with the sink's tombstones and the audit record.",
            ("sink", "reason"),
        )
        self.erasure_latency = histogram(
            "gateway_erasure_notice_seconds",
            "Time from a consent record's Kafka timestamp (a tombstone, or the record that made"
            " the subject a child) to the acknowledgement of every erasure notice it caused.",
            ERASURE_BUCKETS,
            ("reason",),
        )
        self.erasure_failures = counter(
            "gateway_erasure_notice_failures_total",
            "Consent records (tombstones, late-found children) whose erasure notices failed:"
            " stage=build, not built or not added to the batch (never sent; the record itself"
            " was applied); stage=ack, their batch was not acknowledged (sent again when the"
            " record is read again).",
            ("reason", "stage"),
        )
        self.kafka_degraded = gauge(
            "gateway_kafka_degraded",
            "1 while a part of the worker rides out a Kafka outage (fetching paused, retrying"
            " with backoff, nothing committed), else 0.",
            ("client",),
        )
        self.kafka_outages = counter(
            "gateway_kafka_outages_total",
            "Kafka outages ridden out (a transient error, then the cluster answered again).",
            ("client",),
        )
        self.kafka_outage_seconds = counter(
            "gateway_kafka_outage_seconds_total",
            "Seconds spent riding out Kafka outages.",
            ("client",),
        )
        self.config_info = gauge(
            "gateway_config_info", "The loaded sink-rule config version (always 1).", ("version",)
        )
        self.config_reloads = counter(
            "gateway_config_reloads_total", "Config reload attempts, by result.", ("result",)
        )
        self.build_info = gauge(
            "gateway_build_info",
            "Versions of the running gateway (always 1).",
            ("version", "python_version", "faust_version", "aiokafka_version"),
        )
        self._preinitialise()
        if build_info is not None:
            self.set_build_info(build_info)

    def _preinitialise(self) -> None:
        # The per-batch counters' children, by their label values once checked: a batch's
        # counting then skips the checks and prometheus_client's `labels` (its lock and tuple).
        # Safe to keep: these series are never removed.
        self._children: dict[tuple[str, ...], Counter] = {}
        # Series exist at 0 from the start, so rate() and increase() work for the first event.
        for topic in sorted(self.topics):
            self.events_consumed.labels(topic)
            for reason in sorted(self.invalid_reasons):
                self.invalid_records.labels(topic, reason)
        for sink in sorted(self.sinks):
            self.sink_writes.labels(sink)
            self.latency.labels(sink)
            for identifier in SCRUBBED_IDENTIFIERS:
                self.identifier_scrubs.labels(sink, identifier)
            for verdict, reasons in self.reasons.items():
                for reason in sorted(reasons):
                    self.decisions.labels(sink, verdict, reason)
        for outcome in CONSENT_OUTCOMES:
            self.consent_records.labels(outcome)
        for reason in ERASURE_REASONS:
            self.erasure_latency.labels(reason)
            for stage in ERASURE_FAILURE_STAGES:
                self.erasure_failures.labels(reason, stage)
            for sink in sorted(self.sinks):
                self.erasure_notices.labels(sink, reason)
        for result in RELOAD_RESULTS:
            self.config_reloads.labels(result)
        for client in KAFKA_CLIENTS:
            self.kafka_degraded.labels(client)
            self.kafka_outages.labels(client)
            self.kafka_outage_seconds.labels(client)

    def _partition(self, partition: int) -> str:
        if not 0 <= partition < self.max_partitions:
            raise UnknownLabelValueError(
                f"label 'partition': must be in 0..{self.max_partitions - 1}; got {partition}"
            )
        return str(partition)

    # Events and decisions

    def _child(self, key: tuple[str, ...], checked: Callable[[], Counter]) -> Counter:
        """The per-batch counter child for `key`: made by `checked` once, then remembered.

        `checked` checks the label values (raising `UnknownLabelValueError`) and returns the child.
        """
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = checked()
        return child

    def event_consumed(self, topic: str, n: int = 1) -> None:
        """`n` raw records read from `topic`."""
        self._child(
            ("consumed", topic),
            lambda: self.events_consumed.labels(_check("topic", topic, self.topics)),
        ).inc(n)

    def decision(self, sink: str, verdict: str, reason: str, n: int = 1) -> None:
        """`n` decisions for `sink`: `verdict` a `Verdict` value, `reason` a reason code."""

        def checked() -> Counter:
            _check("sink", sink, self.sinks)
            reasons = self.reasons[_check("verdict", verdict, VERDICTS)]
            return self.decisions.labels(sink, verdict, _check("reason", reason, reasons))

        self._child(("decision", sink, verdict, reason), checked).inc(n)

    def invalid_record(self, topic: str, reason: str, n: int = 1) -> None:
        """`n` invalid records read from `topic`, `reason` an invalid-record reason code."""

        def checked() -> Counter:
            _check("topic", topic, self.topics)
            return self.invalid_records.labels(
                topic, _check("reason", reason, self.invalid_reasons)
            )

        self._child(("invalid", topic, reason), checked).inc(n)

    def dlq_write(self, n: int = 1) -> None:
        """`n` records written to the DLQ topic."""
        self.dlq_writes.inc(n)

    def audit_write(self, n: int = 1) -> None:
        """`n` decision records written to the audit topic."""
        self.audit_writes.inc(n)

    def identifier_scrubbed(self, sink: str, identifier: str, n: int = 1) -> None:
        """`n` occurrences of an identifier (or an email address) replaced in `sink`'s outputs."""
        _check("sink", sink, self.sinks)
        self.identifier_scrubs.labels(
            sink, _check("identifier", identifier, SCRUBBED_IDENTIFIERS)
        ).inc(n)

    def sink_write(self, sink: str, n: int = 1) -> None:
        """`n` records acknowledged by `sink`'s topic."""
        self._child(
            ("sink_write", sink), lambda: self.sink_writes.labels(_check("sink", sink, self.sinks))
        ).inc(n)

    def observe_latency(self, sink: str, seconds: float) -> None:
        """End-to-end latency; negative values (clock skew between producer and us) count as 0."""
        self.latency.labels(_check("sink", sink, self.sinks)).observe(max(seconds, 0.0))

    def observe_latencies(self, sink: str, now_us: float, occurred_at_us: Sequence[int]) -> None:
        """End-to-end latencies of `sink`'s records acknowledged at `now_us` (wall time, µs).

        One per `occurred_at_us` (event times, µs), in order, each as `max(0.0, (now_us -
        occurred_at_us) / 1e6)` seconds: the same series as that many `observe_latency` calls,
        bit for bit (the sum is added in the same order). prometheus_client has no batch
        observe, so this adds to the child's buckets and sum directly: a lock per bucket and
        batch instead of per record (this module is the one adapter of prometheus_client).
        Raises `UnknownLabelValueError` for an undeclared sink.
        """
        child = self.latency.labels(_check("sink", sink, self.sinks))
        if not _HISTOGRAM_INTERNALS:  # a prometheus_client whose internals moved: the plain way
            for at_us in occurred_at_us:
                child.observe(max(0.0, (now_us - at_us) / 1_000_000))
            return
        bounds = child._upper_bounds
        counts = [0] * len(bounds)
        total = child._sum.get()
        for at_us in occurred_at_us:
            seconds = max(0.0, (now_us - at_us) / 1_000_000)
            total += seconds
            counts[_bisect_left(bounds, seconds)] += 1  # the first bound >= seconds, as observe
        child._sum.set(total)
        for bucket, n in zip(child._buckets, counts, strict=True):
            if n:
                bucket.inc(n)

    def batch_processed(self, size: int, seconds: float, now: float) -> None:
        """One batch done: its size, its processing time, and the wall time it finished."""
        self.batch_size.observe(size)
        self.processing.observe(max(seconds, 0.0))
        if size > 0:
            self.last_event_processed.set(now)

    def barrier_waited(self, seconds: float) -> None:
        """One batch waited `seconds` at the revocation barrier (a negative value counts as 0)."""
        self.barrier_wait.observe(max(seconds, 0.0))

    # Consent feed

    def consent_applied(self, updated_at: float, now: float, n: int = 1) -> None:
        """`n` consent records changed the table; `updated_at` is the newest, `now` wall time."""
        self.consent_records.labels("applied").inc(n)
        self.restore_consent_newest(updated_at)
        self.consent_last_applied.set(now)

    def consent_tombstone(self, now: float, n: int = 1) -> None:
        """`n` tombstones read (a subject erased); `now` is the wall time they were applied."""
        self.consent_records.labels("tombstone").inc(n)
        self.consent_last_applied.set(now)

    def consent_stale(self, n: int = 1) -> None:
        """Records older than the subject's current one: read, changed nothing."""
        self.consent_records.labels("stale").inc(n)

    def consent_future_dated(self, n: int = 1) -> None:
        """Records ordered at their Kafka timestamp because their `updated_at` was too far ahead."""
        self.future_dated_consent.inc(n)

    def consent_invalid(self, n: int = 1) -> None:
        """`n` consent records that could not be applied (each went to the DLQ)."""
        self.consent_records.labels("invalid").inc(n)

    def restore_consent_newest(self, updated_at: float) -> None:
        """Raise the newest-applied timestamp (never lowers it), e.g. after table recovery."""
        if updated_at > self._newest_consent_updated_at:
            self._newest_consent_updated_at = updated_at
            self.consent_newest_applied.set(updated_at)

    def set_consent_subjects(self, count: int) -> None:
        """The number of subjects in this worker's consent table."""
        self.consent_subjects.set(count)

    def set_consent_lag(self, partition: int, records: int) -> None:
        """Consent records on `partition` not yet applied (a negative value counts as 0)."""
        self.consent_lag.labels(self._partition(partition)).set(max(records, 0))

    def set_consumer_lag(self, topic: str, partition: int, records: int) -> None:
        """Raw records of `topic`'s `partition` not yet committed (a negative value counts as 0)."""
        _check("topic", topic, self.topics)
        self.consumer_lag.labels(topic, self._partition(partition)).set(max(records, 0))

    def forget_consent_partition(self, partition: int) -> None:
        """After a rebalance took the partition away: drop its lag series instead of freezing it."""
        label = self._partition(partition)
        if self._has_series("gateway_consent_lag_records", (label,)):
            self.consent_lag.remove(label)

    def forget_consumer_partition(self, topic: str, partition: int) -> None:
        """After a rebalance took the partition away: drop its lag series instead of freezing it."""
        key = (_check("topic", topic, self.topics), self._partition(partition))
        if self._has_series("gateway_consumer_lag_records", key):
            self.consumer_lag.remove(*key)

    # Erasure notices

    def erasure_notices_acknowledged(self, sink: str, reason: str, n: int = 1) -> None:
        """`n` erasure notices for `sink` acknowledged; `reason` an `ErasureReason` value."""
        _check("sink", sink, self.sinks)
        self.erasure_notices.labels(sink, _check("reason", reason, ERASURE_REASONS)).inc(n)

    def erasure_acknowledged_after(self, reason: str, seconds: float) -> None:
        """The notices of one consent record were acknowledged `seconds` after its timestamp.

        A negative value (the producer's clock ahead of ours) counts as 0.
        """
        label = _check("reason", reason, ERASURE_REASONS)
        self.erasure_latency.labels(label).observe(max(seconds, 0.0))

    def erasure_notices_failed(self, reason: str, stage: str) -> None:
        """One consent record's erasure notices failed at `stage` (`ERASURE_FAILURE_STAGES`).

        `reason` is an `ErasureReason` value. Raises `UnknownLabelValueError` for either label
        not declared.
        """
        label = _check("reason", reason, ERASURE_REASONS)
        self.erasure_failures.labels(label, _check("stage", stage, ERASURE_FAILURE_STAGES)).inc()

    # Kafka outages

    def kafka_outage_began(self, client: str) -> None:
        """`client` (one of `KAFKA_CLIENTS`) lost the cluster and rides the outage out."""
        self.kafka_degraded.labels(_check("client", client, KAFKA_CLIENTS)).set(1)

    def kafka_outage_ended(self, client: str, seconds: float) -> None:
        """`client` reaches the cluster again after `seconds` (>= 0) degraded."""
        label = _check("client", client, KAFKA_CLIENTS)
        self.kafka_degraded.labels(label).set(0)
        self.kafka_outages.labels(label).inc()
        self.kafka_outage_seconds.labels(label).inc(max(seconds, 0.0))

    # Config and build

    def config_loaded(self, version: str) -> None:
        """The config `version` is live; the previous version's series goes away."""
        if not _VERSION_SHAPE.fullmatch(version):
            raise ValueError(f"config version: must match {_VERSION_SHAPE.pattern}")
        if self._config_version is not None and self._config_version != version:
            self.config_info.remove(self._config_version)
        self._config_version = version
        self.config_info.labels(version).set(1)

    def config_reload(self, result: ReloadResult) -> None:
        """One reload attempt and its `result`: "success" or "failure"."""
        self.config_reloads.labels(_check("result", result, RELOAD_RESULTS)).inc()

    def set_build_info(self, info: BuildInfo) -> None:
        """Report the versions in `info`, replacing earlier ones.

        Raises `ValueError` for a version that is not 1-64 characters of letters, digits and
        `._:+-` (it becomes a label value).
        """
        values = (info.version, info.python_version, info.faust_version, info.aiokafka_version)
        for value in values:
            if not _VERSION_SHAPE.fullmatch(value):
                raise ValueError(f"build info: {value!r} must match {_VERSION_SHAPE.pattern}")
        self.build_info.clear()
        self.build_info.labels(*values).set(1)

    # Reading back

    def snapshot(self) -> Snapshot:
        """Counter and gauge values, plus histogram `_count`/`_sum`, read from the collectors."""
        snap: Snapshot = {}
        for metric, label_names in self._label_names:
            for family in metric.collect():
                for sample in family.samples:
                    if family.type in ("counter", "histogram") and not sample.name.endswith(
                        ("_total", "_count", "_sum")
                    ):
                        continue  # _created, _bucket
                    key = tuple(sample.labels[name] for name in label_names)
                    snap.setdefault(sample.name, {})[key] = sample.value
        return snap

    def _has_series(self, sample_name: str, key: tuple[str, ...]) -> bool:
        # Older prometheus_client versions raise on removing an absent series.
        return key in self.snapshot().get(sample_name, {})

"""Pure helpers of the benchmark: percentiles, medians with their spread, per-second series.

No Kafka, no clock: everything here is tested in `tests/unit/test_bench_stats.py`.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of unsorted values; NaN when there are none."""
    if not values:
        return float("nan")
    return percentile_sorted(sorted(values), q)


def percentile_sorted(ordered: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of values already in ascending order: the ceil(q/100 * n)-th."""
    if not ordered:
        return float("nan")
    rank = max(1, math.ceil(q / 100 * len(ordered) - 1e-9))
    return ordered[min(rank, len(ordered)) - 1]


def median(values: Sequence[float]) -> float:
    """The median, ignoring NaN; NaN when nothing is left."""
    kept = [v for v in values if not math.isnan(v)]
    return statistics.median(kept) if kept else float("nan")


@dataclass(frozen=True)
class Spread:
    """Median and range of one figure over repetitions."""

    median: float
    low: float
    high: float
    n: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        kept = [v for v in values if not math.isnan(v)]
        if not kept:
            return cls(float("nan"), float("nan"), float("nan"), 0)
        return cls(statistics.median(kept), min(kept), max(kept), len(kept))


@dataclass(frozen=True)
class Second:
    """Latencies (ms) of the events sent during one second of a window."""

    second: int  # seconds since the window opened
    events: int
    p50_ms: float
    p99_ms: float
    max_ms: float


def per_second(sent_offsets: Sequence[float], latencies_ms: Sequence[float]) -> list[Second]:
    """Group events by the second they were sent in (offset from the window start, s).

    Events without a latency (NaN: no output seen) are left out of their second.
    """
    buckets: dict[int, list[float]] = {}
    for offset, latency in zip(sent_offsets, latencies_ms, strict=True):
        if not math.isnan(latency):
            buckets.setdefault(int(offset), []).append(latency)
    out = []
    for second in sorted(buckets):
        values = sorted(buckets[second])
        out.append(
            Second(
                second, len(values), percentile_sorted(values, 50), percentile_sorted(values, 99),
                values[-1],
            )
        )  # fmt: skip
    return out


def spikes(series: Sequence[Second], factor: float = 3.0, floor_ms: float = 20.0) -> list[int]:
    """Seconds whose p99 is over `factor` times the median per-second p99 and over `floor_ms`."""
    typical = median([s.p99_ms for s in series])
    return [s.second for s in series if s.p99_ms > max(factor * typical, floor_ms) and s.events > 0]

"""Pure helpers of the benchmark: percentiles, medians with their spread, per-second series.

No Kafka, no clock: everything here is tested in `tests/unit/test_bench_stats.py`.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field


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


def cannot_sustain(
    *, unconsumed: float, warm: int, measured: int, remaining_s: float, drain_s: float,
    ceiling: float,
) -> bool:  # fmt: skip
    """Whether a latency window's p99 is already certain to be +inf.

    `unconsumed`: the window's events (warm-up included, those still to be sent included) not
    yet consumed. Even consuming at `ceiling` events/s from now until the drain limit, more
    than 1% of the `measured` events would be left unconsumed - assuming every warm-up event
    is among those left (the most favourable case) - and unconsumed events rank after every
    delivered one.
    """
    left = unconsumed - ceiling * (max(remaining_s, 0.0) + drain_s) - warm
    return left > 0.01 * measured


@dataclass
class OverloadWatch:
    """Decides, once a second, that a latency window's process cannot sustain the offered load.

    The window's `planned` events (warm-up included) are offered at a fixed rate for `seconds`
    measured seconds; the process then has `drain` seconds to consume what is left. Its
    consumption rate is bounded by `ceiling`: `margin` times the best of `hint` (its best
    throughput window of the run, on pre-loaded topics with the cores to itself) and the best
    one-second rate it showed in this window. The window is given up once, for `hold`
    consecutive checks and after at least `evidence` measured seconds, the p99 is certain to be
    +inf (`cannot_sustain`) and the backlog (sent - consumed) kept growing.
    """

    planned: int
    warm: int
    seconds: float
    drain: float
    hint: float = 0.0
    margin: float = 1.5
    hold: int = 5
    evidence: float = 10.0
    best: float = 0.0
    held: int = 0
    _last: tuple[float, float] | None = None
    _backlogs: list[float] = field(default_factory=list)

    @property
    def ceiling(self) -> float:
        return self.margin * max(self.hint, self.best)

    def __call__(self, measured: float, sent: int, consumed: float) -> bool:
        if math.isnan(consumed):
            return False
        if self._last is not None and measured > self._last[0]:
            self.best = max(self.best, (consumed - self._last[1]) / (measured - self._last[0]))
        self._last = (measured, consumed)
        self._backlogs.append(sent - consumed)
        certain = self.ceiling > 0 and cannot_sustain(
            unconsumed=self.planned - consumed, warm=self.warm, measured=self.planned - self.warm,
            remaining_s=self.seconds - measured, drain_s=self.drain, ceiling=self.ceiling,
        )  # fmt: skip
        growing = len(self._backlogs) > self.hold and self._backlogs[-1] > max(
            self._backlogs[-self.hold - 1 : -1]
        )
        self.held = self.held + 1 if certain else 0
        return certain and growing and self.held >= self.hold and measured >= self.evidence

"""The benchmark's pure statistics: nearest-rank percentiles, spreads, per-second series."""

from __future__ import annotations

import math
import random

import pytest

from benchmarks.latency import Offered, event_index, read_gc_log, summarise
from benchmarks.stats import (
    OverloadWatch,
    Spread,
    cannot_sustain,
    median,
    per_second,
    percentile,
    spikes,
)


def test_when_values_are_1_to_1000_then_nearest_rank_percentiles_are_the_ranked_values() -> None:
    values = list(range(1000, 0, -1))  # unsorted on purpose
    assert percentile(values, 50) == 500
    assert percentile(values, 99) == 990
    assert percentile(values, 99.9) == 999
    assert percentile(values, 100) == 1000
    assert percentile(values, 0) == 1


@pytest.mark.parametrize("q", [1, 25, 50, 90, 99, 99.9])
def test_when_a_percentile_is_taken_then_at_least_q_percent_are_at_or_below_it(q: float) -> None:
    rng = random.Random(q)
    values = [rng.expovariate(1 / 20) for _ in range(2345)]
    p = percentile(values, q)
    share = sum(v <= p for v in values) / len(values)
    assert share >= q / 100
    assert sum(v < p for v in values) / len(values) < q / 100


def test_when_there_are_no_values_then_percentile_and_median_are_nan() -> None:
    assert math.isnan(percentile([], 99))
    assert math.isnan(median([]))
    assert math.isnan(median([math.nan]))


def test_when_reps_vary_then_the_spread_holds_median_min_and_max_without_nan() -> None:
    s = Spread.of([30.0, 10.0, math.nan, 20.0])
    assert (s.median, s.low, s.high, s.n) == (20.0, 10.0, 30.0, 3)
    assert Spread.of([]).n == 0


def test_when_events_are_grouped_by_send_second_then_each_second_has_its_own_p99() -> None:
    offsets = [0.1 * i for i in range(30)]  # 10 events in each of seconds 0, 1, 2
    lat = [1.0] * 10 + [float(i) for i in range(1, 11)] + [math.nan] * 9 + [5.0]
    series = per_second(offsets, lat)
    assert [s.second for s in series] == [0, 1, 2]
    assert [s.events for s in series] == [10, 10, 1]
    assert series[1].p99_ms == 10.0
    assert series[1].p50_ms == 5.0
    assert series[0].max_ms == 1.0


def test_when_one_second_stands_out_then_it_is_the_only_spike() -> None:
    offsets = [float(i) for i in range(10)]
    lat = [10.0] * 10
    lat[6] = 200.0
    assert spikes(per_second(offsets, lat)) == [6]
    assert spikes(per_second(offsets, [10.0] * 10)) == []


def test_when_an_output_holds_a_bench_event_id_then_its_index_is_read() -> None:
    needle = b'"event_id":"lat-gw-0-'
    assert event_index(b'{"a":1,"event_id":"lat-gw-0-4711","x":"y"}', needle) == 4711
    assert event_index(b'{"event_id":"other-12"}', needle) is None
    assert event_index(b'{"event_id":"lat-gw-0-12x"}', needle) is None
    assert event_index(None, needle) is None


def test_when_the_gc_log_is_read_then_only_collections_inside_the_window_are_kept() -> None:
    text = "100.5 2 12.0 300\n101.0 0 1.5 2\n# gen0 collections under 1 ms: 99\n99.0 2 40.0 1\n"
    pauses = read_gc_log(text, started_wall=100.0, until_wall=101.0)
    assert pauses == [
        {"t": 0.5, "generation": 2.0, "ms": 12.0},
        {"t": 1.0, "generation": 0.0, "ms": 1.5},
    ]


def offered(n: int) -> Offered:
    return Offered(b"p", warm=0, send_wall=[100.0 + i / n for i in range(n)], started_wall=100.0,
                   sent_rate=float(n), load={})  # fmt: skip


def test_when_more_than_1_percent_of_events_never_arrive_then_p99_is_infinite() -> None:
    lat = [10.0] * 97 + [math.nan] * 3
    result = summarise(offered(100), lat, rate=100.0, drain=20.0)
    assert result.measured == 97
    assert result.p50_ms == 10.0
    assert math.isinf(result.p99_ms)


def test_when_every_event_arrives_then_p99_and_p999_are_the_ranked_latencies() -> None:
    lat = [float(i) for i in range(1, 1001)]
    result = summarise(offered(1000), lat, rate=1000.0, drain=0.1)
    assert (result.p50_ms, result.p99_ms, result.p999_ms, result.max_ms) == (500, 990, 999, 1000)
    assert result.series[0]["events"] == 1000.0


def test_when_even_the_ceiling_cannot_drain_the_window_then_its_p99_is_certainly_infinite() -> None:
    # 60 s at 45,000/s; 10 s in, 150,000 consumed; at 24,000/s for 50 + 15 s it consumes 1.56M
    # of the 2.55M left (minus 45,000 warm-up): far more than 1% of 2.7M stays unconsumed.
    args = {"warm": 45_000, "measured": 2_700_000, "remaining_s": 50.0, "drain_s": 15.0}
    assert cannot_sustain(unconsumed=2_595_000, ceiling=24_000, **args)
    assert not cannot_sustain(unconsumed=2_595_000, ceiling=40_000, **args)
    assert not cannot_sustain(unconsumed=0, ceiling=1.0, **args)


def test_when_the_process_falls_behind_then_the_watch_gives_up_only_after_its_evidence() -> None:
    watch = OverloadWatch(planned=2_745_000, warm=45_000, seconds=60, drain=15, hint=16_000)
    decisions = [watch(float(t), 45_000 * (t + 1), 15_000.0 * t) for t in range(1, 20)]
    assert decisions.index(True) == 9  # the 10th second: 10 s of evidence, 5 checks in a row
    assert watch.ceiling == 1.5 * 16_000


def test_when_the_process_keeps_up_then_the_watch_never_gives_up() -> None:
    watch = OverloadWatch(planned=2_745_000, warm=45_000, seconds=60, drain=15, hint=16_000)
    assert not any(watch(float(t), 45_000 * (t + 1), 45_000.0 * t) for t in range(1, 61))
    slow = OverloadWatch(planned=2_745_000, warm=45_000, seconds=60, drain=15)
    assert not any(slow(float(t), 45_000 * (t + 1), math.nan) for t in range(1, 61))


def test_when_a_window_is_stopped_early_then_it_is_not_sustained_with_what_it_measured() -> None:
    o = offered(100)
    o.stopped_after, o.planned = 1.0, 6000
    o.consumed_start, o.consumed_end, o.measured_seconds = 0.0, 40.0, 1.0
    result = summarise(o, [10.0] * 40 + [math.nan] * 60, rate=100.0, drain=0.0, unconsumed=60)
    assert not result.sustained
    assert math.isinf(result.p99_ms) and math.isinf(result.p50_ms)
    assert result.p50_delivered_ms == 10.0
    assert result.consumed_rate == 40.0
    assert (result.planned, result.unconsumed) == (6000, 60)

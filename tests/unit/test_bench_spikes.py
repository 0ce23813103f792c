"""The spike explainer: collections and resources of the seconds whose p99 stood out."""

from __future__ import annotations

from benchmarks.spikes import explain, gc_in_second, tally


def test_when_collections_fall_in_a_second_then_they_are_counted_there_only() -> None:
    pauses = [{"t": 3.2, "generation": 0.0, "ms": 1.5}, {"t": 3.9, "generation": 2.0, "ms": 40.0},
              {"t": 4.0, "generation": 1.0, "ms": 2.0}]  # fmt: skip
    got = gc_in_second(pauses, 3.0)
    assert got == {"count": 2.0, "longest_ms": 40.0, "total_ms": 41.5, "max_generation": 2.0}
    assert gc_in_second(pauses, 5.0)["count"] == 0.0


def test_when_a_spike_second_had_a_long_gc_then_the_tally_attributes_it() -> None:
    window = {
        "series": [{"second": float(s), "p99_ms": 10.0, "foreign_cores": 0.2} for s in range(5)],
        "spikes": [2, 4],
        "gc_pauses": [{"t": 2.5, "generation": 2.0, "ms": 35.0}],
    }
    window["series"][4]["foreign_cores"] = 1.4
    rows = explain(window)
    assert [r["second"] for r in rows] == [2, 4]
    assert tally(rows) == {"spike_seconds": 2, "with_gc_10ms": 1,
                           "with_foreign_cpu_over_1_core": 1,
                           "with_barrier_wait_over_10ms": 0}  # fmt: skip

"""What happened in the seconds of a latency window whose p99 stood out.

    python -m benchmarks.spikes bench-results/e2e-<stamp>.json

For every latency window of a run (the gateway's and the baseline's), prints the window's
typical per-second p99, then each spike second (`stats.spikes`) with what the harness recorded
for it: the worker's garbage collections that second (count, longest, total ms, generations),
the cores used by the worker, the broker and everything else, the load average, and the
gateway's metric deltas (barrier wait, processing time, batches, consent records applied).
Ends with a tally: how many spike seconds had a collection of 10 ms or more, a foreign-CPU
burst (over 1 core), a barrier wait over 10 ms.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import orjson

from benchmarks.stats import median


def gc_in_second(pauses: list[dict[str, float]], second: float) -> dict[str, float]:
    """Collections that started within [second, second + 1) (offsets in seconds)."""
    inside = [p for p in pauses if second <= p["t"] < second + 1]
    return {
        "count": float(len(inside)),
        "longest_ms": max((p["ms"] for p in inside), default=0.0),
        "total_ms": sum(p["ms"] for p in inside),
        "max_generation": max((p["generation"] for p in inside), default=-1.0),
    }


def explain(window: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per spike second: its latency, its collections, its resources and metrics."""
    rows = []
    by_second = {row["second"]: row for row in window.get("series", [])}
    for second in window.get("spikes", []):
        row = by_second.get(float(second), {})
        rows.append({"second": second, **row, **{
            f"gc_{k}": v for k, v in gc_in_second(window.get("gc_pauses", []), second).items()
        }})  # fmt: skip
    return rows


def tally(rows: list[dict[str, Any]]) -> dict[str, int]:
    return {
        "spike_seconds": len(rows),
        "with_gc_10ms": sum(1 for r in rows if r["gc_longest_ms"] >= 10),
        "with_foreign_cpu_over_1_core": sum(1 for r in rows if r.get("foreign_cores", 0) > 1),
        "with_barrier_wait_over_10ms": sum(
            1 for r in rows if r.get("gateway_barrier_wait_seconds_sum", 0) > 0.01
        ),
    }


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    results = orjson.loads(Path(args[0]).read_bytes())
    everything: list[dict[str, Any]] = []
    for who in ("gateway", "baseline"):
        for r, window in enumerate(results["reps"].get(f"{who}_latency", [])):
            typical = median([row["p99_ms"] for row in window.get("series", [])])
            gcs = window.get("gc_pauses", [])
            print(
                f"{who} rep {r}: typical per-second p99 {typical:.1f} ms, spikes at "
                f"{window.get('spikes', [])}, {len(gcs)} notable GCs "
                f"({sum(1 for p in gcs if p['generation'] >= 2)} gen-2)"
            )
            for row in explain(window):
                print(
                    "  s {second}: p99 {p99:.0f} ms max {mx:.0f} ms | GC {n:.0f} (longest "
                    "{gl:.1f} ms, gen {gg:.0f}) | worker {pc} broker {bc} other {fc} cores | "
                    "barrier {bw} s, processing {ps} s over {pn} batches, consent {cr}".format(
                        second=row["second"],
                        p99=row.get("p99_ms", 0),
                        mx=row.get("max_ms", 0),
                        n=row["gc_count"],
                        gl=row["gc_longest_ms"],
                        gg=row["gc_max_generation"],
                        pc=row.get("process_cores", "-"),
                        bc=row.get("broker_cores", "-"),
                        fc=row.get("foreign_cores", "-"),
                        bw=row.get("gateway_barrier_wait_seconds_sum", "-"),
                        ps=row.get("gateway_processing_seconds_sum", "-"),
                        pn=row.get("gateway_processing_seconds_count", "-"),
                        cr=row.get("gateway_consent_records_total", "-"),
                    )
                )
                if who == "gateway":
                    everything.append(row)
    print(f"gateway spike seconds: {tally(everything)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

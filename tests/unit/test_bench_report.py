"""The benchmark's report: figures from repetitions, targets, the projection, the budget."""

from __future__ import annotations

import math
from typing import Any

import orjson

from benchmarks.brokerperf import ceiling, parse_consumer_output
from benchmarks.budget import Plan, comparison, estimate, gateway_stopped
from benchmarks.report import fmt_spread, jsonable, markdown, projection, restore, summarise
from benchmarks.stats import Spread


def window(rate: float, cpu: float, foreign: float = 0.1) -> dict[str, Any]:
    return {"events_per_s": rate, "cpu_us_per_event": cpu, "broker_cores": 0.5,
            "foreign_cores": foreign, "seconds": 20.0, "events": rate * 20}  # fmt: skip


def lat(p99: float) -> dict[str, Any]:
    return {"p50_ms": p99 / 4, "p99_ms": p99, "p999_ms": p99 * 2, "max_ms": p99 * 3,
            "sent_rate": 10_000.0, "load": {"broker_cores": 0.4, "foreign_cores": 0.1,
                                            "loadavg": 1.0}}  # fmt: skip


def results(gateway_rates: list[float], gateway_p99: float = 30.0) -> dict[str, Any]:
    reps = {
        "throughput_batch": [window(40_000, 10), window(42_000, 11), window(38_000, 12)],
        "throughput_per-record": [window(12_000, 45)],
        "throughput_confluent": [window(50_000, 9)],
        "throughput_gateway": [window(r, 18) for r in gateway_rates],
        "broker_ceiling": [
            {"produce": window(90_000, 5), "consume": {"rate": 300_000.0}, "events_per_s": 25_000.0}
        ],
        "baseline_latency": [lat(20.0), lat(24.0), lat(22.0)],
        "gateway_latency": [lat(gateway_p99)] * 3,
        "consent_propagation_ms": [[4.0, 5.0, 6.0]],
    }
    return {"reps": reps, "machine": {"nproc": 2}}


def statuses(summary: dict[str, Any]) -> dict[str, str]:
    return {t["name"]: t["status"] for t in summary["targets"]}


def test_when_the_gateway_keeps_pace_then_throughput_and_cpu_targets_are_met() -> None:
    summary = summarise(results([36_000, 34_000, 35_000]))
    gateway = summary["throughput"]["gateway"]
    assert gateway["events_per_s"] == Spread(35_000, 34_000, 36_000, 3)
    assert math.isclose(gateway["ratio"], 35_000 / 40_000)
    s = statuses(summary)
    assert s["throughput vs batch baseline"] == "met"
    assert s["CPU overhead per event"] == "met"  # 18 - 11 = 7 µs
    assert s["p99 latency at 50% load"] == "not met"  # 30 > 22 + 5
    assert s["peak RSS, 1M consent subjects"] == "n/a"


def test_when_the_gateway_is_below_0_6x_then_the_throughput_target_names_a_defect() -> None:
    summary = summarise(results([20_000, 21_000, 22_000], gateway_p99=25.0))
    target = next(t for t in summary["targets"] if t["name"].startswith("throughput"))
    assert target["status"] == "not met"
    assert "DEFECT" in target["note"]
    assert statuses(summary)["p99 latency at 50% load"] == "met"


def test_when_the_other_load_is_high_then_the_run_is_flagged_noisy() -> None:
    r = results([36_000])
    r["reps"]["throughput_batch"] = [window(40_000, 10, foreign=0.9)] * 3
    r["reps"]["throughput_gateway"] = [window(36_000, 18, foreign=0.9)] * 3
    r["reps"]["throughput_per-record"] = [window(12_000, 45, foreign=0.9)]
    r["reps"]["throughput_confluent"] = [window(50_000, 9, foreign=0.9)]
    summary = summarise(r)
    assert summary["noisy"]
    assert "noisy" in markdown(r, summary)


def test_when_a_figure_has_reps_then_it_prints_as_median_with_min_max() -> None:
    assert fmt_spread(Spread(35_000, 34_000, 36_000, 3)) == "35,000 (34,000-36,000)"
    assert fmt_spread(Spread(7.25, 7.25, 7.25, 1), 1) == "7.2"
    assert fmt_spread(Spread.of([])) == "-"


def test_when_projecting_then_workers_round_up_and_cores_follow_cpu_per_event() -> None:
    rows = projection(cpu_us_per_event=40.0, worker_events_per_s=20_000.0,
                      broker_us_per_event=5.0)  # fmt: skip
    first, _, last = rows
    assert first["events_per_s_per_core"] == 25_000.0
    assert first["cores"] == 4.0
    assert first["workers"] == 5
    assert first["broker_cores"] == 0.5
    assert last["workers"] == 500


def test_when_produce_and_consume_rates_are_known_then_the_ceiling_time_shares_them() -> None:
    assert math.isclose(ceiling(90_000, 300_000), 1 / (3 / 90_000 + 1 / 300_000))
    assert ceiling(90_000, 300_000) < 90_000 / 3
    assert ceiling(0, 300_000) == 0.0


def test_when_consumer_perf_prints_its_csv_then_the_fetch_rate_is_parsed() -> None:
    text = (
        "SLF4J: noise\n"
        "start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, "
        "rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec\n"
        "2026-11-29 13:15:41:837, 2026-11-29 13:15:48:747, 257.4, 37.2, 465822, 67412.7, 1550, "
        "5360, 48.0, 86907.0\n"
    )
    parsed = parse_consumer_output(text)
    assert parsed.records == 465822
    assert math.isclose(parsed.fetch_seconds, 5.36)
    assert math.isclose(parsed.rate, 465822 / 5.36)


def test_when_windows_get_longer_then_the_budget_grows_by_every_window() -> None:
    plan = Plan(reps=3, window_seconds=20, yardsticks=4, broker_ceiling=True,
                preload_events=1_500_000, latency_seconds=60, latency_reps=3, probes=20,
                scaling_events=150_000, memory_subjects=0)  # fmt: skip
    longer = Plan(**{**plan.__dict__, "window_seconds": 30})
    base, more = estimate(plan), estimate(longer)
    assert math.isclose(more["throughput"] - base["throughput"], 3 * 5 * 10, abs_tol=0.2)
    assert base["memory"] == 0.0
    assert math.isclose(base["total"], sum(v for k, v in base.items() if k != "total"), abs_tol=0.5)


def test_when_the_gateway_cannot_sustain_the_load_then_the_p99_target_is_not_met() -> None:
    r = results([36_000])
    r["reps"]["gateway_latency"] = [lat(math.inf)] * 3
    r["reps"]["baseline_latency"] = [lat(math.inf)] * 3
    target = next(t for t in summarise(r)["targets"] if t["name"].startswith("p99"))
    assert target["status"] == "not met"
    assert "could not sustain" in target["note"]


def test_when_a_run_is_written_and_read_back_then_infinite_latencies_survive() -> None:
    r = results([36_000])
    r["reps"]["gateway_latency"] = [lat(math.inf)] * 3
    back = restore(orjson.loads(orjson.dumps(jsonable(r))))
    assert math.isinf(back["reps"]["gateway_latency"][0]["p99_ms"])
    assert back["reps"]["baseline_latency"][0]["p99_ms"] == 20.0


def test_when_the_gateway_is_a_third_of_the_offered_rate_then_the_budget_stops_it() -> None:
    plan = Plan(reps=3, window_seconds=20, yardsticks=4, broker_ceiling=True,
                preload_events=2_400_000, latency_seconds=60, latency_reps=3, probes=20,
                scaling_events=50_000, memory_subjects=0, own_reps=1)  # fmt: skip
    assert gateway_stopped(plan)
    fast = Plan(**{**plan.__dict__, "gateway_rate": 60_000.0})
    assert not gateway_stopped(fast)
    assert estimate(fast)["latency_own"] == 0.0  # no supplementary window when it keeps up
    assert estimate(plan)["latency"] < estimate(fast)["latency"]
    rows = comparison(estimate(plan), {"load": 10.0, "latency": 300.0, "other": 2.0})
    assert rows[-1][0] == "total" and rows[-1][2] == "312"


def test_when_a_gateway_window_was_stopped_early_then_the_report_says_not_sustained() -> None:
    r = results([15_000])
    stopped = lat(math.inf) | {"sustained": False, "stopped_after": 10.2, "consumed_rate": 14_900.0,
                               "unconsumed": 300_000, "p50_delivered_ms": 4_000.0}  # fmt: skip
    r["reps"]["gateway_latency"] = [stopped] * 3
    r["reps"]["gateway_own_latency"] = [lat(40.0)]
    r["offered_rate"], r["own_offered_rate"] = 45_000.0, 7_500.0
    r["settings"] = {"latency_seconds": 60.0}
    text = markdown(r, summarise(r))
    assert "| gateway - not sustained | inf (inf-inf) |" in text
    assert "supplementary" in text
    assert "not sustained in 3 of 3 windows at 45,000 events/s" in text
    assert "stopped after 10 (10-10) s of 60" in text

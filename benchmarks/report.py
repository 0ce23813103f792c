"""The benchmark's figures, targets, projection and tables, from the run's raw repetitions.

Pure: `results` (the JSON the run writes) in, numbers and rows of text out. Tested in
`tests/unit/test_bench_report.py`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from benchmarks.stats import Spread, median, percentile

# The throughput yardsticks, in table order: (key in results["reps"], label).
VARIANTS = (
    ("batch", "aiokafka batch API passthrough (baseline)"),
    ("per-record", "aiokafka per-record send passthrough"),
    ("confluent", "confluent-kafka (librdkafka) passthrough"),
    ("gateway", "gateway (1 worker)"),
)
BASELINE = "batch"
NOISY_CORES = 0.25  # foreign CPU (cores, median of windows) above which a run is flagged noisy


LATENCY_KEYS = ("p50_ms", "p99_ms", "p999_ms", "max_ms")


def jsonable(value: Any) -> Any:
    """`value` with every infinite float as the string "inf" (JSON has no infinity; orjson would
    write null, which reads back as "no value")."""
    if isinstance(value, float) and math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def restore(results: dict[str, Any]) -> dict[str, Any]:
    """A run's JSON as `run` made it: "inf" back to infinity; in the latency windows of runs
    written before `jsonable`, a null percentile was infinity (undelivered events) too."""
    for key, windows in results.get("reps", {}).items():
        if key.endswith("_latency"):
            for w in windows:
                for k in LATENCY_KEYS:
                    if w.get(k) is None or w.get(k) == "inf":
                        w[k] = math.inf
    return results


def spread(reps: Sequence[dict[str, Any]], key: str) -> Spread:
    return Spread.of([float(r[key]) for r in reps])


def fmt(value: float | None, digits: int = 0, unit: str = "") -> str:
    if value is None or math.isnan(value):
        return "-"
    if math.isinf(value):
        return "inf"
    return f"{value:,.{digits}f}{unit}"


def fmt_spread(s: Spread, digits: int = 0) -> str:
    """`median (min-max)`, or the value alone for one repetition."""
    if s.n == 0:
        return "-"
    if s.n == 1:
        return fmt(s.median, digits)
    return f"{fmt(s.median, digits)} ({fmt(s.low, digits)}-{fmt(s.high, digits)})"


def throughput_figures(reps: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Per variant: events/s, CPU µs/event, broker and foreign cores as Spreads, ratio to batch."""
    out: dict[str, dict[str, Any]] = {}
    base = spread(reps.get(f"throughput_{BASELINE}", []), "events_per_s").median
    for key, label in VARIANTS:
        windows = reps.get(f"throughput_{key}", [])
        rate = spread(windows, "events_per_s")
        out[key] = {
            "label": label, "events_per_s": rate,
            "broker_us_per_event": Spread.of([w["broker_cores"] / w["events_per_s"] * 1e6
                                              for w in windows if w["events_per_s"]]),
            "cpu_us_per_event": spread(windows, "cpu_us_per_event"),
            "broker_cores": spread(windows, "broker_cores"),
            "foreign_cores": spread(windows, "foreign_cores"),
            "seconds": spread(windows, "seconds"), "events": spread(windows, "events"),
            "ratio": rate.median / base if base and not math.isnan(base) else math.nan,
            "exhausted": sum(1 for w in windows if w.get("exhausted")),
        }  # fmt: skip
    broker = reps.get("broker_ceiling", [])
    out["broker"] = {
        "label": "broker ceiling (Kafka perf tools)",
        "events_per_s": spread(broker, "events_per_s"),
        "produce_records_per_s": spread([b["produce"] for b in broker], "events_per_s"),
        "consume_records_per_s": spread([b["consume"] for b in broker], "rate"),
        "broker_cores": spread([b["produce"] for b in broker], "broker_cores"),
        "foreign_cores": spread([b["produce"] for b in broker], "foreign_cores"),
        "ratio": spread(broker, "events_per_s").median / base if base else math.nan,
    }  # fmt: skip
    return out


# The latency windows, in table order: (key in results["reps"] without "_latency", label).
LATENCY_WINDOWS = (
    ("gateway", "gateway"),
    ("baseline", "aiokafka batch baseline"),
    ("gateway_own", "gateway at 50% of its own max (supplementary)"),
)


def latency_figures(reps: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for who, _ in LATENCY_WINDOWS:
        windows = reps.get(f"{who}_latency", [])
        out[who] = {
            k: spread(windows, k) for k in ("p50_ms", "p99_ms", "p999_ms", "max_ms", "sent_rate")
        }
        out[who]["broker_cores"] = Spread.of([w["load"].get("broker_cores", math.nan)
                                              for w in windows])  # fmt: skip
        out[who]["foreign_cores"] = Spread.of([w["load"].get("foreign_cores", math.nan)
                                               for w in windows])  # fmt: skip
        out[who]["loadavg"] = Spread.of([w["load"].get("loadavg", math.nan) for w in windows])
        out[who]["consumed_rate"] = Spread.of([w.get("consumed_rate", math.nan) for w in windows])
        out[who]["p50_delivered_ms"] = Spread.of(
            [w.get("p50_delivered_ms", math.nan) for w in windows]
        )
        out[who]["stopped_after"] = Spread.of(
            [w["stopped_after"] for w in windows if w.get("stopped_after")]
        )
        out[who]["unconsumed"] = Spread.of([w.get("unconsumed", math.nan) for w in windows])
        # (windows that did not keep up, windows)
        out[who]["not_sustained"] = (
            sum(1 for w in windows if not w.get("sustained", math.isfinite(w["p99_ms"]))),
            len(windows),
        )
    return out


def sustain_notes(summary: dict[str, Any], results: dict[str, Any]) -> list[str]:
    """A sentence per kind of latency window that did not keep up with its offered load."""
    notes = []
    for who, label in LATENCY_WINDOWS:
        f = summary["latency"].get(who)
        failed, windows = f["not_sustained"] if f else (0, 0)
        if not failed:
            continue
        rate = results.get("own_offered_rate" if who == "gateway_own" else "offered_rate")
        note = (
            f"{label}: not sustained in {failed} of {windows} windows at "
            f"{fmt(rate)} events/s offered: it consumed {fmt_spread(f['consumed_rate'])} "
            f"events/s"
        )
        if f["stopped_after"].n:
            note += (
                f"; the load was stopped after {fmt_spread(f['stopped_after'])} s of "
                f"{fmt((results.get('settings') or {}).get('latency_seconds'))} once a finite "
                f"p99 was impossible (the events not yet consumed exceeded what it could consume "
                f"by the end of the drain limit at 1.5x its best rate)"
            )
        note += (
            f"; events sent but never consumed: {fmt_spread(f['unconsumed'])}; p50 of the "
            f"events it did deliver: {fmt_spread(f['p50_delivered_ms'], 1)} ms (a lower bound: "
            f"the undelivered ones are later)"
        )
        notes.append(note)
    return notes


def projection(
    cpu_us_per_event: float, worker_events_per_s: float, broker_us_per_event: float,
    goals: Sequence[float] = (100_000, 1_000_000, 10_000_000),
) -> list[dict[str, float]]:  # fmt: skip
    """Paper projection per goal rate (events/s): gateway cores and workers, broker cores.

    A worker is one Python process (one core at most); its CPU per event sets the events/s per
    core, its measured single-worker rate the events/s per worker (rounded up). Broker cores:
    the broker's CPU per event of the gateway's traffic (its reads and writes) times the goal.
    Linear, so a lower bound: no replication (the local broker has one replica), no
    coordination, no headroom.
    """
    per_core = 1e6 / cpu_us_per_event if cpu_us_per_event > 0 else math.nan
    rows = []
    for goal in goals:
        rows.append(
            {
                "goal_events_per_s": goal, "events_per_s_per_core": per_core,
                "cores": goal / per_core if per_core else math.nan,
                "workers": math.ceil(goal / worker_events_per_s) if worker_events_per_s > 0
                else math.nan,
                "broker_cores": goal * broker_us_per_event / 1e6,
            }
        )  # fmt: skip
    return rows


def target(name: str, value: float, goal: str, met: bool | None, note: str = "") -> dict[str, Any]:
    status = "n/a" if met is None or math.isnan(value) else ("met" if met else "not met")
    return {"name": name, "value": value, "target": goal, "status": status, "note": note}


def targets(
    tp: dict[str, dict[str, Any]], lat: dict[str, dict[str, Spread]],
    propagation_p99_ms: float, peak_rss_mb: float, rss_subjects: int, noisy: bool,
) -> list[dict[str, Any]]:  # fmt: skip
    """The issue's targets against the batch-API baseline, each met / not met / n/a."""
    ratio = tp["gateway"]["ratio"]
    overhead = tp["gateway"]["cpu_us_per_event"].median - tp[BASELINE]["cpu_us_per_event"].median
    p99 = lat["gateway"]["p99_ms"].median
    base_p99 = lat["baseline"]["p99_ms"].median
    rss_ok = peak_rss_mb <= 400 if rss_subjects >= 1_000_000 else None
    noise = "noisy machine" if noisy else ""
    return [
        target("throughput vs batch baseline", ratio, ">= 0.8x (< 0.6x is a defect)",
               ratio >= 0.8, "DEFECT (< 0.6x)" if ratio < 0.6 else noise),
        target("CPU overhead per event", overhead, "<= 10 µs above the batch baseline",
               overhead <= 10, noise),
        target("p99 latency at 50% load", p99, f"<= baseline p99 + 5 ms ({fmt(base_p99 + 5, 1)})",
               p99 <= base_p99 + 5 and not math.isinf(p99),
               "the gateway could not sustain the load" if math.isinf(p99) else noise),
        target("consent propagation p99", propagation_p99_ms, "<= 100 ms",
               propagation_p99_ms <= 100),
        target("peak RSS, 1M consent subjects", peak_rss_mb, "<= 400 MB", rss_ok,
               "" if rss_ok is not None else "memory phase not run (--memory)"),
    ]  # fmt: skip


def foreign_cores(reps: dict[str, list[dict[str, Any]]]) -> float:
    """Median CPU (cores) used by everything else on the machine over every measured window."""
    values = [w["foreign_cores"] for key, _ in VARIANTS for w in reps.get(f"throughput_{key}", [])]
    values += [b["produce"]["foreign_cores"] for b in reps.get("broker_ceiling", [])]
    values += [
        w["load"].get("foreign_cores", math.nan)
        for who in ("gateway", "baseline") for w in reps.get(f"{who}_latency", [])
    ]  # fmt: skip
    return median(values)


def summarise(results: dict[str, Any]) -> dict[str, Any]:
    """Every figure the tables print, from the raw repetitions (JSON-ready except Spreads)."""
    reps = results["reps"]
    tp = throughput_figures(reps)
    lat = latency_figures(reps)
    probes = reps.get("consent_propagation_ms", [])
    sources = reps.get("consent_propagation_window", [])
    probed = {k for k, p in zip(sources, probes, strict=False) if p}
    prop = {f"p{q}": median([percentile(p, q) for p in probes]) for q in (50, 99)}
    mem = (reps.get("memory") or [{}])[0]
    live = {
        f"{n}_worker": spread(reps.get(f"gateway_live_{n}_worker", []), "events_per_s")
        for n in (1, 2)
    }
    other = foreign_cores(reps)
    noisy = other > NOISY_CORES
    return {
        "throughput": tp, "latency": lat, "consent_propagation_ms": prop,
        "consent_propagation_after": sorted(probed),
        "live": live, "two_workers_scaling": live["2_worker"].median / live["1_worker"].median
        if live["1_worker"].median else math.nan,
        "peak_rss_mb": mem.get("vmhwm_mb", math.nan), "rss_subjects": mem.get("subjects", 0),
        "foreign_cores": other, "noisy": noisy,
        "targets": targets(tp, lat, prop["p99"], mem.get("vmhwm_mb", math.nan),
                           mem.get("subjects", 0), noisy),
        "projection": projection(tp["gateway"]["cpu_us_per_event"].median,
                                 tp["gateway"]["events_per_s"].median,
                                 tp["gateway"]["broker_us_per_event"].median),
    }  # fmt: skip


def throughput_rows(summary: dict[str, Any]) -> list[list[str]]:
    rows = []
    for key, _ in (*VARIANTS, ("broker", "")):
        f = summary["throughput"][key]
        cpu = f.get("cpu_us_per_event")
        broker_us = f.get("broker_us_per_event")
        window = f.get("events")
        rows.append(
            [f["label"], fmt_spread(f["events_per_s"]), fmt(f["ratio"], 2, "x"),
             fmt_spread(window) if window is not None else "-",
             fmt_spread(cpu, 1) if cpu is not None else "-", fmt_spread(f["broker_cores"], 2),
             fmt_spread(broker_us, 1) if broker_us is not None else "-",
             fmt_spread(f["foreign_cores"], 2)]
        )  # fmt: skip
    broker = summary["throughput"]["broker"]
    rows.append(
        ["  of which: producer-perf records/s (acks=all)",
         fmt_spread(broker["produce_records_per_s"]), "", "", "", "", "", ""]
    )  # fmt: skip
    rows.append(
        ["  of which: consumer-perf records/s", fmt_spread(broker["consume_records_per_s"]),
         "", "", "", "", "", ""]
    )  # fmt: skip
    return rows


THROUGHPUT_HEADER = ["yardstick", "events/s", "vs batch", "events/window", "CPU µs/event",
                     "broker cores",
                     "broker µs/event", "other load cores"]  # fmt: skip
PROJECTION_HEADER = ["goal events/s", "gateway events/s per core", "gateway cores",
                     "gateway workers", "broker cores"]  # fmt: skip
LATENCY_HEADER = ["at 50% of batch max", "p50 ms", "p99 ms", "p99.9 ms", "max ms", "sent/s",
                  "broker cores", "other load cores", "loadavg"]  # fmt: skip


def latency_rows(summary: dict[str, Any]) -> list[list[str]]:
    rows = []
    for who, name in LATENCY_WINDOWS:
        f = summary["latency"].get(who)
        if f is None or (who == "gateway_own" and not f["p99_ms"].n):
            continue
        label = name + (" - not sustained" if f["not_sustained"][0] else "")
        rows.append(
            [label, fmt_spread(f["p50_ms"], 1), fmt_spread(f["p99_ms"], 1),
             fmt_spread(f["p999_ms"], 1), fmt_spread(f["max_ms"], 0),
             fmt_spread(f["sent_rate"]), fmt_spread(f["broker_cores"], 2),
             fmt_spread(f["foreign_cores"], 2), fmt_spread(f["loadavg"], 2)]
        )  # fmt: skip
    return rows


def other_rows(summary: dict[str, Any]) -> list[list[str]]:
    prop = summary["consent_propagation_ms"]
    live = summary["live"]
    after = summary.get("consent_propagation_after", [])
    where = " (after the supplementary windows)" if after == ["gateway_own_latency"] else ""
    return [
        [f"consent propagation p50 / p99 (ms){where}", f"{fmt(prop['p50'])} / {fmt(prop['p99'])}"],
        ["1 worker, events produced live (events/s)", fmt_spread(live["1_worker"])],
        ["2 workers, same partitions (events/s)",
         f"{fmt_spread(live['2_worker'])} = {fmt(summary['two_workers_scaling'], 2)}x of 1 worker"],
        [f"peak RSS with {fmt(summary['rss_subjects'])} consent subjects (MB)",
         fmt(summary["peak_rss_mb"])],
    ]  # fmt: skip


def target_rows(summary: dict[str, Any]) -> list[list[str]]:
    return [
        [t["name"], fmt(t["value"], 2 if "vs" in t["name"] else 1), t["target"],
         t["status"] + (f" ({t['note']})" if t["note"] else "")]
        for t in summary["targets"]
    ]  # fmt: skip


def projection_rows(summary: dict[str, Any]) -> list[list[str]]:
    return [
        [fmt(p["goal_events_per_s"]), fmt(p["events_per_s_per_core"]), fmt(p["cores"], 1),
         fmt(p["workers"]), fmt(p["broker_cores"], 1)]
        for p in summary["projection"]
    ]  # fmt: skip


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    align = ["---"] + ["---:"] * (len(header) - 1)
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def noise_note(other: float, nproc: int) -> str:
    note = (
        f"Other load on the machine during the measured windows (median): {max(other, 0):.2f} of "
        f"{nproc} cores"
    )
    if other > NOISY_CORES:
        note += " - the machine was busy; these figures are noisy, compare with a quiet run"
    return note


def markdown(results: dict[str, Any], summary: dict[str, Any]) -> str:
    """The whole report as Markdown: throughput, latency, other figures, targets, projection."""
    parts = [
        markdown_table(THROUGHPUT_HEADER, throughput_rows(summary)),
        markdown_table(LATENCY_HEADER, latency_rows(summary)),
        *sustain_notes(summary, results),
        markdown_table(["figure", "value"], other_rows(summary)),
        markdown_table(["target", "value", "goal", "status"], target_rows(summary)),
        markdown_table(PROJECTION_HEADER, projection_rows(summary)),
        noise_note(summary["foreign_cores"], results["machine"]["nproc"]) + ".",
    ]
    return "\n\n".join(parts) + "\n"

"""End-to-end benchmark: the gateway against a plain aiokafka passthrough on the same broker.

    python -m benchmarks.e2e [--quick] [--events N] [--reps N] [--skip PHASE ...]

Phases (each figure is the median of --reps repetitions unless noted):

1. load: 100,000 subjects' consent records and --events synthetic events (both raw topics) into
   topics unique to this run, before anything is timed;
2. throughput: the passthrough and the gateway, alternately, each from offset 0 with a fresh
   group/app id and fresh output topics: events/s and CPU µs/event over the processing window;
3. two workers: two `gateway run` processes with one app id on the same pre-loaded topics;
4. latency: events offered at 50% of the baseline's median throughput, occurred_at = send time;
   latency = broker append time of the event's outputs - send time; then consent propagation
   probes on the same gateway worker;
5. memory: a worker whose consent table holds --rss-subjects subjects: VmHWM (one run).

Prints a table and writes bench-results/e2e-<timestamp>.json (and .md, the table as Markdown).
See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import platform
import secrets
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

from benchmarks import phases, workload
from benchmarks.phases import Bench, RawTopics, median
from benchmarks.procs import BenchError, Window
from devtools import local_broker
from devtools.processes import ChildError

REPO = Path(__file__).resolve().parents[1]
PHASES = ("throughput", "two-workers", "latency", "memory")
console = Console(stderr=True, highlight=False)


@dataclass(frozen=True)
class Settings:
    events: int
    subjects: int
    reps: int
    partitions: int
    latency_seconds: float
    load_fraction: float
    probes: int
    rss_subjects: int
    min_rate: float
    skip: tuple[str, ...]
    quick: bool


def parse_args(argv: list[str] | None = None) -> tuple[Settings, argparse.Namespace]:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.e2e", description="Gateway vs passthrough, end to end."
    )
    parser.add_argument("--quick", action="store_true", help="a short smoke run (smaller counts)")
    parser.add_argument("--events", type=int, help="events per throughput repetition (60000)")
    parser.add_argument("--subjects", type=int, default=100_000, help="subjects of the workload")
    parser.add_argument("--reps", type=int, help="repetitions per figure (3)")
    parser.add_argument("--partitions", type=int, default=6, help="partitions of every topic")
    parser.add_argument("--latency-seconds", type=float, help="offered-load duration (6; quick 3)")
    parser.add_argument("--load-fraction", type=float, default=0.5, help="of baseline max (0.5)")
    parser.add_argument("--probes", type=int, help="consent probes per repetition (20; quick 10)")
    parser.add_argument("--rss-subjects", type=int, help="consent table size (1000000)")
    parser.add_argument(
        "--min-rate", type=float, default=300.0,
        help="events/s below which a phase counts as stuck; scales every time budget (300)",
    )  # fmt: skip
    parser.add_argument("--skip", nargs="+", choices=PHASES, default=[], help="phases to leave out")
    parser.add_argument("--bootstrap", help="broker (default: KAFKA_BOOTSTRAP or the local broker)")
    parser.add_argument("--out", type=Path, default=REPO / "bench-results")
    parser.add_argument("--keep", action="store_true", help="keep topics and worker logs")
    args = parser.parse_args(argv)
    quick = bool(args.quick)
    settings = Settings(
        events=args.events or (20_000 if quick else 60_000),
        subjects=args.subjects,
        reps=args.reps or 3,
        partitions=args.partitions,
        latency_seconds=args.latency_seconds or (3.0 if quick else 6.0),
        load_fraction=args.load_fraction,
        probes=args.probes if args.probes is not None else (10 if quick else 20),
        rss_subjects=args.rss_subjects or (200_000 if quick else 1_000_000),
        min_rate=args.min_rate,
        skip=tuple(args.skip),
        quick=quick,
    )
    return settings, args


def bootstrap_address(explicit: str | None) -> tuple[str, int | None]:
    """The broker to use, and the pid of the local broker when that is the one."""
    address = explicit or os.environ.get("KAFKA_BOOTSTRAP")
    if not address:
        state = local_broker.up(log=False)[0]  # starts the local broker, or reuses it
        return state.bootstrap, state.pid
    known = local_broker.read_state()
    local = known is not None and known.bootstrap == address and Path(f"/proc/{known.pid}").exists()
    return address, known.pid if local and known is not None else None


def machine() -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in cpuinfo.splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "unknown",
    )
    meminfo = Path("/proc/meminfo").read_text() if Path("/proc/meminfo").exists() else ""
    mem_kib = next(
        (int(line.split()[1]) for line in meminfo.splitlines() if line.startswith("MemTotal")), 0
    )

    def git(*argv: str) -> str:
        result = subprocess.run(
            ["git", *argv], cwd=REPO, capture_output=True, text=True, check=False
        )
        return result.stdout

    dirty = [line[3:] for line in git("status", "--porcelain").splitlines() if line]
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_model": model,
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "kafka": local_broker.KAFKA_VERSION,
        "git_commit": git("rev-parse", "--short", "HEAD").strip(),
        "git_modified": [p for p in dirty if not p.startswith(("benchmarks/", "docs/benchmarks"))],
    }


def say(line: str) -> None:
    console.print(line)


async def load(bench: Bench, s: Settings) -> tuple[RawTopics, list[workload.Template], int]:
    started = time.monotonic()
    templates = workload.make_templates(s.events, s.subjects)
    raw = await bench.raw_topics("", bench.topic("consent.state"))
    await workload.create_topics(
        bench.bootstrap, [raw.consent], s.partitions, compacted=True, log_append=True
    )
    stamp = workload.rfc3339_ms(int(time.time() * 1000))
    consents, secs_c = await workload.produce_all(
        bench.bootstrap,
        ((raw.consent, k, v) for k, v in workload.consent_records(s.subjects, stamp)),
    )
    stamp_b = stamp.encode()
    events, secs_e = await workload.produce_all(
        bench.bootstrap,
        ((raw.of(t.kind), t.key, t.fill(stamp_b, b"ev-%d" % i)) for i, t in enumerate(templates)),
    )
    size = sum(len(t.fill(stamp_b, b"ev-%d" % i)) for i, t in enumerate(templates)) / len(templates)
    say(
        f"[bold]load[/]: {consents} consent records ({s.subjects} subjects) in {secs_c:.1f}s, "
        f"{events} events (mean {size:.0f} B) in {secs_e:.1f}s; "
        f"total {time.monotonic() - started:.1f}s"
    )
    return raw, templates, consents


def window_dict(w: Window) -> dict[str, Any]:
    return {
        "events": w.events, "seconds": round(w.seconds, 3), "cpu_seconds": round(w.cpu_seconds, 3),
        "events_per_s": round(w.rate, 1), "cpu_us_per_event": round(w.cpu_us_per_event, 2),
        "per_process": list(w.per_process), "broker_cores": round(w.broker_cores, 2),
        "foreign_cores": round(w.foreign_cores, 2),
    }  # fmt: skip


def window_line(who: str, rep: int, w: Window) -> str:
    return (
        f"  {who:<10} rep {rep}: {w.rate:8.0f} ev/s  {w.cpu_us_per_event:6.1f} µs/ev  "
        f"(broker {w.broker_cores:.2f} cores, other load {w.foreign_cores:.2f} cores)"
    )


def latency_line(who: str, rep: int, lat: phases.LatencyResult) -> str:
    return (
        f"  {who:<10} rep {rep}: p50 {lat.p50_ms:7.1f} ms  p99 {lat.p99_ms:7.1f} ms  "
        f"({lat.measured}/{lat.events} events, sent at {lat.sent_rate:.0f}/s, drained "
        f"{lat.drain_seconds:.1f}s after the last send; other load "
        f"{lat.load['foreign_cores']:.2f} cores)"
    )


async def run(
    s: Settings, args: argparse.Namespace, bootstrap: str, broker_pid: int | None
) -> dict[str, Any]:
    started_wall = time.time()
    started = time.monotonic()
    run_id = time.strftime("%Y%m%d%H%M%S", time.gmtime(started_wall)) + secrets.token_hex(2)
    workdir = args.out / f"work-{run_id}"
    workdir.mkdir(parents=True, exist_ok=True)
    bench = Bench(
        bootstrap, run_id, workdir, s.partitions, s.min_rate, broker_pid=broker_pid, log=say
    )
    say(f"[bold]e2e benchmark[/] run {run_id} on {bootstrap}: {s}")
    results: dict[str, Any] = {
        "run_id": run_id, "started_at": workload.rfc3339_ms(int(started_wall * 1000)),
        "settings": asdict(s), "passthrough_args": phases.passthrough_tuning(),
        "machine": machine(), "bootstrap": bootstrap, "reps": {},
        "phase_seconds": {},
    }  # fmt: skip
    reps: dict[str, list[Any]] = results["reps"]
    ok = False
    try:
        raw, templates, consents = await load(bench, s)
        results["phase_seconds"]["load"] = round(time.monotonic() - started, 1)
        total = s.events

        mark = time.monotonic()
        if "throughput" not in s.skip or "latency" not in s.skip:
            for r in range(s.reps):
                base = await phases.baseline_throughput(bench, raw, total, f"pt{r}")
                reps.setdefault("baseline_throughput", []).append(window_dict(base))
                say(window_line("baseline", r, base))
                if "throughput" in s.skip:
                    continue
                gw = await phases.gateway_throughput(bench, raw, total, consents, f"gw{r}")
                reps.setdefault("gateway_throughput", []).append(window_dict(gw))
                say(window_line("gateway", r, gw))
        results["phase_seconds"]["throughput"] = round(time.monotonic() - mark, 1)

        mark = time.monotonic()
        if "two-workers" not in s.skip:
            say("[bold]two workers[/] (events produced once the workers hold their partitions)")
            for r in range(s.reps):
                for n in (1, 2):
                    w = await phases.gateway_live_throughput(
                        bench, raw.consent, consents, templates, f"gw{n}w{r}", workers=n
                    )
                    reps.setdefault(f"gateway_live_{n}_worker", []).append(window_dict(w))
                    split = "/".join(f"{c:.0f}" for c in w.per_process)
                    say(window_line(f"{n} worker" + "s" * (n > 1), r, w) + f"  split {split}")
        results["phase_seconds"]["two_workers"] = round(time.monotonic() - mark, 1)

        mark = time.monotonic()
        if "latency" not in s.skip:
            base_rate = median([w["events_per_s"] for w in reps["baseline_throughput"]])
            rate = s.load_fraction * base_rate
            results["offered_rate"] = round(rate, 1)
            say(f"[bold]latency[/] at {rate:.0f} ev/s ({s.load_fraction:.0%} of the baseline)")
            for r in range(s.reps):
                bl = await phases.baseline_latency(
                    bench, raw.consent, templates, rate, s.latency_seconds, f"lb{r}"
                )
                reps.setdefault("baseline_latency", []).append(asdict(bl))
                say(latency_line("baseline", r, bl))
                gl, probes = await phases.gateway_latency(
                    bench, raw.consent, consents, templates, rate, s.latency_seconds, f"lg{r}",
                    s.probes,
                )  # fmt: skip
                reps.setdefault("gateway_latency", []).append(asdict(gl))
                reps.setdefault("consent_propagation_ms", []).append(probes)
                say(
                    latency_line("gateway", r, gl)
                    + f"; consent p50 {phases.percentile(probes, 50):.0f} ms "
                    f"p99 {phases.percentile(probes, 99):.0f} ms"
                )
        results["phase_seconds"]["latency"] = round(time.monotonic() - mark, 1)

        mark = time.monotonic()
        if "memory" not in s.skip:
            mem = await phases.consent_memory(bench, s.rss_subjects, "rss")
            reps["memory"] = [asdict(mem)]
            say(
                f"  memory: {mem.subjects} subjects, VmHWM {mem.vmhwm_mb:.0f} MB, "
                f"VmRSS {mem.vmrss_mb:.0f} MB (applied in {mem.apply_seconds:.0f}s)"
            )
        results["phase_seconds"]["memory"] = round(time.monotonic() - mark, 1)
        ok = True
    finally:
        bench.stop_all()
        results["duration_s"] = round(time.monotonic() - started, 1)
        if not args.keep:
            try:
                deleted = await workload.delete_topics_containing(bootstrap, f"bench-{run_id}")
                say(f"deleted {deleted} topics of run {run_id}")
            except Exception as exc:  # cleanup is best effort
                say(f"could not delete the run's topics: {exc!r}")
            if ok:
                shutil.rmtree(workdir, ignore_errors=True)
        if not ok:
            say(f"worker logs kept in {workdir}")
    results["figures"], results["targets"] = figures(results, s)
    return results


def _med(reps: dict[str, list[Any]], phase: str, key: str) -> float:
    return median([r[key] for r in reps.get(phase, [])])


def figures(results: dict[str, Any], s: Settings) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    reps = results["reps"]
    f: dict[str, Any] = {
        "gateway_events_per_s": _med(reps, "gateway_throughput", "events_per_s"),
        "baseline_events_per_s": _med(reps, "baseline_throughput", "events_per_s"),
        "gateway_cpu_us_per_event": _med(reps, "gateway_throughput", "cpu_us_per_event"),
        "baseline_cpu_us_per_event": _med(reps, "baseline_throughput", "cpu_us_per_event"),
        "live_one_worker_events_per_s": _med(reps, "gateway_live_1_worker", "events_per_s"),
        "two_workers_events_per_s": _med(reps, "gateway_live_2_worker", "events_per_s"),
        "two_workers_cpu_us_per_event": _med(reps, "gateway_live_2_worker", "cpu_us_per_event"),
        "gateway_latency_p50_ms": _med(reps, "gateway_latency", "p50_ms"),
        "gateway_latency_p99_ms": _med(reps, "gateway_latency", "p99_ms"),
        "baseline_latency_p50_ms": _med(reps, "baseline_latency", "p50_ms"),
        "baseline_latency_p99_ms": _med(reps, "baseline_latency", "p99_ms"),
        "consent_propagation_p50_ms": median(
            [phases.percentile(p, 50) for p in reps.get("consent_propagation_ms", [])]
        ),
        "consent_propagation_p99_ms": median(
            [phases.percentile(p, 99) for p in reps.get("consent_propagation_ms", [])]
        ),
        "offered_rate": results.get("offered_rate", float("nan")),
    }
    f["throughput_ratio"] = f["gateway_events_per_s"] / f["baseline_events_per_s"]
    f["cpu_overhead_us_per_event"] = f["gateway_cpu_us_per_event"] - f["baseline_cpu_us_per_event"]
    f["two_workers_scaling"] = f["two_workers_events_per_s"] / f["live_one_worker_events_per_s"]
    foreign = [
        w["foreign_cores"]
        for phase in ("baseline_throughput", "gateway_throughput", "gateway_live_1_worker",
                      "gateway_live_2_worker")
        for w in reps.get(phase, [])
    ] + [r["load"]["foreign_cores"] for p in ("baseline_latency", "gateway_latency")
         for r in reps.get(p, [])]  # fmt: skip
    f["other_load_cores"] = median(foreign)
    mem = (reps.get("memory") or [{}])[0]
    f["consent_subjects"] = mem.get("subjects", 0)
    f["peak_rss_mb"] = mem.get("vmhwm_mb", float("nan"))

    def target(
        name: str, value: float, goal: str, met: bool | None, note: str = ""
    ) -> dict[str, Any]:
        status = "n/a" if met is None or math.isnan(value) else ("met" if met else "not met")
        return {"name": name, "value": value, "target": goal, "status": status, "note": note}

    ratio = f["throughput_ratio"]
    rss_ok = f["peak_rss_mb"] <= 400 if f["consent_subjects"] >= 1_000_000 else None
    targets = [
        target(
            "throughput vs baseline", ratio, ">= 0.6x (< 0.4x is a defect)", ratio >= 0.6,
            "DEFECT (< 0.4x)" if ratio < 0.4 else "",
        ),
        target("CPU overhead per event", f["cpu_overhead_us_per_event"], "<= 10 µs above baseline",
               f["cpu_overhead_us_per_event"] <= 10),
        target("p99 latency at 50% load", f["gateway_latency_p99_ms"],
               f"<= baseline p99 + 5 ms ({fmt(f['baseline_latency_p99_ms'] + 5, 1)} ms)",
               f["gateway_latency_p99_ms"] <= f["baseline_latency_p99_ms"] + 5),
        target("consent propagation p99", f["consent_propagation_p99_ms"], "<= 100 ms",
               f["consent_propagation_p99_ms"] <= 100),
        target("peak RSS, 1M consent subjects", f["peak_rss_mb"], "<= 400 MB", rss_ok,
               "" if rss_ok is not None else f"measured with {f['consent_subjects']} subjects"),
    ]  # fmt: skip
    return f, targets


def fmt(value: float, digits: int = 0, unit: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if math.isinf(value):
        return "inf"
    return f"{value:,.{digits}f}{unit}"


def rows(results: dict[str, Any]) -> tuple[list[list[str]], list[list[str]]]:
    f = results["figures"]
    figure_rows = [
        ["throughput (events/s)", fmt(f["gateway_events_per_s"]), fmt(f["baseline_events_per_s"]),
         fmt(f["throughput_ratio"], 2, "x")],
        ["CPU per event (µs)", fmt(f["gateway_cpu_us_per_event"], 1),
         fmt(f["baseline_cpu_us_per_event"], 1), "+" + fmt(f["cpu_overhead_us_per_event"], 1)],
        [f"latency p50 @ {fmt(f['offered_rate'])} ev/s (ms)", fmt(f["gateway_latency_p50_ms"], 1),
         fmt(f["baseline_latency_p50_ms"], 1), ""],
        [f"latency p99 @ {fmt(f['offered_rate'])} ev/s (ms)", fmt(f["gateway_latency_p99_ms"], 1),
         fmt(f["baseline_latency_p99_ms"], 1), ""],
        ["consent propagation p50 (ms)", fmt(f["consent_propagation_p50_ms"]), "", ""],
        ["consent propagation p99 (ms)", fmt(f["consent_propagation_p99_ms"]), "", ""],
        [f"peak RSS, {fmt(f['consent_subjects'])} consent subjects (MB)", fmt(f["peak_rss_mb"]),
         "", ""],
        ["1 worker, events produced live (events/s)", fmt(f["live_one_worker_events_per_s"]),
         "", ""],
        ["2 workers, events produced live (events/s)", fmt(f["two_workers_events_per_s"]), "",
         fmt(f["two_workers_scaling"], 2, "x of 1 worker")],
        ["2 workers: CPU per event (µs)", fmt(f["two_workers_cpu_us_per_event"], 1), "", ""],
    ]  # fmt: skip
    target_rows = [
        [t["name"], fmt(t["value"], 2 if "vs" in t["name"] else 1), t["target"],
         t["status"] + (f" - {t['note']}" if t["note"] else "")]
        for t in results["targets"]
    ]  # fmt: skip
    return figure_rows, target_rows


def print_tables(results: dict[str, Any]) -> None:
    figure_rows, target_rows = rows(results)
    out = Console(highlight=False)
    table = Table(title=f"e2e benchmark {results['run_id']} ({results['duration_s']:.0f}s)")
    for column in ("figure (median of reps)", "gateway", "baseline", "ratio / delta"):
        table.add_column(column, justify="left" if column.startswith("figure") else "right")
    for row in figure_rows:
        table.add_row(*row)
    out.print(table)
    targets = Table(title="targets")
    for column in ("target", "value", "goal", "status"):
        targets.add_column(column)
    colours = {"met": "green", "not met": "red", "n/a": "yellow"}
    for row, t in zip(target_rows, results["targets"], strict=True):
        targets.add_row(*row[:3], f"[{colours[t['status']]}]{row[3]}[/]")
    out.print(targets)
    other = results["figures"]["other_load_cores"]
    out.print(noise_note(other, results["machine"]["nproc"]))


def noise_note(other: float, nproc: int) -> str:
    note = (
        f"Other load on the machine during the measured windows (median): {max(other, 0):.2f} of "
        f"{nproc} cores"
    )
    if other > 0.25:
        note += " - the machine was busy; these figures are noisy, compare with a quiet run"
    return note


def markdown(results: dict[str, Any]) -> str:
    figure_rows, target_rows = rows(results)
    lines = [
        "| figure (median of reps) | gateway | baseline | ratio / delta |",
        "| --- | ---: | ---: | ---: |",
    ]
    lines += ["| " + " | ".join(r) + " |" for r in figure_rows]
    lines += ["", "| target | value | goal | status |", "| --- | ---: | --- | --- |"]
    lines += ["| " + " | ".join(r) + " |" for r in target_rows]
    other = results["figures"]["other_load_cores"]
    lines += ["", noise_note(other, results["machine"]["nproc"]) + "."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    settings, args = parse_args(argv)
    try:
        bootstrap, broker_pid = bootstrap_address(args.bootstrap)  # runs its own event loop
        results = asyncio.run(run(settings, args, bootstrap, broker_pid))
    except (BenchError, ChildError) as exc:
        console.print(f"[red]benchmark failed:[/] {exc}")
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    path = args.out / f"e2e-{stamp}.json"
    path.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))
    (args.out / f"e2e-{stamp}.md").write_text(markdown(results))
    print_tables(results)
    say(f"wrote {path} (and .md); total {results['duration_s']:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""End-to-end benchmark: the gateway against honest yardsticks on the same broker, same records.

    python -m benchmarks.e2e [--quick] [--reps N] [--window-seconds S] [--skip PHASE ...]

Phases (each figure is the median of --reps repetitions, with its min-max, unless noted):

1. load: 100,000 subjects' consent records and --events synthetic events (both raw topics, from
   a pool of --pool distinct events) into topics unique to this run, before anything is timed;
2. throughput, interleaved (batch, per-record, confluent, gateway, broker; then again): the
   aiokafka batch-API passthrough (the baseline), the aiokafka per-record passthrough, the
   confluent-kafka passthrough and the gateway, each from offset 0 of the pre-loaded topics
   with a fresh group and output topics, in a time-boxed window (--window-seconds and at least
   --window-events); the broker's ceiling with Kafka's ProducerPerformance/ConsumerPerformance;
3. two workers: one and two `gateway run` processes with one app id on the same partitions;
4. latency: events offered at 50% of the batch baseline's median throughput for
   --latency-seconds (plus 1 s of warm-up), the baseline and the gateway alternately; per-second
   series; then consent propagation probes on the same gateway worker;
5. memory (only with --memory): a worker whose consent table holds --rss-subjects subjects.

Prints the tables, writes bench-results/e2e-<stamp>.json, .md and the charts (.png).
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

from benchmarks import brokerperf, budget, charts, fixedload, latency, phases, report, workload
from benchmarks.phases import Bench, RawTopics
from benchmarks.procs import BenchError, Window
from benchmarks.stats import median, percentile
from devtools import local_broker
from devtools.processes import ChildError

REPO = Path(__file__).resolve().parents[1]
PHASES = ("throughput", "broker", "two-workers", "latency")
YARDSTICKS = ("batch", "per-record", "confluent", "gateway")
console = Console(stderr=True, highlight=False)


@dataclass(frozen=True)
class Settings:
    events: int  # pre-loaded raw events every throughput window reads from offset 0
    pool: int  # distinct synthetic events they cycle through
    subjects: int
    reps: int
    partitions: int
    window_seconds: float
    window_events: int
    latency_seconds: float
    load_fraction: float
    rate: float | None
    latency_baseline: str
    probes: int
    own_reps: int  # supplementary gateway windows at load_fraction of its own max rate
    stop_early: bool  # stop a gateway latency window once it certainly cannot sustain the load
    scaling_events: int
    memory: bool
    rss_subjects: int
    min_rate: float
    skip: tuple[str, ...]
    quick: bool

    def plan(self, **rates: float) -> budget.Plan:
        """The budget's plan; `rates`: baseline_rate / gateway_rate once measured."""
        return budget.Plan(
            reps=self.reps if "throughput" not in self.skip else 0,
            window_seconds=self.window_seconds, yardsticks=len(YARDSTICKS),
            broker_ceiling="broker" not in self.skip, preload_events=self.events,
            latency_seconds=self.latency_seconds,
            latency_reps=0 if "latency" in self.skip else self.reps, probes=self.probes,
            scaling_events=0 if "two-workers" in self.skip else self.scaling_events,
            memory_subjects=self.rss_subjects if self.memory else 0,
            own_reps=self.own_reps, load_fraction=self.load_fraction,
            offered_rate=self.rate or 0.0, stop_early=self.stop_early, **rates,
        )  # fmt: skip


def parse_args(argv: list[str] | None = None) -> tuple[Settings, argparse.Namespace]:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.e2e", description="The gateway against honest yardsticks."
    )
    add = parser.add_argument
    add("--quick", action="store_true", help="a smoke run of a few minutes (smaller counts)")
    add("--events", type=int, help="pre-loaded events (2,400,000; quick 150,000)")
    add("--pool", type=int, default=100_000, help="distinct synthetic events (100,000)")
    add("--subjects", type=int, default=100_000, help="subjects of the workload")
    add("--reps", type=int, help="interleaved repetitions per figure (3; quick 1)")
    add("--partitions", type=int, default=6, help="partitions of every topic")
    add("--window-seconds", type=float, help="throughput time box (20; quick 4)")
    add("--window-events", type=int, help="least events per window (200,000; quick 20,000)")
    add("--latency-seconds", type=float, help="latency window (60; quick 8)")
    add("--load-fraction", type=float, default=0.5, help="of the batch baseline's max (0.5)")
    add(
        "--rate",
        type=float,
        help="offered rate of the latency phase (default: from --load-fraction)",
    )
    add(
        "--latency-baseline",
        choices=YARDSTICKS[:3],
        default="batch",
        help="the passthrough of the baseline's latency windows (batch)",
    )
    add("--probes", type=int, help="consent probes per repetition (20; quick 10)")
    add(
        "--own-load-reps",
        type=int,
        default=1,
        help="supplementary gateway latency windows at --load-fraction of the gateway's own "
        "median throughput, run when it cannot sustain the main load (1; 0: none)",
    )
    add(
        "--full-windows",
        action="store_true",
        help="never stop a gateway latency window early (it runs its whole window and drain)",
    )
    add("--scaling-events", type=int, help="events of the two-worker phase (50,000; quick 40,000)")
    add("--memory", action="store_true", help="also the memory phase (consent table size)")
    add("--rss-subjects", type=int, help="consent table size of --memory (1,000,000)")
    add("--min-rate", type=float, default=300.0, help="events/s below which a phase is stuck")
    add("--skip", nargs="+", choices=PHASES, default=[], help="phases to leave out")
    add("--bootstrap", help="broker (default: KAFKA_BOOTSTRAP or the local broker)")
    add("--out", type=Path, default=REPO / "bench-results")
    add("--keep", action="store_true", help="keep the worker logs")
    add("--report", type=Path, help="only re-render the tables and charts of a run's JSON")
    args = parser.parse_args(argv)
    q = bool(args.quick)
    settings = Settings(
        events=args.events or (150_000 if q else 2_400_000), pool=args.pool,
        subjects=args.subjects, reps=args.reps or (1 if q else 3), partitions=args.partitions,
        window_seconds=args.window_seconds or (4.0 if q else 20.0),
        window_events=args.window_events or (20_000 if q else 200_000),
        latency_seconds=args.latency_seconds or (8.0 if q else 60.0),
        load_fraction=args.load_fraction, rate=args.rate, latency_baseline=args.latency_baseline,
        probes=args.probes if args.probes is not None else (10 if q else 20),
        own_reps=max(0, args.own_load_reps), stop_early=not args.full_windows,
        scaling_events=args.scaling_events or (40_000 if q else 50_000),
        memory=bool(args.memory), rss_subjects=args.rss_subjects or 1_000_000,
        min_rate=args.min_rate, skip=tuple(args.skip), quick=q,
    )  # fmt: skip
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


async def load(bench: Bench, s: Settings) -> tuple[RawTopics, list[workload.Template], int, Path]:
    """Consent records and the pre-loaded events; the payload file of the perf tools."""
    started = time.monotonic()
    templates = workload.make_templates(min(s.pool, s.events), s.subjects)
    raw = await bench.raw_topics("", bench.topic("consent.state"))
    await workload.create_topics(
        bench.bootstrap, [raw.consent], s.partitions, compacted=True, log_append=True
    )
    stamp = workload.rfc3339_ms(int(time.time() * 1000))
    consents, secs_c = await latency.produce_fast(
        bench.bootstrap,
        ((raw.consent, k, v) for k, v in workload.consent_records(s.subjects, stamp)),
    )
    stamp_b = stamp.encode()
    pool = len(templates)
    events, secs_e = await latency.produce_fast(
        bench.bootstrap,
        (
            (raw.of(t.kind), t.key, t.fill(stamp_b, b"ev-%d" % i))
            for i, t in ((i, templates[i % pool]) for i in range(s.events))
        ),
    )
    payloads = bench.workdir / "payloads.txt"
    brokerperf.write_payloads(payloads, templates, stamp_b)
    size = sum(len(t.fill(stamp_b, b"ev-%d" % i)) for i, t in enumerate(templates)) / pool
    say(
        f"[bold]load[/]: {consents} consent records ({s.subjects} subjects) in {secs_c:.1f}s, "
        f"{events} events ({pool} distinct, mean {size:.0f} B) in {secs_e:.1f}s; "
        f"total {time.monotonic() - started:.1f}s"
    )
    bench.preloaded = events
    return raw, templates, consents, payloads


def window_dict(w: Window) -> dict[str, Any]:
    return {
        "events": w.events, "seconds": round(w.seconds, 3), "cpu_seconds": round(w.cpu_seconds, 3),
        "events_per_s": round(w.rate, 1), "cpu_us_per_event": round(w.cpu_us_per_event, 2),
        "per_process": list(w.per_process), "broker_cores": round(w.broker_cores, 2),
        "foreign_cores": round(w.foreign_cores, 2), "loadavg": w.loadavg,
        "exhausted": w.exhausted,
    }  # fmt: skip


def window_line(who: str, rep: int, w: Window) -> str:
    short = " [yellow](input ran out: shorter window)[/]" if w.exhausted else ""
    return (
        f"  {who:<11} rep {rep}: {w.rate:8.0f} ev/s  {w.cpu_us_per_event:6.1f} µs/ev  "
        f"{w.events:9.0f} ev in {w.seconds:4.1f}s (broker {w.broker_cores:.2f} cores, other "
        f"{w.foreign_cores:.2f}, loadavg {w.loadavg:.2f}){short}"
    )


def latency_line(who: str, rep: int, lat: latency.LatencyResult) -> str:
    line = (
        f"  {who:<10} rep {rep}: p50 {lat.p50_ms:6.1f}  p99 {lat.p99_ms:7.1f}  p99.9 "
        f"{lat.p999_ms:7.1f}  max {lat.max_ms:6.0f} ms ({lat.measured}/{lat.events} events, sent "
        f"{lat.sent_rate:.0f}/s, drained {lat.drain_seconds:.1f}s after; broker "
        f"{lat.load.get('broker_cores', 0):.2f} cores, other "
        f"{lat.load.get('foreign_cores', 0):.2f}, loadavg {lat.load.get('loadavg', 0):.2f}; "
        f"spikes at s {lat.spikes[:8]})"
    )
    if not lat.sustained:
        stopped = f"load stopped after {lat.stopped_after:.0f}s, " if lat.stopped_after else ""
        line += (
            f" [yellow]NOT SUSTAINED[/]: {stopped}consumed {lat.consumed_rate:,.0f} ev/s, "
            f"{lat.unconsumed:,} events never consumed, p50 of the delivered "
            f"{lat.p50_delivered_ms:.0f} ms"
        )
    return line


async def throughput_phase(
    bench: Bench, s: Settings, raw: RawTopics, consents: int, payloads: Path,
    reps: dict[str, list[Any]],
) -> None:  # fmt: skip
    """Interleaved: every yardstick once per repetition, in the same order each time."""
    for r in range(s.reps):
        if "throughput" not in s.skip:
            for kind in YARDSTICKS:
                label = f"tp-{kind}-{r}"
                if kind == "gateway":
                    w = await phases.gateway_throughput(bench, raw, consents, label)
                else:
                    w = await phases.baseline_throughput(bench, raw, label, kind)
                reps.setdefault(f"throughput_{kind}", []).append(window_dict(w))
                say(window_line(kind, r, w))
        if "broker" not in s.skip:
            c = await phases.broker_ceiling(bench, payloads, f"tp-broker-{r}")
            reps.setdefault("broker_ceiling", []).append(
                {"produce": window_dict(c.produce), "consume": asdict(c.consume),
                 "events_per_s": round(c.events_per_s, 1)}
            )  # fmt: skip
            say(
                f"  {'broker':<11} rep {r}: {c.events_per_s:8.0f} ev/s ceiling (producer-perf "
                f"{c.produce.rate:,.0f} rec/s acks=all over {c.produce.seconds:.1f}s, "
                f"consumer-perf {c.consume.rate:,.0f} rec/s over {c.consume.fetch_seconds:.1f}s; "
                f"broker {c.produce.broker_cores:.2f} cores, other {c.produce.foreign_cores:.2f})"
            )


async def latency_phase(
    bench: Bench, s: Settings, raw: RawTopics, consents: int,
    templates: list[workload.Template], reps: dict[str, list[Any]], results: dict[str, Any],
) -> None:  # fmt: skip
    base_rate = median([w["events_per_s"] for w in reps.get("throughput_batch", [])])
    if s.rate is None and base_rate != base_rate:  # NaN: no throughput phase in this run
        raise BenchError("the latency phase needs the throughput phase, or --rate")
    rate = s.rate or s.load_fraction * base_rate
    results["offered_rate"] = round(rate, 1)
    share = f"{s.load_fraction:.0%} of the batch baseline" if s.rate is None else "--rate"
    say(f"[bold]latency[/] at {rate:.0f} ev/s ({share})")
    gateway_rates = [w["events_per_s"] for w in reps.get("throughput_gateway", [])]
    if gateway_rates and base_rate == base_rate:
        plan = s.plan(baseline_rate=base_rate, gateway_rate=median(gateway_rates))
        again = budget.estimate(plan)
        results["expected_seconds_at_latency"] = again
        say(
            f"  expected with this run's rates: latency {again['latency']:.0f}s, supplementary "
            f"{again['latency_own']:.0f}s (gateway windows expected to be stopped early: "
            f"{budget.gateway_stopped(plan)})"
        )
    hint = max(gateway_rates, default=0.0)  # the gateway's best: bounds what it can consume
    pending: list[asyncio.Task[latency.LatencyResult]] = []

    async def quiet() -> None:
        for task in pending:
            await task

    # (key in reps, printed name, repetition, result, consent probes)
    windows: list[tuple[str, str, int, asyncio.Task[latency.LatencyResult], list[float]]] = []
    kept_pace = True
    for r in range(s.reps):
        started = time.monotonic()
        bl = await fixedload.baseline_latency(
            bench, raw.consent, templates, rate, s.latency_seconds, f"lat-base-{r}", quiet,
            s.latency_baseline,
        )  # fmt: skip
        pending.append(bl)
        windows.append(("baseline_latency", "baseline", r, bl, []))
        say(f"  baseline   rep {r}: window done ({time.monotonic() - started:.0f}s)")
        started = time.monotonic()
        gl, probes, kept = await fixedload.gateway_latency(
            bench, raw.consent, consents, templates, rate, s.latency_seconds, f"lat-gw-{r}",
            s.probes, quiet, ceiling_hint=hint, stop_early=s.stop_early,
        )  # fmt: skip
        kept_pace = kept_pace and kept
        pending.append(gl)
        windows.append(("gateway_latency", "gateway", r, gl, probes))
        say(f"  gateway    rep {r}: window done ({time.monotonic() - started:.0f}s)")
    own_started = time.monotonic()
    own = s.load_fraction * median(gateway_rates) if gateway_rates else math.nan
    if s.own_reps and not kept_pace and own == own:
        results["own_offered_rate"] = round(own, 1)
        say(
            f"[bold]latency, supplementary[/] at {own:.0f} ev/s ({s.load_fraction:.0%} of the "
            f"gateway's own median throughput; the gateway did not keep up with the main load)"
        )
        for r in range(s.own_reps):
            started = time.monotonic()
            gl, probes, _ = await fixedload.gateway_latency(
                bench, raw.consent, consents, templates, own, s.latency_seconds,
                f"lat-own-{r}", s.probes, quiet, ceiling_hint=hint, stop_early=s.stop_early,
            )  # fmt: skip
            pending.append(gl)
            windows.append(("gateway_own_latency", "gateway@own", r, gl, probes))
            say(f"  gateway@own rep {r}: window done ({time.monotonic() - started:.0f}s)")
        for task in pending:  # its read-backs are its own time
            await task
        results["phase_seconds"]["latency_own"] = round(time.monotonic() - own_started, 1)
    elif s.own_reps and not kept_pace:
        say("  no supplementary window: the gateway's own throughput was not measured in this run")
    for key, who, r, task, probes in windows:
        result = await task
        reps.setdefault(key, []).append(asdict(result))
        line = latency_line(who, r, result)
        if who != "baseline":
            reps.setdefault("consent_propagation_ms", []).append(probes)
            reps.setdefault("consent_propagation_window", []).append(key)
            gen2 = [p for p in result.gc_pauses if p["generation"] >= 2]
            line += (
                f"; {len(gen2)} gen-2 GCs (max {max((p['ms'] for p in gen2), default=0):.0f} ms)"
                f"; consent p50 {percentile(probes, 50):.0f} ms p99 "
                f"{percentile(probes, 99):.0f} ms"
            )
        say(line)


async def run(
    s: Settings, args: argparse.Namespace, bootstrap: str, broker_pid: int | None
) -> dict[str, Any]:
    started_wall = time.time()
    started = time.monotonic()
    run_id = time.strftime("%Y%m%d%H%M%S", time.gmtime(started_wall)) + secrets.token_hex(2)
    workdir = args.out / f"work-{run_id}"
    workdir.mkdir(parents=True, exist_ok=True)
    bench = Bench(
        bootstrap, run_id, workdir, s.partitions, s.min_rate, broker_pid=broker_pid, log=say,
        window_seconds=s.window_seconds, window_events=s.window_events,
    )  # fmt: skip
    expected = budget.estimate(s.plan())
    say(f"[bold]e2e benchmark[/] run {run_id} on {bootstrap}: {s}")
    say(f"expected seconds per phase: {expected}")
    results: dict[str, Any] = {
        "run_id": run_id, "started_at": workload.rfc3339_ms(int(started_wall * 1000)),
        "settings": asdict(s), "passthrough_args": phases.passthrough_tuning(),
        "machine": machine(), "bootstrap": bootstrap, "reps": {}, "phase_seconds": {},
        "expected_seconds": expected,
    }  # fmt: skip
    reps: dict[str, list[Any]] = results["reps"]
    ok = False
    try:
        raw, templates, consents, payloads = await load(bench, s)
        results["phase_seconds"]["load"] = round(time.monotonic() - started, 1)

        mark = time.monotonic()
        say("[bold]throughput[/] (interleaved repetitions, time-boxed windows)")
        await throughput_phase(bench, s, raw, consents, payloads, reps)
        results["phase_seconds"]["throughput"] = round(time.monotonic() - mark, 1)

        mark = time.monotonic()
        if "two-workers" not in s.skip:
            say("[bold]two workers[/] (events produced once the workers hold their partitions)")
            for n in (1, 2):
                w = await phases.gateway_live_throughput(
                    bench, raw.consent, consents, templates, s.scaling_events, f"scale-{n}w",
                    workers=n,
                )  # fmt: skip
                reps.setdefault(f"gateway_live_{n}_worker", []).append(window_dict(w))
                split = "/".join(f"{c:.0f}" for c in w.per_process)
                say(window_line(f"{n} worker" + "s" * (n > 1), 0, w) + f"  split {split}")
        results["phase_seconds"]["two_workers"] = round(time.monotonic() - mark, 1)

        mark = time.monotonic()
        if "latency" not in s.skip:
            await latency_phase(bench, s, raw, consents, templates, reps, results)
        own_seconds = results["phase_seconds"].setdefault("latency_own", 0.0)
        results["phase_seconds"]["latency"] = round(time.monotonic() - mark - own_seconds, 1)

        mark = time.monotonic()
        if s.memory:
            mem = await fixedload.consent_memory(bench, s.rss_subjects, "rss")
            reps["memory"] = [asdict(mem)]
            say(
                f"  memory: {mem.subjects} subjects, VmHWM {mem.vmhwm_mb:.0f} MB, "
                f"VmRSS {mem.vmrss_mb:.0f} MB (applied in {mem.apply_seconds:.0f}s)"
            )
        results["phase_seconds"]["memory"] = round(time.monotonic() - mark, 1)
        ok = True
    finally:
        bench.stop_all()
        await bench.cleaned()
        try:
            deleted = await workload.delete_topics_containing(bootstrap, f"bench-{run_id}")
            say(f"deleted {deleted} topics of run {run_id}")
        except Exception as exc:  # cleanup is best effort
            say(f"could not delete the run's topics: {exc!r}")
        if ok and not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        if not ok or args.keep:
            say(f"worker logs kept in {workdir}")
        results["duration_s"] = round(time.monotonic() - started, 1)
    return results


def print_tables(results: dict[str, Any], summary: dict[str, Any]) -> None:
    out = Console(highlight=False, width=max(Console().width, 180))

    def show(title: str, header: list[str], rows: list[list[str]]) -> None:
        table = Table(title=title)
        for i, column in enumerate(header):
            table.add_column(column, justify="left" if i == 0 else "right")
        for row in rows:
            table.add_row(*row)
        out.print(table)

    secs = results["duration_s"]
    show(f"throughput, run {results['run_id']} ({secs:.0f} s in all): median (min-max) of "
         f"{results['settings']['reps']} interleaved repetitions", report.THROUGHPUT_HEADER,
         report.throughput_rows(summary))  # fmt: skip
    show(f"latency at {report.fmt(results.get('offered_rate'))} events/s, "
         f"{results['settings']['latency_seconds']:.0f} s windows", report.LATENCY_HEADER,
         report.latency_rows(summary))  # fmt: skip
    for note in report.sustain_notes(summary, results):
        out.print(note)
    show("other figures", ["figure", "value"], report.other_rows(summary))
    show("targets (against the aiokafka batch-API baseline)",
         ["target", "value", "goal", "status"], report.target_rows(summary))  # fmt: skip
    show("paper projection (gateway workers; brokers like the local one)",
         report.PROJECTION_HEADER,
         report.projection_rows(summary))  # fmt: skip
    out.print(report.noise_note(summary["foreign_cores"], results["machine"]["nproc"]))
    show("budget: seconds per phase", ["phase", "expected", "measured", "measured - expected"],
         budget.comparison(results["expected_seconds"], measured_seconds(results)))  # fmt: skip


def measured_seconds(results: dict[str, Any]) -> dict[str, float]:
    """The phases' seconds, and what the run spent outside them (start, clean-up)."""
    phases = {k: float(v) for k, v in results["phase_seconds"].items()}
    return phases | {"other": round(results["duration_s"] - sum(phases.values()), 1)}


def render(results: dict[str, Any], out: Path, stamp: str) -> dict[str, Any]:
    """The summary, the Markdown tables and the charts of a run, next to its JSON."""
    summary = report.summarise(results)
    (out / f"e2e-{stamp}.md").write_text(report.markdown(results, summary))
    title = f"run {results['run_id']}, machine load {summary['foreign_cores']:.2f} other cores"
    charts.throughput_chart(summary, out / f"e2e-{stamp}-throughput.png", title)
    charts.latency_chart(results["reps"], out / f"e2e-{stamp}-latency.png", title)
    return summary


def main(argv: list[str] | None = None) -> int:
    settings, args = parse_args(argv)
    if args.report is not None:
        results = report.restore(orjson.loads(args.report.read_bytes()))
        stamp = args.report.stem.removeprefix("e2e-")
        print_tables(results, render(results, args.report.parent, stamp))
        return 0
    try:
        bootstrap, broker_pid = bootstrap_address(args.bootstrap)  # runs its own event loop
        results = asyncio.run(run(settings, args, bootstrap, broker_pid))
    except (BenchError, ChildError) as exc:
        console.print(f"[red]benchmark failed:[/] {exc}")
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    path = args.out / f"e2e-{stamp}.json"
    results["summary"] = report.summarise(results)
    path.write_bytes(orjson.dumps(report.jsonable(results), option=orjson.OPT_INDENT_2))
    print_tables(results, render(results, args.out, stamp))
    say(
        f"wrote {path} (and .md, -throughput.png, -latency.png); total {results['duration_s']:.0f}s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

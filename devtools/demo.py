"""`gateway demo` (what `make run` runs): broker, gateway, load generator and a live view.

It starts (or reuses) the local Kafka broker, a gateway worker with ephemeral demo keys, and the
load generator, then shows what goes where. The view reads the worker's own /metrics endpoint,
so it shows exactly the counters Prometheus scrapes. It fits one terminal screen (40 rows): per
sink the forward and drop counts and rates and the top drop reasons; `--detail` lists every
reason instead. Ctrl-C stops everything it started.
"""

from __future__ import annotations

import os
import signal
import sys
import time
import urllib.request
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from devtools import local_broker
from devtools.processes import Child


@dataclass
class Sample:
    at: float
    values: dict[str, dict[tuple[tuple[str, str], ...], float]] = field(default_factory=dict)

    def total(self, name: str, **match: str) -> float:
        return sum(
            v for labels, v in self.values.get(name, {}).items()
            if all(dict(labels).get(k) == want for k, want in match.items())
        )  # fmt: skip


def parse_sample(text: str, at: float) -> Sample:
    """A Prometheus text exposition as a `Sample` taken at `at` (seconds since the epoch)."""
    sample = Sample(at)
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            sample.values.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return sample


def scrape(url: str) -> Sample:
    with urllib.request.urlopen(url, timeout=3) as response:  # noqa: S310 - loopback only
        text = response.read().decode()
    return parse_sample(text, time.time())


TOP_REASONS = 3  # drop reasons shown per sink in the compact view


def _decisions(sample: Sample | None) -> dict[tuple[str, str, str], float]:
    """Decision counts by (sink, verdict, reason)."""
    rows: dict[tuple[str, str, str], float] = defaultdict(float)
    for labels, value in (
        sample.values.get("gateway_decisions_total", {}) if sample else {}
    ).items():
        key = dict(labels)
        rows[(key["sink"], key["verdict"], key["reason"])] += value
    return rows


def render(
    now: Sample, before: Sample | None, loadgen_line: str, logs: Path, *, detail: bool = False
) -> Group:
    """The live view: a head line, one row per sink (or, with `detail`, per sink and reason)."""
    span = (now.at - before.at) if before else 1.0
    consumed = now.total("gateway_events_consumed_total")
    rate = (consumed - before.total("gateway_events_consumed_total")) / span if before else 0.0
    head = Text.assemble(
        ("privacy gateway demo", "bold"), f"  {consumed:,.0f} events decided, {rate:,.0f}/s   ",
        f"consent table: {now.total('gateway_consent_subjects'):,.0f} subjects   ",
        f"invalid -> DLQ: {now.total('gateway_dlq_writes_total'):,.0f}   ",
        f"audit records: {now.total('gateway_audit_writes_total'):,.0f}",
    )  # fmt: skip
    counts, previous = _decisions(now), _decisions(before)
    per_second = {k: (v - previous.get(k, v)) / span if before else 0.0 for k, v in counts.items()}
    table = _detail_table(counts, per_second) if detail else _sink_table(counts, per_second)
    latency = Text(
        f"batches: {now.total('gateway_batch_size_count'):,.0f}   "
        f"barrier waits: {now.total('gateway_barrier_wait_seconds_sum'):.3f}s total   "
        f"consent applied/stale/tombstone: "
        f"{now.total('gateway_consent_records_total', outcome='applied'):,.0f}/"
        f"{now.total('gateway_consent_records_total', outcome='stale'):,.0f}/"
        f"{now.total('gateway_consent_records_total', outcome='tombstone'):,.0f}"
    )
    more = "" if detail else "   `gateway demo --detail`: every reason"
    tail = Text(
        f"loadgen: {loadgen_line}\nlogs: {logs}   Ctrl-C stops everything{more}", style="dim"
    )
    return Group(head, table, latency, tail)


def _sink_table(
    counts: dict[tuple[str, str, str], float], per_second: dict[tuple[str, str, str], float]
) -> Table:
    """One row per sink: forwards and drops (totals and rates), the top drop reasons."""
    table = Table(title="decisions per sink", expand=True)
    for column in ("sink", "forwarded", "per s", "dropped", "per s", "top drop reasons"):
        table.add_column(column, justify="left" if "sink" in column or "top" in column else "right")
    for sink in sorted({sink for sink, _, _ in counts}):

        def summed(verdict: str, of: dict[tuple[str, str, str], float], sink: str = sink) -> float:
            return sum(v for (s, w, _), v in of.items() if s == sink and w == verdict)

        dropped = summed("drop", counts)
        reasons = sorted(
            ((v, r) for (s, w, r), v in counts.items() if s == sink and w == "drop" and v > 0),
            reverse=True,
        )
        shown = ", ".join(f"{r} {v / dropped:.0%}" for v, r in reasons[:TOP_REASONS])
        if len(reasons) > TOP_REASONS:
            shown += f", +{len(reasons) - TOP_REASONS} more"
        table.add_row(
            sink,
            Text(f"{summed('forward', counts):,.0f}", style="green"),
            f"{summed('forward', per_second):,.0f}",
            Text(f"{dropped:,.0f}", style="yellow"),
            f"{summed('drop', per_second):,.0f}",
            shown,
        )
    return table


def _detail_table(
    counts: dict[tuple[str, str, str], float], per_second: dict[tuple[str, str, str], float]
) -> Table:
    """One row per sink, verdict and reason seen so far (taller than a screen with many sinks)."""
    table = Table(title="decisions per sink (forward / drop by reason)", expand=True)
    for column in ("sink", "verdict", "reason", "total", "per s"):
        table.add_column(column, justify="right" if column in ("total", "per s") else "left")
    for (sink, verdict, reason), value in sorted(counts.items()):
        if value == 0:
            continue
        style = "green" if verdict == "forward" else "yellow"
        rate = per_second[(sink, verdict, reason)]
        table.add_row(sink, Text(verdict, style=style), reason, f"{value:,.0f}", f"{rate:,.0f}")
    return table


def _last_line(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return lines[-1].removeprefix("loadgen: ") if lines else ""


def run_demo(*, rate: float, subjects: int, duration: float | None, detail: bool = False) -> int:
    console = Console(stderr=True)
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP")
    started_broker = False
    if not bootstrap:
        console.print("starting the local Kafka broker (the first run downloads it with Maven)...")
        state, reused = local_broker.up()
        bootstrap, started_broker = state.bootstrap, not reused
    logs = local_broker.cache_root() / "demo"
    logs.mkdir(parents=True, exist_ok=True)
    port = local_broker.free_port()
    env = {"KAFKA_BOOTSTRAP": bootstrap, "GATEWAY_METRICS_PORT": str(port), "PYTHONUNBUFFERED": "1"}
    cli = [sys.executable, "-m", "topologies.cli"]
    children: list[Child] = []
    # SIGTERM (`timeout`, `kill`) and SIGHUP (the terminal closed) stop the demo like Ctrl-C:
    # the load generator, the gateway and the broker this run started are stopped too.
    previous = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        gateway = Child([*cli, "run", "--demo"], logs / "gateway.log", env, name="gateway")
        children.append(gateway)
        url = f"http://127.0.0.1:{port}/metrics"
        deadline = time.monotonic() + 120
        while True:
            try:
                scrape(url)
                break
            except OSError:
                if not gateway.alive() or time.monotonic() > deadline:
                    console.print(f"[red]the gateway did not start; see {gateway.log}[/red]")
                    return 1
                time.sleep(0.5)
        console.print(f"gateway up (demo keys), metrics at {url}; starting synthetic traffic")
        loadgen_argv = [*cli, "loadgen", "--rate", str(rate), "--subjects", str(subjects),
                        "--invalid-share", "0.002"]  # fmt: skip
        children.append(Child(loadgen_argv, logs / "loadgen.log", env, name="loadgen"))
        _watch(console, url, logs, duration, detail=detail)
    except KeyboardInterrupt:
        pass
    finally:
        for sig in previous:  # a second signal does not cut the cleanup short
            signal.signal(sig, signal.SIG_IGN)
        console.print("stopping the load generator and the gateway...")
        for child in reversed(children):  # traffic first, then the gateway finishes its batches
            child.stop()
        if started_broker:
            local_broker.down()
            console.print("stopped the local broker")
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def _watch(console: Console, url: str, logs: Path, duration: float | None, *, detail: bool) -> None:
    end = time.monotonic() + duration if duration else None
    before: Sample | None = None
    interactive = console.is_terminal
    with Live(console=console, auto_refresh=False, transient=False) as live:
        last_plain = 0.0
        while end is None or time.monotonic() < end:
            try:
                now = scrape(url)
            except OSError:
                console.print("[red]the gateway stopped answering; see its log[/red]")
                return
            view = render(now, before, _last_line(logs / "loadgen.log"), logs, detail=detail)
            if interactive:
                live.update(view, refresh=True)
            elif time.monotonic() - last_plain > 5:
                last_plain = time.monotonic()
                console.print(view)
            before = now
            time.sleep(1.0)
        if before is not None:
            last = render(before, None, _last_line(logs / "loadgen.log"), logs, detail=detail)
            live.update(last, refresh=True)

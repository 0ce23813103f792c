"""The processes under test: child processes, their /metrics, and their CPU and memory in /proc.

Both the gateway worker and the passthrough baseline are separate processes with a Prometheus
endpoint on loopback, so one measuring loop serves both: poll a counter of consumed records and
read utime+stime of the processes from /proc/<pid>/stat at the same instants.
"""

from __future__ import annotations

import asyncio
import math
import os
import time
import urllib.request
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from devtools import processes

CLK_TCK = os.sysconf("SC_CLK_TCK")


class BenchError(RuntimeError):
    """A phase could not complete; the message says which and why."""


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads), from /proc/<pid>/stat."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat.rsplit(")", 1)[1].split()  # fields[0] is field 3 (state) of proc(5)
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def machine_busy_seconds() -> float:
    """CPU time the whole machine spent busy (all cores), from the first line of /proc/stat."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


def loadavg() -> float:
    """The machine's 1-minute load average, from /proc/loadavg."""
    return float(Path("/proc/loadavg").read_text().split()[0])


def own_cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def memory_kib(pid: int) -> dict[str, int]:
    """VmHWM (peak RSS) and VmRSS of a process, in KiB, from /proc/<pid>/status."""
    found: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmHWM", "VmRSS"):
            found[name] = int(rest.split()[0])
    return found


Child = processes.Child  # the project's child process: log file, SIGTERM stop


def scrape(port: int, names: Sequence[str] = ()) -> str:
    """The /metrics text of a process, only the series `names` when given.

    prometheus_client renders only the asked series (`?name[]=...`): rendering all of the
    gateway's ~560 series every 100 ms cost its worker 5-11% of its CPU (docs/benchmarks.md,
    profile), which the passthroughs, with one counter, never paid.
    """
    query = "&".join(f"name[]={name}" for name in names)
    url = f"http://127.0.0.1:{port}/metrics" + (f"?{query}" if query else "")
    with urllib.request.urlopen(url, timeout=5) as response:  # loopback only
        text: str = response.read().decode()
    return text


def metric_sum(text: str, name: str) -> float:
    """The sum of every sample of one metric (all label sets) in Prometheus text format."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and line[len(name) : len(name) + 1] in ("{", " "):
            total += float(line.rsplit(" ", 1)[1])
    return total


@dataclass
class Monitored:
    """A child with a metrics port and the counter that says how many records it has consumed."""

    child: Child
    port: int
    counter: str

    def consumed(self) -> float:
        return metric_sum(scrape(self.port, (self.counter,)), self.counter)

    def gauge(self, name: str) -> float:
        return metric_sum(scrape(self.port, (name,)), name)

    async def wait_metrics(self, within: float = 60.0) -> None:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            try:
                scrape(self.port, (self.counter,))
                return
            except OSError:
                self.child.check_alive()
                await asyncio.sleep(0.1)
        raise BenchError(f"{self.child.name}: /metrics never answered:\n{self.child.tail()}")


class LoadMeter:
    """CPU used between start and stop by the processes under test, the broker, and the rest."""

    def __init__(self, pids: Sequence[int], broker_pid: int | None) -> None:
        self._pids = list(pids)
        self._broker = broker_pid
        self._start = self._sample()

    def _sample(self) -> tuple[float, float, float, float]:
        procs = sum(cpu_seconds(p) for p in self._pids)
        broker = cpu_seconds(self._broker) if self._broker else 0.0
        others = machine_busy_seconds() - procs - broker - own_cpu_seconds()
        return time.monotonic(), procs, broker, others

    def cores(self) -> dict[str, float]:
        """Cores used since the start: by the processes, the broker, everything else."""
        end = self._sample()
        secs = max(end[0] - self._start[0], 1e-9)
        names = ("process_cores", "broker_cores", "foreign_cores")
        return {n: round((end[i] - self._start[i]) / secs, 2) for i, n in enumerate(names, 1)}


@dataclass(frozen=True)
class Window:
    """The processing window: from the first consumed record seen to the last."""

    events: float
    seconds: float
    cpu_seconds: float
    per_process: tuple[float, ...]  # records consumed by each process over the whole run
    # CPU (in cores) used during the window by everything except the processes under test,
    # the broker and the benchmark itself: other work on the machine, i.e. noise.
    foreign_cores: float = 0.0
    broker_cores: float = 0.0
    loadavg: float = 0.0  # 1-minute load average at the close
    exhausted: bool = False  # the input ran out before the time box closed the window

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0

    @property
    def cpu_us_per_event(self) -> float:
        return self.cpu_seconds / self.events * 1e6 if self.events else 0.0


async def measure_window(
    procs: Sequence[Monitored], total: int, *, within: float, poll: float = 0.1,
    broker_pid: int | None = None, gate: tuple[str, float] | None = None,
) -> Window:  # fmt: skip
    """Poll the consumed counters until they reach `total`.

    The window opens at the first poll at which every process has consumed a record (start-up,
    group join and the consent load before the first batch are outside; with several workers,
    so is the rebalance when the later one joins) and closes at the poll that sees `total`.
    Records and CPU are counted between those two polls only.

    `gate` (metric, value): the window opens only once that metric, summed over the processes,
    has reached the value too; e.g. the gateway's consent records read, so that loading the
    consent table (start-up work) is not counted as processing.
    """
    deadline = time.monotonic() + within
    first: tuple[float, float, float, float, float] | None = None
    counts: list[float] = [0.0] * len(procs)
    while True:
        texts = [scrape(p.port, (p.counter, *(gate[:1] if gate else ()))) for p in procs]
        counts = [metric_sum(t, p.counter) for t, p in zip(texts, procs, strict=True)]
        opened = gate is None or sum(metric_sum(t, gate[0]) for t in texts) >= gate[1]
        now = time.monotonic()
        cpu = sum(cpu_seconds(p.child.pid) for p in procs)
        broker = cpu_seconds(broker_pid) if broker_pid else 0.0
        others = machine_busy_seconds() - cpu - broker - own_cpu_seconds()
        n = sum(counts)
        if first is None and opened and all(c > 0 for c in counts):
            first = (now, n, cpu, broker, others)
        if n >= total and first is None:
            raise BenchError(
                f"all {total} records were consumed before the window opened (every process "
                f"consuming{', ' + gate[0] + ' reached' if gate else ''}; per process: "
                f"{counts}); use more --events"
            )
        if n >= total and first is not None:
            t0, n0, c0, b0, o0 = first
            secs = now - t0
            return Window(
                n - n0, secs, cpu - c0, tuple(counts),
                foreign_cores=(others - o0) / secs if secs > 0 else 0.0,
                broker_cores=(broker - b0) / secs if secs > 0 else 0.0, loadavg=loadavg(),
            )  # fmt: skip
        if now > deadline:
            raise BenchError(
                f"only {n:.0f} of {total} records consumed within {within:.0f}s; "
                f"last log:\n{procs[0].child.tail()}"
            )
        for p in procs:
            p.child.check_alive()
        await asyncio.sleep(poll)


@dataclass(frozen=True)
class Sample:
    """One instant: monotonic seconds, records counted, CPU seconds (processes, broker, rest)."""

    at: float
    count: float
    cpu: float
    broker: float
    others: float


def take_sample(count: float, pids: Sequence[int], broker_pid: int | None) -> Sample:
    cpu = sum(cpu_seconds(p) for p in pids)
    broker = cpu_seconds(broker_pid) if broker_pid else 0.0
    others = machine_busy_seconds() - cpu - broker - own_cpu_seconds()
    return Sample(time.monotonic(), count, cpu, broker, others)


def window_between(
    first: Sample, last: Sample, per_process: tuple[float, ...], exhausted: bool = False
) -> Window:
    """The window from `first` to `last`: records, seconds and CPU of the processes between."""
    secs = last.at - first.at
    return Window(
        last.count - first.count, secs, last.cpu - first.cpu, per_process,
        foreign_cores=(last.others - first.others) / secs if secs > 0 else 0.0,
        broker_cores=(last.broker - first.broker) / secs if secs > 0 else 0.0,
        loadavg=loadavg(), exhausted=exhausted,
    )  # fmt: skip


async def measure_timed(
    count: Callable[[], Awaitable[tuple[float, ...]]], pids: Sequence[int], *, seconds: float,
    min_events: float, available: float, within: float, warmup: float = 1.0,
    poll: float = 0.25, broker_pid: int | None = None,
    ready: Callable[[], Awaitable[bool]] | None = None, check: Callable[[], None] | None = None,
    max_seconds: float = math.inf,
) -> Window:  # fmt: skip
    """A time-boxed window over a pre-loaded input of `available` records.

    `count()` returns the records each process has handled so far. The window opens `warmup`
    seconds after the first poll at which every process has handled a record and `ready()` (if
    given) holds, so start-up, group joins and the ramp are outside; it closes at the first poll
    at which it has lasted `seconds` and counted `min_events`. If the input runs out first the
    window closes there, marked `exhausted` (the figures are then over a shorter window). A
    process too slow to count `min_events` in `max_seconds` has its window closed there (fewer
    events than asked: the time budget of the run wins; the window's `events` shows it).
    """
    deadline = time.monotonic() + within
    started: float | None = None
    first: Sample | None = None
    while True:
        counts = await count()
        n = sum(counts)
        now = time.monotonic()
        if started is None and all(c > 0 for c in counts) and (ready is None or await ready()):
            started = now
        if first is None and started is not None and now - started >= warmup:
            first = take_sample(n, pids, broker_pid)
        if first is not None:
            last = take_sample(n, pids, broker_pid)
            lasted = last.at - first.at
            long_enough = lasted >= seconds and (
                n - first.count >= min_events or lasted >= max_seconds
            )
            if long_enough or n >= available:
                return window_between(first, last, counts, exhausted=not long_enough)
        elif n >= available:
            raise BenchError(f"all {available:.0f} records were handled before the window opened")
        if now > deadline:
            raise BenchError(f"the window did not close within {within:.0f}s ({n:.0f} records)")
        if check is not None:
            check()
        await asyncio.sleep(poll)

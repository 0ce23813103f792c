"""What a run of `benchmarks.e2e` is expected to cost in wall-clock seconds, phase by phase.

Pure arithmetic over the settings and the rates the run is expected to see, printed at the start
of a run (and again, with the measured rates, when the latency phase starts), and next to what
each phase took at the end, so a change that breaks the 15-minute budget of `make bench` shows
before it is run. The overheads are what the 2-core development machine measured on a quiet
machine (process start-up, group joins, the consent load, reading the outputs back), not
guarantees: a busy machine takes longer.
"""

from __future__ import annotations

from dataclasses import dataclass

# Seconds outside the window per throughput repetition of one yardstick: start-up, group
# join and warm-up before the window, stopping the process and deleting its topics after it.
PASSTHROUGH_OVERHEAD = 3.0
GATEWAY_OVERHEAD = 5.0  # and its consent load
BROKER_OVERHEAD = 8.0  # two JVM starts, 3 s of JIT warm-up, the consumer-perf pass
LOAD_FIXED = 4.0  # the templates, the consent records, the perf tools' payload file
LOAD_EVENTS_PER_S = 250_000.0  # pre-loading the raw topics with librdkafka
# Latency windows: start-up (a passthrough; a gateway and its consent load), then 0.5 s and
# the 1 s warm-up before the window, the drain and the stop after it.
BASELINE_START = 3.0
GATEWAY_START = 6.0
AFTER_WINDOW = 1.5
PROBE_SECONDS = 0.2  # one consent propagation probe
# Reading a window's outputs back: seconds per output record (two reader processes; the quiet
# run 20261129T172830Z read a baseline window's 9.0M records in 23.5-30.1 s), and the
# records of the gateway's observed topics per event (analytics forwards and audit records).
READ_SECONDS_PER_RECORD = 2.8e-6
GATEWAY_RECORDS_PER_EVENT = 1.6
# A gateway latency window that cannot sustain its load is stopped after about this many
# measured seconds (fixedload's OverloadWatch: 10 s of evidence, 5 checks in a row).
STOPPED_AFTER = 11.0
DRAIN_LIMIT = 15.0  # fixedload.DRAIN_LIMIT
OVERLOAD_MARGIN = 1.5  # stats.OverloadWatch.margin
LIVE_EVENTS_PER_S = 8_000.0  # the gateway's rate in the scaling phase (pessimistic)
SCALING_OVERHEAD = 12.0  # per worker count: start-up, consent load, stop
# Rates assumed before the run has measured them (the quiet-machine run of 2026-11-29).
ASSUMED_BASELINE_RATE = 90_000.0
ASSUMED_GATEWAY_RATE = 15_000.0


@dataclass(frozen=True)
class Plan:
    """The settings the budget depends on, and the rates it assumes."""

    reps: int
    window_seconds: float
    yardsticks: int  # passthroughs and gateway, each one window per repetition
    broker_ceiling: bool
    preload_events: int
    latency_seconds: float
    latency_reps: int
    probes: int
    scaling_events: int  # 0: no two-worker phase
    memory_subjects: int  # 0: no memory phase
    own_reps: int = 0  # supplementary gateway windows at a fraction of its own rate
    load_fraction: float = 0.5
    offered_rate: float = 0.0  # of the latency phase; 0: load_fraction of the baseline rate
    baseline_rate: float = ASSUMED_BASELINE_RATE
    gateway_rate: float = ASSUMED_GATEWAY_RATE
    stop_early: bool = True

    @property
    def rate(self) -> float:
        return self.offered_rate or self.load_fraction * self.baseline_rate


def gateway_stopped(plan: Plan) -> bool:
    """Whether the main gateway latency windows are expected to be stopped early: even at
    `OVERLOAD_MARGIN` times its rate it would leave over 1% of a window's events."""
    window = plan.rate * plan.latency_seconds
    could = OVERLOAD_MARGIN * plan.gateway_rate * (plan.latency_seconds + DRAIN_LIMIT)
    return plan.stop_early and window - could > 0.01 * window


def latency_window(plan: Plan, rate: float, copies: float, start: float, sustained: bool) -> float:
    """One latency window: start-up, warm-up, the window (or its early stop), drain, read-back.

    The read-back runs while the next window's process starts: only what is longer counts.
    """
    seconds = plan.latency_seconds if sustained else STOPPED_AFTER
    drain = 0.0 if sustained or plan.stop_early else DRAIN_LIMIT
    outputs = (1 + seconds) * min(rate, plan.gateway_rate if copies < 3 else rate) * copies
    read = max(0.0, outputs * READ_SECONDS_PER_RECORD - GATEWAY_START)
    probes = plan.probes * PROBE_SECONDS if sustained and copies < 3 else 0.0
    return start + 1.5 + seconds + drain + AFTER_WINDOW + probes + read


def estimate(plan: Plan) -> dict[str, float]:
    """Expected seconds per phase and in total."""
    load = LOAD_FIXED + plan.preload_events / LOAD_EVENTS_PER_S
    throughput = plan.reps * (
        plan.yardsticks * plan.window_seconds
        + (plan.yardsticks - 1) * PASSTHROUGH_OVERHEAD
        + GATEWAY_OVERHEAD
        + ((plan.window_seconds + BROKER_OVERHEAD) if plan.broker_ceiling else 0.0)
    )
    stopped = gateway_stopped(plan)
    latency = plan.latency_reps * (
        latency_window(plan, plan.rate, 3, BASELINE_START, True)
        + latency_window(plan, plan.rate, GATEWAY_RECORDS_PER_EVENT, GATEWAY_START, not stopped)
    )
    own_rate = plan.load_fraction * plan.gateway_rate
    own = (
        plan.own_reps
        * latency_window(plan, own_rate, GATEWAY_RECORDS_PER_EVENT, GATEWAY_START, True)
        if stopped and plan.latency_reps
        else 0.0
    )
    scaling = (
        2 * (SCALING_OVERHEAD + plan.scaling_events / LIVE_EVENTS_PER_S)
        if plan.scaling_events
        else 0.0
    )
    memory = 30.0 + plan.memory_subjects / 20_000 if plan.memory_subjects else 0.0
    phases = {
        "load": load, "throughput": throughput, "two_workers": scaling, "latency": latency,
        "latency_own": own, "memory": memory,
    }  # fmt: skip
    return {**{k: round(v, 1) for k, v in phases.items()}, "total": round(sum(phases.values()), 1)}


def comparison(expected: dict[str, float], measured: dict[str, float]) -> list[list[str]]:
    """Rows of phase, expected s, measured s, measured - expected (the total last)."""
    rows = []
    names = [k for k in expected if k != "total"] + [k for k in measured if k not in expected]
    for name in names:
        e, m = expected.get(name, 0.0), measured.get(name, 0.0)
        if e or m:
            rows.append([name, f"{e:.0f}", f"{m:.0f}", f"{m - e:+.0f}"])
    e, m = expected.get("total", sum(expected.values())), sum(measured.values())
    rows.append(["total", f"{e:.0f}", f"{m:.0f}", f"{m - e:+.0f}"])
    return rows

"""What a run of `benchmarks.e2e` is expected to cost in wall-clock seconds, phase by phase.

Pure arithmetic over the settings, printed at the start of a run next to what each phase then
took, so a change that breaks the 15-minute budget of `make bench` shows before it is run.
The overheads are what the 2-core development machine measured (process start-up, group joins,
the consent load, reading back the outputs), not guarantees.
"""

from __future__ import annotations

from dataclasses import dataclass

# Seconds outside the window per throughput repetition of one yardstick: start-up, group
# join and warm-up before the window, stopping the process and deleting its topics after it.
PASSTHROUGH_OVERHEAD = 6.0
GATEWAY_OVERHEAD = 9.0
BROKER_OVERHEAD = 14.0  # two JVM starts, 3 s of JIT warm-up, the consumer-perf pass
# Per latency window: start-up and consent load, warm-up, drain (the read-back of the outputs
# runs while the next window's process starts).
LATENCY_OVERHEAD = 8.0
PROBE_SECONDS = 0.15  # one consent propagation probe
LOAD_EVENTS_PER_S = 120_000.0  # pre-loading the raw topics with librdkafka
LIVE_EVENTS_PER_S = 8_000.0  # the gateway's rate in the scaling phase (pessimistic)
SCALING_OVERHEAD = 12.0  # per worker count: start-up, consent load, stop


@dataclass(frozen=True)
class Plan:
    """The settings the budget depends on."""

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


def estimate(plan: Plan) -> dict[str, float]:
    """Expected seconds per phase and in total."""
    load = 10.0 + plan.preload_events / LOAD_EVENTS_PER_S
    throughput = plan.reps * (
        plan.yardsticks * plan.window_seconds
        + (plan.yardsticks - 1) * PASSTHROUGH_OVERHEAD
        + GATEWAY_OVERHEAD
        + ((plan.window_seconds + BROKER_OVERHEAD) if plan.broker_ceiling else 0.0)
    )
    latency = plan.latency_reps * (
        2 * (plan.latency_seconds + 1.0 + LATENCY_OVERHEAD) + plan.probes * PROBE_SECONDS
    )
    scaling = (
        2 * (SCALING_OVERHEAD + plan.scaling_events / LIVE_EVENTS_PER_S)
        if plan.scaling_events
        else 0.0
    )
    memory = 30.0 + plan.memory_subjects / 20_000 if plan.memory_subjects else 0.0
    phases = {
        "load": load, "throughput": throughput, "two_workers": scaling, "latency": latency,
        "memory": memory,
    }  # fmt: skip
    return {**{k: round(v, 1) for k, v in phases.items()}, "total": round(sum(phases.values()), 1)}

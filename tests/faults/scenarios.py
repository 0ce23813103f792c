"""The fault scenarios: each a coroutine run beside the load, and how many workers it needs."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from tests.faults.run import Fault, FaultRun


async def no_fault(run: FaultRun) -> None:
    """The control: the same traffic on a quiet broker."""


async def kill_three_times(run: FaultRun) -> None:
    """`kill -9` of the worker at 25%, 50% and 75% of the load, restarted each time."""
    for share in (0.25, 0.5, 0.75):
        await run.at(share)
        run.kill9(0)
        await run.start_worker(0)


async def one_of_two_killed(run: FaultRun) -> None:
    """Two workers in one group; `kill -9` of one at 40%: the survivor takes its partitions."""
    await run.at(0.4)
    run.kill9(1)


async def state_wiped(run: FaultRun) -> None:
    """The worker stopped at 50%, its local state deleted, restarted (table from Kafka)."""
    await run.at(0.5)
    run.stop_worker(0)
    run.wipe_state(0)
    await run.start_worker(0)


def broker_outage(seconds: float) -> Fault:
    """The broker stopped at 40% of the load for `seconds`, restarted with its data."""

    async def fault(run: FaultRun) -> None:
        await run.at(0.4)
        await run.broker_outage(seconds)

    return fault


def burst_size(run: FaultRun) -> int:
    """50,000 consent records for the full-size run, scaled down with the traffic."""
    return max(1000, min(50_000, len(run.plan.steps) // 2))


async def consent_burst(run: FaultRun) -> None:
    """A burst of consent records at 30% while events (and withdrawals) flow."""
    await run.at(0.3)
    await run.consent_burst(burst_size(run))


async def everything(run: FaultRun) -> None:
    """All at once: a burst, one of two workers killed, kill -9 of the other, the broker down
    10 s (when the run owns the project's local broker), a wiped state, kill -9 again."""

    async def burst() -> None:
        await run.at(0.2)
        await run.consent_burst(burst_size(run))

    async def workers() -> None:
        await run.at(0.3)
        run.kill9(1)
        await run.at(0.45)
        run.kill9(0)
        await run.start_worker(0)
        if await run.owns_broker():
            await run.at(0.6)
            await run.broker_outage(10)
        await run.at(0.7)
        run.stop_worker(0)
        run.wipe_state(0)
        await run.start_worker(0)
        await run.at(0.85)
        run.kill9(0)
        await run.start_worker(0)

    await asyncio.gather(burst(), workers())


@dataclass(frozen=True)
class Scenario:
    name: str
    fault: Fault
    workers: int = 1
    log_level: str = "info"  # the control runs at debug: its logs are scanned for canaries too
    strict: bool = False  # the control: no duplicate or redecision either


SCENARIOS = {
    s.name: s
    for s in (
        Scenario("no-fault", no_fault, log_level="debug", strict=True),
        Scenario("kill-9-three-times", kill_three_times),
        Scenario("one-of-two-workers-killed", one_of_two_killed, workers=2),
        Scenario("local-state-wiped", state_wiped),
        Scenario("consent-burst", consent_burst),
        Scenario("broker-down-10s", broker_outage(10)),
        Scenario("broker-down-60s", broker_outage(60)),
        Scenario("broker-down-120s", broker_outage(120)),
        Scenario("all-together", everything, workers=2),
    )
}

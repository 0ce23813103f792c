"""The fault suite, CI size: every fault at once on the real broker, every record accounted for.

`make faults` runs each scenario alone and all together at full size (100,000 events over
10,000 subjects, 1,000 withdrawals); this runs the combined scenario small.
"""

from __future__ import annotations

from pathlib import Path

from tests.faults.run import run_scenario
from tests.faults.scenarios import SCENARIOS
from tests.faults.traffic import make_plan


async def test_under_every_fault_at_once_nothing_is_lost_leaked_or_forwarded_after_withdrawal(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    plan = make_plan("ci0a1", events=6000, subjects=600, withdrawals=60)
    scenario = SCENARIOS["all-together"]
    report = await run_scenario(
        scenario.name, kafka_bootstrap, tmp_path, plan, scenario.fault, rate=150,
        workers=scenario.workers, drain_timeout=180,
    )  # fmt: skip
    summary = report.as_dict()
    assert report.faults and len(report.faults) >= 5, summary  # the faults did happen
    assert report.valid_events == 6000 and report.pairs == 18000, summary
    assert report.lost_pairs == 0 and report.lost_invalid == 0, summary
    assert report.invalid_in_dlq == report.invalid_records > 0, summary
    assert report.revocation_violations == 0 and report.events_after_withdrawal == 180, summary
    assert report.leaks == 0 and report.conflicts == 0, summary
    assert report.unexplained_sink_records == 0 and report.duplicates_deduplicable, summary
    assert report.forwarded > 0 and report.dropped > 0, summary

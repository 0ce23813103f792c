"""`python -m tests.faults`: run the fault scenarios on the local broker and write a report.

    python -m tests.faults [--events N] [--subjects N] [--withdrawals N] [--duration S]
                           [--scenario NAME ...] [--out DIR]

Uses KAFKA_BOOTSTRAP, or starts (and afterwards stops) the project's local broker. Writes
DIR/faults-<timestamp>.json and .md; exits 1 when a scenario lost, leaked or broke revocation.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import orjson

from tests.faults.checker import Report
from tests.faults.run import run_scenario
from tests.faults.scenarios import SCENARIOS
from tests.faults.traffic import make_plan

COLUMNS = (
    ("scenario", "scenario"), ("ok", "ok"), ("valid_events", "events"), ("pairs", "pairs"),
    ("forwarded", "forwarded"), ("dropped", "dropped"), ("lost_pairs", "lost"),
    ("duplicate_sink_records", "dup. sink"), ("duplicates_deduplicable", "dedupable"),
    ("duplicate_audit_drops", "dup. audit"), ("conflicts", "conflicts"),
    ("conflicts_after_withdrawal", "redecided"), ("invalid_in_dlq", "in DLQ"),
    ("lost_invalid", "DLQ lost"), ("duplicate_dlq", "dup. DLQ"), ("withdrawals", "withdrawals"),
    ("tombstones", "of them erasures"),
    ("revocation_violations", "revoc. viol."), ("leaks", "leaks"),
    ("joinable_values", "joinable"), ("crashes", "crashes"), ("seconds", "s"),
)  # fmt: skip


def markdown(reports: list[Report], settings: dict[str, object]) -> str:
    lines = [
        "# Fault suite report", "",
        ", ".join(f"{k}: {v}" for k, v in settings.items()), "",
        "| " + " | ".join(title for _, title in COLUMNS) + " |",
        "|" + " --- |" * len(COLUMNS),
    ]  # fmt: skip
    for report in reports:
        row = report.as_dict()
        lines.append("| " + " | ".join(str(row[key]) for key, _ in COLUMNS) + " |")
    lines.append("")
    for report in reports:
        lines.append(f"- **{report.scenario}**: faults: {'; '.join(report.faults) or 'none'}")
        for note in report.notes:
            lines.append(f"  - {note}")
    return "\n".join(lines) + "\n"


@contextlib.contextmanager
def _folder(prefix: str, *, keep: bool) -> Iterator[str]:
    if keep:
        root = tempfile.mkdtemp(prefix=prefix)
        print(f"faults: keeping {root}", file=sys.stderr)
        yield root
    else:
        with tempfile.TemporaryDirectory(prefix=prefix, ignore_cleanup_errors=True) as root:
            yield root


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.faults", description=__doc__)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--subjects", type=int, default=10_000)
    parser.add_argument("--withdrawals", type=int, default=1_000)
    parser.add_argument(
        "--duration", type=float, default=60.0, help="seconds the load lasts (rate = events/s)"
    )
    parser.add_argument("--scenario", nargs="+", choices=sorted(SCENARIOS), default=None)
    parser.add_argument("--out", type=Path, default=Path("faults-report"))
    parser.add_argument(
        "--keep", action="store_true", help="keep each scenario's folder (config, worker logs)"
    )
    args = parser.parse_args(argv)
    names = args.scenario or list(SCENARIOS)
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP")
    started_broker = False
    if not bootstrap:
        from devtools import local_broker

        state, reused = await asyncio.to_thread(local_broker.up, log=False)
        bootstrap, started_broker = state.bootstrap, not reused
    settings = {
        "events": args.events, "subjects": args.subjects, "withdrawals": args.withdrawals,
        "rate": round(args.events / args.duration), "bootstrap": bootstrap,
    }  # fmt: skip
    reports = []
    try:
        for name in names:
            scenario = SCENARIOS[name]
            plan = make_plan(
                secrets.token_hex(3), events=args.events, subjects=args.subjects,
                withdrawals=args.withdrawals,
            )  # fmt: skip
            with _folder(f"faults-{name}-", keep=args.keep) as root:
                print(f"faults: {name} ...", file=sys.stderr, flush=True)
                report = await run_scenario(
                    name, bootstrap, Path(root), plan, scenario.fault,
                    rate=args.events / args.duration, workers=scenario.workers,
                    log_level=scenario.log_level, strict=scenario.strict,
                )  # fmt: skip
            reports.append(report)
            print(f"faults: {name}: {'ok' if report.ok else 'FAILED'} {report.as_dict()}",
                  file=sys.stderr, flush=True)  # fmt: skip
    finally:
        if started_broker:
            from devtools import local_broker

            await asyncio.to_thread(local_broker.down)
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    body = {"settings": settings, "reports": [r.as_dict() for r in reports]}
    (args.out / f"faults-{stamp}.json").write_bytes(orjson.dumps(body, option=orjson.OPT_INDENT_2))
    (args.out / f"faults-{stamp}.md").write_text(markdown(reports, settings))
    print(markdown(reports, settings))
    return 0 if all(r.ok for r in reports) else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))

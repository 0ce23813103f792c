"""`gateway run|loadgen|consent|demo`: the enforcement worker and its traffic tools."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from topologies.worker import WorkerSettings

PURPOSE_HELP = "analytics, personalization, advertising, social, third_party_sharing"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    run = sub.add_parser("run", help="run the enforcement worker")
    run.add_argument("--config", type=Path, help="config folder (default ./config)")
    run.add_argument(
        "--demo", action="store_true", help="ephemeral random keys (never in production)"
    )
    run.add_argument("--metrics-port", type=int, help="port of /metrics (default 9108)")
    run.set_defaults(handler=_run)

    load = sub.add_parser("loadgen", help="produce synthetic usage, device and consent traffic")
    load.add_argument("--rate", type=float, default=1000.0, help="events per second (0: no limit)")
    load.add_argument("--subjects", type=int, default=10_000)
    load.add_argument("--count", type=int, help="stop after this many events")
    load.add_argument("--duration", type=float, help="stop after this many seconds")
    load.add_argument("--seed", type=int, default=7)
    load.add_argument(
        "--consent-changes", type=float, default=2.0, help="consent changes per second"
    )
    load.add_argument(
        "--no-initial-consent", action="store_true", help="skip the initial consent records"
    )
    load.add_argument(
        "--invalid-share", type=float, default=0.0, help="share of invalid records (DLQ)"
    )
    load.add_argument("--config", type=Path, help="config folder, for topic names")
    load.set_defaults(handler=_loadgen)

    consent = sub.add_parser("consent", help="publish one consent record (acks=all)")
    consent.add_argument("--subject", required=True, help="the subject id (the record key)")
    consent.add_argument("--grant", default="", help=f"comma-separated purposes: {PURPOSE_HELP}")
    consent.add_argument("--deny", default="", help="comma-separated purposes to deny")
    consent.add_argument("--under-13", choices=("true", "false", "unknown"), default="false")
    consent.add_argument("--parental-consent", action="store_true")
    consent.add_argument("--tombstone", action="store_true", help="erase the subject (null value)")
    consent.add_argument("--file", type=Path, help="publish this JSON consent record instead")
    consent.add_argument("--config", type=Path, help="config folder, for the topic name")
    consent.set_defaults(handler=_consent)

    demo = sub.add_parser("demo", help="local broker + gateway (--demo keys) + loadgen + live view")
    demo.add_argument("--rate", type=float, default=2000.0)
    demo.add_argument("--subjects", type=int, default=20_000)
    demo.add_argument("--duration", type=float, help="stop by itself after this many seconds")
    demo.set_defaults(handler=_demo)


def _settings(args: argparse.Namespace) -> WorkerSettings:
    """The environment's settings, with the command line's --config and --metrics-port on top."""
    from topologies.worker import WorkerSettings

    env = dict(os.environ)
    if getattr(args, "config", None):
        env["GATEWAY_CONFIG_DIR"] = str(args.config)
    if getattr(args, "metrics_port", None) is not None:
        env["GATEWAY_METRICS_PORT"] = str(args.metrics_port)
    return WorkerSettings.from_env(env)


def _refusing(handler: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """An invalid config or missing keys end the command with the problems listed, exit 2."""

    def guarded(args: argparse.Namespace) -> int:
        from topologies.worker import StartError

        try:
            return handler(args)
        except StartError as exc:
            print(f"gateway: refusing to start: {exc}", file=sys.stderr)
            return 2

    return guarded


@_refusing
def _run(args: argparse.Namespace) -> int:
    from topologies.worker import run

    return run(_settings(args), demo=args.demo)


@_refusing
def _loadgen(args: argparse.Namespace) -> int:
    from topologies.loadgen import LoadPlan, run_load
    from topologies.worker import load_checked_config, prepare_topics

    settings = _settings(args)
    config = load_checked_config(settings.config_dir)
    bootstrap = settings.bootstrap
    topics = config.settings.topics
    asyncio.run(prepare_topics(bootstrap, config, settings.partitions))
    plan = LoadPlan(
        bootstrap=bootstrap, usage_topic=topics.usage_raw, device_topic=topics.device_raw,
        consent_topic=topics.consent, rate=args.rate, subjects=args.subjects, count=args.count,
        duration=args.duration, seed=args.seed, consent_changes_per_second=args.consent_changes,
        publish_consent=not args.no_initial_consent, invalid_share=args.invalid_share,
    )  # fmt: skip
    asyncio.run(run_load(plan))
    return 0


@_refusing
def _consent(args: argparse.Namespace) -> int:
    import orjson

    from topologies.loadgen import publish_consent, rfc3339
    from topologies.synthetic import PURPOSES, consent_record
    from topologies.worker import load_checked_config

    settings = _settings(args)
    config = load_checked_config(settings.config_dir)
    value: bytes | None
    if args.tombstone:
        value = None
    elif args.file:
        value = args.file.read_bytes()
        orjson.loads(value)  # refuse to publish something that is not even JSON
    else:
        granted = {p for p in args.grant.split(",") if p}
        denied = {p for p in args.deny.split(",") if p}
        unknown = (granted | denied) - set(PURPOSES)
        if unknown:
            print(
                f"unknown purposes: {', '.join(sorted(unknown))}; use {PURPOSE_HELP}",
                file=sys.stderr,
            )
            return 2
        purposes: dict[str, bool | None] = dict.fromkeys(granted, True)
        purposes |= dict.fromkeys(denied, False)
        under = {"true": True, "false": False, "unknown": None}[args.under_13]
        value = consent_record(
            args.subject, rfc3339(time.time()), purposes,
            under_13=under, parental_consent=args.parental_consent, source="cli",
        )  # fmt: skip
    bootstrap = settings.bootstrap
    partition, offset = asyncio.run(
        publish_consent(bootstrap, config.settings.topics.consent, args.subject, value)
    )
    what = "tombstone" if value is None else "consent record"
    print(
        f"published {what} to {config.settings.topics.consent} "
        f"partition {partition} offset {offset}"
    )
    return 0


def _demo(args: argparse.Namespace) -> int:
    from topologies.demo import run_demo

    return run_demo(rate=args.rate, subjects=args.subjects, duration=args.duration)

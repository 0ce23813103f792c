"""`gateway consent`: publish one consent record (or a tombstone) with acks=all.

A runtime command, shipped in the image: privacy teams use it to correct or erase one
subject's consent on the production topic. It also owns the consent record's JSON shape as the
gateway's producers write it (`consent_record`), which the dev tools' synthetic traffic reuses.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

import orjson

from gateway.consent_state import PURPOSES
from gateway.strictjson import format_rfc3339_us
from topologies.worker_cli import command_settings, refusing

PURPOSE_HELP = ", ".join(PURPOSES)


def rfc3339(now: float) -> str:
    """`now` (seconds since the epoch) as an RFC 3339 UTC timestamp (gateway.strictjson)."""
    return format_rfc3339_us(int(now * 1_000_000))


def consent_record(
    subject: str,
    updated_at: str,
    purposes: dict[str, bool | None],
    *,
    under_13: bool | None,
    parental_consent: bool | None,
    source: str,
) -> bytes:
    """The JSON value of a consent record (the contract's consent schema)."""
    return orjson.dumps(
        {
            "subject_id": subject,
            "updated_at": updated_at,
            "purposes": purposes,
            "age": {"under_13": under_13, "parental_consent": parental_consent},
            "source": source,
        }
    )


async def publish_consent(
    bootstrap: str, topic: str, subject: str, value: bytes | None
) -> tuple[int, int]:
    """Publish one consent record (or tombstone) with acks=all; return (partition, offset)."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        meta = await producer.send_and_wait(topic, value, key=subject.encode())
    finally:
        await producer.stop()
    return meta.partition, meta.offset


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `gateway consent` to the `gateway` command's subcommands."""
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


@refusing
def _consent(args: argparse.Namespace) -> int:
    from topologies.worker import load_checked_config

    settings = command_settings(args)
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
    topic = config.settings.topics.consent
    partition, offset = asyncio.run(publish_consent(settings.bootstrap, topic, args.subject, value))
    what = "tombstone" if value is None else "consent record"
    print(f"published {what} to {topic} partition {partition} offset {offset}")
    return 0

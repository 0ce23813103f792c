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
from gateway.errors import GatewayError
from gateway.strictjson import format_rfc3339_us
from topologies.security import PLAINTEXT, ClientSecurity
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


class ClusterUnreachableError(GatewayError):
    """The producer could not start: no bootstrap server answered; `args[0]` is the error."""


class TopicMissingError(GatewayError):
    """The consent topic does not exist (the worker creates it); `args[0]` is its name."""


async def publish_consent(
    bootstrap: str,
    topic: str,
    subject: str,
    value: bytes | None,
    *,
    security: ClientSecurity = PLAINTEXT,
) -> tuple[int, int]:
    """Publish one consent record (or tombstone) with acks=all; return (partition, offset).

    `security` is how the producer authenticates (`topologies.security`).

    Raises `ClusterUnreachableError` if no bootstrap server answers (nothing was sent), and
    `TopicsNotAuthorizedError` if the broker's ACLs do not let the principal write to `topic`,
    `TopicMissingError` if it does not exist (nothing was written either way); the producer
    is closed however this ends, a failed start included.
    """
    from aiokafka import AIOKafkaProducer
    from aiokafka.errors import (
        ClusterAuthorizationFailedError,
        KafkaConnectionError,
        TopicAuthorizationFailedError,
        UnknownTopicOrPartitionError,
    )

    from topologies.admin import TopicsNotAuthorizedError

    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, **security.aiokafka()
    )
    try:
        try:
            await producer.start()
        except KafkaConnectionError as exc:
            raise ClusterUnreachableError(exc) from exc
        meta = await producer.send_and_wait(topic, value, key=subject.encode())
    except (TopicAuthorizationFailedError, ClusterAuthorizationFailedError):
        raise TopicsNotAuthorizedError("write to", [topic]) from None
    except UnknownTopicOrPartitionError:
        raise TopicMissingError(topic) from None
    finally:
        await producer.stop()
    return meta.partition, meta.offset


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `gateway consent` to the `gateway` command's subcommands."""
    consent = sub.add_parser(
        "consent",
        help="publish one consent record (acks=all)",
        description="Publish one consent record (or a tombstone) with acks=all. Contradictory "
        "options, an invalid --file, an unreachable cluster or a principal the broker does not "
        "let write the consent topic: one line, exit 2, nothing sent.",
    )
    consent.add_argument("--subject", required=True, help="the subject id (the record key)")
    consent.add_argument("--grant", default="", help=f"comma-separated purposes: {PURPOSE_HELP}")
    consent.add_argument("--deny", default="", help="comma-separated purposes to deny")
    consent.add_argument(
        "--under-13",
        choices=("true", "false", "unknown"),
        help="whether the subject is under 13 (default: false)",
    )
    consent.add_argument(
        "--parental-consent", action="store_true", help="a parent consented (default: no)"
    )
    consent.add_argument("--tombstone", action="store_true", help="erase the subject (null value)")
    consent.add_argument(
        "--file",
        type=Path,
        help="publish this JSON consent record instead (checked as the gateway reads it)",
    )
    consent.add_argument("--config", type=Path, help="config folder, for the topic name")
    consent.set_defaults(handler=_consent)


class RefusalError(GatewayError):
    """`gateway consent` publishes nothing; the message says why (never a record's values)."""


def _purposes(text: str) -> set[str]:
    return {p.strip() for p in text.split(",") if p.strip()}


def check_options(args: argparse.Namespace) -> None:
    """Refuse empty or contradictory options (`RefusalError`), before anything is read or sent."""
    if not args.subject.strip():
        raise RefusalError("--subject is empty; give the subject id (the record key)")
    granted, denied = _purposes(args.grant), _purposes(args.deny)
    unknown = (granted | denied) - set(PURPOSES)
    if unknown:
        raise RefusalError(f"unknown purposes: {', '.join(sorted(unknown))}; use {PURPOSE_HELP}")
    both = granted & denied
    if both:
        raise RefusalError(f"purposes both granted and denied: {', '.join(sorted(both))}")
    if args.tombstone or args.file is not None:
        others = [
            option
            for option, given in (
                ("--grant", bool(args.grant)),
                ("--deny", bool(args.deny)),
                ("--under-13", args.under_13 is not None),
                ("--parental-consent", args.parental_consent),
                ("--file", args.tombstone and args.file is not None),
            )
            if given
        ]
        if others:
            main = "--tombstone" if args.tombstone else "--file"
            raise RefusalError(f"{main} cannot be combined with {', '.join(others)}")


def file_record(path: Path, subject: str) -> bytes:
    """The file's bytes if the gateway accepts them as `subject`'s consent, else `RefusalError`.

    Checked with the gateway's own parser (`gateway.consent.parse_consent`); the message gives
    the reason and a value-free detail, never the file's values.
    """
    from gateway.consent import parse_consent
    from gateway.events import Invalid

    try:
        value = path.read_bytes()
    except OSError as exc:
        raise RefusalError(f"cannot read --file: {exc.strerror or type(exc).__name__}") from None
    parsed = parse_consent(value, subject.encode())
    if isinstance(parsed, Invalid):
        why = f"{parsed.reason}: {parsed.detail}"
        raise RefusalError(f"--file is not a valid consent record: {why}")
    return value


@refusing
def _consent(args: argparse.Namespace) -> int:
    from topologies.admin import TopicsNotAuthorizedError
    from topologies.worker import (
        load_checked_config,
        load_checked_security,
        not_authorized,
        quiet_kafka_client,
        unreachable,
    )

    value: bytes | None
    try:
        check_options(args)
        if args.tombstone:
            value = None
        elif args.file is not None:
            value = file_record(args.file, args.subject)
        else:
            purposes: dict[str, bool | None] = dict.fromkeys(_purposes(args.grant), True)
            purposes |= dict.fromkeys(_purposes(args.deny), False)
            under = {"true": True, "false": False, "unknown": None}[args.under_13 or "false"]
            value = consent_record(
                args.subject, rfc3339(time.time()), purposes,
                under_13=under, parental_consent=args.parental_consent, source="cli",
            )  # fmt: skip
    except RefusalError as exc:
        print(f"gateway consent: {exc}", file=sys.stderr)
        return 2
    settings = command_settings(args)
    config = load_checked_config(settings.config_dir)
    security = load_checked_security(settings)
    topic = config.settings.topics.consent
    try:
        with quiet_kafka_client(settings.security_protocol) as trouble:
            partition, offset = asyncio.run(
                publish_consent(settings.bootstrap, topic, args.subject, value, security=security)
            )
    except ClusterUnreachableError as exc:
        print(
            f"gateway consent: {unreachable(settings.bootstrap, exc.args[0], trouble)}; "
            "nothing was published",
            file=sys.stderr,
        )
        return 2
    except TopicsNotAuthorizedError as exc:
        print(
            f"gateway consent: {not_authorized(settings, exc.action, exc.topics)}; "
            "nothing was published (the privacy team's principal may write consent)",
            file=sys.stderr,
        )
        return 2
    except TopicMissingError:
        print(
            f"gateway consent: the topic {topic} does not exist (`gateway run` creates it at its "
            "start; check --config); nothing was published",
            file=sys.stderr,
        )
        return 2
    what = "tombstone" if value is None else "consent record"
    print(f"published {what} to {topic} partition {partition} offset {offset}")
    return 0

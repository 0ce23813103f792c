"""`gateway subject-report --subject ID`: one subject's standing per sink, for a privacy team.

A runtime command, shipped in the image, answering a data-subject request (privacy policy
section 5) or checking a late-found child (section 7). It reads, never writes: the subject's
records on the consent topic (applied with the gateway's own ordering rules), and the erasure
topic's notices. The report itself is pure (`gateway.subject_report`): per sink, whether
the current consent lets events through and why, the pseudonyms the sink knows the subject by
under the current and previous keys, and the notices published for it. No raw identifier is
printed except the asked id, echoed as `subject_id`.

Refused in one line, exit 2, before connecting: an empty `--subject`, an invalid environment or
config, missing keys. Ended in one line, exit 2, never a traceback and never a partial report: an
unreachable cluster (with the cause `gateway consent` names: refused SASL credentials, an
untrusted certificate, ...), a topic the principal may not describe or read, a topic that does
not exist, any other error the broker gives, and a topic not read to its end in time.

A topic is read to its end when the consumer's position reaches the end offset taken at the
start, not when a record at end-1 arrives: the last offset may be a transaction's commit or
abort marker, which no consumer ever receives.

`sticky_gpc` is null under `gpc: sticky`: the kept signal lives in the worker's table and its
changelog, not on the consent topic read here (`gateway.subject_report.STICKY_GPC_UNKNOWN`).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

from gateway.consent import apply_consent, parse_consent
from gateway.engine import Engine
from gateway.errors import GatewayError
from gateway.events import Invalid
from gateway.keys import KeyringError, load_keyring
from gateway.records import HEADER_DEDUP_ID
from gateway.subject_report import NoticeSeen, subject_report
from topologies.consent_cli import ClusterUnreachableError
from topologies.security import ClientSecurity
from topologies.worker_cli import command_settings, refusing

if TYPE_CHECKING:
    from aiokafka.structs import ConsumerRecord

READ_TIMEOUT = 60.0  # seconds to read a topic to the end offsets taken at the start
# Kafka's error codes in a topic's metadata (describe_topics) the report names.
_TOPIC_ERRORS = {3: "it does not exist", 29: "not authorized to describe or read it"}


class TopicUnreadableError(GatewayError):
    """A topic the report needs could not be read to its end: `topic` and `why`, one line."""

    def __init__(self, topic: str, why: str) -> None:
        super().__init__(f"cannot read {topic}: {why}")
        self.topic, self.why = topic, why


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `gateway subject-report` to the `gateway` command's subcommands."""
    report = sub.add_parser(
        "subject-report",
        help="one subject's consent, pseudonyms and erasure notices per sink (reads only)",
        description="Per sink: whether the subject's current consent lets events through and "
        "why (reason codes), the pseudonyms the sink knows the subject by (current and previous "
        "key), and the erasure notices published for it. Writes nothing to the broker.",
    )
    report.add_argument("--subject", required=True, help="the subject id asked about")
    report.add_argument("--config", type=Path, help="config folder (topics, sinks)")
    report.set_defaults(handler=_report)


async def _read_to_end(
    bootstrap: str, security: ClientSecurity, topic: str, key: bytes | None
) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record of `topic` from its start to its current end, assigned by hand, no group.

    With `key`, only the records with that key (every partition is read: a privacy team's
    look-up, not a hot path; a large consent topic takes seconds). A partition is done when the
    consumer's position reaches its end offset (module docstring: a transaction marker may be
    the last offset). Raises `ClusterUnreachableError` when no bootstrap server answers, and
    `TopicUnreadableError` for a topic that is missing, not authorized, refused with another
    Kafka error, or not read to its end in `READ_TIMEOUT` seconds.
    """
    from aiokafka import AIOKafkaConsumer, TopicPartition
    from aiokafka.errors import KafkaConnectionError, KafkaError, TopicAuthorizationFailedError

    counts = await _partition_count(bootstrap, security, topic)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest",
        isolation_level="read_committed",  # as the worker reads consent: aborted ones never count
        **security.aiokafka(),
    )  # fmt: skip
    try:
        try:
            await consumer.start()
        except KafkaConnectionError as exc:
            raise ClusterUnreachableError(exc) from exc
        tps = [TopicPartition(topic, p) for p in range(counts)]
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        await consumer.seek_to_beginning(*tps)
        found: list[ConsumerRecord[bytes, bytes]] = []
        left = {tp: end for tp, end in ends.items() if end > 0}
        deadline = time.monotonic() + READ_TIMEOUT
        while True:
            for tp in list(left):
                if await consumer.position(tp) >= left[tp]:
                    del left[tp]
            if not left:
                return found
            if time.monotonic() > deadline:
                why = f"not read to its end in {READ_TIMEOUT:.0f} s"
                raise TopicUnreadableError(topic, why)
            batch = await consumer.getmany(*left, timeout_ms=500)
            for records in batch.values():
                found += [r for r in records if key is None or r.key == key]
    except TopicAuthorizationFailedError as exc:
        raise TopicUnreadableError(topic, _TOPIC_ERRORS[29]) from exc
    except KafkaConnectionError as exc:
        raise ClusterUnreachableError(exc) from exc
    except KafkaError as exc:
        raise TopicUnreadableError(topic, f"the broker answered {type(exc).__name__}") from exc
    finally:
        await consumer.stop()


async def _partition_count(bootstrap: str, security: ClientSecurity, topic: str) -> int:
    """The topic's partition count; raises as `_read_to_end` does (missing, not authorized)."""
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.errors import KafkaConnectionError, KafkaError

    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, request_timeout_ms=15000, **security.aiokafka()
    )
    try:
        await admin.start()
        (described,) = await admin.describe_topics([topic])
    except KafkaConnectionError as exc:
        raise ClusterUnreachableError(exc) from exc
    except KafkaError as exc:
        raise TopicUnreadableError(topic, f"the broker answered {type(exc).__name__}") from exc
    finally:
        await admin.close()
    code = described.get("error_code", 0)
    if code:
        raise TopicUnreadableError(topic, _TOPIC_ERRORS.get(code, f"Kafka error code {code}"))
    return len(described["partitions"])


async def read_state(
    bootstrap: str, security: ClientSecurity, topic: str, subject: str, tolerance: float
) -> int | None:
    """The subject's current state, from its records on the consent topic (None: unknown).

    Applied in order with the gateway's own rules (`gateway.consent`: ordering time with the
    Kafka timestamp and `tolerance` seconds, stale records ignored, a tombstone erases), as the
    worker's feed does. A sticky GPC signal lives only in the worker's table and is not shown.
    """
    state: int | None = None
    for record in await _read_to_end(bootstrap, security, topic, subject.encode()):
        parsed = parse_consent(
            record.value, record.key, record_timestamp_ms=record.timestamp,
            clock_tolerance_seconds=tolerance,
        )  # fmt: skip
        if not isinstance(parsed, Invalid):
            state, _ = apply_consent(state, parsed)
    return state


async def read_notices(bootstrap: str, security: ClientSecurity, topic: str) -> list[NoticeSeen]:
    """Every record of the erasure topic, parsed (unparsable ones are skipped)."""
    notices: list[NoticeSeen] = []
    for record in await _read_to_end(bootstrap, security, topic, None):
        try:
            value = orjson.loads(record.value or b"")
        except orjson.JSONDecodeError:
            continue
        dedup = dict(record.headers).get(HEADER_DEDUP_ID)
        notices.append(
            NoticeSeen(
                value, record.partition, record.offset, record.timestamp,
                None if dedup is None else dedup.decode(),
            )
        )  # fmt: skip
    return notices


@refusing
def _report(args: argparse.Namespace) -> int:
    from topologies.worker import (
        load_checked_config,
        load_checked_security,
        quiet_kafka_client,
        unreachable,
    )

    if not args.subject.strip():
        print("gateway subject-report: --subject is empty; give the subject id", file=sys.stderr)
        return 2
    settings = command_settings(args)
    config = load_checked_config(settings.config_dir)
    names = [rule.name for rule in config.sinks]
    try:
        keyring = load_keyring(os.environ, names, secret_file=settings.keys_file)
    except KeyringError as exc:
        problems = "; ".join(exc.problems)
        print(f"gateway subject-report: the sinks' keys are needed: {problems}", file=sys.stderr)
        return 2
    security = load_checked_security(settings)
    engine = Engine(config, keyring)
    topics = config.settings.topics
    bootstrap = settings.bootstrap

    async def gather() -> tuple[int | None, list[NoticeSeen]]:
        state = await read_state(
            bootstrap, security, topics.consent, args.subject,
            config.settings.consent_clock_tolerance_seconds,
        )  # fmt: skip
        return state, await read_notices(bootstrap, security, topics.erasure)

    try:
        with quiet_kafka_client() as trouble:
            state, notices = asyncio.run(gather())
    except ClusterUnreachableError as exc:
        print(
            f"gateway subject-report: {unreachable(settings.bootstrap, exc.args[0], trouble)}",
            file=sys.stderr,
        )
        return 2
    except TopicUnreadableError as exc:
        print(f"gateway subject-report: {exc}; no report", file=sys.stderr)
        return 2
    report = subject_report(engine, args.subject, state, notices)
    print(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode())
    return 0

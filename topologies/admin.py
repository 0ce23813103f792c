"""Topic administration: create missing topics with the right settings, read partition counts.

A topic the broker refuses to describe or create for this client's principal (its ACLs) raises
`TopicsNotAuthorizedError` at once, naming the topics, instead of looking like a missing topic.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from gateway.errors import GatewayError
from topologies.security import PLAINTEXT, ClientSecurity

# Kafka's error codes for a request the authorizer refused (TOPIC_/CLUSTER_AUTHORIZATION_FAILED).
_NOT_AUTHORIZED = frozenset({29, 31})


class TopicsNotAuthorizedError(GatewayError):
    """The broker refused this client's principal `action` ("describe", "create") on `topics`."""

    def __init__(self, action: str, topics: Iterable[str]) -> None:
        self.action = action
        self.topics = sorted(set(topics))
        super().__init__(f"not authorized to {action} {', '.join(self.topics)}")


@dataclass(frozen=True)
class TopicSpec:
    """A topic the worker needs: its name, partition count, compaction and other configs.

    `configs` are Kafka topic configs by their Kafka names (`retention.ms`, ...);
    `compacted` adds `cleanup.policy=compact` unless `configs` sets a policy.
    """

    name: str
    partitions: int
    compacted: bool = False
    configs: Mapping[str, str] = field(default_factory=dict)

    def new_topic(self, replication: int) -> NewTopic:
        """The admin request creating this topic, each partition kept on `replication` brokers."""
        configs = dict(self.configs)
        if self.compacted:
            configs.setdefault("cleanup.policy", "compact")
        return NewTopic(self.name, self.partitions, replication, topic_configs=configs)


async def partition_counts(admin: AIOKafkaAdminClient, names: Iterable[str]) -> dict[str, int]:
    """Partition count per existing topic; missing topics are left out.

    Raises `TopicsNotAuthorizedError` naming every topic the principal may not describe.
    """
    wanted = set(names)
    described = await admin.describe_topics(sorted(wanted))
    refused = [t["topic"] for t in described if t.get("error_code", 0) in _NOT_AUTHORIZED]
    if refused:
        raise TopicsNotAuthorizedError("describe", refused)
    counts: dict[str, int] = {}
    for topic in described:
        if topic.get("error_code", 0) == 0 and topic["topic"] in wanted:
            counts[topic["topic"]] = len(topic["partitions"])
    return counts


async def ensure_topics(
    bootstrap: str,
    specs: Iterable[TopicSpec],
    *,
    replication: int = 1,
    security: ClientSecurity = PLAINTEXT,
) -> dict[str, int]:
    """Create the topics that do not exist; return the partition count of every named topic.

    `security` is how the admin client authenticates (`topologies.security`). Raises
    `TopicsNotAuthorizedError` when the principal may not describe or create named topics.
    """
    specs = list(specs)
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, request_timeout_ms=15000, **security.aiokafka()
    )
    try:
        await admin.start()
        existing = await partition_counts(admin, (s.name for s in specs))
        missing = [s.new_topic(replication) for s in specs if s.name not in existing]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):
                created = await admin.create_topics(missing, timeout_ms=15000)
                refused = [e[0] for e in created.topic_errors if e[1] in _NOT_AUTHORIZED]
                if refused:
                    raise TopicsNotAuthorizedError("create", refused)
        # New topics may describe with an error until their leaders are elected: wait for all.
        names = [s.name for s in specs]
        deadline = time.monotonic() + 30.0
        counts = await partition_counts(admin, names)
        while len(counts) < len(set(names)) and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            counts = await partition_counts(admin, names)
        absent = sorted(set(names) - set(counts))
        if absent:
            raise RuntimeError(f"topics not available after creation: {', '.join(absent)}")
        return counts
    finally:
        await admin.close()


async def describe_partitions(
    bootstrap: str, names: Iterable[str], *, security: ClientSecurity = PLAINTEXT
) -> dict[str, int]:
    """Partition count of each named topic that exists (`security`: how to authenticate)."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, request_timeout_ms=15000, **security.aiokafka()
    )
    try:
        await admin.start()
        return await partition_counts(admin, names)
    finally:
        await admin.close()

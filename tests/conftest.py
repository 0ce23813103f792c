"""Shared fixtures: a real Kafka broker (the project's own or KAFKA_BOOTSTRAP), unique topics."""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Awaitable, Callable, Iterator

import pytest

from topologies.admin import TopicSpec, ensure_topics

TopicFactory = Callable[..., Awaitable[str]]


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """The address of a real broker: KAFKA_BOOTSTRAP, or the local one (started if needed).

    A broker this session started is stopped at the end; one that was already running is left.
    """
    configured = os.environ.get("KAFKA_BOOTSTRAP")
    if configured:
        yield configured
        return
    from devtools import local_broker

    state, reused = local_broker.up(log=False)
    try:
        yield state.bootstrap
    finally:
        if not reused:
            local_broker.down()


@pytest.fixture
def unique_name(request: pytest.FixtureRequest) -> Callable[[str], str]:
    """Topic/group names unique to this test: `<prefix>.<test name>.<random>`."""
    test = re.sub(r"[^A-Za-z0-9]+", "-", request.node.name)[:60].strip("-")
    token = uuid.uuid4().hex[:8]

    def make(prefix: str) -> str:
        return f"{prefix}.{test}.{token}"

    return make


@pytest.fixture
def make_topic(kafka_bootstrap: str, unique_name: Callable[[str], str]) -> TopicFactory:
    """Create a fresh topic on the real broker and return its name."""

    async def create(prefix: str, partitions: int = 1, *, compacted: bool = False) -> str:
        name = unique_name(prefix)
        counts = await ensure_topics(kafka_bootstrap, [TopicSpec(name, partitions, compacted)])
        assert counts[name] == partitions
        return name

    return create

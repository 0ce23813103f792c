"""Fixtures for the ops tests: the real promtool and prometheus binaries, and a metrics endpoint.

Binaries are found through $PROMTOOL / $PROMETHEUS (a path), else on $PATH. A missing binary
fails the test; `make tools` (which `make test` runs first) installs them. Set
GATEWAY_ALLOW_NO_PROMTOOL=1 to skip instead, on machines that cannot install Debian's package.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest


def _binary(name: str, env: str) -> str:
    path = os.environ.get(env) or shutil.which(name)
    if path and Path(path).is_file():
        return path
    message = (
        f"{name} not found (set ${env} or put it on PATH; "
        "`make tools` installs Debian's prometheus package)"
    )
    if os.environ.get("GATEWAY_ALLOW_NO_PROMTOOL") == "1":
        pytest.skip(message)
    pytest.fail(message)


@pytest.fixture(scope="session")
def promtool() -> str:
    return _binary("promtool", "PROMTOOL")


@pytest.fixture(scope="session")
def prometheus_binary() -> str:
    return _binary("prometheus", "PROMETHEUS")


@pytest.fixture
async def metrics_endpoint(kafka_bootstrap: str, tmp_path: Path) -> AsyncIterator[str]:
    """`host:port` of the /metrics endpoint of a running `gateway run` worker on the real broker.

    Some traffic has gone through it first: a grant, valid events of both kinds, and an invalid
    record, so counters, histograms and gauges all have samples.
    """
    from tests.integration.stack import Stack
    from tests.integration.test_gateway import consent, device, everything, unique, usage

    stack = Stack(kafka_bootstrap, tmp_path, uuid.uuid4().hex[:8])
    await stack.start()
    try:
        subject = unique("subj-ops")
        await stack.consent(subject, consent(subject, everything(True)))
        await stack.event("usage", usage(subject, unique("ev-ops")))
        await stack.event("device", device(subject, unique("ev-ops")))
        await stack.send_raw("usage_raw", subject.encode(), b"{not json")
        await stack.flush()
        await stack.wait_consumed(3)
        await stack.wait_metric("gateway_consent_subjects", 1)
        yield f"127.0.0.1:{stack.metrics_port}"
    finally:
        await stack.close()
        stack.stop()

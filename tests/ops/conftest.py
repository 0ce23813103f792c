"""Fixtures for the ops tests: the real promtool and prometheus binaries, and a metrics endpoint.

Binaries are found through $PROMTOOL / $PROMETHEUS (a path), else on $PATH. A missing binary
fails the test; set GATEWAY_ALLOW_NO_PROMTOOL=1 to skip instead (for machines that cannot install
the Debian `prometheus` package; CI installs it).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, start_http_server

from gateway.metrics import BuildInfo, GatewayMetrics


def _binary(name: str, env: str) -> str:
    path = os.environ.get(env) or shutil.which(name)
    if path and Path(path).is_file():
        return path
    message = (
        f"{name} not found (set ${env} or put it on PATH; "
        "apt-get install -y --no-install-recommends prometheus)"
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
def metrics_endpoint() -> Iterator[str]:
    """`host:port` of a live /metrics endpoint that exposes GatewayMetrics.

    Today: prometheus_client's own HTTP server on a free loopback port, with some traffic
    counted. To be switched to a running `gateway run` worker; tests that use this fixture assert
    only on series names and label sets, never on how the endpoint was made.
    """
    registry = CollectorRegistry()
    metrics = GatewayMetrics(
        registry,
        sinks=("analytics", "ads", "social"),
        topics=("events.usage.raw", "events.device.raw"),
        build_info=BuildInfo("0.1.0", "3.11.0", "0.11.3", "0.14.0"),
    )
    metrics.config_loaded("test-config")
    metrics.event_consumed("events.usage.raw", 10)
    metrics.decision("analytics", "forward", "consented", 7)
    metrics.decision("ads", "drop", "consent_denied", 3)
    metrics.sink_write("analytics", 7)
    metrics.audit_write(3)
    metrics.observe_latency("analytics", 0.02)
    metrics.batch_processed(size=10, seconds=0.004, now=1_700_000_000.0)
    metrics.consent_applied(updated_at=1_700_000_000.0, now=1_700_000_001.0)
    metrics.set_consumer_lag("events.usage.raw", 0, 0)
    metrics.set_consent_lag(0, 0)
    server, thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    try:
        yield f"127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

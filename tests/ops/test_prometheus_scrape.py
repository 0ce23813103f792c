"""A real Prometheus server scrapes the metrics endpoint; the gateway series show up in its API."""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

JOB = "gateway-under-test"
# Series every gateway exposes from its first scrape, before any traffic: counters and
# histograms are pre-initialised at 0. Lag gauges appear only once partitions are assigned.
REQUIRED_AT_START = {
    "gateway_events_consumed_total",
    "gateway_decisions_total",
    "gateway_invalid_records_total",
    "gateway_dlq_writes_total",
    "gateway_audit_writes_total",
    "gateway_sink_writes_total",
    "gateway_end_to_end_latency_seconds_bucket",
    "gateway_end_to_end_latency_seconds_count",
    "gateway_end_to_end_latency_seconds_sum",
    "gateway_processing_seconds_bucket",
    "gateway_batch_size_bucket",
    "gateway_barrier_wait_seconds_bucket",
    "gateway_consent_records_total",
    "gateway_consent_subjects",
    "gateway_consent_newest_applied_timestamp_seconds",
    "gateway_consent_last_applied_time_seconds",
    "gateway_last_event_processed_time_seconds",
    "gateway_config_info",
    "gateway_config_reloads_total",
    "gateway_build_info",
}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


def query(base: str, promql: str) -> list[dict[str, Any]]:
    body = get_json(f"{base}/api/v1/query?{urllib.parse.urlencode({'query': promql})}")
    assert body["status"] == "success", body
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def wait_until_ready(base: str, process: subprocess.Popen[bytes], deadline: float) -> None:
    while time.monotonic() < deadline:
        assert process.poll() is None, "prometheus exited during start-up"
        try:
            with urllib.request.urlopen(f"{base}/-/ready", timeout=1) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    pytest.fail("prometheus did not become ready")


@pytest.fixture
def prometheus_server(
    prometheus_binary: str, metrics_endpoint: str, tmp_path: Path
) -> Iterator[str]:
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [{"job_name": JOB, "static_configs": [{"targets": [metrics_endpoint]}]}],
    }
    config_file = tmp_path / "prometheus.yml"
    config_file.write_text(yaml.safe_dump(config), encoding="utf-8")
    port = free_port()
    log = (tmp_path / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [
            prometheus_binary,
            f"--config.file={config_file}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(base, process, time.monotonic() + 30)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()


def scraped_names(base: str, deadline: float) -> set[str]:
    names: set[str] = set()
    while time.monotonic() < deadline:
        up = query(base, f'up{{job="{JOB}"}}')
        if up and up[0]["value"][1] == "1":
            series = query(base, f'count by (__name__) ({{job="{JOB}", __name__=~"gateway_.+"}})')
            names = {s["metric"]["__name__"] for s in series}
            if names >= REQUIRED_AT_START:
                return names
        time.sleep(0.5)
    return names


@pytest.mark.ops
def test_when_prometheus_scrapes_the_gateway_then_every_series_is_queryable(
    prometheus_server: str,
) -> None:
    names = scraped_names(prometheus_server, time.monotonic() + 30)
    assert REQUIRED_AT_START - names == set()

    verdicts = query(prometheus_server, "count by (verdict) (gateway_decisions_total)")
    assert {s["metric"]["verdict"] for s in verdicts} == {"forward", "drop"}
    outcomes = query(prometheus_server, "count by (outcome) (gateway_consent_records_total)")
    assert {s["metric"]["outcome"] for s in outcomes} == {
        "applied",
        "stale",
        "tombstone",
        "invalid",
    }
    build = query(prometheus_server, "gateway_build_info")
    assert len(build) == 1
    assert build[0]["value"][1] == "1"

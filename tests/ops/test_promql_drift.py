"""The dashboard and the alert rules query only metrics that GatewayMetrics defines.

Renaming a metric in gateway/metrics.py without updating config/ fails here, not on a dark
dashboard in production.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from gateway.metrics import GatewayMetrics

REPO = Path(__file__).resolve().parents[2]
DASHBOARD = REPO / "config" / "grafana" / "dashboards" / "gateway.json"
ALERTS = REPO / "config" / "prometheus" / "alerts.yml"
# Series Prometheus itself adds to every target.
PROMETHEUS_SERIES = {"up"}

_KEYWORDS = {
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
    "offset", "bool", "inf", "nan", "atan2",
}  # fmt: skip
_SUFFIXES = {
    "counter": ("_total",),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum"),
}


def metric_names(expr: str) -> set[str]:
    """Metric names referenced by a PromQL expression (functions, labels, keywords left out)."""
    s = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)
    s = re.sub(r"\{[^}]*\}", "", s)  # label matchers
    s = re.sub(r"\$\{?\w+\}?", "1", s)  # Grafana variables such as $__rate_interval
    s = re.sub(r"\[[^\]]*\]", "", s)  # range selectors and subqueries
    s = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", s)
    s = re.sub(r"\boffset\s+-?[\w]+", "", s)
    found = re.findall(r"(?<![\w.:])([A-Za-z_:][\w:]*)\b(?!\s*\()", s)
    return {name for name in found if name.lower() not in _KEYWORDS}


def defined_series() -> set[str]:
    """Every sample name GatewayMetrics can expose, from the registry it fills."""
    registry = CollectorRegistry()
    GatewayMetrics(registry, sinks=("analytics",), topics=("events.usage.raw",))
    return {
        family.name + suffix for family in registry.collect() for suffix in _SUFFIXES[family.type]
    }


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return loaded


def dashboard_exprs() -> list[tuple[str, str]]:
    def walk(panels: list[dict[str, Any]]) -> list[tuple[str, str]]:
        out = []
        for panel in panels:
            out += [(panel["title"], t["expr"]) for t in panel.get("targets", [])]
            out += walk(panel.get("panels", []))
        return out

    return walk(dashboard()["panels"])


def alert_exprs() -> list[tuple[str, str]]:
    groups = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))["groups"]
    return [(r.get("alert") or r["record"], r["expr"]) for g in groups for r in g["rules"]]


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        (
            'histogram_quantile(0.99, sum by (le, sink) (rate(a_seconds_bucket{sink=~"$sink"}'
            "[$__rate_interval])))",
            {"a_seconds_bucket"},
        ),
        ('sum(rate(x_total{reason="gpc"}[5m])) by (sink) / ignoring(v) y', {"x_total", "y"}),
        ("time() - max(z) > 1e3 and on () w offset 10m", {"z", "w"}),
        ('absent(up{job="gateway"}) or label_replace(q, "dst", "$1", "src", "(.*)")', {"up", "q"}),
    ],
)
def test_when_an_expression_is_parsed_then_only_metric_names_are_extracted(
    expr: str, expected: set[str]
) -> None:
    assert metric_names(expr) == expected


def test_when_the_dashboard_is_loaded_then_it_is_valid_json_with_panels_and_queries() -> None:
    board = dashboard()
    assert board["uid"] == "privacy-gateway"
    exprs = dashboard_exprs()
    assert len(exprs) >= 10
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids)), "duplicate panel ids"
    for panel in board["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "prometheus", panel["title"]


def test_when_dashboard_queries_are_read_then_each_names_only_defined_metrics() -> None:
    known = defined_series() | PROMETHEUS_SERIES
    for title, expr in dashboard_exprs():
        names = metric_names(expr)
        assert names, f"{title}: no metric in {expr!r}"
        assert names - known == set(), f"{title}: unknown metric in {expr!r}"
    for variable in dashboard()["templating"]["list"]:
        match = re.fullmatch(r"label_values\((\w+),\s*\w+\)", variable["query"]["query"])
        assert match, variable["name"]
        assert match.group(1) in known, variable["name"]


def test_when_alert_rules_are_read_then_each_names_only_defined_metrics() -> None:
    known = defined_series() | PROMETHEUS_SERIES
    for name, expr in alert_exprs():
        names = metric_names(expr)
        assert names, f"{name}: no metric"
        assert names - known == set(), f"{name}: unknown metric in {expr!r}"


def test_when_the_dashboard_is_read_then_it_covers_the_operators_questions() -> None:
    used = set().union(*(metric_names(e) for _, e in dashboard_exprs()))
    for series in (
        "gateway_decisions_total",  # flow per sink, drops by reason
        "gateway_end_to_end_latency_seconds_bucket",
        "gateway_consumer_lag_records",
        "gateway_consent_newest_applied_timestamp_seconds",
        "gateway_consent_lag_records",
        "gateway_dlq_writes_total",
        "gateway_invalid_records_total",
        "gateway_barrier_wait_seconds_bucket",
    ):
        assert series in used, series
    quantiles = {
        q for _, e in dashboard_exprs() for q in re.findall(r"histogram_quantile\((0\.\d+)", e)
    }
    assert {"0.5", "0.95", "0.99"} <= quantiles


def test_when_grafana_provisioning_is_read_then_it_points_at_the_dashboard_and_prometheus() -> None:
    provisioning = REPO / "config" / "grafana" / "provisioning"
    datasources = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())
    (source,) = datasources["datasources"]
    assert source["uid"] == "prometheus"
    assert source["url"] == "http://prometheus:9090"
    providers = yaml.safe_load((provisioning / "dashboards" / "gateway.yml").read_text())
    assert providers["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"


def test_when_metrics_are_documented_then_every_family_has_a_row_in_docs() -> None:
    text = (REPO / "docs" / "metrics.md").read_text(encoding="utf-8")
    registry = CollectorRegistry()
    GatewayMetrics(registry, sinks=("analytics",), topics=("events.usage.raw",))
    for family in registry.collect():
        name = family.name + ("_total" if family.type == "counter" else "")
        assert f"| `{name}` | {family.type}" in text, f"{name} is not documented"


def test_when_docs_show_promql_then_it_names_only_defined_metrics() -> None:
    text = (REPO / "docs" / "metrics.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```promql\n(.*?)```", text, flags=re.DOTALL)
    assert len(blocks) >= 3
    known = defined_series() | PROMETHEUS_SERIES
    for block in blocks:
        names = metric_names(block)
        assert names, block
        assert names - known == set(), block

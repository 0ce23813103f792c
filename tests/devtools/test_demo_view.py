"""The demo's live view: one terminal screen, whatever the reasons."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from rich.console import Console

from devtools.demo import parse_sample, render
from gateway.metrics import GatewayMetrics

SINKS = ("analytics", "ads", "social", "partner_a", "partner_b")


def snapshot(scale: int) -> str:
    """Metrics text of a worker where every sink saw every forward and drop reason."""
    registry = CollectorRegistry()
    metrics = GatewayMetrics(registry, sinks=SINKS, topics=["events.usage.raw"])
    for sink in SINKS:
        for verdict, reasons in metrics.reasons.items():
            for n, reason in enumerate(sorted(reasons), start=1):
                metrics.decision(sink, verdict, reason, n * scale)
    return generate_latest(registry).decode()


def lines_of(detail: bool) -> list[str]:
    before = parse_sample(snapshot(1), 100.0)
    now = parse_sample(snapshot(3), 101.0)
    console = Console(height=40, width=120, record=True, force_terminal=False)
    view = render(now, before, "sent 1000 events", Path("/tmp/demo-logs"), detail=detail)
    console.print(view)
    return console.export_text().splitlines()


def test_when_every_reason_is_non_zero_then_the_view_fits_one_40_row_screen() -> None:
    lines = lines_of(detail=False)
    assert len(lines) <= 40, "\n".join(lines)
    text = "\n".join(lines)
    for sink in SINKS:
        assert sink in text
    assert "more" in text  # the reasons beyond the top ones are counted, shown with --detail


def test_when_detail_is_asked_then_every_drop_reason_of_every_sink_is_listed() -> None:
    text = "\n".join(lines_of(detail=True))
    metrics = GatewayMetrics(CollectorRegistry(), sinks=SINKS, topics=["events.usage.raw"])
    for reason in metrics.reasons["drop"]:
        assert reason in text

"""PNG charts of a run (matplotlib, Agg backend): throughput per yardstick, latency over time.

- `<stem>-throughput.png`: events/s per yardstick, the median as a bar, min-max as an error bar,
  the batch baseline's 0.8x target as a line.
- `<stem>-latency.png`: per-second p99 (and p50) over each latency window, the gateway's and the
  batch baseline's repetitions; the gateway's notable garbage collections as marks on the time
  axis; under it, the cores the broker and the rest of the machine used each second.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from benchmarks.report import BASELINE, VARIANTS


def throughput_chart(summary: dict[str, Any], path: Path, title: str) -> Path:
    keys = [k for k, _ in VARIANTS] + ["broker"]
    names = {
        "batch": "aiokafka\nbatch API", "per-record": "aiokafka\nper-record",
        "confluent": "confluent-kafka\n(librdkafka)", "gateway": "gateway\n1 worker",
        "broker": "broker ceiling\n(perf tools)",
    }  # fmt: skip
    figs = [summary["throughput"][k]["events_per_s"] for k in keys]
    medians = [0.0 if math.isnan(s.median) else s.median for s in figs]
    lows = [m - (s.low if s.n else m) for m, s in zip(medians, figs, strict=True)]
    highs = [(s.high if s.n else m) - m for m, s in zip(medians, figs, strict=True)]
    colours = ["#4c72b0", "#8c8c8c", "#55a868", "#c44e52", "#8172b2"]
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
    ax.bar(range(len(keys)), medians, yerr=[lows, highs], capsize=6, color=colours)
    base = summary["throughput"][BASELINE]["events_per_s"].median
    if not math.isnan(base):
        ax.axhline(0.8 * base, color="#c44e52", linestyle="--", linewidth=1)
        ax.text(len(keys) - 0.5, 0.8 * base, " 0.8x batch", va="bottom", ha="right", fontsize=8)
    for x, m in enumerate(medians):
        ax.text(x, m, f"{m:,.0f}", ha="center", va="bottom", fontsize=8)
    ax.set_xticks(range(len(keys)), [names[k] for k in keys], fontsize=8)
    ax.set_ylabel("events/s (median, min-max)")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def latency_chart(reps: dict[str, list[dict[str, Any]]], path: Path, title: str) -> Path:
    fig, (ax, res) = plt.subplots(
        2, 1, figsize=(10, 6), dpi=110, sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    styles = {"gateway": "#c44e52", "baseline": "#4c72b0"}
    for who, colour in styles.items():
        for r, window in enumerate(reps.get(f"{who}_latency", [])):
            series = window["series"]
            t = [row["second"] for row in series]
            label = f"{who} p99" if r == 0 else None
            ax.plot(t, [row["p99_ms"] for row in series], color=colour, alpha=0.8, lw=1,
                    label=label)  # fmt: skip
            ax.plot(t, [row["p50_ms"] for row in series], color=colour, alpha=0.4, lw=0.8,
                    linestyle=":", label=f"{who} p50" if r == 0 else None)  # fmt: skip
            if who == "gateway":
                pauses = [p["t"] for p in window.get("gc_pauses", []) if p["generation"] >= 2]
                ax.plot(pauses, [1.0] * len(pauses), "|", color="black", markersize=10,
                        label="gateway gen-2 GC" if r == 0 and pauses else None)  # fmt: skip
                seconds = [row["second"] for row in series]
                for key, shade, label in (
                    ("broker_cores", "#8172b2", "broker cores"),
                    ("foreign_cores", "#937860", "other load cores"),
                ):
                    res.plot(seconds, [row.get(key, math.nan) for row in series], color=shade,
                             lw=0.8, label=label if r == 0 else None)  # fmt: skip
    ax.set_yscale("log")
    ax.set_ylabel("latency per second of sending (ms)")
    ax.set_title(title, fontsize=10)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, loc="upper right")
    res.set_xlabel("seconds into the window")
    res.set_ylabel("cores")
    if res.get_legend_handles_labels()[0]:
        res.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path

"""timestamp: coarsen an RFC 3339 timestamp to the minute, hour or day (UTC, `Z` suffix).

Every accepted timestamp gives a valid RFC 3339 output at a unit boundary: a leap second
(23:59:60) falls in its minute 23:59; an instant in year 0000 UTC (from "0001-01-01T00:30:00+01:00")
is written with year 0000; an instant after year 9999 UTC (from "9999-12-31T23:59:59-01:00") is
clamped to the last unit start of 9999-12-31 (e.g. "9999-12-31T23:00:00Z" for hours).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from gateway.operators.base import (
    COPIES,
    DROP,
    TIMESTAMP,
    Operator,
    OperatorConfig,
    OperatorTools,
    Synthesis,
)
from gateway.strictjson import LAST_FORMATTED_US, format_rfc3339_us, parse_rfc3339_us

_UNIT_US = {"minute": 60_000_000, "hour": 3_600_000_000, "day": 86_400_000_000}


class TimestampConfig(OperatorConfig):
    """`unit`: minute, hour (default) or day."""

    op: Literal["timestamp"]
    unit: Literal["minute", "hour", "day"] = "hour"


class Timestamp(Operator):
    """Round a timestamp down to the start of its unit.

    The plan hands `apply_us` the event's `occurred_at_us`, which parse_event already computed;
    `apply` (text in) parses first and is for any other caller.
    """

    name: ClassVar[str] = "timestamp"
    config_model: ClassVar[type[OperatorConfig]] = TimestampConfig
    field_classes: ClassVar[frozenset[str]] = frozenset({TIMESTAMP})

    def __init__(self, config: OperatorConfig, tools: OperatorTools) -> None:
        super().__init__(config, tools)
        assert isinstance(config, TimestampConfig)
        self._unit = _UNIT_US[config.unit]
        self._last_start = LAST_FORMATTED_US - LAST_FORMATTED_US % self._unit
        self._last: tuple[int, str] = (-1, "")

    def synthesis(self) -> Synthesis:
        """Nothing the value guard rewrites.

        Only `occurred_at` is of its class, and the guard never rewrites that validated
        timestamp (gateway.guard, TIMESTAMP_FIELD).
        """
        return COPIES

    def apply(self, value: Any) -> Any:
        """The unit start of an RFC 3339 timestamp, as RFC 3339 text; DROP for anything else."""
        if type(value) is not str:
            return DROP
        epoch_us = parse_rfc3339_us(value)
        return DROP if epoch_us is None else self.apply_us(epoch_us)

    def apply_us(self, epoch_us: int) -> str:
        """The unit start of an instant (µs since the epoch, UTC) as RFC 3339 text."""
        start = min(epoch_us - epoch_us % self._unit, self._last_start)
        last_start, last_text = self._last
        if start == last_start:  # events arrive roughly in order: reuse the formatted string
            return last_text
        text = format_rfc3339_us(start)
        self._last = (start, text)
        return text

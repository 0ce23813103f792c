"""keep: pass the value through unchanged. Never allowed on identifiers, URLs or user agents."""

from __future__ import annotations

from typing import Any, ClassVar

from gateway.operators.base import PLAIN, PROPERTY, TIMESTAMP, Operator


class Keep(Operator):
    """Copy the value as it is."""

    name: ClassVar[str] = "keep"
    field_classes: ClassVar[frozenset[str]] = frozenset({PLAIN, PROPERTY, TIMESTAMP})

    def apply(self, value: Any) -> Any:
        return value

"""keep: pass the value through unchanged. Never allowed on identifiers, URLs or user agents."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from gateway.operators.base import (
    COPIES,
    PLAIN,
    PROPERTY,
    TIMESTAMP,
    Operator,
    OperatorConfig,
    Synthesis,
)


class KeepConfig(OperatorConfig):
    """No options."""

    op: Literal["keep"]


class Keep(Operator):
    """Copy the value as it is."""

    name: ClassVar[str] = "keep"
    config_model: ClassVar[type[OperatorConfig]] = KeepConfig
    field_classes: ClassVar[frozenset[str]] = frozenset({PLAIN, PROPERTY, TIMESTAMP})

    def synthesis(self) -> Synthesis:
        """The value as it is: nothing written."""
        return COPIES

    def apply(self, value: Any) -> Any:
        """`value` itself."""
        return value

"""drop: remove the field. Same as not listing it; listing it documents the decision."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from gateway.operators.base import (
    ALL_CLASSES,
    COPIES,
    DROP,
    Operator,
    OperatorConfig,
    Synthesis,
)


class DropConfig(OperatorConfig):
    """No options."""

    op: Literal["drop"]


class Drop(Operator):
    """Remove the field from the output."""

    name: ClassVar[str] = "drop"
    config_model: ClassVar[type[OperatorConfig]] = DropConfig
    field_classes: ClassVar[frozenset[str]] = ALL_CLASSES

    def synthesis(self) -> Synthesis:
        """Nothing written."""
        return COPIES

    def apply(self, value: Any) -> Any:
        """Always DROP: the field is left out."""
        return DROP

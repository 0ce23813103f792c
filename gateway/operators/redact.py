"""redact: keep the field's presence but replace its value with a fixed marker."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

from gateway.operators.base import ALL_CLASSES, Operator, OperatorConfig, OperatorTools, Synthesis


class RedactConfig(OperatorConfig):
    """`replacement`: the marker written instead of the value (max 32 chars)."""

    op: Literal["redact"]
    replacement: str = Field(default="[redacted]", max_length=32)


class Redact(Operator):
    """Replace the value with the configured marker."""

    name: ClassVar[str] = "redact"
    config_model: ClassVar[type[OperatorConfig]] = RedactConfig
    field_classes: ClassVar[frozenset[str]] = ALL_CLASSES

    def __init__(self, config: OperatorConfig, tools: OperatorTools) -> None:
        super().__init__(config, tools)
        assert isinstance(config, RedactConfig)
        self._replacement = config.replacement

    def synthesis(self) -> Synthesis:
        """The marker, fixed text."""
        return Synthesis(vocabulary=(self._replacement,))

    def apply(self, value: Any) -> Any:
        """The configured marker, whatever `value` was."""
        return self._replacement

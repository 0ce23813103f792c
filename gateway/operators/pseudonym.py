"""pseudonym: a keyed BLAKE2b pseudonym of the value, under the sink's current key.

The key is per sink, so two sinks cannot join their data; the output names the key id in the
record's `pseudonym_key_id` field. Non-string values are dropped, never passed through.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from gateway.operators.base import (
    DROP,
    IDENTIFIER,
    IP,
    Operator,
    OperatorConfig,
    OperatorTools,
    Synthesis,
)

HEX_DIGITS = "0123456789abcdef"  # of a pseudonym (hashlib's hexdigest)


class PseudonymConfig(OperatorConfig):
    """No options: the key is the sink's (gateway.keys)."""

    op: Literal["pseudonym"]


class Pseudonym(Operator):
    """Replace an identifier by its keyed pseudonym (hex, 128 bits)."""

    name: ClassVar[str] = "pseudonym"
    config_model: ClassVar[type[OperatorConfig]] = PseudonymConfig
    field_classes: ClassVar[frozenset[str]] = frozenset({IDENTIFIER, IP})
    linkable: ClassVar[bool] = True

    def __init__(self, config: OperatorConfig, tools: OperatorTools) -> None:
        super().__init__(config, tools)
        self._pseudonymize = tools.pseudonymize

    def synthesis(self) -> Synthesis:
        """Generated whole from lower-case hex digits."""
        return Synthesis(alphabet=HEX_DIGITS)

    def apply(self, value: Any) -> Any:
        """The keyed pseudonym (hex) of a non-empty string; DROP for anything else."""
        if type(value) is not str or not value:
            return DROP
        return self._pseudonymize(value)

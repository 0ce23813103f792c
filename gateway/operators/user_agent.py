"""user_agent: generalise a raw User-Agent to browser family, major version and OS family.

Parsing uses ua-parser (see gateway.useragent); results are cached there, so the hot path is a
dict lookup for repeated agents. Output: {"browser": ..., "major": ..., "os": ...}.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from gateway.operators.base import (
    DROP,
    OPAQUE,
    USER_AGENT,
    Operator,
    OperatorConfig,
    OperatorTools,
    Synthesis,
)

OUTPUT_KEYS = ("browser", "major", "os")


class UserAgentConfig(OperatorConfig):
    """No options."""

    op: Literal["user_agent"]


class UserAgent(Operator):
    """Replace the User-Agent string by its coarse browser/OS description."""

    name: ClassVar[str] = "user_agent"
    config_model: ClassVar[type[OperatorConfig]] = UserAgentConfig
    field_classes: ClassVar[frozenset[str]] = frozenset({USER_AGENT})

    def __init__(self, config: OperatorConfig, tools: OperatorTools) -> None:
        super().__init__(config, tools)
        self._parse = tools.user_agent()

    def synthesis(self) -> Synthesis:
        """The parser's families (fixed text), the output's three keys, a major version's digits.

        OPAQUE with a parser that does not publish its `families` (an injected one).
        """
        families = getattr(self._parse, "families", None)
        if families is None:
            return OPAQUE
        return Synthesis(vocabulary=(*sorted(families), *OUTPUT_KEYS), alphabet="0123456789")

    def apply(self, value: Any) -> Any:
        """`{"browser", "major", "os"}` of a User-Agent string; DROP for anything else."""
        if type(value) is not str:
            return DROP
        browser, major, os_family = self._parse(value)
        return {"browser": browser, "major": major, "os": os_family}  # OUTPUT_KEYS

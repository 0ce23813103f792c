"""The operator interface: a small class with a typed config that transforms one field value.

An operator is built once per sink and field (config + tools passed in) and then `apply` runs on
the hot path. Returning `DROP` removes the field from the output.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, ClassVar, Final, NamedTuple

from pydantic import BaseModel, ConfigDict


class _Drop:
    __slots__ = ()

    def __repr__(self) -> str:
        return "DROP"


DROP: Final = _Drop()
"""Returned by `Operator.apply` to remove the field from the output."""

# Field classes decide which operators may touch a field (see gateway.fields).
IDENTIFIER = "identifier"
IP = "ip"
URL = "url"
USER_AGENT = "user_agent"
TIMESTAMP = "timestamp"
PLAIN = "plain"
PROPERTY = "property"
ALL_CLASSES = frozenset({IDENTIFIER, IP, URL, USER_AGENT, TIMESTAMP, PLAIN, PROPERTY})
# The one audience that is not a partner: stricter limits and defaults apply to all others.
INTERNAL = "internal"


class OperatorConfig(BaseModel):
    """Base of every operator config: the `op` name plus the operator's own typed options."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)
    op: str


@dataclass(frozen=True, slots=True)
class Refusal:
    """A config an operator refuses for a sink: where, why, and the name that may waive it.

    `path` is below the field's path; `exception` is the name under which an internal sink may
    allow it in `exceptions` (None: never allowed).
    """

    path: tuple[str | int, ...]
    message: str
    exception: str | None = None


UserAgentParser = Callable[[str], tuple[str | None, str | None, str | None]]


class Synthesis(NamedTuple):
    """What text an operator writes that is not a run copied from the input value.

    The value guard's proof (gateway.guard, `SynthesisRisk`) reads it: when an event's
    identifier values occur only in their own fields, an output can hold one only in text an
    operator wrote. `joiners` are the characters it puts between copied runs (url_clean's
    `/ ? & =`); `vocabulary` the fixed texts it writes (placeholders, a marker, browser
    families); `alphabet` the characters of text it generates whole (a pseudonym's hex digits);
    `truncates_ip` the operator itself when it writes an IP address's network prefix (checked
    against the event's own IP). `opaque`: nothing is known, so every output of a sink using it
    is checked by value (the default: an operator that does not declare is never trusted).
    """

    joiners: str = ""
    vocabulary: tuple[str, ...] = ()
    alphabet: str = ""
    truncates_ip: Callable[[Any], Any] | None = None
    opaque: bool = False


OPAQUE: Final = Synthesis(opaque=True)
COPIES: Final = Synthesis()  # writes only runs copied from its input, or nothing


@dataclass(frozen=True, slots=True)
class OperatorTools:
    """What operators of one sink may use: that sink's pseudonymizer and shared parsers."""

    pseudonymize: Callable[[str], str]
    key_id: str
    user_agent: Callable[[], UserAgentParser]


class Operator(ABC):
    """One field transform. Subclasses set `name`, `config_model` and `field_classes`."""

    name: ClassVar[str]
    config_model: ClassVar[type[OperatorConfig]] = OperatorConfig
    field_classes: ClassVar[frozenset[str]]
    # True when the output is still linkable to a person (a pseudonym): such fields are
    # removed for children without parental consent and when identifiers are not allowed.
    linkable: ClassVar[bool] = False

    def __init__(self, config: OperatorConfig, tools: OperatorTools) -> None:
        self.config = config
        self.tools = tools

    @classmethod
    def for_audience(cls, config: OperatorConfig, audience: str) -> OperatorConfig:
        """The config with its audience-dependent defaults filled in.

        The config loader calls this: an operator never knows its sink.
        """
        return config

    @classmethod
    def refusals(cls, config: OperatorConfig, audience: str) -> Iterable[Refusal]:
        """What in `config` a sink of `audience` may not use (it would barely transform)."""
        return ()

    def synthesis(self) -> Synthesis:
        """What this operator writes beyond copies of its input (`Synthesis`); OPAQUE here."""
        return OPAQUE

    @abstractmethod
    def apply(self, value: Any) -> Any:
        """The transformed value, or DROP."""

"""Field operators, one per module, registered in one explicit list.

`OPERATORS` is the registry the config validator and the engine use; it is built once here and
never mutated. `AnyOperatorConfig` is the union of the operators' typed configs, told apart by
`op` (a sink rule's field rules are of this type). To add an operator: write a module with an
`Operator` subclass and its config model, and list both below.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Annotated

from pydantic import Field

from gateway.operators.base import DROP, Operator, OperatorConfig, OperatorTools
from gateway.operators.drop import Drop, DropConfig
from gateway.operators.ip_truncate import IpTruncate, IpTruncateConfig
from gateway.operators.keep import Keep, KeepConfig
from gateway.operators.pseudonym import Pseudonym, PseudonymConfig
from gateway.operators.redact import Redact, RedactConfig
from gateway.operators.timestamp import Timestamp, TimestampConfig
from gateway.operators.url_clean import UrlClean, UrlCleanConfig
from gateway.operators.user_agent import UserAgent, UserAgentConfig

OPERATOR_CLASSES: tuple[type[Operator], ...] = (
    Keep,
    Drop,
    Redact,
    Pseudonym,
    IpTruncate,
    UserAgent,
    UrlClean,
    Timestamp,
)
OPERATORS = MappingProxyType({cls.name: cls for cls in OPERATOR_CLASSES})
# One member per operator above (a unit test checks the two lists agree).
AnyOperatorConfig = Annotated[
    KeepConfig
    | DropConfig
    | RedactConfig
    | PseudonymConfig
    | IpTruncateConfig
    | UserAgentConfig
    | UrlCleanConfig
    | TimestampConfig,
    Field(discriminator="op"),
]

__all__ = [
    "DROP",
    "OPERATORS",
    "OPERATOR_CLASSES",
    "AnyOperatorConfig",
    "Operator",
    "OperatorConfig",
    "OperatorTools",
]

"""Field operators, one per module, registered in one explicit list.

`OPERATORS` is the registry the config validator and the engine use; it is built once here and
never mutated. To add an operator: write a module with an `Operator` subclass and list it below.
"""

from __future__ import annotations

from types import MappingProxyType

from gateway.operators.base import DROP, Operator, OperatorConfig, OperatorTools
from gateway.operators.drop import Drop
from gateway.operators.ip_truncate import IpTruncate
from gateway.operators.keep import Keep
from gateway.operators.pseudonym import Pseudonym
from gateway.operators.redact import Redact
from gateway.operators.timestamp import Timestamp
from gateway.operators.url_clean import UrlClean
from gateway.operators.user_agent import UserAgent

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

__all__ = ["DROP", "OPERATORS", "OPERATOR_CLASSES", "Operator", "OperatorConfig", "OperatorTools"]

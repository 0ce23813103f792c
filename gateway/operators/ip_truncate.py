"""ip_truncate: keep only the network prefix of an IP address (IPv4 /24, IPv6 /48 by default).

Uses socket.inet_pton/inet_ntop (no `ipaddress` objects on the hot path). A value that is not a
valid address is dropped, never passed through.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from socket import AF_INET, AF_INET6, inet_ntop, inet_pton
from typing import Any, ClassVar

from pydantic import Field

from gateway.operators.base import DROP, IP, Operator, OperatorConfig, OperatorTools


class IpTruncateConfig(OperatorConfig):
    """`ipv4_prefix` (0..32, default 24) and `ipv6_prefix` (0..128, default 48) bits are kept."""

    ipv4_prefix: int = Field(default=24, ge=0, le=32)
    ipv6_prefix: int = Field(default=48, ge=0, le=128)


def _truncator(family: int, size: int, prefix: int) -> Callable[[bytes], bytes]:
    """Packed address -> packed address with the host bits zeroed."""
    if prefix % 8 == 0:  # octet-aligned prefix: slicing is cheaper than integer masking
        keep, padding = prefix // 8, bytes(size - prefix // 8)
        return lambda packed: packed[:keep] + padding
    mask = ((1 << prefix) - 1) << (size * 8 - prefix)
    return lambda packed: (int.from_bytes(packed) & mask).to_bytes(size)


class IpTruncate(Operator):
    """Zero the host bits of an address."""

    name: ClassVar[str] = "ip_truncate"
    config_model: ClassVar[type[OperatorConfig]] = IpTruncateConfig
    field_classes: ClassVar[frozenset[str]] = frozenset({IP})

    def __init__(self, config: OperatorConfig, tools: OperatorTools) -> None:
        super().__init__(config, tools)
        assert isinstance(config, IpTruncateConfig)
        self._v4 = _truncator(socket.AF_INET, 4, config.ipv4_prefix)
        self._v6 = _truncator(socket.AF_INET6, 16, config.ipv6_prefix)

    def apply(self, value: Any) -> Any:
        if type(value) is not str:
            return DROP
        try:
            if ":" in value:
                return inet_ntop(AF_INET6, self._v6(inet_pton(AF_INET6, value)))
            return inet_ntop(AF_INET, self._v4(inet_pton(AF_INET, value)))
        except (OSError, ValueError):
            return DROP

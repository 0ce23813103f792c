"""ip_truncate: keep only the network prefix of an IP address (IPv4 /24, IPv6 /48 by default).

Uses socket.inet_pton/inet_ntop (no `ipaddress` objects on the hot path). A value that is not a
valid address is dropped, never passed through.
"""

from __future__ import annotations

import socket
from typing import Any, ClassVar

from pydantic import Field

from gateway.operators.base import DROP, IP, Operator, OperatorConfig, OperatorTools


class IpTruncateConfig(OperatorConfig):
    """`ipv4_prefix` (0..32, default 24) and `ipv6_prefix` (0..128, default 48) bits are kept."""

    ipv4_prefix: int = Field(default=24, ge=0, le=32)
    ipv6_prefix: int = Field(default=48, ge=0, le=128)


def _mask(bits: int, prefix: int) -> int:
    return ((1 << prefix) - 1) << (bits - prefix)


class IpTruncate(Operator):
    """Zero the host bits of an address."""

    name: ClassVar[str] = "ip_truncate"
    config_model: ClassVar[type[OperatorConfig]] = IpTruncateConfig
    field_classes: ClassVar[frozenset[str]] = frozenset({IP})

    def __init__(self, config: OperatorConfig, tools: OperatorTools) -> None:
        super().__init__(config, tools)
        assert isinstance(config, IpTruncateConfig)
        self._v4 = _mask(32, config.ipv4_prefix)
        self._v6 = _mask(128, config.ipv6_prefix)
        self._v4_bytes = config.ipv4_prefix // 8 if config.ipv4_prefix % 8 == 0 else -1
        self._v6_bytes = config.ipv6_prefix // 8 if config.ipv6_prefix % 8 == 0 else -1

    def apply(self, value: Any) -> Any:
        if type(value) is not str:
            return DROP
        family, mask, size, keep = (
            (socket.AF_INET6, self._v6, 16, self._v6_bytes)
            if ":" in value
            else (socket.AF_INET, self._v4, 4, self._v4_bytes)
        )
        try:
            packed = socket.inet_pton(family, value)
        except (OSError, ValueError):
            return DROP
        if keep >= 0:  # octet-aligned prefix: slicing is cheaper than integer masking
            truncated = packed[:keep] + bytes(size - keep)
        else:
            truncated = (int.from_bytes(packed) & mask).to_bytes(size)
        return socket.inet_ntop(family, truncated)
